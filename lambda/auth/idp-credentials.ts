/**
 * How the service authenticates at the IdP's token endpoint (client_secret_basic,
 * client_secret_post or private_key_jwt), with the credential read from Secrets Manager
 * through a short cache: a secret rotated at the IdP and then in Secrets Manager takes
 * effect within the cache time, and at once when the IdP answers `invalid_client` (one
 * rate-limited re-read, then one retry). The credential is never logged.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import * as client from 'openid-client';
import { importPKCS8, type CryptoKey as JoseCryptoKey } from 'jose';
import type { TokenEndpointAuthMethod } from '../../core/auth/idp-profiles';
import { CachedSecret, type SecretSource } from '../shared/secrets';

/** How long a container uses a client credential before reading it again. */
export const CLIENT_CREDENTIAL_CACHE_MS = 60_000;

/** The client secret: plain text, or JSON with `clientSecret` (or `client_secret`). */
export function parseClientSecret(secretString: string): string {
  const trimmed = secretString.trim();
  if (trimmed.startsWith('{')) {
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw new Error('The IdP client secret looks like JSON but does not parse: store the secret as plain text or {"clientSecret": "..."}.');
    }
    const secret = value.clientSecret ?? value.client_secret;
    if (typeof secret !== 'string' || secret === '')
      throw new Error('The IdP client secret JSON has no "clientSecret" string: store {"clientSecret": "..."} or the plain secret.');
    return secret;
  }
  if (!trimmed) throw new Error('The IdP client secret is empty.');
  return trimmed;
}

/** Signing algorithms accepted for a client assertion key. */
const KEY_ALGORITHMS = ['RS256', 'PS256', 'ES256'] as const;
export type ClientKeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** The private_key_jwt key as stored: the secret's JSON, checked. */
export interface ClientKey {
  readonly privateKeyPem: string;
  readonly alg: ClientKeyAlgorithm;
  /** `x5t#S256` of the certificate registered at the IdP (Entra ID finds the key by it). */
  readonly thumbprintS256?: string;
  readonly kid?: string;
}

/**
 * The private key secret: JSON `{"privateKeyPem": "<private key, PEM>",
 * "certificatePem"?: "<certificate, PEM>", "alg"?: "RS256" | "PS256" | "ES256",
 * "kid"?: "..."}`. Any unencrypted PEM private key node can read (PKCS#8, PKCS#1 RSA, SEC1 EC)
 * is accepted and kept as PKCS#8, the form jose signs with; the certificate, when given, is the
 * one registered at the IdP.
 */
export function parseClientKey(secretString: string): ClientKey {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(secretString) as Record<string, unknown>;
  } catch {
    throw new Error('The IdP client key secret is not JSON: store {"privateKeyPem": "<private key, PEM>", "certificatePem": "<certificate, PEM>"}.');
  }
  const pem = toPkcs8Pem(value.privateKeyPem);
  const alg = value.alg ?? 'RS256';
  if (typeof alg !== 'string' || !(KEY_ALGORITHMS as readonly string[]).includes(alg))
    throw new Error(`The IdP client key secret's "alg" ${JSON.stringify(alg)} is not one of ${KEY_ALGORITHMS.join(', ')}.`);
  let thumbprintS256: string | undefined;
  if (value.certificatePem !== undefined) {
    if (typeof value.certificatePem !== 'string') throw new Error('The IdP client key secret\'s "certificatePem" is not a PEM string.');
    try {
      thumbprintS256 = createHash('sha256').update(new X509Certificate(value.certificatePem).raw).digest('base64url');
    } catch {
      throw new Error('The IdP client key secret\'s "certificatePem" is not a certificate in PEM.');
    }
  }
  if (value.kid !== undefined && typeof value.kid !== 'string') throw new Error('The IdP client key secret\'s "kid" is not a string.');
  return { privateKeyPem: pem, alg: alg as ClientKeyAlgorithm, thumbprintS256, kid: value.kid as string | undefined };
}

