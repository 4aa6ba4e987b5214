/**
 * The auth service's configuration: the environment variables the construct sets on
 * the Lambda (and the local server on its in-process handler), and the pure parser
 * that turns them into a checked configuration. Pure: imported by the construct at
 * synth time (to validate early) and by the Lambda at run time.
 */
import {
  ASSERTION_COOKIE,
  DEFAULT_CLOCK_SKEW_SECONDS,
  DEFAULT_REFRESH_WINDOW_SECONDS,
  DEFAULT_SESSION_ALGORITHM,
  DEFAULT_SESSION_TTL_SECONDS,
  LOGIN_STATE_COOKIE,
  MAX_SESSION_TOKEN_BYTES,
  REFRESH_COOKIE,
  SESSION_COOKIE,
  AUTH_PATHS,
} from '../session-contract';
import { MappingRuleSet, validateMappingRules } from './mapping-rules';

/**
 * Environment variables of the auth service. Every value is a string (that is what a
 * Lambda environment holds); optional ones fall back to the default named in `@default`.
 * The construct builds exactly this object, so a renamed or missing variable is a
 * compile error there.
 */
export interface AuthServiceEnvironment {
  /** The IdP's issuer URL (https), used for OpenID discovery, e.g. `https://example.okta.com`. */
  readonly LG_IDP_ISSUER: string;
  /** The OAuth client id registered at the IdP for the gateway. */
  readonly LG_IDP_CLIENT_ID: string;
  /**
   * ARN (or name) of the Secrets Manager secret holding the client secret: either the
   * secret as plain text or JSON `{"clientSecret": "..."}`.
   */
  readonly LG_IDP_CLIENT_SECRET_ARN: string;
  /**
   * Space-separated scopes requested at login. Must include `openid`; include
   * `offline_access` (or what your IdP needs) to receive refresh tokens.
   * @default "openid email profile offline_access"
   */
  readonly LG_IDP_SCOPES?: string;
  /**
   * The ID-token/userinfo claim that lists the user's groups: `groups` for Okta and
   * Entra ID (object ids), `roles` for Entra app roles, a custom claim for Google.
   * @default "groups"
   */
  readonly LG_IDP_GROUPS_CLAIM?: string;
  /**
   * Extra authorization request parameters, JSON object of strings, e.g.
   * `{"access_type": "offline", "prompt": "consent"}` so that Google issues refresh tokens.
   * The parameters the flow sets itself (client_id, redirect_uri, response_type, scope,
   * state, nonce, code_challenge, code_challenge_method) cannot be overridden.
   * @default - none
   */
  readonly LG_IDP_AUTHORIZATION_PARAMS?: string;
  /**
   * Upper bound (milliseconds) of each call to the IdP; a slower IdP answers the user
   * with 504 instead of hanging. 100 to 25000 (API Gateway gives up at 29 s).
   * @default "5000"
   */
  readonly LG_IDP_TIMEOUT_MS?: string;
  /**
   * `"true"`: an e-mail address the IdP sends WITHOUT an `email_verified` claim counts as
   * verified (for IdPs such as Entra ID that never send the claim and whose addresses
   * only administrators set). `"false"`: only `email_verified: true` (or the string
   * `"true"`, as Cognito's userinfo sends it) counts. An explicit `false` never counts.
   * Unverified addresses are ignored by every e-mail-based decision: `emailDomains`
   * rules, `claims` conditions on `email`, and the session's `email` claim (which HAProxy
   * forwards as X-Forwarded-Email, and as X-Forwarded-User with userClaim email).
   * @default "false"
   */
  readonly LG_IDP_TRUST_UNVERIFIED_EMAIL?: string;
  /**
   * The gateway's public origin as users type it, e.g. `https://looker.example.com`.
   * The redirect URI registered at the IdP is this plus `/oauth2/callback`. https
   * (http only for localhost / 127.0.0.1), no path.
   */
  readonly LG_PUBLIC_BASE_URL: string;
  /**
   * Where the IdP sends the browser after logout; must be registered at the IdP.
   * @default - `<LG_PUBLIC_BASE_URL>/oauth2/logout?signed_out=1` (a "you are signed out" page)
   */
  readonly LG_POST_LOGOUT_REDIRECT_URL?: string;
  /** `iss` of the session tokens; HAProxy checks it. */
  readonly LG_SESSION_ISSUER: string;
  /** `aud` of the session tokens; HAProxy checks it. */
  readonly LG_SESSION_AUDIENCE: string;
  /**
   * Session token lifetime, seconds (5 to 86400; the construct allows 1 to 60 minutes, shorter ones are for local runs and tests).
   * @default "600"
   */
  readonly LG_SESSION_TTL_SECONDS?: string;
  /**
   * HAProxy refreshes a session that expires within this many seconds; `/oauth2/refresh`
   * skips the IdP for a session that is valid for longer. Less than the lifetime.
   * @default "60"
   */
  readonly LG_REFRESH_WINDOW_SECONDS?: string;
  /**
   * Clock skew allowed when checking expiry of the service's own cookies and the IdP's
   * ID tokens, seconds (0 to 300).
   * @default "30"
   */
  readonly LG_CLOCK_SKEW_SECONDS?: string;
  /**
   * Largest session token minted, bytes (at most 4096, the cap HAProxy enforces). A
   * user whose mapped groups, roles and attributes do not fit is refused (fail closed).
   * @default "4096"
   */
  readonly LG_SESSION_MAX_BYTES?: string;
  /**
   * Lifetime of the refresh cookie, seconds: after it the user logs in again even if
   * the IdP would still refresh (60 to 2592000).
   * @default "43200" (12 hours)
   */
  readonly LG_REFRESH_COOKIE_MAX_AGE_SECONDS?: string;
  /**
   * Time a user has to finish the login at the IdP (lifetime of the login-state cookie), seconds (60 to 3600).
   * @default "600"
   */
  readonly LG_LOGIN_TIMEOUT_SECONDS?: string;
  /** @default "__Host-lg_session" (the session contract) */
  readonly LG_SESSION_COOKIE_NAME?: string;
  /** @default "__Host-lg_refresh" (the session contract) */
  readonly LG_REFRESH_COOKIE_NAME?: string;
  /** @default "__Host-lg_login" (the session contract) */
  readonly LG_LOGIN_COOKIE_NAME?: string;
  /** @default "__Host-lg_assert" (the session contract) */
  readonly LG_ASSERTION_COOKIE_NAME?: string;
  /** The claim mapping rule set, JSON `{"rules": [...], "attributeConflicts"?: ...}` (see validateMappingRules). */
  readonly LG_MAPPING_RULES: string;
  /** ARN (or name) of the session signing key set secret (SigningKeySetSecret). */
  readonly LG_SIGNING_KEYS_SECRET_ARN: string;
  /** ARN (or name) of the cookie encryption key set secret (CookieKeySetSecret). */
  readonly LG_COOKIE_KEYS_SECRET_ARN: string;
  /**
   * How long a container keeps the key sets before reading them again, seconds (10 to 3600).
   * @default "300"
   */
  readonly LG_SECRETS_CACHE_SECONDS?: string;
  /**
   * A cookie encrypted under a key id the cache does not know triggers one re-read of the
   * cookie key set, at most once per this many seconds (1 to 3600), so a flood of bogus
   * key ids cannot hammer Secrets Manager.
   * @default "30"
   */
  readonly LG_UNKNOWN_KID_REREAD_SECONDS?: string;
  /**
   * Name of the DynamoDB table of revoked sessions (logout). Every container of the
   * function reads and writes it, and HAProxy polls its list through
   * `/oauth2/revocations`.
   * @default - revocations are kept in the memory of this process only (`npm run local`, tests)
   */
  readonly LG_REVOCATION_TABLE_NAME?: string;
}

