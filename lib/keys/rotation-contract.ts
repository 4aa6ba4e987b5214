/**
 * The contract between the rotation Lambda (lambda/rotation) and the construct that
 * deploys it (lib/keys): the environment variables the Lambda reads, their defaults,
 * and the default rotation schedules. Pure: safe to import from lib/ and lambda/.
 *
 * The construct builds the environment with `rotationEnvironment(settings)`, which
 * validates every value; the Lambda reads it back with `readRotationSettings(env)`.
 */
import { DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_SESSION_ALGORITHM, DEFAULT_SESSION_TTL_SECONDS, SESSION_ALGORITHMS, SessionAlgorithm } from '../session-contract';
import { worstCaseRotationGapSeconds } from './rotation-window';

/** Environment variable names of the rotation Lambda. */
export const ROTATION_ENV = {
  /** `ES256` or `RS256`: the algorithm of new session signing keys. */
  sessionAlgorithm: 'LG_SESSION_ALGORITHM',
  /** ARN of the `session-verification-keys` secret that the signing-key rotation publishes the public keys to. */
  verificationKeysSecretArn: 'LG_VERIFICATION_KEYS_SECRET_ARN',
  /** ARN of the `backend-ca` secret; the client-certificate rotation creates the CA in it once. */
  backendCaSecretArn: 'LG_BACKEND_CA_SECRET_ARN',
  /** Common name of the internal backend CA. */
  backendCaCommonName: 'LG_BACKEND_CA_COMMON_NAME',
  /** Validity of the internal backend CA, days. */
  backendCaValidityDays: 'LG_BACKEND_CA_VALIDITY_DAYS',
  /** Common name of the fleet's backend client certificate (what Looker sees). */
  backendClientCommonName: 'LG_BACKEND_CLIENT_COMMON_NAME',
  /** Validity of each backend client certificate, days. */
  backendClientValidityDays: 'LG_BACKEND_CLIENT_VALIDITY_DAYS',
  /** DNS name of the gateway: SAN of the self-signed frontend certificate. */
  frontendDomainName: 'LG_FRONTEND_DOMAIN_NAME',
  /** Validity of each self-signed frontend certificate, days. */
  frontendValidityDays: 'LG_FRONTEND_VALIDITY_DAYS',
  /**
   * A `next` signing key younger than this (seconds) is not promoted to `current` by a
   * rotation: minimumSigningKeyIntervalSeconds() of the deployment's timing.
   */
  signingKeyMinAgeSeconds: 'LG_SIGNING_KEY_MIN_AGE_SECONDS',
  /** Comma-separated ARNs of the rotated secrets that the hourly check looks at for abandoned rotations. */
  rotatedSecretArns: 'LG_ROTATED_SECRET_ARNS',
  /** An AWSPENDING version older than this (seconds) on a secret whose rotation did not finish is abandoned. */
  abandonedRotationSeconds: 'LG_ABANDONED_ROTATION_SECONDS',
} as const;

/**
 * The timing a signing key has to respect. Every value is what the deployment uses: the
 * construct fills them from the key-sync unit (lib/fleet/key-sync.ts), the auth service
 * (lib/auth) and the session contract.
 */
export interface SigningKeyTiming {
  /** How often instances run key-sync, seconds. */
  readonly keySyncIntervalSeconds: number;
  /** Up to how long a key-sync run is delayed on top of the interval, seconds. */
  readonly keySyncRandomDelaySeconds: number;
  /** The longest session the auth service mints, seconds. */
  readonly sessionLifetimeSeconds: number;
  /** Clock skew HAProxy allows on `exp`, seconds. */
  readonly clockSkewSeconds: number;
  /** How long the auth service keeps a key set before reading it again, seconds. */
  readonly secretsCacheSeconds: number;
}

/**
 * The timing of the default deployment. Each number is the default of the part that
 * owns it (test/rotation/rotation-contract.test.ts checks them against those parts):
 * key-sync's timer (KEY_SYNC_DEFAULTS), the session contract, the auth service's
 * LG_SECRETS_CACHE_SECONDS.
 */
export const DEFAULT_SIGNING_KEY_TIMING: SigningKeyTiming = {
  keySyncIntervalSeconds: 300,
  keySyncRandomDelaySeconds: 60,
  sessionLifetimeSeconds: DEFAULT_SESSION_TTL_SECONDS,
  clockSkewSeconds: DEFAULT_CLOCK_SKEW_SECONDS,
  secretsCacheSeconds: 300,
};

