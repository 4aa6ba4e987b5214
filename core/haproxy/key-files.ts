/**
 * The session-key files HAProxy reads: one PEM per slot (previous, current, next) and the
 * kid map that points each known kid at its slot file. Pure and synchronous, so the
 * renderer and the key-sync unit write byte-identical files.
 */
import { createPublicKey } from 'node:crypto';
import * as path from 'node:path';
import { SIGNING_KEY_STATUSES, SigningKeyStatus, StoredJwk, VerificationKeyEntry } from '../key-material';
import { GATEWAY_FILES } from '../layout';

/** SPKI PEM of a public JWK (EC P-256 or RSA), the form `jwt_verify` loads. */
export function publicKeyPemFromJwk(jwk: StoredJwk): string {
  // The private members are left out: createPublicKey takes a public JWK only.
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicPart } = jwk as Record<string, unknown>;
  try {
    return createPublicKey({ key: publicPart as import('node:crypto').JsonWebKey, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
  } catch (error) {
    throw new Error(
      `Cannot turn the JWK with kid ${JSON.stringify(jwk.kid)} (kty ${JSON.stringify(jwk.kty)}) into a PEM public key: ${(error as Error).message}`,
    );
  }
}

export interface KidMapEntry {
  readonly kid: string;
  readonly slot: SigningKeyStatus;
}

/** `<kid> <absolute slot file path>` lines, in slot order. */
export function renderKidMap(entries: readonly KidMapEntry[], configDir: string): string {
  return SIGNING_KEY_STATUSES.flatMap((slot) =>
    entries.filter((entry) => entry.slot === slot).map((entry) => `${entry.kid} ${path.posix.join(configDir, GATEWAY_FILES.sessionKey(slot))}\n`),
  ).join('');
}

export interface SessionKeyFiles {
  /** Relative path -> content, for the three slot files and the kid map. */
  readonly files: ReadonlyArray<{ readonly path: string; readonly content: string }>;
}

/**
 * The slot files and kid map for a set of verification keys. A slot without a key holds
 * a copy of the current key and gets no kid map line (see core/layout.ts). The PEM the
 * rotation published is used when present, else it is derived from the JWK.
 */
export function renderSessionKeyFiles(keys: readonly VerificationKeyEntry[], configDir: string): SessionKeyFiles {
  const current = keys.find((key) => key.status === 'current');
  if (!current) throw new Error('The verification key set has no "current" key: nothing could verify sessions. Rotate the signing keys first.');
  const files = SIGNING_KEY_STATUSES.map((slot) => {
    const key = keys.find((candidate) => candidate.status === slot) ?? current;
    return { path: GATEWAY_FILES.sessionKey(slot), content: key.publicKeyPem || publicKeyPemFromJwk(key.publicJwk) };
  });
  const kidMap = renderKidMap(
    SIGNING_KEY_STATUSES.flatMap((slot) => keys.filter((key) => key.status === slot).map((key) => ({ kid: key.kid, slot }))),
    configDir,
  );
  return { files: [...files, { path: GATEWAY_FILES.sessionKidMap, content: kidMap }] };
}