/** The checked configuration. */
export interface AuthServiceConfig {
  readonly idp: {
    readonly issuer: string;
    readonly clientId: string;
    readonly clientSecretId: string;
    readonly scopes: readonly string[];
    readonly groupsClaim: string;
    readonly timeoutMs: number;
    readonly authorizationParams: Readonly<Record<string, string>>;
    /** Whether an address without an `email_verified` claim counts as verified. */
    readonly trustUnverifiedEmail: boolean;
  };
  readonly publicBaseUrl: string;
  readonly redirectUri: string;
  readonly postLogoutRedirectUrl: string;
  readonly session: {
    readonly issuer: string;
    readonly audience: string;
    readonly ttlSeconds: number;
    readonly refreshWindowSeconds: number;
    readonly maxBytes: number;
    readonly algorithm: string;
  };
  readonly clockSkewSeconds: number;
  readonly refreshCookieMaxAgeSeconds: number;
  readonly loginTimeoutSeconds: number;
  readonly cookies: { readonly session: string; readonly refresh: string; readonly login: string; readonly assertion: string };
  readonly mappingRules: MappingRuleSet;
  readonly signingKeysSecretId: string;
  readonly cookieKeysSecretId: string;
  readonly secretsCacheSeconds: number;
  readonly unknownKidRereadSeconds: number;
  /** The DynamoDB table of revoked sessions; undefined: in memory. */
  readonly revocationTableName?: string;
}

