/**
 * Key material of the local gateway, generated at every start with jose in the formats
 * of core/key-material.ts: a signing key set with the three pre-published slots
 * (previous, current, next) and a cookie encryption key set.
 */
import { createPublicKey, JsonWebKey, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import {
  CookieKeySetSecret,
  SECRET_FORMAT_VERSION,
  SECRET_KINDS,
  SIGNING_KEY_STATUSES,
  SigningKeyEntry,
  SigningKeySetSecret,
  StoredJwk,
  VerificationKeySetSecret,
} from '../core/key-material';
import { SessionAlgorithm } from '../core/session-contract';

export async function generateSigningKeySet(alg: SessionAlgorithm): Promise<SigningKeySetSecret> {
  const createdAt = new Date().toISOString();
  const keys: SigningKeyEntry[] = [];
  for (const status of SIGNING_KEY_STATUSES) {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
    const publicJwk = (await exportJWK(publicKey)) as StoredJwk;
    const kid = await calculateJwkThumbprint(publicJwk as Parameters<typeof calculateJwkThumbprint>[0]);
    const privateJwk = (await exportJWK(privateKey)) as StoredJwk;
    keys.push({
      kid,
      status,
      createdAt,
      publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
      privateJwk: { ...privateJwk, kid, alg, use: 'sig' },
    });
  }
  return { kind: SECRET_KINDS.signingKeys, version: SECRET_FORMAT_VERSION, alg, keys };
}

/** The public half, as the rotation publishes it for HAProxy and other verifiers. */
export function verificationKeysOf(signing: SigningKeySetSecret): VerificationKeySetSecret {
  return {
    kind: SECRET_KINDS.verificationKeys,
    version: SECRET_FORMAT_VERSION,
    alg: signing.alg,
    keys: signing.keys.map(({ kid, status, publicJwk }) => ({
      kid,
      status,
      publicJwk,
      publicKeyPem: createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString(),
    })),
  };
}

export function generateCookieKeySet(): CookieKeySetSecret {
  const createdAt = new Date().toISOString();
  const key = () => randomBytes(32).toString('base64url');
  return {
    kind: SECRET_KINDS.cookieKeys,
    version: SECRET_FORMAT_VERSION,
    keys: [
      { kid: `cookie-${randomBytes(6).toString('hex')}`, status: 'current', createdAt, k: key() },
      { kid: `cookie-${randomBytes(6).toString('hex')}`, status: 'previous', createdAt, k: key() },
    ],
  };
}