/**
 * The least time two signing-key rotations must be apart, seconds. Between the rotation
 * that publishes a key as `next` and the one that makes it sign, every instance must have
 * synced (interval + random delay). Between the rotation that retires it (`previous`)
 * and the one that drops it, every session it signed must have expired: the auth service
 * may sign with it for one cache period after it was retired, and a session lives its
 * lifetime plus the clock skew. Each gap must cover whichever is longer; their sum covers
 * both with room to spare.
 */
export function minimumSigningKeyIntervalSeconds(timing: SigningKeyTiming): number {
  return timing.keySyncIntervalSeconds + timing.keySyncRandomDelaySeconds + timing.sessionLifetimeSeconds + timing.clockSkewSeconds + timing.secretsCacheSeconds;
}

/**
 * Checks a signing-key schedule against the timing: the shortest gap between two
 * scheduled rotations (one at the end of its window, the next at the start of the
 * following one) must be at least minimumSigningKeyIntervalSeconds(). Returns the
 * problem with the numbers and the fix, or undefined.
 */
export function signingScheduleProblem(name: string, scheduleExpression: string, windowDuration: string | undefined, timing: SigningKeyTiming): string | undefined {
  let gap: number;
  try {
    gap = worstCaseRotationGapSeconds(scheduleExpression, windowDuration);
  } catch (error) {
    return `${name}: ${(error as Error).message}`;
  }
  const needed = minimumSigningKeyIntervalSeconds(timing);
  if (gap >= needed) return undefined;
  const minutes = (s: number) => `${Math.round(s / 60)} min`;
  const window = windowDuration ? `its ${windowDuration} window` : 'its window (the default: the rest of the UTC day for daily schedules, one hour for hourly ones)';
  return (
    `${name} "${scheduleExpression}" lets two rotations land ${minutes(gap)} apart (one at the end of ${window}, the next at the start of the following one), ` +
    `but a signing key needs ${minutes(needed)} between rotations: key-sync interval ${timing.keySyncIntervalSeconds} s + random delay ${timing.keySyncRandomDelaySeconds} s ` +
    `(every instance has the key before it signs) + session lifetime ${timing.sessionLifetimeSeconds} s + clock skew ${timing.clockSkewSeconds} s + auth service key cache ${timing.secretsCacheSeconds} s ` +
    `(every session it signed has expired before it is dropped). Rotate less often (for example every 7 days), or give an explicit window whose end leaves that much time before the next window starts ` +
    `(for example signingKeyRotationSchedule "cron(0 3 ? * MON *)" with signingKeyRotationWindow Duration.hours(2)).`
  );
}

/** Fields of the rotation function's JSON log lines that metric filters read (lib/observability). */
export const ROTATION_LOG_FIELDS = {
  event: 'event',
  outcome: 'outcome',
  step: 'step',
} as const;

export const ROTATION_EVENTS = {
  /** A rotation's AWSPENDING label was removed: the rotation stopped half-way, or was made from an earlier value. */
  abandonedRotationCleared: 'abandoned-rotation-cleared',
} as const;

/** The `action` of the event the hourly schedule sends the rotation function. */
export const CLEAR_ABANDONED_ROTATIONS = 'clear-abandoned-rotations';

export const ROTATION_DEFAULTS = {
  sessionAlgorithm: DEFAULT_SESSION_ALGORITHM,
  backendCaCommonName: 'Looker Gateway Backend CA',
  backendCaValidityDays: 3650,
  backendClientCommonName: 'looker-gateway',
  backendClientValidityDays: 14,
  frontendValidityDays: 90,
  abandonedRotationSeconds: 7200,
} as const;

/**
 * Default rotation periods (days) per secret kind. Signing keys: a key is `next` for
 * one period, `current` for one, `previous` for one, so any period much longer than a
 * session (10 min) and the key-sync interval (5 min) keeps every token verifiable.
 * Cookie keys: a refresh cookie stays readable for at least one period. Certificates:
 * reissued halfway through their validity.
 */
export const ROTATION_SCHEDULE_DEFAULTS_DAYS = {
  sessionSigningKeys: 7,
  cookieEncryptionKeys: 30,
  backendClientCertificate: 7,
  frontendCertificate: 30,
} as const;

/** What the rotation Lambda needs to know, as the construct states it. */
export interface RotationSettings {
  /** @default ES256 */
  readonly sessionAlgorithm?: SessionAlgorithm;
  /** ARN of the public `session-verification-keys` secret. */
  readonly verificationKeysSecretArn: string;
  /** ARN of the `backend-ca` secret. */
  readonly backendCaSecretArn: string;
  /** @default 'Looker Gateway Backend CA' */
  readonly backendCaCommonName?: string;
  /** @default 3650 */
  readonly backendCaValidityDays?: number;
  /** @default 'looker-gateway' */
  readonly backendClientCommonName?: string;
  /** @default 14 */
  readonly backendClientValidityDays?: number;
  /** DNS name of the gateway, the SAN of the self-signed frontend certificate. */
  readonly frontendDomainName: string;
  /** @default 90 */
  readonly frontendValidityDays?: number;
  /** @default minimumSigningKeyIntervalSeconds(DEFAULT_SIGNING_KEY_TIMING) */
  readonly signingKeyMinAgeSeconds?: number;
  /** ARNs of the rotated secrets (for the check of abandoned rotations). @default none */
  readonly rotatedSecretArns?: string[];
  /** @default 7200 (2 hours; a rotation takes seconds) */
  readonly abandonedRotationSeconds?: number;
}

