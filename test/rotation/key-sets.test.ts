/**
 * What the rotated key sets mean for tokens and cookies: sessions signed before a
 * rotation keep verifying, the next key is published a full rotation before it signs,
 * three rotations drop the oldest key; cookies survive one rotation and not two.
 */
import { createPublicKey } from 'node:crypto';
import { importJWK, jwtVerify, SignJWT, decodeProtectedHeader } from 'jose';
import {
  CookieKeySetSecret,
  parseGatewaySecret,
  PRIVATE_JWK_MEMBERS,
  SECRET_KINDS,
  SigningKeySetSecret,
  VerificationKeySetSecret,
} from '../../core/key-material';
import type { SessionAlgorithm } from '../../core/session-contract';
import { decryptWith, encryptWith } from '../../lambda/rotation/cookie-keys';
import { handler } from '../../lambda/rotation/index';
import { ROTATION_STEPS, SecretsManagerModel } from '../../dev/aws/secrets-manager-model';
import { captureLogs, GatewaySecretArns, RotationWorld, startRotationWorld } from './fixture';

let world: RotationWorld;
let model: SecretsManagerModel;
let arns: GatewaySecretArns;

function setUp(alg: SessionAlgorithm): void {
  world = startRotationWorld(handler, { sessionAlgorithm: alg });
  ({ model, arns } = world);
}
afterEach(() => world.stop());

const rotate = (arn: string) => world.rotate(arn);

/** What the auth service signs with: the current key of the AWSCURRENT signing set. */
async function signSession(sub: string): Promise<string> {
  const set = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 'signing') as SigningKeySetSecret;
  const key = set.keys.find((k) => k.status === 'current')!;
  return new SignJWT({ sub })
    .setProtectedHeader({ alg: set.alg, kid: key.kid, typ: 'JWT' })
    .setExpirationTime('10m')
    .sign(await importJWK(key.privateJwk, set.alg));
}

function published(): VerificationKeySetSecret {
  return parseGatewaySecret(model.valueAt(arns.verificationKeys), SECRET_KINDS.verificationKeys, 'verification');
}

/** What HAProxy does: pick the key by kid among the published ones, verify the signature. */
async function verifiesOnInstances(token: string, set: VerificationKeySetSecret = published()): Promise<boolean> {
  const { kid } = decodeProtectedHeader(token);
  const entry = set.keys.find((k) => k.kid === kid);
  if (!entry) return false;
  await jwtVerify(token, createPublicKey(entry.publicKeyPem), { algorithms: [set.alg] });
  return true;
}

describe.each(['ES256', 'RS256'] as const)('session signing keys (%s)', (alg) => {
  beforeEach(() => setUp(alg));

  test('the first rotation makes current and next, and publishes both as public keys only', async () => {
    await rotate(arns.signingKeys);
    const set = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's');
    expect(set.alg).toBe(alg);
    expect(set.keys.map((k) => k.status)).toEqual(['current', 'next']);
    const pub = published();
    expect(pub.keys.map((k) => [k.kid, k.status])).toEqual(set.keys.map((k) => [k.kid, k.status]));
    for (const key of pub.keys) {
      expect(PRIVATE_JWK_MEMBERS.filter((m) => m in key.publicJwk)).toEqual([]);
      expect(key.publicJwk).toMatchObject({ kid: key.kid, alg, use: 'sig' });
      // The PEM is the same key as the JWK.
      expect(createPublicKey(key.publicKeyPem).export({ format: 'jwk' })).toEqual(
        createPublicKey({ key: key.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ format: 'jwk' }),
      );
    }
    expect(model.valueAt(arns.verificationKeys)).not.toMatch(/PRIVATE KEY|"d":/);
  });

  test('a session signed before a rotation verifies after it; the key that signs next was published a rotation earlier', async () => {
    await rotate(arns.signingKeys);
    const before = await signSession('alice');
    const publishedBefore = published();
    await rotate(arns.signingKeys);
    expect(await verifiesOnInstances(before)).toBe(true);
    const after = await signSession('bob');
    // Instances that had synced only before the rotation already know the new signing key.
    expect(await verifiesOnInstances(after, publishedBefore)).toBe(true);
    expect(await verifiesOnInstances(after)).toBe(true);
  });

  test('at every point of a rotation, the published keys include the one the auth service signs with', async () => {
    await rotate(arns.signingKeys);
    const token = model.startRotation(arns.signingKeys);
    for (const step of ROTATION_STEPS) {
      const { error } = await captureLogs(() => handler({ SecretId: arns.signingKeys, ClientRequestToken: token, Step: step }));
      expect(error).toBeUndefined();
      expect(await verifiesOnInstances(await signSession(`after-${step}`))).toBe(true);
    }
  });

  test('three rotations drop the oldest key: its sessions stop verifying after two more rotations', async () => {
    await rotate(arns.signingKeys);
    const first = await signSession('carol');
    const firstKid = decodeProtectedHeader(first).kid!;
    await rotate(arns.signingKeys);
    expect(await verifiesOnInstances(first)).toBe(true); // previous
    await rotate(arns.signingKeys);
    expect(await verifiesOnInstances(first)).toBe(false); // dropped
    await rotate(arns.signingKeys);
    const set = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's');
    expect(set.keys.map((k) => k.status)).toEqual(['previous', 'current', 'next']);
    expect(set.keys.map((k) => k.kid)).not.toContain(firstKid);
    expect(published().keys.map((k) => k.kid)).not.toContain(firstKid);
    expect(new Set(set.keys.map((k) => k.kid)).size).toBe(3);
  });
});

describe('cookie encryption keys', () => {
  beforeEach(() => setUp('ES256'));

  function cookieKeys(): CookieKeySetSecret {
    return parseGatewaySecret(model.valueAt(arns.cookieKeys), SECRET_KINDS.cookieKeys, 'cookies');
  }

  test('a cookie encrypted before a rotation still decrypts after one rotation, and not after two', async () => {
    await rotate(arns.cookieKeys);
    expect(cookieKeys().keys.map((k) => k.status)).toEqual(['current']);
    const cookie = await encryptWith(
      cookieKeys().keys.find((k) => k.status === 'current')!,
      'refresh-token-1',
    );
    await rotate(arns.cookieKeys);
    expect(cookieKeys().keys.map((k) => k.status)).toEqual(['current', 'previous']);
    await expect(decryptWith(cookieKeys(), cookie)).resolves.toBe('refresh-token-1');
    const fresh = await encryptWith(
      cookieKeys().keys.find((k) => k.status === 'current')!,
      'refresh-token-2',
    );
    await rotate(arns.cookieKeys);
    await expect(decryptWith(cookieKeys(), cookie)).rejects.toThrow(/No cookie key with kid/);
    await expect(decryptWith(cookieKeys(), fresh)).resolves.toBe('refresh-token-2');
  });

  test('each key is 32 random bytes and each rotation makes a new one', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3; i += 1) {
      await rotate(arns.cookieKeys);
      const current = cookieKeys().keys.find((k) => k.status === 'current')!;
      expect(Buffer.from(current.k, 'base64url')).toHaveLength(32);
      expect(seen.has(current.k)).toBe(false);
      seen.add(current.k);
    }
  });
});
