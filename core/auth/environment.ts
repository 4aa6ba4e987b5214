/**
 * The auth service's configuration: the environment variables the construct sets on
 * the Lambda (and the local server on its in-process handler), and the pure parser
 * that turns them into a checked configuration. Pure: imported by the construct at
 * synth time (to validate early) and by the Lambda at run time.
 *
 * Size: the contract of the auth service's environment, each variable with its TSDoc (the
 * docs test reads them), and the one parser that reads them; split, a variable and its
 * parsing would live apart.
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
import { resolveIdpSettings, validateIdpSettings, type IdpSettings, type ResolvedIdpSettings } from './idp-profiles';
import { DEFAULT_LOOKER_CLIENT_ID, lookerRedirectUri } from './looker-broker';
import { MappingRuleSet, validateMappingRules } from './mapping-rules';
import { DEFAULT_IDP_TIMEOUT_MS } from '../timeouts';

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
   * secret as plain text or JSON `{"clientSecret": "..."}`. Read again after a short
   * cache, and at once when the IdP answers `invalid_client`, so a rotated secret takes
   * effect without a cold start.
   * @default - none: only allowed with private_key_jwt
   */
  readonly LG_IDP_CLIENT_SECRET_ARN?: string;
  /**
   * The IdP's profile (core/auth/idp-profiles.ts, facts in docs/idps.md): `okta`, `entra`,
   * `google`, `auth0`, `keycloak`, `ping`, `cognito` or `generic`. It supplies the default
   * of every IdP setting below; each stays overridable.
   * @default "generic"
   */
  readonly LG_IDP_PROVIDER?: string;
  /**
   * Space-separated scopes requested at login. Must include `openid`.
   * @default - the profile's (for example "openid email profile offline_access"; Google and Cognito refuse offline_access)
   */
  readonly LG_IDP_SCOPES?: string;
  /**
   * Where the user's groups are in the ID token or userinfo: a JSON pointer (RFC 6901),
   * e.g. `/groups`, `/realm_access/roles`, `/https:~1~1example.com~1groups`; a value
   * without a leading `/` names one top-level claim (`groups`, `cognito:groups`).
   * @default - the profile's (`/groups` for most)
   */
  readonly LG_IDP_GROUPS_CLAIM?: string;
  /**
   * Extra authorization request parameters, JSON object of strings, merged over the
   * profile's (Google's: `{"access_type": "offline", "prompt": "consent"}`); a value of ""
   * removes a profile parameter. The parameters the flow sets itself (client_id,
   * redirect_uri, response_type, scope, state, nonce, code_challenge,
   * code_challenge_method) cannot be set.
   * @default - the profile's
   */
  readonly LG_IDP_AUTHORIZATION_PARAMS?: string;
  /**
   * How the service authenticates at the IdP's token endpoint: `client_secret_basic`,
   * `client_secret_post` or `private_key_jwt` (then LG_IDP_CLIENT_KEY_SECRET_ARN).
   * @default - the profile's
   */
  readonly LG_IDP_TOKEN_AUTH_METHOD?: string;
  /**
   * ARN (or name) of the secret with the private key for `private_key_jwt`: JSON
   * `{"privateKeyPem": "<private key, PEM>", "certificatePem"?: "...", "alg"?: "RS256"}`
   * (the certificate gives Entra ID the `x5t#S256` thumbprint it looks the key up by).
   * @default - none (required with private_key_jwt)
   */
  readonly LG_IDP_CLIENT_KEY_SECRET_ARN?: string;
  /**
   * RP-initiated logout: `auto` (the IdP's discovered end_session_endpoint, with
   * id_token_hint), `off` (end the gateway session only), or an https URL template with
   * {clientId}, {postLogoutRedirectUri}, {idTokenHint}, {state} (Cognito's /logout,
   * Auth0's /v2/logout).
   * @default "auto"
   */
  readonly LG_IDP_END_SESSION?: string;
  /**
   * Entra ID with a multi-tenant issuer (`/organizations`, `/common`): the tenant ids
   * (GUIDs, comma-separated) whose users may sign in; the `tid` claim is enforced.
   * @default - only the tenant in the issuer
   */
  readonly LG_IDP_ALLOWED_TENANTS?: string;
  /**
   * Where groups come from: `token` (the groups claim), `microsoft-graph` (the claim, or
   * Microsoft Graph when Entra ID reports an overage), `google-directory` (the Google
   * Workspace Directory API) or `none`.
   * @default - "none" for google, "token" otherwise
   */
  readonly LG_IDP_GROUPS_SOURCE?: string;
  /**
   * How long groups read from Microsoft Graph or the Directory API are reused for a
   * session before they are read again, seconds (60 to 86400).
   * @default "900"
   */
  readonly LG_IDP_GROUPS_CACHE_SECONDS?: string;
  /**
   * Microsoft Graph's base URL (national clouds differ); the app-only token is asked for
   * `<base>/.default` and `<base>/v1.0/users/<oid>/getMemberGroups` is called.
   * @default "https://graph.microsoft.com"
   */
  readonly LG_GRAPH_BASE_URL?: string;
  /**
   * ARN (or name) of the secret with the Google service account key (the JSON key file:
   * `client_email`, `private_key`, `token_uri`), delegated the scope
   * `https://www.googleapis.com/auth/admin.directory.group.readonly` domain-wide.
   * @default - none (required with google-directory)
   */
  readonly LG_GOOGLE_SERVICE_ACCOUNT_SECRET_ARN?: string;
  /** The Workspace administrator the service account acts as (`sub`). @default - none (required with google-directory) */
  readonly LG_GOOGLE_ADMIN_EMAIL?: string;
  /** @default "https://admin.googleapis.com/admin/directory/v1" */
  readonly LG_GOOGLE_DIRECTORY_URL?: string;
  /**
   * Upper bound (milliseconds) of each call to the IdP; a slower IdP answers the user
   * with 504 instead of hanging. 100 to 25000 (API Gateway gives up at 29 s). HAProxy's
   * inline-refresh wait is derived from the default (core/timeouts.ts): raise both together.
   * @default "5000"
   */
  readonly LG_IDP_TIMEOUT_MS?: string;
  /**
   * `"true"`: an e-mail address the IdP sends WITHOUT an `email_verified` claim counts as
   * verified (for IdPs such as Entra ID that never send the claim and whose addresses
   * only administrators set). `"false"`: only `email_verified: true` (or, for the cognito
   * profile only, the string `"true"` its userinfo sends) counts. An explicit `false` never counts.
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
   * Name of the DynamoDB table of revoked sessions (logout) and of the sessions' server-side
   * records (the IdP refresh token, ID token and group-source results, encrypted with a key
   * only the session's refresh cookie holds). Every container of the function reads and
   * writes it, and HAProxy polls its list through `/oauth2/revocations`.
   * @default - both are kept in the memory of this process only (`npm run local`, tests)
   */
  readonly LG_REVOCATION_TABLE_NAME?: string;
  /**
   * While a key set still holds its seed (the first rotation has not finished: RotateSecret
   * only starts it), a request waits up to this many seconds for the real keys, reading
   * again every second, before it is answered 503 keys_not_ready (0 to 12; the function
   * times out at 15).
   * @default "8"
   */
  readonly LG_FIRST_KEYS_WAIT_SECONDS?: string;
  /**
   * Broker mode: ARN (or name) of the secret with the client secret Looker authenticates with
   * at the broker's token endpoint (plain text, or `{"clientSecret": "..."}`). Setting it turns
   * on the broker's routes (`/oauth2/looker/*`, docs/looker-oidc.md).
   * @default - none: broker mode is off and its routes answer 404
   */
  readonly LG_LOOKER_CLIENT_SECRET_ARN?: string;
  /**
   * Broker mode: Looker's client id at the broker (Looker's `identifier` and `audience`); it
   * must differ from LG_SESSION_AUDIENCE, so an ID token for Looker is never a session.
   * @default "looker"
   */
  readonly LG_LOOKER_CLIENT_ID?: string;
}

