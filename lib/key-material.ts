/**
 * The shapes of the gateway's secrets (Secrets Manager SecretString JSON) and how the
 * rotation Lambda, the auth service and the instances' key-sync read them. Pure types,
 * constants and parsers: no crypto, no AWS. Safe to import from lib/ and lambda/.
 *
 * Every secret names its kind twice: in the JSON (`kind`) and in the tag
 * `SECRET_KIND_TAG`, so the rotation Lambda can tell kinds apart before it can read a
 * value (for example when the first version is still the seed).
 */
import { SESSION_ALGORITHMS, type SessionAlgorithm } from './session-contract';

export const SECRET_KIND_TAG = 'cdk-looker-gateway:kind';
export const SECRET_FORMAT_VERSION = 1;

export const SECRET_KINDS = {
  /** Private session signing keys (previous, current, next). Read by the auth service only. */
  signingKeys: 'session-signing-keys',
  /** Public half of the signing keys, published by the rotation for HAProxy instances and verifiers. */
  verificationKeys: 'session-verification-keys',
  /** Cookie encryption keys (current, previous). Read by the auth service only. */
  cookieKeys: 'cookie-encryption-keys',
  /** The internal CA that issues the fleet's backend client certificate. Read by the rotation only. */
  backendCa: 'backend-ca',
  /** The fleet's short-lived client certificate for mTLS to Looker. Read by instances. */
  backendClientCertificate: 'backend-client-certificate',
  /** The frontend TLS certificate: self-signed by the rotation when the user gives none. Read by instances. */
  frontendCertificate: 'frontend-certificate',
} as const;
export type SecretKind = (typeof SECRET_KINDS)[keyof typeof SECRET_KINDS];

/**
 * Signing keys are pre-published: a key is `next` for one rotation period before it
 * becomes `current` (the one the auth service signs with), then `previous` for one
 * more period. HAProxy trusts all three, so every instance knows a key long before the
 * first token signed by it arrives, and still knows it after the last one expired.
 */
export type SigningKeyStatus = 'previous' | 'current' | 'next';
export const SIGNING_KEY_STATUSES: readonly SigningKeyStatus[] = ['previous', 'current', 'next'];

/** A JSON Web Key as stored (the fields jose exports). */
export type StoredJwk = Record<string, string | string[] | undefined> & { kty: string; kid?: string };

export interface SigningKeyEntry {
  readonly kid: string;
  readonly status: SigningKeyStatus;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly publicJwk: StoredJwk;
  readonly privateJwk: StoredJwk;
}

export interface SigningKeySetSecret {
  readonly kind: typeof SECRET_KINDS.signingKeys;
  readonly version: typeof SECRET_FORMAT_VERSION;
  /**
   * The algorithm of the `current` key (what sessions are signed with now). Each key's own
   * is its JWK's `alg` (keyAlgorithm()): after a change of algorithm, the new one arrives
   * as `next` and the old keys keep theirs until they leave the set.
   */
  readonly alg: SessionAlgorithm;
  /** Empty only in the seed value that CloudFormation writes before the first rotation. */
  readonly keys: readonly SigningKeyEntry[];
}

export interface VerificationKeyEntry {
  readonly kid: string;
  readonly status: SigningKeyStatus;
  readonly publicJwk: StoredJwk;
  /**
   * The same public key as SPKI PEM, so instances can write key files with plain
   * shell tools (openssl cannot read a JWK). Written by the rotation.
   */
  readonly publicKeyPem: string;
}

/** JWK members that only a private key has; none may appear in a verification key set. */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

export interface VerificationKeySetSecret {
  readonly kind: typeof SECRET_KINDS.verificationKeys;
  readonly version: typeof SECRET_FORMAT_VERSION;
  readonly alg: SessionAlgorithm;
  readonly keys: readonly VerificationKeyEntry[];
}

export type CookieKeyStatus = 'previous' | 'current';

export interface CookieKeyEntry {
  readonly kid: string;
  readonly status: CookieKeyStatus;
  readonly createdAt: string;
  /** 32 random bytes, base64url (A256GCM / dir). */
  readonly k: string;
}

export interface CookieKeySetSecret {
  readonly kind: typeof SECRET_KINDS.cookieKeys;
  readonly version: typeof SECRET_FORMAT_VERSION;
  readonly keys: readonly CookieKeyEntry[];
}

