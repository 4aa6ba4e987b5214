/**
 * Session signing keys, pre-published in three slots. Each rotation moves
 * next -> current and current -> previous, drops the old previous and makes a new
 * next; from the seed it makes current and next. setSecret publishes the public half
 * of the pending set to the verification-keys secret, so instances learn a key one
 * full period before finishSecret lets the auth service sign with it.
 */
import { calculateJwkThumbprint, CompactSign, compactVerify, exportJWK, exportSPKI, generateKeyPair, importJWK } from 'jose';
import {
  parseGatewaySecret,
  PRIVATE_JWK_MEMBERS,
  SECRET_FORMAT_VERSION,
  SECRET_KINDS,
  SigningKeyEntry,
  SigningKeySetSecret,
  SigningKeyStatus,
  StoredJwk,
  VerificationKeySetSecret,
} from '../../core/key-material';
import type { SessionAlgorithm } from '../../core/session-contract';
import type { KindRotation, RotationContext } from './kind';
import { isAwsError } from './secret-store';

export async function generateSigningKey(alg: SessionAlgorithm, status: SigningKeyStatus, now: Date): Promise<SigningKeyEntry> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const common = { kid, alg, use: 'sig' };
  return {
    kid,
    status,
    createdAt: now.toISOString(),
    publicJwk: { ...publicJwk, ...common } as unknown as StoredJwk,
    privateJwk: { ...(await exportJWK(privateKey)), ...common } as unknown as StoredJwk,
  };
}

/**
 * The next key set: pure, given the freshly made keys it may need (`fresh` is called
 * for each missing slot). A set of another algorithm starts over.
 */
export async function advanceSigningKeys(
  current: SigningKeySetSecret,
  alg: SessionAlgorithm,
  fresh: (status: SigningKeyStatus) => Promise<SigningKeyEntry>,
): Promise<SigningKeySetSecret> {
  const oldCurrent = current.alg === alg ? current.keys.find((k) => k.status === 'current') : undefined;
  const oldNext = current.alg === alg ? current.keys.find((k) => k.status === 'next') : undefined;
  const keys: SigningKeyEntry[] = [];
  if (oldCurrent) keys.push({ ...oldCurrent, status: 'previous' });
  keys.push(oldNext ? { ...oldNext, status: 'current' } : await fresh('current'));
  keys.push(await fresh('next'));
  return { kind: SECRET_KINDS.signingKeys, version: SECRET_FORMAT_VERSION, alg, keys };
}

/** The public half of a signing key set: what instances and verifiers may read. */
export async function verificationKeySet(set: SigningKeySetSecret): Promise<VerificationKeySetSecret> {
  const keys = [];
  for (const key of set.keys) {
    const publicJwk = withoutPrivateMembers(key.publicJwk);
    const pem = await exportSPKI((await importJWK(publicJwk, set.alg, { extractable: true })) as CryptoKey);
    // A final newline, as openssl and Node write PEM files, so key-sync writes it unchanged.
    const publicKeyPem = pem.endsWith('\n') ? pem : `${pem}\n`;
    keys.push({ kid: key.kid, status: key.status, publicJwk, publicKeyPem });
  }
  return { kind: SECRET_KINDS.verificationKeys, version: SECRET_FORMAT_VERSION, alg: set.alg, keys };
}

function withoutPrivateMembers(jwk: StoredJwk): StoredJwk {
  const copy: StoredJwk = { ...jwk };
  for (const member of PRIVATE_JWK_MEMBERS) delete copy[member];
  return copy;
}

export function privateMembersIn(set: VerificationKeySetSecret): string[] {
  return set.keys.flatMap((k) => PRIVATE_JWK_MEMBERS.filter((m) => m in k.publicJwk).map((m) => `${k.kid}.${m}`));
}

async function publish(pending: SigningKeySetSecret, context: RotationContext): Promise<VerificationKeySetSecret> {
  const arn = context.settings.verificationKeysSecretArn;
  const published = await verificationKeySet(pending);
  const text = JSON.stringify(published);
  // Reading it first checks that the ARN points at a verification-keys secret.
  const existing = await context.store.get(arn, { stage: 'AWSCURRENT' });
  parseGatewaySecret(existing.secretString, SECRET_KINDS.verificationKeys, arn);
  try {
    // The same token per rotation: a retried setSecret puts the same value again, which Secrets Manager ignores.
    await context.store.put(arn, context.token, text);
  } catch (error) {
    if (!isAwsError(error, 'ResourceExistsException')) throw error;
    const stored = await context.store.get(arn, { versionId: context.token });
    if (stored.secretString !== text) {
      throw new Error(`Version ${context.token} of ${arn} already holds a different key set: publish this rotation under a new token (start a new rotation).`);
    }
  }
  return published;
}

export const signingKeyRotation: KindRotation = {
  async create(current, context) {
    const set = parseGatewaySecret(current, SECRET_KINDS.signingKeys, context.secretArn);
    const alg = context.settings.sessionAlgorithm;
    if (set.keys.length > 0 && set.alg !== alg) {
      context.log({ event: 'algorithm-changed', from: set.alg, to: alg, note: 'sessions signed with the old algorithm stop verifying' });
    }
    const next = await advanceSigningKeys(set, alg, (status) => generateSigningKey(alg, status, context.now));
    return JSON.stringify(next);
  },

  async set(pending, context) {
    const set = parseGatewaySecret(pending, SECRET_KINDS.signingKeys, context.secretArn);
    const published = await publish(set, context);
    context.log({
      event: 'published-verification-keys',
      secretArn: context.settings.verificationKeysSecretArn,
      kids: published.keys.map((k) => `${k.status}:${k.kid}`),
    });
  },

  async test(pending, context) {
    const set = parseGatewaySecret(pending, SECRET_KINDS.signingKeys, context.secretArn);
    for (const status of ['current', 'next'] as const) {
      if (set.keys.filter((k) => k.status === status).length !== 1) throw new Error(`The pending key set must have exactly one ${status} key.`);
    }
    for (const key of set.keys) {
      const payload = new TextEncoder().encode(JSON.stringify({ test: context.token }));
      const jws = await new CompactSign(payload).setProtectedHeader({ alg: set.alg, kid: key.kid }).sign(await importJWK(key.privateJwk, set.alg));
      const { payload: verified } = await compactVerify(jws, await importJWK(key.publicJwk, set.alg));
      if (Buffer.compare(Buffer.from(verified), Buffer.from(payload)) !== 0) throw new Error(`Key ${key.kid} did not verify its own signature.`);
    }
    const arn = context.settings.verificationKeysSecretArn;
    const published = parseGatewaySecret((await context.store.get(arn, { stage: 'AWSCURRENT' })).secretString, SECRET_KINDS.verificationKeys, arn);
    const leaked = privateMembersIn(published);
    if (leaked.length > 0) throw new Error(`The verification-keys secret holds private key members (${leaked.join(', ')}).`);
    const expected = set.keys.map((k) => `${k.status}:${k.kid}`).sort();
    const found = published.keys.map((k) => `${k.status}:${k.kid}`).sort();
    if (JSON.stringify(expected) !== JSON.stringify(found)) {
      throw new Error(`The published verification keys (${found.join(', ')}) are not the pending set (${expected.join(', ')}): setSecret did not publish.`);
    }
  },
};