export class AuthServiceConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid auth service configuration:\n- ${problems.join('\n- ')}`);
    this.name = 'AuthServiceConfigError';
  }
}

/** RFC 6265 cookie-name token characters. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads and checks the environment. Collects every problem and throws one
 * AuthServiceConfigError that lists them all, each with the variable, the bad value and
 * the fix. Secrets are not read here (they are named only).
 */
export function parseAuthServiceEnvironment(env: Env): AuthServiceConfig {
  const problems: string[] = [];
  const text = (name: keyof AuthServiceEnvironment, fallback?: string): string => {
    const value = env[name]?.trim();
    if (value) return value;
    if (fallback !== undefined) return fallback;
    problems.push(`${name} is not set: ${describeVariable(name)}`);
    return '';
  };
  const integer = (name: keyof AuthServiceEnvironment, fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(raw)} is invalid: expected a whole number from ${min} to ${max} (default ${fallback}).`);
      return fallback;
    }
    return value;
  };
  const url = (name: keyof AuthServiceEnvironment, value: string, allowPath: boolean): URL | undefined => {
    if (!value) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      problems.push(`${name}=${JSON.stringify(value)} is not a URL: expected for example "https://looker.example.com".`);
      return undefined;
    }
    const loopback = LOOPBACK_HOSTS.includes(parsed.hostname);
    if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && loopback)) {
      problems.push(`${name}=${JSON.stringify(value)} must use https (http is allowed only for localhost and 127.0.0.1).`);
    }
    if (!allowPath && (parsed.pathname !== '/' || parsed.search || parsed.hash)) {
      problems.push(`${name}=${JSON.stringify(value)} must be an origin without a path, query or fragment, e.g. "${parsed.origin}".`);
    }
    if (parsed.username || parsed.password) problems.push(`${name}=${JSON.stringify(value)} must not contain user info.`);
    return parsed;
  };
  const flag = (name: keyof AuthServiceEnvironment, fallback: boolean): boolean => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    if (raw === 'true' || raw === 'false') return raw === 'true';
    problems.push(`${name}=${JSON.stringify(raw)} is invalid: expected "true" or "false" (default "${fallback}").`);
    return fallback;
  };
  const cookieName = (name: keyof AuthServiceEnvironment, fallback: string): string => {
    const value = text(name, fallback);
    if (!COOKIE_NAME.test(value))
      problems.push(`${name}=${JSON.stringify(value)} is not a valid cookie name: use letters, digits and - _ . (default ${fallback}).`);
    return value;
  };

  const issuer = text('LG_IDP_ISSUER');
  url('LG_IDP_ISSUER', issuer, true);
  const clientId = text('LG_IDP_CLIENT_ID');
  const clientSecretId = text('LG_IDP_CLIENT_SECRET_ARN');
  const scopes = text('LG_IDP_SCOPES', 'openid email profile offline_access').split(/\s+/);
  if (!scopes.includes('openid')) problems.push(`LG_IDP_SCOPES=${JSON.stringify(scopes.join(' '))} lacks "openid": OpenID Connect login needs it.`);
  const groupsClaim = text('LG_IDP_GROUPS_CLAIM', 'groups');
  if (!/^[A-Za-z_][A-Za-z0-9_:./-]{0,127}$/.test(groupsClaim)) {
    problems.push(`LG_IDP_GROUPS_CLAIM=${JSON.stringify(groupsClaim)} is not a claim name: expected for example "groups" or "roles".`);
  }
  const timeoutMs = integer('LG_IDP_TIMEOUT_MS', 5000, 100, 25_000);
  const authorizationParams = parseAuthorizationParams(env.LG_IDP_AUTHORIZATION_PARAMS, problems);

  const publicBase = url('LG_PUBLIC_BASE_URL', text('LG_PUBLIC_BASE_URL'), false);
  const publicBaseUrl = publicBase ? publicBase.origin : '';
  const postLogout = text('LG_POST_LOGOUT_REDIRECT_URL', publicBaseUrl ? `${publicBaseUrl}${AUTH_PATHS.logout}?signed_out=1` : '');
  if (env.LG_POST_LOGOUT_REDIRECT_URL) url('LG_POST_LOGOUT_REDIRECT_URL', postLogout, true);

  const ttlSeconds = integer('LG_SESSION_TTL_SECONDS', DEFAULT_SESSION_TTL_SECONDS, 5, 86_400);
  const refreshWindowSeconds = integer('LG_REFRESH_WINDOW_SECONDS', DEFAULT_REFRESH_WINDOW_SECONDS, 0, 86_400);
  if (refreshWindowSeconds >= ttlSeconds) {
    problems.push(
      `LG_REFRESH_WINDOW_SECONDS=${refreshWindowSeconds} must be less than the session lifetime LG_SESSION_TTL_SECONDS=${ttlSeconds}, or every session would be refreshed at once.`,
    );
  }
  const maxBytes = integer('LG_SESSION_MAX_BYTES', MAX_SESSION_TOKEN_BYTES, 512, MAX_SESSION_TOKEN_BYTES);

  let mappingRules: MappingRuleSet = { rules: [] };
  const rulesJson = text('LG_MAPPING_RULES');
  if (rulesJson) {
    try {
      mappingRules = validateMappingRules(JSON.parse(rulesJson));
    } catch (error) {
      const message = error instanceof SyntaxError ? `is not JSON (${error.message})` : (error as Error).message;
      problems.push(`LG_MAPPING_RULES ${message}`);
    }
  }

  const config: AuthServiceConfig = {
    idp: {
      issuer,
      clientId,
      clientSecretId,
      scopes,
      groupsClaim,
      timeoutMs,
      authorizationParams,
      trustUnverifiedEmail: flag('LG_IDP_TRUST_UNVERIFIED_EMAIL', false),
    },
    publicBaseUrl,
    redirectUri: `${publicBaseUrl}${AUTH_PATHS.callback}`,
    postLogoutRedirectUrl: postLogout,
    session: {
      issuer: text('LG_SESSION_ISSUER'),
      audience: text('LG_SESSION_AUDIENCE'),
      ttlSeconds,
      refreshWindowSeconds,
      maxBytes,
      algorithm: DEFAULT_SESSION_ALGORITHM,
    },
    clockSkewSeconds: integer('LG_CLOCK_SKEW_SECONDS', DEFAULT_CLOCK_SKEW_SECONDS, 0, 300),
    refreshCookieMaxAgeSeconds: integer('LG_REFRESH_COOKIE_MAX_AGE_SECONDS', 43_200, 60, 2_592_000),
    loginTimeoutSeconds: integer('LG_LOGIN_TIMEOUT_SECONDS', 600, 60, 3600),
    cookies: {
      session: cookieName('LG_SESSION_COOKIE_NAME', SESSION_COOKIE),
      refresh: cookieName('LG_REFRESH_COOKIE_NAME', REFRESH_COOKIE),
      login: cookieName('LG_LOGIN_COOKIE_NAME', LOGIN_STATE_COOKIE),
      assertion: cookieName('LG_ASSERTION_COOKIE_NAME', ASSERTION_COOKIE),
    },
    mappingRules,
    signingKeysSecretId: text('LG_SIGNING_KEYS_SECRET_ARN'),
    cookieKeysSecretId: text('LG_COOKIE_KEYS_SECRET_ARN'),
    secretsCacheSeconds: integer('LG_SECRETS_CACHE_SECONDS', 300, 10, 3600),
    unknownKidRereadSeconds: integer('LG_UNKNOWN_KID_REREAD_SECONDS', 30, 1, 3600),
    revocationTableName: revocationTableName(env.LG_REVOCATION_TABLE_NAME, problems),
  };
  const names = Object.values(config.cookies);
  if (new Set(names).size !== names.length) problems.push(`The cookie names must differ, got ${names.join(', ')}.`);
  if (problems.length > 0) throw new AuthServiceConfigError(problems);
  return config;
}