/** The settings with every default filled in, as the Lambda uses them. */
export type ResolvedRotationSettings = Required<RotationSettings>;

const DNS_NAME = /^(?=.{1,253}$)(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const UNRESOLVED_TOKEN = /\$\{Token\[|#\{Token\[|\{"Fn::|\{"Ref"/;

/** Validates the settings and returns the Lambda's environment. Errors name the setting, the bad value and the fix. */
export function rotationEnvironment(settings: RotationSettings): Record<string, string> {
  const resolved = resolveSettings(settings);
  return {
    [ROTATION_ENV.sessionAlgorithm]: resolved.sessionAlgorithm,
    [ROTATION_ENV.verificationKeysSecretArn]: resolved.verificationKeysSecretArn,
    [ROTATION_ENV.backendCaSecretArn]: resolved.backendCaSecretArn,
    [ROTATION_ENV.backendCaCommonName]: resolved.backendCaCommonName,
    [ROTATION_ENV.backendCaValidityDays]: String(resolved.backendCaValidityDays),
    [ROTATION_ENV.backendClientCommonName]: resolved.backendClientCommonName,
    [ROTATION_ENV.backendClientValidityDays]: String(resolved.backendClientValidityDays),
    [ROTATION_ENV.frontendDomainName]: resolved.frontendDomainName,
    [ROTATION_ENV.frontendValidityDays]: String(resolved.frontendValidityDays),
    [ROTATION_ENV.signingKeyMinAgeSeconds]: String(resolved.signingKeyMinAgeSeconds),
    [ROTATION_ENV.rotatedSecretArns]: resolved.rotatedSecretArns.join(','),
    [ROTATION_ENV.abandonedRotationSeconds]: String(resolved.abandonedRotationSeconds),
  };
}

/** Reads the Lambda's environment back; errors name the variable and what it must hold. */
export function readRotationSettings(env: Record<string, string | undefined>): ResolvedRotationSettings {
  const whole = (unit: string) => (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value)) throw new Error(`Environment variable ${name}=${JSON.stringify(raw)} is not a whole number of ${unit}.`);
    return value;
  };
  const days = whole('days');
  const seconds = whole('seconds');
  const required = (name: string): string => {
    const value = env[name];
    if (!value) throw new Error(`Environment variable ${name} is not set: the rotation construct sets it (see lib/keys/rotation-contract.ts).`);
    return value;
  };
  const optional = (name: string): string | undefined => (env[name] ? env[name] : undefined);
  return resolveSettings({
    sessionAlgorithm: optional(ROTATION_ENV.sessionAlgorithm) as SessionAlgorithm | undefined,
    verificationKeysSecretArn: required(ROTATION_ENV.verificationKeysSecretArn),
    backendCaSecretArn: required(ROTATION_ENV.backendCaSecretArn),
    backendCaCommonName: optional(ROTATION_ENV.backendCaCommonName),
    backendCaValidityDays: days(ROTATION_ENV.backendCaValidityDays),
    backendClientCommonName: optional(ROTATION_ENV.backendClientCommonName),
    backendClientValidityDays: days(ROTATION_ENV.backendClientValidityDays),
    frontendDomainName: required(ROTATION_ENV.frontendDomainName),
    frontendValidityDays: days(ROTATION_ENV.frontendValidityDays),
    signingKeyMinAgeSeconds: seconds(ROTATION_ENV.signingKeyMinAgeSeconds),
    rotatedSecretArns: optional(ROTATION_ENV.rotatedSecretArns)?.split(','),
    abandonedRotationSeconds: seconds(ROTATION_ENV.abandonedRotationSeconds),
  });
}

function resolveSettings(settings: RotationSettings): ResolvedRotationSettings {
  const resolved: ResolvedRotationSettings = {
    sessionAlgorithm: settings.sessionAlgorithm ?? ROTATION_DEFAULTS.sessionAlgorithm,
    verificationKeysSecretArn: settings.verificationKeysSecretArn,
    backendCaSecretArn: settings.backendCaSecretArn,
    backendCaCommonName: settings.backendCaCommonName ?? ROTATION_DEFAULTS.backendCaCommonName,
    backendCaValidityDays: settings.backendCaValidityDays ?? ROTATION_DEFAULTS.backendCaValidityDays,
    backendClientCommonName: settings.backendClientCommonName ?? ROTATION_DEFAULTS.backendClientCommonName,
    backendClientValidityDays: settings.backendClientValidityDays ?? ROTATION_DEFAULTS.backendClientValidityDays,
    frontendDomainName: settings.frontendDomainName,
    frontendValidityDays: settings.frontendValidityDays ?? ROTATION_DEFAULTS.frontendValidityDays,
    signingKeyMinAgeSeconds: settings.signingKeyMinAgeSeconds ?? minimumSigningKeyIntervalSeconds(DEFAULT_SIGNING_KEY_TIMING),
    rotatedSecretArns: settings.rotatedSecretArns ?? [],
    abandonedRotationSeconds: settings.abandonedRotationSeconds ?? ROTATION_DEFAULTS.abandonedRotationSeconds,
  };
  if (!SESSION_ALGORITHMS.includes(resolved.sessionAlgorithm)) {
    throw new Error(`sessionAlgorithm ${JSON.stringify(resolved.sessionAlgorithm)} is not supported: use one of ${SESSION_ALGORITHMS.join(', ')}.`);
  }
  const arns: [string, string][] = [
    ['verificationKeysSecretArn', resolved.verificationKeysSecretArn],
    ['backendCaSecretArn', resolved.backendCaSecretArn],
    ...resolved.rotatedSecretArns.map((arn): [string, string] => ['rotatedSecretArns', arn]),
  ];
  for (const [name, arn] of arns) {
    if (!UNRESOLVED_TOKEN.test(arn) && !/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/.test(arn)) {
      throw new Error(`${name} ${JSON.stringify(arn)} is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>).`);
    }
  }
  if (!Number.isInteger(resolved.signingKeyMinAgeSeconds) || resolved.signingKeyMinAgeSeconds < 0 || resolved.signingKeyMinAgeSeconds > 30 * 86400) {
    throw new Error(`signingKeyMinAgeSeconds is ${resolved.signingKeyMinAgeSeconds}: use a whole number of seconds from 0 to 2592000 (30 days).`);
  }
  if (!Number.isInteger(resolved.abandonedRotationSeconds) || resolved.abandonedRotationSeconds < 600 || resolved.abandonedRotationSeconds > 7 * 86400) {
    throw new Error(`abandonedRotationSeconds is ${resolved.abandonedRotationSeconds}: use a whole number of seconds from 600 (10 minutes: a rotation must have time to finish) to 604800 (7 days).`);
  }
  if (!UNRESOLVED_TOKEN.test(resolved.frontendDomainName) && !DNS_NAME.test(resolved.frontendDomainName)) {
    throw new Error(`frontendDomainName ${JSON.stringify(resolved.frontendDomainName)} is not a DNS name: give the gateway's host name, for example "looker.example.com".`);
  }
  for (const name of ['backendCaCommonName', 'backendClientCommonName'] as const) {
    if (!/^[A-Za-z0-9 .:_-]{1,64}$/.test(resolved[name])) {
      throw new Error(`${name} ${JSON.stringify(resolved[name])} is invalid: use 1 to 64 letters, digits, spaces and . : _ -.`);
    }
  }
  checkDays('backendCaValidityDays', resolved.backendCaValidityDays, 30, 36500);
  checkDays('backendClientValidityDays', resolved.backendClientValidityDays, 2, 397);
  checkDays('frontendValidityDays', resolved.frontendValidityDays, 2, 397);
  if (resolved.backendClientValidityDays >= resolved.backendCaValidityDays) {
    throw new Error(
      `backendClientValidityDays (${resolved.backendClientValidityDays}) must be shorter than backendCaValidityDays (${resolved.backendCaValidityDays}): a client certificate cannot outlive its CA.`,
    );
  }
  return resolved;
}

function checkDays(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} is ${value}: use a whole number of days from ${min} to ${max}.`);
  }
}

/**
 * Checks that a certificate's rotation period leaves the instances time to pick up the
 * new certificate before the old one expires: the period must be at most half the
 * validity. Returns the problem as a sentence, or undefined when the pair is fine.
 */
export function certificateScheduleProblem(name: string, validityDays: number, rotationDays: number): string | undefined {
  if (rotationDays * 2 > validityDays) {
    return `${name} rotates every ${rotationDays} days but each certificate is valid for ${validityDays} days: rotate at most every ${Math.floor(validityDays / 2)} days (half the validity), or make the certificates valid for at least ${rotationDays * 2} days.`;
  }
  return undefined;
}