/** The checked configuration. */
export interface AuthServiceConfig {
  readonly idp: {
    readonly issuer: string;
    readonly clientId: string;
    /** The client secret's secret id; undefined with private_key_jwt. */
    readonly clientSecretId?: string;
    /** The private key's secret id (private_key_jwt). */
    readonly clientKeySecretId?: string;
    /** The profile merged with the overrides (scopes, params, groups claim pointer, auth method, logout, tenants, groups source). */
    readonly settings: ResolvedIdpSettings;
    readonly timeoutMs: number;
    /** Whether an address without an `email_verified` claim counts as verified. */
    readonly trustUnverifiedEmail: boolean;
    readonly groupsCacheSeconds: number;
    readonly graphBaseUrl: string;
    readonly google?: { readonly serviceAccountSecretId: string; readonly adminEmail: string; readonly directoryUrl: string };
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
  readonly firstKeysWaitSeconds: number;
  /** Broker mode (the gateway as Looker's OpenID provider); undefined when off. */
  readonly lookerBroker?: LookerBrokerConfig;
}

/** The broker's one client, Looker, and the broker's issuer. */
export interface LookerBrokerConfig {
  /** `https://<domain>`: the gateway's origin, `iss` of the broker's tokens. */
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecretId: string;
  /** Looker's redirect URI: the gateway's origin + /openidconnect (Looker is served at the gateway's URL). */
  readonly redirectUri: string;
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
  const before = problems.length;
  url('LG_IDP_ISSUER', issuer, true);
  const issuerReported = problems.length > before;
  const clientId = text('LG_IDP_CLIENT_ID');
  const timeoutMs = integer('LG_IDP_TIMEOUT_MS', DEFAULT_IDP_TIMEOUT_MS, 100, 25_000);
  const optional = (name: keyof AuthServiceEnvironment): string | undefined => env[name]?.trim() || undefined;
  const idpSettings: IdpSettings = {
    provider: optional('LG_IDP_PROVIDER'),
    issuer,
    scopes: optional('LG_IDP_SCOPES')?.split(/\s+/),
    authorizationParams: parseAuthorizationParams(env.LG_IDP_AUTHORIZATION_PARAMS, problems),
    groupsClaim: optional('LG_IDP_GROUPS_CLAIM'),
    tokenEndpointAuthMethod: optional('LG_IDP_TOKEN_AUTH_METHOD'),
    endSession: optional('LG_IDP_END_SESSION'),
    allowedTenants: optional('LG_IDP_ALLOWED_TENANTS')
      ?.split(/[\s,]+/)
      .filter((t) => t.length > 0),
    groupsSource: optional('LG_IDP_GROUPS_SOURCE'),
  };
  for (const problem of validateIdpSettings(idpSettings)) {
    if (problem.severity === 'error' && !(problem.setting === 'issuer' && issuerReported))
      problems.push(`${IDP_SETTING_VARIABLES[problem.setting] ?? 'LG_IDP_*'}: ${problem.message}`);
  }
  const settings = resolveIdpSettings(idpSettings);
  const clientSecretId = optional('LG_IDP_CLIENT_SECRET_ARN');
  const clientKeySecretId = optional('LG_IDP_CLIENT_KEY_SECRET_ARN');
  if (settings.tokenEndpointAuthMethod === 'private_key_jwt' && !clientKeySecretId) {
    problems.push(
      "LG_IDP_CLIENT_KEY_SECRET_ARN is not set: private_key_jwt signs the client assertion with the key in that secret; set it to the secret's ARN.",
    );
  }
  if (settings.tokenEndpointAuthMethod !== 'private_key_jwt' && !clientSecretId) {
    problems.push(
      `LG_IDP_CLIENT_SECRET_ARN is not set: ${settings.tokenEndpointAuthMethod} sends the client secret; set it to the ARN of the secret that holds it.`,
    );
  }
  const graphBase = text('LG_GRAPH_BASE_URL', 'https://graph.microsoft.com').replace(/\/+$/, '');
  url('LG_GRAPH_BASE_URL', graphBase, true);
  let google: AuthServiceConfig['idp']['google'];
  if (settings.groupsSource === 'google-directory') {
    const serviceAccountSecretId = optional('LG_GOOGLE_SERVICE_ACCOUNT_SECRET_ARN');
    const adminEmail = optional('LG_GOOGLE_ADMIN_EMAIL');
    if (!serviceAccountSecretId)
      problems.push(
        "LG_GOOGLE_SERVICE_ACCOUNT_SECRET_ARN is not set: the google-directory groups source reads groups with that service account key; set it to the secret's ARN.",
      );
    if (!adminEmail || !/^[^@\s]+@[^@\s]+$/.test(adminEmail)) {
      problems.push(
        `LG_GOOGLE_ADMIN_EMAIL=${JSON.stringify(adminEmail ?? '')} is not an e-mail address: set it to a Workspace administrator who may read groups (the service account acts as that user).`,
      );
    }
    const directoryUrl = text('LG_GOOGLE_DIRECTORY_URL', 'https://admin.googleapis.com/admin/directory/v1').replace(/\/+$/, '');
    url('LG_GOOGLE_DIRECTORY_URL', directoryUrl, true);
    google = { serviceAccountSecretId: serviceAccountSecretId ?? '', adminEmail: adminEmail ?? '', directoryUrl };
  }

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
      clientKeySecretId,
      settings,
      timeoutMs,
      trustUnverifiedEmail: flag('LG_IDP_TRUST_UNVERIFIED_EMAIL', false),
      groupsCacheSeconds: integer('LG_IDP_GROUPS_CACHE_SECONDS', 900, 60, 86_400),
      graphBaseUrl: graphBase,
      google,
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
    firstKeysWaitSeconds: integer('LG_FIRST_KEYS_WAIT_SECONDS', 8, 0, 12),
    lookerBroker: lookerBrokerConfig(env, publicBaseUrl, problems),
  };
  const names = Object.values(config.cookies);
  if (new Set(names).size !== names.length) problems.push(`The cookie names must differ, got ${names.join(', ')}.`);
  if (problems.length > 0) throw new AuthServiceConfigError(problems);
  return config;
}

