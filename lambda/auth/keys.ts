/**
 * The service's own cryptography, all through jose: session tokens signed with the
 * `current` key of the signing key set, the JWKS of all three slots, and cookies
 * encrypted with the cookie key set (JWE dir + A256GCM, `kid` in the header).
 */
import { EncryptJWT, errors as joseErrors, importJWK, jwtDecrypt, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { ASSERTION_TOKEN_TYPE, SESSION_TOKEN_TYPE } from '../../core/session-contract';
import { keyAlgorithm, type CookieKeySetSecret, type SigningKeySetSecret } from '../../core/key-material';
import { buildAssertionClaims, buildSessionClaims, type SessionClaims, type SessionClaimsInput } from '../../core/auth/session-claims';
import { CLAIMS } from '../../core/session-contract';
import type { CachedSecret } from '../shared/secrets';

export class KeysNotReadyError extends Error {}

export type MintedSession =
  | {
      readonly ok: true;
      readonly token: string;
      /** The upstream assertion: the same claims, `typ` ASSERTION_TOKEN_TYPE, `aud` assertionAudience(aud). */
      readonly assertion: string;
      /** Size of the larger of the two tokens. */
      readonly bytes: number;
      readonly expiresAt: number;
    }
  | { readonly ok: false; readonly bytes: number };

export class SessionSigner {
  constructor(private readonly keySet: CachedSecret<SigningKeySetSecret>) {}

  /** Signs with the `current` key, with its own algorithm; `type` is the `typ` header (a session's, an upstream assertion's, the broker's tokens'). */
  async sign(claims: SessionClaims | JWTPayload, type: string = SESSION_TOKEN_TYPE): Promise<string> {
    const set = await this.keySet.get();
    const current = set.keys.find((key) => key.status === 'current');
    if (!current) throw new KeysNotReadyError(`The signing key set ${this.keySet.secretId} has no current key yet (the first rotation has not run).`);
    const alg = keyAlgorithm(current, set);
    const key = await importJWK(current.privateJwk as JWK, alg);
    return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg, kid: current.kid, typ: type }).sign(key);
  }

  /**
   * Builds, signs and measures a session token and its upstream assertion (the cached
   * key set, so the same `current` key, but across a rotation both are valid anyway).
   * Tokens over `maxBytes` are never returned (fail closed): the caller gets the size to
   * report instead.
   */
  async mint(input: SessionClaimsInput, maxBytes: number): Promise<MintedSession> {
    const claims = buildSessionClaims(input);
    const token = await this.sign(claims);
    const assertion = await this.sign(buildAssertionClaims(claims), ASSERTION_TOKEN_TYPE);
    const bytes = Math.max(Buffer.byteLength(token), Buffer.byteLength(assertion));
    if (bytes > maxBytes) return { ok: false, bytes };
    return { ok: true, token, assertion, bytes, expiresAt: claims[CLAIMS.expiresAt] as number };
  }

  /** Public keys of every slot (previous, current, next) for `jwks.json`, each with its own algorithm. */
  async jwks(): Promise<{ keys: JWK[] }> {
    const set = await this.keySet.get();
    if (set.keys.length === 0) throw new KeysNotReadyError(`The signing key set ${this.keySet.secretId} is empty (the first rotation has not run).`);
    return {
      keys: set.keys.map((entry) => {
        const { d: _private, ...publicJwk } = entry.publicJwk as JWK;
        void _private;
        return { ...publicJwk, kid: entry.kid, alg: keyAlgorithm(entry, set), use: 'sig' } as JWK;
      }),
    };
  }

  /**
   * Verifies a session token of this service: signature under a kid of the set with the
   * set's algorithm (never the token's choice), `typ` JWT (an upstream assertion is
   * refused), `iss`, `aud`, `exp` and `nbf` with the skew, and `sub` and `sid` present.
   * Undefined when it is not valid. Header keys (jwk, jku, x5c, x5u) are never used.
   */
  async verify(
    token: string,
    issuer: string,
    audience: string,
    clockSkewSeconds: number,
    /** Another token type of this service (the broker's access tokens) and the claims it must have. */
    kind: { readonly typ: string; readonly requiredClaims: string[] } = { typ: SESSION_TOKEN_TYPE, requiredClaims: ['exp', 'sub', 'sid'] },
  ): Promise<JWTPayload | undefined> {
    try {
      const set = await this.keySet.get();
      const { payload } = await jwtVerify(
        token,
        async (header) => {
          const entry = set.keys.find((key) => key.kid === header.kid);
          if (!entry) throw new Error('unknown kid');
          // The key's own algorithm, so a token can only name the one its key was made for.
          if (header.alg !== keyAlgorithm(entry, set)) throw new Error('algorithm of another key');
          return importJWK(entry.publicJwk as JWK, keyAlgorithm(entry, set));
        },
        {
          algorithms: [...new Set(set.keys.map((entry) => keyAlgorithm(entry, set)))],
          issuer,
          audience,
          clockTolerance: clockSkewSeconds,
          typ: kind.typ,
          requiredClaims: kind.requiredClaims,
        },
      );
      return payload;
    } catch {
      return undefined;
    }
  }
}

export type CookiePurpose = 'login' | 'refresh';

export type OpenedCookie<T> =
  | { readonly ok: true; readonly payload: T & JWTPayload; readonly kid: string; readonly currentKid: string }
  | { readonly ok: false; readonly reason: 'invalid' | 'expired' | 'unknown-key' | 'wrong-purpose' };

export class CookieSealer {
  constructor(
    private readonly keySet: CachedSecret<CookieKeySetSecret>,
    private readonly clockSkewSeconds: number,
  ) {}

  async seal(purpose: CookiePurpose, payload: Record<string, unknown>, expiresAt: number): Promise<string> {
    const set = await this.keySet.get();
    const current = set.keys.find((key) => key.status === 'current');
    if (!current) throw new KeysNotReadyError(`The cookie key set ${this.keySet.secretId} has no current key yet (the first rotation has not run).`);
    return new EncryptJWT({ ...payload, purpose })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: current.kid })
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .encrypt(Buffer.from(current.k, 'base64url'));
  }

  /** Decrypts and checks a cookie; a key id the cache does not know triggers one (rate-limited) re-read. */
  async open<T>(purpose: CookiePurpose, token: string): Promise<OpenedCookie<T>> {
    let kid: string;
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: unknown; alg?: unknown; enc?: unknown };
      if (typeof header.kid !== 'string' || header.alg !== 'dir' || header.enc !== 'A256GCM') return { ok: false, reason: 'invalid' };
      kid = header.kid;
    } catch {
      return { ok: false, reason: 'invalid' };
    }
    let set = await this.keySet.get();
    let entry = set.keys.find((key) => key.kid === kid);
    if (!entry) {
      set = await this.keySet.rereadForUnknownKey();
      entry = set.keys.find((key) => key.kid === kid);
      if (!entry) return { ok: false, reason: 'unknown-key' };
    }
    try {
      const { payload } = await jwtDecrypt(token, Buffer.from(entry.k, 'base64url'), {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
        clockTolerance: this.clockSkewSeconds,
        requiredClaims: ['exp'],
      });
      if (payload.purpose !== purpose) return { ok: false, reason: 'wrong-purpose' };
      const currentKid = set.keys.find((key) => key.status === 'current')?.kid ?? kid;
      return { ok: true, payload: payload as T & JWTPayload, kid, currentKid };
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
      return { ok: false, reason: 'invalid' };
    }
  }
}
