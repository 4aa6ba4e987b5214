/**
 * Session signing keys, pre-published in three slots. Each rotation moves
 * next -> current and current -> previous, drops the old previous and makes a new
 * next; from the seed it makes current and next. setSecret publishes the public half
 * of the pending set to the verification-keys secret, so instances learn a key one
 * full period before finishSecret lets the auth service sign with it. A rotation that
 * comes too soon after the last one keeps the signing key (advanceSigningKeys).
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, CompactSign, compactVerify, exportJWK, exportSPKI, generateKeyPair, importJWK } from 'jose';
import {
  keyAlgorithm,
  parseGatewaySecret,
  PRIVATE_JWK_MEMBERS,
  SECRET_FORMAT_VERSION,
  SECRET_KINDS,
  SigningKeyEntry,
  SigningKeySetSecret,
  SigningKeyStatus,
  StoredJwk,
  VerificationKeySetSecret,
} from '../../lib/key-material';
import type { SessionAlgorithm } from '../../lib/session-contract';
import type { KindRotation, RotationContext } from './kind';
import { AWSCURRENT, isAwsError } from './secret-store';

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

export interface AdvancedSigningKeys {
  readonly set: SigningKeySetSecret;
  /** True when `next` became `current`; false when the rotation kept the signing key (see below). */
  readonly promoted: boolean;
  /** Why it did not promote: the `next` key was younger than the minimum age. */
  readonly deferredBecause?: string;
  /** True when a `next` key of another algorithm was replaced by one of the configured algorithm. */
  readonly replacedNext: boolean;
}

/**
 * The next key set: pure, given the time and the freshly made keys it may need (`fresh`
 * is called for each key it makes). Normally `next` becomes `current`, `current` becomes
 * `previous`, the old `previous` is dropped and a new `next` is made with `alg`.
 *
 * A `next` key younger than `minAgeMs` is not promoted: instances may not all have it yet,
 * and the `previous` key it would push out may still have live sessions. That happens
 * when a rotation lands soon after another (a deployment's RotateImmediatelyOnUpdate, a
 * rotation by hand, two windows back to back): the set stays as it is, except that a young
 * `next` of another algorithm than `alg` is replaced, since it has not signed anything.
 *
 * Keys keep their own algorithm: after a change of `alg`, the old keys leave the set one
 * rotation at a time, and the new algorithm signs once its first key was `next` for a
 * whole period, so no instance ever meets a token of a key it does not know.
 */
export async function advanceSigningKeys(
  current: SigningKeySetSecret,
  alg: SessionAlgorithm,
  now: Date,
  minAgeMs: number,
  fresh: (status: SigningKeyStatus) => Promise<SigningKeyEntry>,
): Promise<AdvancedSigningKeys> {
  const oldCurrent = current.keys.find((k) => k.status === 'current');
  const oldNext = current.keys.find((k) => k.status === 'next');
  const nextAgeMs = oldNext ? now.getTime() - Date.parse(oldNext.createdAt) : Number.POSITIVE_INFINITY;
  if (oldCurrent && oldNext && nextAgeMs < minAgeMs) {
    const keep = current.keys.filter((k) => k.status !== 'next');
    const replace = keyAlgorithm(oldNext, current) !== alg;
    const keys = [...keep, replace ? await fresh('next') : oldNext];
    return {
      set: { ...current, keys },
      promoted: false,
      replacedNext: replace,
      deferredBecause: `the next key ${oldNext.kid} is ${Math.max(0, Math.round(nextAgeMs / 1000))} s old, less than the ${Math.round(minAgeMs / 1000)} s every instance needs to fetch it and every session of the previous key needs to expire`,
    };
  }
  const keys: SigningKeyEntry[] = [];
  if (oldCurrent) keys.push({ ...oldCurrent, status: 'previous' });
  const newCurrent = oldNext ? { ...oldNext, status: 'current' as const } : await fresh('current');
  keys.push(newCurrent);
  keys.push(await fresh('next'));
  return {
    set: { kind: SECRET_KINDS.signingKeys, version: SECRET_FORMAT_VERSION, alg: keyAlgorithm(newCurrent, oldNext ? current : { alg }), keys },
    promoted: true,
    replacedNext: false,
  };
}

/**
 * Why `pending` cannot follow `current`, or undefined: it must keep the key that signs
 * now and the one published to sign next (unless `current` has none: the seed).
 */
export function signingSetFollows(pending: SigningKeySetSecret, current: SigningKeySetSecret): string | undefined {
  const kids = new Set(pending.keys.map((k) => k.kid));
  const lost = current.keys.filter((k) => k.status !== 'previous' && !kids.has(k.kid)).map((k) => `${k.status} ${k.kid}`);
  return lost.length > 0 ? `it drops the ${lost.join(' and the ')} key of the current set` : undefined;
}

