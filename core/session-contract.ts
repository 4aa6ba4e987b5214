/**
 * The session contract: the names and formats that HAProxy (rendered by core/haproxy)
 * and the auth service (lambda/auth) both rely on. Both sides import them from here,
 * so they cannot drift. Pure data: safe to import from lib/ and lambda/ alike.
 */

/** The session cookie: a compact JWS (ES256 by default), `__Host-` prefixed. */
export const SESSION_COOKIE = '__Host-lg_session';
/** The refresh cookie: the IdP refresh token, encrypted (JWE). Never forwarded upstream. */
export const REFRESH_COOKIE = '__Host-lg_refresh';
/** The short-lived, encrypted login-state cookie (state, nonce, PKCE verifier, rd). */
export const LOGIN_STATE_COOKIE = '__Host-lg_login';
/**
 * The upstream assertion cookie: a compact JWS of its own, minted by the auth service next
 * to every session token (same claims, same lifetime, same signing key), with its own `typ`
 * ({@link ASSERTION_TOKEN_TYPE}) and `aud` ({@link assertionAudience}). HAProxy verifies it
 * and forwards it as `X-Gateway-Assertion`; it never accepts it as a session, so anything
 * upstream that logs the header holds no usable session.
 */
export const ASSERTION_COOKIE = '__Host-lg_assert';
/** Every cookie the gateway owns; HAProxy removes all of them from the Cookie header sent to Looker. */
export const GATEWAY_COOKIES = [SESSION_COOKIE, REFRESH_COOKIE, LOGIN_STATE_COOKIE, ASSERTION_COOKIE] as const;

/** Signing algorithms the gateway supports; the algorithm is fixed per deployment. */
export const SESSION_ALGORITHMS = ['ES256', 'RS256'] as const;
export type SessionAlgorithm = (typeof SESSION_ALGORITHMS)[number];
export const DEFAULT_SESSION_ALGORITHM: SessionAlgorithm = 'ES256';
/** The `typ` header of a session token. */
export const SESSION_TOKEN_TYPE = 'JWT';
/** The `typ` header of an upstream assertion (never accepted as a session). */
export const ASSERTION_TOKEN_TYPE = 'gateway-assertion+jwt';

/** The `aud` of an upstream assertion: the session audience with `/upstream` appended. */
export function assertionAudience(sessionAudience: string): string {
  return `${sessionAudience.replace(/\/+$/, '')}/upstream`;
}

/** Default session lifetime (seconds): short, refreshed inline. */
export const DEFAULT_SESSION_TTL_SECONDS = 600;
/** A session that expires within this many seconds is refreshed inline. */
export const DEFAULT_REFRESH_WINDOW_SECONDS = 60;
/** Clock skew allowed on `exp`/`nbf` between the auth service and HAProxy. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
/** Upper bound of a session cookie value HAProxy accepts (bytes). */
export const MAX_SESSION_TOKEN_BYTES = 4096;

/** Claim names of the session JWT. */
export const CLAIMS = {
  issuer: 'iss',
  audience: 'aud',
  subject: 'sub',
  email: 'email',
  name: 'name',
  /** First and last name as the IdP gives them (OpenID Connect's standard claims), only when it does: Looker's first and last name in broker mode. */
  givenName: 'given_name',
  familyName: 'family_name',
  sessionId: 'sid',
  issuedAt: 'iat',
  notBefore: 'nbf',
  expiresAt: 'exp',
  /**
   * Mapped Looker groups, comma-separated: HAProxy forwards the claim's value as
   * X-Forwarded-Groups unchanged, and rule names and grants can hold no comma, so the list
   * reads back exactly. The only form in the token: the same values as arrays would
   * double the groups' share of the 4096-byte budget.
   */
  groupsCsv: 'groups_csv',
  /** Mapped Looker roles, comma-separated (as groups_csv). */
  rolesCsv: 'roles_csv',
} as const;

/** One string claim per user attribute: `attr_<name>`. */
export const ATTRIBUTE_CLAIM_PREFIX = 'attr_';
/** User attribute names: lower case, start with a letter, at most 32 characters. */
export const ATTRIBUTE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;

