/**
 * Cookie encryption keys (JWE `dir` + A256GCM): each rotation makes a new current and
 * keeps the old current as previous, so a cookie stays readable for at least one period.
 */
import { randomBytes } from 'node:crypto';
import { base64url, compactDecrypt, CompactEncrypt, decodeProtectedHeader } from 'jose';
import { CookieKeyEntry, CookieKeySetSecret, parseGatewaySecret, SECRET_FORMAT_VERSION, SECRET_KINDS } from '../../lib/key-material';
import type { KindRotation } from './kind';

export const COOKIE_KEY_BYTES = 32;

export function generateCookieKey(now: Date): CookieKeyEntry {
  return { kid: randomBytes(12).toString('base64url'), status: 'current', createdAt: now.toISOString(), k: randomBytes(COOKIE_KEY_BYTES).toString('base64url') };
}

/** Pure: the old current becomes previous, `fresh` becomes current, the old previous is dropped. */
export function advanceCookieKeys(current: CookieKeySetSecret, fresh: CookieKeyEntry): CookieKeySetSecret {
  const oldCurrent = current.keys.find((k) => k.status === 'current');
  const keys: CookieKeyEntry[] = [{ ...fresh, status: 'current' }];
  if (oldCurrent) keys.push({ ...oldCurrent, status: 'previous' });
  return { kind: SECRET_KINDS.cookieKeys, version: SECRET_FORMAT_VERSION, keys };
}

/** Encrypts with a key of the set, the way the auth service does (kid in the header). */
export async function encryptWith(key: CookieKeyEntry, plaintext: string): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(plaintext)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid }).encrypt(base64url.decode(key.k));
}

/** Decrypts with whichever key of the set the header names; throws when none matches. */
export async function decryptWith(set: CookieKeySetSecret, jwe: string): Promise<string> {
  const { kid } = decodeProtectedHeader(jwe);
  const key = set.keys.find((k) => k.kid === kid);
  if (!key) throw new Error(`No cookie key with kid ${JSON.stringify(kid)} in the set.`);
  const { plaintext } = await compactDecrypt(jwe, base64url.decode(key.k), { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
  return new TextDecoder().decode(plaintext);
}

export const cookieKeyRotation: KindRotation = {
  async create(current, context) {
    const set = parseGatewaySecret(current, SECRET_KINDS.cookieKeys, context.secretArn);
    return JSON.stringify(advanceCookieKeys(set, generateCookieKey(context.now)));
  },

  async set() {
    // The auth service reads AWSCURRENT; finishSecret is what puts the new key in use.
  },

  follows(pending, current, context) {
    const inUse = parseGatewaySecret(current, SECRET_KINDS.cookieKeys, context.secretArn).keys.find((k) => k.status === 'current');
    const kids = parseGatewaySecret(pending, SECRET_KINDS.cookieKeys, context.secretArn).keys.map((k) => k.kid);
    return inUse && !kids.includes(inUse.kid) ? `it drops the current cookie key ${inUse.kid}, which encrypts the cookies in use` : undefined;
  },

  async test(pending, context) {
    const set = parseGatewaySecret(pending, SECRET_KINDS.cookieKeys, context.secretArn);
    const current = set.keys.filter((k) => k.status === 'current');
    if (current.length !== 1) throw new Error(`The pending cookie key set must have exactly one current key, found ${current.length}.`);
    for (const key of set.keys) {
      if (base64url.decode(key.k).length !== COOKIE_KEY_BYTES) throw new Error(`Cookie key ${key.kid} is not ${COOKIE_KEY_BYTES} bytes.`);
      const probe = `rotation-test:${context.token}:${key.kid}`;
      // A cookie made with the previous key must still open with the pending set; the new current must round-trip.
      if ((await decryptWith(set, await encryptWith(key, probe))) !== probe) throw new Error(`Cookie key ${key.kid} did not decrypt its own cookie.`);
    }
  },
};
