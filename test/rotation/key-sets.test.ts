/**
 * What the rotated key sets mean for tokens and cookies: sessions signed before a
 * rotation keep verifying, the next key is published a full rotation before it signs,
 * three rotations drop the oldest key; cookies survive one rotation and not two.
 */
import { createPublicKey } from 'node:crypto';
import { importJWK, jwtVerify, SignJWT, decodeProtectedHeader } from 'jose';
import {
  CookieKeySetSecret,
  keyAlgorithm,
  parseGatewaySecret,
  PRIVATE_JWK_MEMBERS,
  SECRET_KINDS,
  SigningKeySetSecret,
  SigningKeyStatus,
  VerificationKeySetSecret,
} from '../../lib/key-material';
import type { SessionAlgorithm } from '../../lib/session-contract';
import { decryptWith, encryptWith } from '../../lambda/rotation/cookie-keys';
import { handler } from '../../lambda/rotation/index';
import { advanceSigningKeys } from '../../lambda/rotation/signing-keys';
import { ROTATION_STEPS, SecretsManagerModel } from '../support/secrets-manager-model';
import { atTime, captureLogs, GatewaySecretArns, rotateAndWait, RotationWorld, rotationSettings, startRotationWorld } from './fixture';

let world: RotationWorld;
let model: SecretsManagerModel;
let arns: GatewaySecretArns;

function setUp(alg: SessionAlgorithm): void {
  world = startRotationWorld(handler, { sessionAlgorithm: alg });
  ({ model, arns } = world);
}
afterEach(() => world.stop());

const rotate = (arn: string) => world.rotate(arn);

/** What the auth service signs with: the current key of the AWSCURRENT signing set, in its own algorithm. */
async function signSession(sub: string): Promise<string> {
  const set = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 'signing') as SigningKeySetSecret;
  const key = set.keys.find((k) => k.status === 'current')!;
  const alg = keyAlgorithm(key, set);
  return new SignJWT({ sub }).setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' }).setExpirationTime('10m').sign(await importJWK(key.privateJwk, alg));
}

function published(): VerificationKeySetSecret {
  return parseGatewaySecret(model.valueAt(arns.verificationKeys), SECRET_KINDS.verificationKeys, 'verification');
}

/** What HAProxy does: pick the key by kid among the published ones, verify the signature with the key's own algorithm. */
async function verifiesOnInstances(token: string, set: VerificationKeySetSecret = published()): Promise<boolean> {
  const { kid } = decodeProtectedHeader(token);
  const entry = set.keys.find((k) => k.kid === kid);
  if (!entry) return false;
  await jwtVerify(token, createPublicKey(entry.publicKeyPem), { algorithms: [keyAlgorithm(entry, set)] });
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
      expect(createPublicKey(key.publicKeyPem).export({ format: 'jwk' })).toEqual(createPublicKey({ key: key.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ format: 'jwk' }));
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

describe('a change of algorithm is a rotation', () => {
  beforeEach(() => setUp('ES256'));

  test('ES256 -> RS256: the next rotation publishes an RS256 key as next, the one after signs with it; every session verifies on instances that synced before', async () => {
    await rotate(arns.signingKeys);
    const es256Session = await signSession('alice');
    world.setEnvironment(rotationSettings(arns, { sessionAlgorithm: 'RS256' }));

    const syncedBeforeFirst = published();
    const first = await rotateAndWait(model, arns.signingKeys);
    expect(first.lines).toContainEqual(expect.objectContaining({ event: 'algorithm-changed', from: 'ES256', to: 'RS256' }));
    const mixed = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's');
    expect(mixed.alg).toBe('ES256');
    expect(mixed.keys.map((k) => `${k.status}:${keyAlgorithm(k, mixed)}`)).toEqual(['previous:ES256', 'current:ES256', 'next:RS256']);
    expect(published().keys.map((k) => `${k.status}:${keyAlgorithm(k, published())}`)).toEqual(['previous:ES256', 'current:ES256', 'next:RS256']);
    expect(createPublicKey(published().keys[2].publicKeyPem).asymmetricKeyType).toBe('rsa');
    const stillEs256 = await signSession('bob');
    expect(decodeProtectedHeader(stillEs256).alg).toBe('ES256');
    expect(await verifiesOnInstances(stillEs256, syncedBeforeFirst)).toBe(true);
    expect(await verifiesOnInstances(es256Session)).toBe(true);

    const syncedBeforeSecond = published();
    await rotate(arns.signingKeys);
    const rs256Session = await signSession('carol');
    expect(decodeProtectedHeader(rs256Session).alg).toBe('RS256');
    // Instances that synced only before this rotation already know the RS256 key.
    expect(await verifiesOnInstances(rs256Session, syncedBeforeSecond)).toBe(true);
    expect(await verifiesOnInstances(stillEs256)).toBe(true);
    expect(parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's').alg).toBe('RS256');

    await rotate(arns.signingKeys);
    const all = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's');
    expect(all.keys.map((k) => keyAlgorithm(k, all))).toEqual(['RS256', 'RS256', 'RS256']);
  });
});