/** Broker mode is on when Looker's client secret is named. */
function lookerBrokerConfig(env: Env, publicBaseUrl: string, problems: string[]): LookerBrokerConfig | undefined {
  const clientSecretId = env.LG_LOOKER_CLIENT_SECRET_ARN?.trim();
  const clientId = env.LG_LOOKER_CLIENT_ID?.trim() || DEFAULT_LOOKER_CLIENT_ID;
  if (!clientSecretId) {
    if (env.LG_LOOKER_CLIENT_ID?.trim())
      problems.push(
        'LG_LOOKER_CLIENT_ID is set but LG_LOOKER_CLIENT_SECRET_ARN is not: broker mode needs the secret Looker authenticates with; set it, or remove LG_LOOKER_CLIENT_ID.',
      );
    return undefined;
  }
  if (!/^[A-Za-z0-9._~-]{1,128}$/.test(clientId))
    problems.push(
      `LG_LOOKER_CLIENT_ID=${JSON.stringify(clientId)} must be 1 to 128 letters, digits or "-._~" (it travels in URLs and HTTP Basic authentication).`,
    );
  if (clientId === env.LG_SESSION_AUDIENCE?.trim()) {
    problems.push(
      `LG_LOOKER_CLIENT_ID=${JSON.stringify(clientId)} equals LG_SESSION_AUDIENCE: an ID token for Looker would then pass as a gateway session. Choose another client id (default "${DEFAULT_LOOKER_CLIENT_ID}").`,
    );
  }
  return { issuer: publicBaseUrl, clientId, clientSecretId, redirectUri: lookerRedirectUri(publicBaseUrl) };
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

/** The variable that holds each setting validateIdpSettings reports on. */
const IDP_SETTING_VARIABLES: Readonly<Record<string, keyof AuthServiceEnvironment>> = {
  provider: 'LG_IDP_PROVIDER',
  issuer: 'LG_IDP_ISSUER',
  scopes: 'LG_IDP_SCOPES',
  authorizationParams: 'LG_IDP_AUTHORIZATION_PARAMS',
  groupsClaim: 'LG_IDP_GROUPS_CLAIM',
  tokenEndpointAuthMethod: 'LG_IDP_TOKEN_AUTH_METHOD',
  endSession: 'LG_IDP_END_SESSION',
  allowedTenants: 'LG_IDP_ALLOWED_TENANTS',
  groupsSource: 'LG_IDP_GROUPS_SOURCE',
};

/** The JSON object of LG_IDP_AUTHORIZATION_PARAMS; reserved names are reported by validateIdpSettings. */
function parseAuthorizationParams(raw: string | undefined, problems: string[]): Record<string, string> | undefined {
  if (!raw?.trim()) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    problems.push(`LG_IDP_AUTHORIZATION_PARAMS=${JSON.stringify(raw)} is not JSON: expected an object of strings, e.g. {"access_type": "offline"}.`);
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    problems.push(`LG_IDP_AUTHORIZATION_PARAMS=${JSON.stringify(raw)} must be a JSON object of string values, e.g. {"access_type": "offline"}.`);
    return undefined;
  }
  return value as Record<string, string>;
}

function describeVariable(name: keyof AuthServiceEnvironment): string {
  const hints: Partial<Record<keyof AuthServiceEnvironment, string>> = {
    LG_IDP_ISSUER: 'set it to the IdP issuer URL, e.g. "https://example.okta.com".',
    LG_IDP_CLIENT_ID: 'set it to the OAuth client id registered at the IdP.',
    LG_PUBLIC_BASE_URL: 'set it to the gateway origin users browse to, e.g. "https://looker.example.com".',
    LG_SESSION_ISSUER: 'set it to the gateway issuer that HAProxy checks in `iss`.',
    LG_SESSION_AUDIENCE: 'set it to the audience that HAProxy checks in `aud`.',
    LG_MAPPING_RULES: 'set it to the claim mapping rules JSON {"rules": [...]}.',
    LG_SIGNING_KEYS_SECRET_ARN: 'set it to the ARN of the session signing key set secret.',
    LG_COOKIE_KEYS_SECRET_ARN: 'set it to the ARN of the cookie encryption key set secret.',
  };
  return hints[name] ?? 'it is required.';
}