/** DynamoDB table names: 3 to 255 of letters, digits, `_`, `-`, `.`. */
function revocationTableName(raw: string | undefined, problems: string[]): string | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(value)) {
    problems.push(`LG_REVOCATION_TABLE_NAME=${JSON.stringify(value)} is not a DynamoDB table name: 3 to 255 letters, digits, "_", "-" or ".".`);
    return undefined;
  }
  return value;
}

const RESERVED_AUTHORIZATION_PARAMS = ['client_id', 'redirect_uri', 'response_type', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method'];

function parseAuthorizationParams(raw: string | undefined, problems: string[]): Record<string, string> {
  if (!raw?.trim()) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    problems.push(`LG_IDP_AUTHORIZATION_PARAMS=${JSON.stringify(raw)} is not JSON: expected an object of strings, e.g. {"access_type": "offline"}.`);
    return {};
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    problems.push(`LG_IDP_AUTHORIZATION_PARAMS=${JSON.stringify(raw)} must be a JSON object of string values, e.g. {"access_type": "offline"}.`);
    return {};
  }
  const reserved = Object.keys(value).filter((key) => RESERVED_AUTHORIZATION_PARAMS.includes(key));
  if (reserved.length > 0) {
    problems.push(
      `LG_IDP_AUTHORIZATION_PARAMS sets ${reserved.join(', ')}, which the login flow sets itself: remove ${reserved.length > 1 ? 'them' : 'it'} (use LG_IDP_SCOPES for scopes).`,
    );
    return {};
  }
  return value as Record<string, string>;
}

function describeVariable(name: keyof AuthServiceEnvironment): string {
  const hints: Partial<Record<keyof AuthServiceEnvironment, string>> = {
    LG_IDP_ISSUER: 'set it to the IdP issuer URL, e.g. "https://example.okta.com".',
    LG_IDP_CLIENT_ID: 'set it to the OAuth client id registered at the IdP.',
    LG_IDP_CLIENT_SECRET_ARN: 'set it to the ARN of the secret that holds the client secret.',
    LG_PUBLIC_BASE_URL: 'set it to the gateway origin users browse to, e.g. "https://looker.example.com".',
    LG_SESSION_ISSUER: 'set it to the gateway issuer that HAProxy checks in `iss`.',
    LG_SESSION_AUDIENCE: 'set it to the audience that HAProxy checks in `aud`.',
    LG_MAPPING_RULES: 'set it to the claim mapping rules JSON {"rules": [...]}.',
    LG_SIGNING_KEYS_SECRET_ARN: 'set it to the ARN of the session signing key set secret.',
    LG_COOKIE_KEYS_SECRET_ARN: 'set it to the ARN of the cookie encryption key set secret.',
  };
  return hints[name] ?? 'it is required.';
}