/** The key as PKCS#8 PEM, whatever PEM form it was stored in; never echoes the value in an error. */
function toPkcs8Pem(value: unknown): string {
  if (typeof value !== 'string') throw new Error('The IdP client key secret has no "privateKeyPem" string.');
  try {
    return createPrivateKey({ key: value, format: 'pem' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch {
    throw new Error('The IdP client key secret\'s "privateKeyPem" is not an unencrypted private key in PEM (PKCS#8, PKCS#1 RSA or SEC1 EC).');
  }
}

export interface ClientCredentialsOptions {
  readonly method: TokenEndpointAuthMethod;
  readonly secretSource: SecretSource;
  readonly clientSecretId?: string;
  readonly clientKeySecretId?: string;
  /** Put the token endpoint in the assertion's `aud` (Entra ID's certificate credentials ask for it). @default false - the issuer (RFC 7523 allows either) */
  readonly assertionAudienceIsTokenEndpoint?: boolean;
  /** Smallest interval between two re-reads forced by `invalid_client`. */
  readonly rereadIntervalMs: number;
  readonly now?: () => number;
}

/** The client's credential for the token endpoint, as an openid-client ClientAuth that reads it when a request is made. */
export class IdpClientCredentials {
  private readonly secret?: CachedSecret<string>;
  private readonly key?: CachedSecret<ClientKey>;
  private readonly imported = new WeakMap<ClientKey, Promise<JoseCryptoKey>>();

  constructor(private readonly options: ClientCredentialsOptions) {
    const cache = { maxAgeMs: CLIENT_CREDENTIAL_CACHE_MS, rereadIntervalMs: options.rereadIntervalMs, now: options.now };
    if (options.method === 'private_key_jwt') {
      this.key = new CachedSecret(options.secretSource, options.clientKeySecretId ?? '', parseClientKey, cache);
    } else {
      this.secret = new CachedSecret(options.secretSource, options.clientSecretId ?? '', parseClientSecret, cache);
    }
  }

  /**
   * Client authentication for openid-client (oauth4webapi awaits a ClientAuth that returns
   * a promise): the credential is read (cached) at each request, so a new one is used
   * without a new configuration.
   */
  readonly clientAuth: client.ClientAuth = (async (
    as: client.ServerMetadata,
    metadata: client.ClientMetadata,
    body: URLSearchParams,
    headers: Headers,
  ): Promise<void> => {
    const auth = await this.currentAuth(as.token_endpoint);
    await auth(as, metadata, body, headers);
  }) as unknown as client.ClientAuth;

  private async currentAuth(tokenEndpoint: string | undefined): Promise<client.ClientAuth> {
    if (this.secret) {
      const secret = await this.secret.get();
      return this.options.method === 'client_secret_post' ? client.ClientSecretPost(secret) : client.ClientSecretBasic(secret);
    }
    const key = await this.key!.get();
    let privateKey = this.imported.get(key);
    if (!privateKey) {
      privateKey = importPKCS8(key.privateKeyPem, key.alg);
      this.imported.set(key, privateKey);
    }
    const toTokenEndpoint = this.options.assertionAudienceIsTokenEndpoint === true;
    return client.PrivateKeyJwt(
      { key: (await privateKey) as CryptoKey, kid: key.kid },
      {
        [client.modifyAssertion]: (header: Record<string, unknown>, payload: Record<string, unknown>) => {
          if (key.thumbprintS256) header['x5t#S256'] = key.thumbprintS256;
          if (toTokenEndpoint && tokenEndpoint) payload.aud = tokenEndpoint;
        },
      },
    );
  }

  /**
   * After `invalid_client`: reads the credential again (at most once per re-read
   * interval). True when it changed, so the call is worth one retry.
   */
  async rereadAfterRejection(): Promise<boolean> {
    const cached = this.secret ?? this.key!;
    const before = JSON.stringify(await cached.get());
    const after = JSON.stringify(await cached.rereadForUnknownKey());
    return before !== after;
  }
}