export function attributeClaim(name: string): string {
  assertAttributeName(name);
  return `${ATTRIBUTE_CLAIM_PREFIX}${name}`;
}

/** `region` -> `X-Looker-Attr-Region`, `cost_center` -> `X-Looker-Attr-Cost-Center`. */
export function attributeHeader(name: string): string {
  assertAttributeName(name);
  const title = name
    .split('_')
    .filter((part) => part.length > 0)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join('-');
  return `${HEADERS.attributePrefix}${title}`;
}

function assertAttributeName(name: string): void {
  if (!ATTRIBUTE_NAME_PATTERN.test(name)) {
    throw new Error(
      `User attribute name ${JSON.stringify(name)} is invalid: use lower case letters, digits and "_", starting with a letter, at most 32 characters (for example "region" or "cost_center").`,
    );
  }
}

/** Headers HAProxy sends upstream (and strips from every client request first). */
export const HEADERS = {
  user: 'X-Forwarded-User',
  email: 'X-Forwarded-Email',
  groups: 'X-Forwarded-Groups',
  roles: 'X-Looker-Roles',
  /** Prefix of one header per user attribute. */
  attributePrefix: 'X-Looker-Attr-',
  requestId: 'X-Request-Id',
  /** The verified upstream assertion (never the session token), so upstreams can check it against the JWKS. */
  assertion: 'X-Gateway-Assertion',
  /** Machine clients: the identity their certificate maps to is sent as `user`; this says how it was authenticated. */
  authMethod: 'X-Gateway-Auth',
} as const;

/** Values of the `X-Gateway-Auth` header. */
export const AUTH_METHODS = { session: 'session', clientCertificate: 'client-certificate' } as const;

/** Paths of the auth service; HAProxy routes everything under the prefix to it. */
export const AUTH_PATH_PREFIX = '/oauth2/';
export const AUTH_PATHS = {
  start: '/oauth2/start',
  callback: '/oauth2/callback',
  refresh: '/oauth2/refresh',
  /** Inline refresh, called by HAProxy: POST with the refresh cookie and X-Request-Id. */
  session: '/oauth2/session',
  logout: '/oauth2/logout',
  jwks: '/oauth2/jwks.json',
  health: '/oauth2/healthz',
  /**
   * The revoked session ids, polled by every HAProxy instance through its local relay
   * socket (GET, answers {@link RevocationList}); the public listener refuses this path.
   */
  revocations: '/oauth2/revocations',
} as const;

/** How often each HAProxy instance polls {@link AUTH_PATHS.revocations} by default (seconds). */
export const DEFAULT_REVOCATION_POLL_SECONDS = 5;

/**
 * Body of a 200 answer of `GET /oauth2/revocations`: every session id revoked (logout,
 * administrator) whose tokens could still be valid somewhere. An entry is listed until
 * `until` (epoch seconds): the `exp` of the last token that can carry that `sid` plus the
 * clock skew, since the auth service refuses to refresh a revoked `sid` from then on.
 * The list is complete at every answer (no cursor), so a reloaded HAProxy needs one poll.
 */
export interface RevocationList {
  readonly revoked: ReadonlyArray<{ readonly sid: string; readonly until: number }>;
  /** Epoch seconds at which the list was read. */
  readonly asOf: number;
}

/** Query parameter of /oauth2/start that carries the path to return to. */
export const RETURN_TO_PARAM = 'rd';

/**
 * Body of a 200 answer of `POST /oauth2/session`; the answer also carries the new
 * `Set-Cookie` headers. A 401 JSON answer means the user must log in again.
 */
export interface InlineRefreshResponse {
  /** The new session token (compact JWS). */
  readonly session: string;
  /** Its `exp`, epoch seconds. */
  readonly expiresAt: number;
  /**
   * The upstream assertion minted with it (also set as {@link ASSERTION_COOKIE}), for
   * HAProxy to forward on the request being refreshed.
   */
  readonly assertion: string;
}