/** The public half of a signing key set: what instances and verifiers may read. */
export async function verificationKeySet(set: SigningKeySetSecret): Promise<VerificationKeySetSecret> {
  const keys = [];
  for (const key of set.keys) {
    const publicJwk = withoutPrivateMembers(key.publicJwk);
    const pem = await exportSPKI((await importJWK(publicJwk, keyAlgorithm(key, set), { extractable: true })) as CryptoKey);
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

/**
 * A ClientRequestToken for publishing this rotation's keys again: derived from the
 * rotation's token and the verification-keys version that is current now, so a retried
 * setSecret that finds the same state uses the same token (one version, not two).
 */
export function republishToken(rotationToken: string, currentVersionId: string): string {
  const hex = createHash('sha256').update(`republish\n${rotationToken}\n${currentVersionId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Makes the public half of `pending` the AWSCURRENT version of the verification-keys
 * secret. First under the rotation's token. PutSecretValue with a token that already
 * names a version holding the same text is ignored, labels included ([API]
 * PutSecretValue): when the verification secret moved on since this rotation published
 * (an earlier attempt, then something else wrote it), that call changes nothing, so the
 * same keys are published again under a new token derived from the rotation's.
 */
async function publish(pending: SigningKeySetSecret, context: RotationContext): Promise<VerificationKeySetSecret> {
  const arn = context.settings.verificationKeysSecretArn;
  const published = await verificationKeySet(pending);
  const text = JSON.stringify(published);
  // Reading it first checks that the ARN points at a verification-keys secret.
  const existing = await context.store.get(arn, { stage: AWSCURRENT });
  parseGatewaySecret(existing.secretString, SECRET_KINDS.verificationKeys, arn);
  if (existing.secretString === text) return published;
  let stages: string[] = [];
  try {
    stages = await context.store.put(arn, context.token, text);
  } catch (error) {
    if (!isAwsError(error, 'ResourceExistsException')) throw error;
    // The token's version holds other keys (an earlier attempt of this rotation that made other keys): publish anew.
  }
  if (!stages.includes(AWSCURRENT)) {
    const token = republishToken(context.token, existing.versionId);
    stages = await context.store.put(arn, token, text);
    context.log({ event: 'republished-verification-keys', secretArn: arn, replacedVersion: existing.versionId, publishedVersion: token });
  }
  return published;
}

export const signingKeyRotation: KindRotation = {
  async create(current, context) {
    const set = parseGatewaySecret(current, SECRET_KINDS.signingKeys, context.secretArn);
    const alg = context.settings.sessionAlgorithm;
    const advanced = await advanceSigningKeys(set, alg, context.now, context.settings.signingKeyMinAgeSeconds * 1000, (status) => generateSigningKey(alg, status, context.now));
    if (!advanced.promoted) {
      context.log({ event: 'promotion-deferred', reason: advanced.deferredBecause, replacedNext: advanced.replacedNext, kids: advanced.set.keys.map((k) => `${k.status}:${k.kid}`) });
    }
    const signingAlg = advanced.set.keys.find((k) => k.status === 'current')?.publicJwk.alg ?? alg;
    if (set.keys.length > 0 && signingAlg !== alg) {
      context.log({ event: 'algorithm-changed', from: signingAlg, to: alg, note: `new keys are ${alg}; sessions are signed with ${alg} once the first ${alg} key, now next, becomes current at a later rotation` });
    }
    return JSON.stringify(advanced.set);
  },

  follows(pending, current, context) {
    return signingSetFollows(parseGatewaySecret(pending, SECRET_KINDS.signingKeys, context.secretArn), parseGatewaySecret(current, SECRET_KINDS.signingKeys, context.secretArn));
  },

  async set(pending, context) {
    const set = parseGatewaySecret(pending, SECRET_KINDS.signingKeys, context.secretArn);
    const published = await publish(set, context);
    context.log({ event: 'published-verification-keys', secretArn: context.settings.verificationKeysSecretArn, kids: published.keys.map((k) => `${k.status}:${k.kid}`) });
  },

  async test(pending, context) {
    const set = parseGatewaySecret(pending, SECRET_KINDS.signingKeys, context.secretArn);
    for (const status of ['current', 'next'] as const) {
      if (set.keys.filter((k) => k.status === status).length !== 1) throw new Error(`The pending key set must have exactly one ${status} key.`);
    }
    for (const key of set.keys) {
      const alg = keyAlgorithm(key, set);
      const payload = new TextEncoder().encode(JSON.stringify({ test: context.token }));
      const jws = await new CompactSign(payload).setProtectedHeader({ alg, kid: key.kid }).sign(await importJWK(key.privateJwk, alg));
      const { payload: verified } = await compactVerify(jws, await importJWK(key.publicJwk, alg));
      if (Buffer.compare(Buffer.from(verified), Buffer.from(payload)) !== 0) throw new Error(`Key ${key.kid} did not verify its own signature.`);
    }
    const arn = context.settings.verificationKeysSecretArn;
    const published = parseGatewaySecret((await context.store.get(arn, { stage: AWSCURRENT })).secretString, SECRET_KINDS.verificationKeys, arn);
    const leaked = privateMembersIn(published);
    if (leaked.length > 0) throw new Error(`The verification-keys secret holds private key members (${leaked.join(', ')}).`);
    const expected = set.keys.map((k) => `${k.status}:${k.kid}`).sort();
    const found = published.keys.map((k) => `${k.status}:${k.kid}`).sort();
    if (JSON.stringify(expected) !== JSON.stringify(found)) {
      throw new Error(`The published verification keys (${found.join(', ')}) are not the pending set (${expected.join(', ')}): setSecret did not publish.`);
    }
  },
};