export interface BackendCaSecret {
  readonly kind: typeof SECRET_KINDS.backendCa;
  readonly version: typeof SECRET_FORMAT_VERSION;
  /** Empty in the seed value. */
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

export interface CertificateSecret<K extends string> {
  readonly kind: K;
  readonly version: typeof SECRET_FORMAT_VERSION;
  /** Empty in the seed value. */
  readonly certificatePem: string;
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** Intermediates and, for the backend client certificate, the CA: PEM, may be empty. */
  readonly chainPem: string;
  /** ISO 8601 notAfter of the certificate. */
  readonly notAfter: string;
}

export type BackendClientCertificateSecret = CertificateSecret<typeof SECRET_KINDS.backendClientCertificate>;
export type FrontendCertificateSecret = CertificateSecret<typeof SECRET_KINDS.frontendCertificate> & {
  /** True when the rotation made it because the user gave no certificate. */
  readonly selfSigned: boolean;
};

export type GatewaySecret =
  | SigningKeySetSecret
  | VerificationKeySetSecret
  | CookieKeySetSecret
  | BackendCaSecret
  | BackendClientCertificateSecret
  | FrontendCertificateSecret;

/**
 * The value CloudFormation writes when it creates a secret; the first rotation replaces
 * it. No key material, and FROZEN: the text depends on the kind only, never on the
 * deployment's settings (session algorithm, domain) or on SECRET_FORMAT_VERSION.
 * CloudFormation writes a secret's SecretString again whenever the template's text
 * changes, as a new AWSCURRENT version: a seed that followed a setting would replace the
 * real keys with an empty set at the next deploy that changed it. These are the exact
 * texts of the first release (format 1, ES256), so existing stacks see no change.
 * Readers treat a seed as "no keys yet" whatever the current format version is.
 */
const SEED_VALUES: Readonly<Record<SecretKind, string>> = {
  [SECRET_KINDS.signingKeys]: '{"kind":"session-signing-keys","version":1,"alg":"ES256","keys":[]}',
  [SECRET_KINDS.verificationKeys]: '{"kind":"session-verification-keys","version":1,"alg":"ES256","keys":[]}',
  [SECRET_KINDS.cookieKeys]: '{"kind":"cookie-encryption-keys","version":1,"keys":[]}',
  [SECRET_KINDS.backendCa]: '{"kind":"backend-ca","version":1,"certificatePem":"","privateKeyPem":""}',
  [SECRET_KINDS.backendClientCertificate]: '{"kind":"backend-client-certificate","version":1,"certificatePem":"","privateKeyPem":"","chainPem":"","notAfter":""}',
  [SECRET_KINDS.frontendCertificate]: '{"kind":"frontend-certificate","version":1,"certificatePem":"","privateKeyPem":"","chainPem":"","notAfter":"","selfSigned":true}',
};

/** The frozen seed of a kind (see SEED_VALUES). */
export function seedSecretValue(kind: SecretKind): string {
  return SEED_VALUES[kind];
}

/** True when a SecretString is the seed of its kind: the secret has no real value yet. */
export function isSeedValue(kind: SecretKind, secretString: string | undefined): boolean {
  return secretString === SEED_VALUES[kind];
}

/**
 * The algorithm of one signing or verification key: its JWK's `alg` (RFC 7517), or the
 * set's for keys stored without one. A set may hold keys of two algorithms while the
 * deployment moves from one to the other; each key verifies with its own.
 */
export function keyAlgorithm(entry: { readonly publicJwk: StoredJwk }, set: { readonly alg: SessionAlgorithm }): SessionAlgorithm {
  const alg = entry.publicJwk.alg ?? set.alg;
  if (!(SESSION_ALGORITHMS as readonly unknown[]).includes(alg)) {
    throw new Error(`Key ${entry.publicJwk.kid ?? '?'} has algorithm ${JSON.stringify(alg)}; the gateway signs with ${SESSION_ALGORITHMS.join(' or ')}.`);
  }
  return alg as SessionAlgorithm;
}

/** Parses a SecretString and checks its kind and format version; the error says which secret and what was found. */
export function parseGatewaySecret<K extends SecretKind>(secretString: string | undefined, expectedKind: K, where: string): Extract<GatewaySecret, { kind: K }> {
  if (!secretString) throw new Error(`Secret ${where} has no SecretString: expected a ${expectedKind} JSON document.`);
  let value: unknown;
  try {
    value = JSON.parse(secretString);
  } catch {
    throw new Error(`Secret ${where} is not JSON: expected a ${expectedKind} JSON document.`);
  }
  const record = value as { kind?: unknown; version?: unknown };
  if (typeof value !== 'object' || value === null || record.kind !== expectedKind) {
    throw new Error(`Secret ${where} holds kind ${JSON.stringify(record?.kind)}, expected ${JSON.stringify(expectedKind)}.`);
  }
  if (record.version !== SECRET_FORMAT_VERSION && !isSeedValue(expectedKind, secretString)) {
    throw new Error(`Secret ${where} has format version ${JSON.stringify(record.version)}; this release reads version ${SECRET_FORMAT_VERSION}.`);
  }
  return value as Extract<GatewaySecret, { kind: K }>;
}