describe('a next key younger than the minimum age is not promoted', () => {
  beforeEach(() => setUp('ES256'));
  const MINUTE = 60_000;
  const key = (status: SigningKeyStatus, alg: SessionAlgorithm, createdAt: Date) => ({
    kid: `${status}-${alg}`,
    status,
    createdAt: createdAt.toISOString(),
    publicJwk: { kty: alg === 'ES256' ? 'EC' : 'RSA', alg },
    privateJwk: { kty: alg === 'ES256' ? 'EC' : 'RSA', alg },
  });
  const t0 = new Date('2026-03-02T10:00:00Z');
  const set = (nextAlg: SessionAlgorithm = 'ES256'): SigningKeySetSecret => ({
    kind: SECRET_KINDS.signingKeys,
    version: 1,
    alg: 'ES256',
    keys: [key('previous', 'ES256', new Date(t0.getTime() - 20 * MINUTE)), key('current', 'ES256', new Date(t0.getTime() - 10 * MINUTE)), key('next', nextAlg, t0)],
  });
  const fresh = (alg: SessionAlgorithm) => async (status: SigningKeyStatus) => ({ ...key(status, alg, t0), kid: `fresh-${status}-${alg}` });

  test('a rotation within the minimum age keeps previous, current and next as they are', async () => {
    const advanced = await advanceSigningKeys(set(), 'ES256', new Date(t0.getTime() + 5 * MINUTE), 21.5 * MINUTE, fresh('ES256'));
    expect(advanced).toMatchObject({ promoted: false, replacedNext: false, deferredBecause: expect.stringContaining('is 300 s old, less than the 1290 s') });
    expect(advanced.set).toEqual(set());
  });

  test('past the minimum age the next key is promoted and the old previous dropped', async () => {
    const advanced = await advanceSigningKeys(set(), 'ES256', new Date(t0.getTime() + 22 * MINUTE), 21.5 * MINUTE, fresh('ES256'));
    expect(advanced.promoted).toBe(true);
    expect(advanced.set.keys.map((k) => `${k.status}:${k.kid}`)).toEqual(['previous:current-ES256', 'current:next-ES256', 'next:fresh-next-ES256']);
  });

  test('a young next key of another algorithm is replaced by one of the configured algorithm: it never signed', async () => {
    const advanced = await advanceSigningKeys(set('ES256'), 'RS256', new Date(t0.getTime() + MINUTE), 21.5 * MINUTE, fresh('RS256'));
    expect(advanced).toMatchObject({ promoted: false, replacedNext: true });
    expect(advanced.set.keys.map((k) => `${k.status}:${k.kid}`)).toEqual(['previous:previous-ES256', 'current:current-ES256', 'next:fresh-next-RS256']);
  });

  test('the handler on the clock: a second rotation ten minutes after the first keeps the signing key, one half an hour after promotes', async () => {
    world.setEnvironment(rotationSettings(arns, { signingKeyMinAgeSeconds: 1290 }));
    const start = Date.parse('2026-03-02T10:00:00Z');
    await atTime(start, () => rotate(arns.signingKeys));
    const first = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's');
    const soon = await atTime(start + 10 * MINUTE, () => rotateAndWait(model, arns.signingKeys));
    expect(soon).toMatchObject({ succeeded: true });
    expect(soon.lines).toContainEqual(expect.objectContaining({ event: 'promotion-deferred' }));
    expect(parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's').keys).toEqual(first.keys);
    await atTime(start + 30 * MINUTE, () => rotate(arns.signingKeys));
    expect(parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's').keys.find((k) => k.status === 'current')!.kid).toBe(first.keys.find((k) => k.status === 'next')!.kid);
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
    const cookie = await encryptWith(cookieKeys().keys.find((k) => k.status === 'current')!, 'refresh-token-1');
    await rotate(arns.cookieKeys);
    expect(cookieKeys().keys.map((k) => k.status)).toEqual(['current', 'previous']);
    await expect(decryptWith(cookieKeys(), cookie)).resolves.toBe('refresh-token-1');
    const fresh = await encryptWith(cookieKeys().keys.find((k) => k.status === 'current')!, 'refresh-token-2');
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
