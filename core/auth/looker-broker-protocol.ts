/**
 * The broker's OAuth 2.0 / OpenID Connect rules, pure: the checks of Looker's authorization
 * and token requests, client authentication, PKCE, and the claims Looker receives (userinfo
 * and ID token alike) built from a gateway session. The auth service (lambda/auth/looker-broker.ts)
 * is the thin adapter around them. Facts about Looker's side: docs/looker-oidc.md.
 *
 * Standards: RFC 6749 (OAuth 2.0: 3.1 and 3.2 no repeated parameters, 2.3.1 client
 * authentication, 4.1 the code grant and its errors, 5.2 token errors), RFC 6750 (bearer
 * tokens), RFC 7636 (PKCE), OpenID Connect Core 1.0 (3.1.2 authorization, 5.1 standard
 * claims, 5.3 userinfo), OpenID Connect Discovery 1.0 (the discovery document).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ATTRIBUTE_CLAIM_PREFIX, AUTH_PATHS, CLAIMS } from '../session-contract';
import { LOOKER_BROKER_PATHS, LOOKER_CLAIMS, LOOKER_SCOPES } from './looker-broker';

/** An authorization code is good for this long: Looker redeems it server-side right after the redirect. */
export const AUTHORIZATION_CODE_SECONDS = 60;
/** Lifetime of the broker's access tokens and ID tokens: Looker uses them once, at login. */
export const BROKER_TOKEN_SECONDS = 300;
/** `typ` of the broker's access tokens (RFC 9068), so no other verifier takes one for a session or an ID token. */
export const BROKER_ACCESS_TOKEN_TYPE = 'at+jwt';
/**
 * Query parameter the broker adds to its own authorize URL when it sends a browser to sign
 * in first: a browser that comes back without a session (cookies blocked) gets an error
 * page instead of another round trip, so there is no redirect loop.
 */
export const BROKER_LOGIN_MARKER = 'gateway_login';

/** The client registered at the broker: Looker. */
export interface RegisteredClient {
  readonly clientId: string;
  /** Looker's URL + /openidconnect: the only URI codes are sent to. */
  readonly redirectUri: string;
}

/** A checked authorization request. */
export interface AuthorizationRequest {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scope: string;
  readonly state?: string;
  readonly nonce?: string;
  readonly codeChallenge?: string;
  readonly codeChallengeMethod?: 'S256' | 'plain';
  /** `none`: the user must not be asked to sign in (OpenID Connect Core 3.1.2.1). */
  readonly promptNone: boolean;
}

export type AuthorizationCheck =
  | { readonly ok: true; readonly request: AuthorizationRequest }
  /** RFC 6749 4.1.2.1: the client or its redirect URI is wrong, so the browser must not be sent anywhere. */
  | {
      readonly ok: false;
      readonly redirect: false;
      readonly error: 'invalid_request' | 'unauthorized_client';
      readonly reason: string;
      readonly description: string;
    }
  /** Any other error goes back to the (checked) redirect URI. */
  | {
      readonly ok: false;
      readonly redirect: true;
      readonly redirectUri: string;
      readonly state?: string;
      readonly error: string;
      readonly reason: string;
      readonly description: string;
    };

/** Parameters as received, every value of each name (a repeated name is an error: RFC 6749 3.1). */
export type RequestParameters = ReadonlyMap<string, readonly string[]>;

const MAX_PARAMETER_LENGTH = 2048;
/** RFC 7636 4.1: 43 to 128 of unreserved characters. */
const PKCE_VALUE = /^[A-Za-z0-9._~-]{43,128}$/;
/** Visible ASCII (RFC 6749 appendix A: state and nonce are VSCHAR). */
const VSCHAR = /^[\u0020-\u007e]+$/;

/** The single value of a parameter; an error when it came twice (RFC 6749 3.1, 3.2). */
function single(params: RequestParameters, name: string): { value?: string } | { repeated: true } {
  const values = params.get(name) ?? [];
  if (values.length > 1) return { repeated: true };
  const value = values[0];
  return { value: value === '' ? undefined : value };
}

/**
 * Checks Looker's authorization request against the registered client. The client id and
 * redirect URI first (a wrong one is never redirected to), then the rest (those errors go
 * back to Looker with its state).
 */
export function checkAuthorizationRequest(params: RequestParameters, client: RegisteredClient): AuthorizationCheck {
  const clientId = single(params, 'client_id');
  if ('repeated' in clientId || !clientId.value) {
    return {
      ok: false,
      redirect: false,
      error: 'invalid_request',
      reason: 'client-id-missing',
      description: 'The request has no client_id (or more than one).',
    };
  }
  if (clientId.value !== client.clientId) {
    return {
      ok: false,
      redirect: false,
      error: 'unauthorized_client',
      reason: 'unknown-client',
      description: `The client ${JSON.stringify(clientId.value.slice(0, 64))} is not registered here: only Looker is.`,
    };
  }
  const redirectUri = single(params, 'redirect_uri');
  if ('repeated' in redirectUri || redirectUri.value !== client.redirectUri) {
    return {
      ok: false,
      redirect: false,
      error: 'invalid_request',
      reason: 'redirect-uri-mismatch',
      description: `The redirect_uri is not the one registered for Looker (${client.redirectUri}); Looker's URL must be the gateway's.`,
    };
  }
  const state = single(params, 'state');
  const back = (error: string, reason: string, description: string): AuthorizationCheck => ({
    ok: false,
    redirect: true,
    redirectUri: client.redirectUri,
    state: 'value' in state ? state.value : undefined,
    error,
    reason,
    description,
  });
  for (const name of ['response_type', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'prompt']) {
    const value = single(params, name);
    if ('repeated' in value) return back('invalid_request', 'repeated-parameter', `The parameter ${name} is given more than once.`);
    if (value.value !== undefined && value.value.length > MAX_PARAMETER_LENGTH)
      return back('invalid_request', 'parameter-too-long', `The parameter ${name} is longer than ${MAX_PARAMETER_LENGTH} characters.`);
  }
  const value = (name: string) => (single(params, name) as { value?: string }).value;
  if ('value' in state && state.value !== undefined && !VSCHAR.test(state.value))
    return back('invalid_request', 'bad-state', 'The state has characters outside visible ASCII.');
  const responseType = value('response_type');
  if (responseType !== 'code') {
    return back(
      'unsupported_response_type',
      'unsupported-response-type',
      `response_type ${JSON.stringify(responseType ?? '')} is not supported: only the authorization code flow ("code") is.`,
    );
  }
  const scope = value('scope') ?? '';
  if (!scope.split(' ').includes('openid'))
    return back('invalid_scope', 'openid-scope-missing', 'The scope must include "openid" (this is an OpenID provider).');
  const nonce = value('nonce');
  if (nonce !== undefined && !VSCHAR.test(nonce)) return back('invalid_request', 'bad-nonce', 'The nonce has characters outside visible ASCII.');
  const codeChallenge = value('code_challenge');
  const method = value('code_challenge_method');
  if (method !== undefined && codeChallenge === undefined)
    return back('invalid_request', 'pkce-challenge-missing', 'code_challenge_method is given without a code_challenge.');
  if (codeChallenge !== undefined) {
    if (!PKCE_VALUE.test(codeChallenge))
      return back('invalid_request', 'pkce-challenge-invalid', 'The code_challenge must be 43 to 128 unreserved characters (RFC 7636).');
    if (method !== undefined && method !== 'S256' && method !== 'plain')
      return back('invalid_request', 'pkce-method-unsupported', `code_challenge_method ${JSON.stringify(method)} is not supported: use S256.`);
  }
  const prompt = (value('prompt') ?? '').split(' ').filter((p) => p.length > 0);
  if (prompt.includes('none') && prompt.length > 1) return back('invalid_request', 'bad-prompt', 'prompt=none cannot be combined with other prompt values.');
  return {
    ok: true,
    request: {
      clientId: clientId.value,
      redirectUri: client.redirectUri,
      scope,
      state: value('state'),
      nonce,
      codeChallenge,
      // RFC 7636 4.3: the method defaults to "plain".
      codeChallengeMethod: codeChallenge === undefined ? undefined : ((method as 'S256' | 'plain' | undefined) ?? 'plain'),
      promptNone: prompt.includes('none'),
    },
  };
}

/** Where the browser goes with a code, or with an error (RFC 6749 4.1.2, 4.1.2.1). */
export function authorizationResponseUrl(redirectUri: string, fields: Readonly<Record<string, string | undefined>>): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) url.searchParams.set(name, value);
  return url.toString();
}

/** The client credentials of a token request, however they came. */
export type ClientAuthentication =
  | { readonly ok: true; readonly clientId: string; readonly clientSecret: string; readonly method: 'client_secret_basic' | 'client_secret_post' }
  | { readonly ok: false; readonly error: 'invalid_client' | 'invalid_request'; readonly reason: string; readonly description: string };

/** RFC 6749 2.3.1 / appendix B: the id and secret in Basic are form-urlencoded before base64. */
function formDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * Reads the client credentials: HTTP Basic (client_secret_basic) or the body
 * (client_secret_post). Looker does not document which it uses (docs/looker-oidc.md), so
 * both are accepted; using both at once is an error (RFC 6749 2.3).
 */
export function readClientAuthentication(authorization: string | undefined, form: RequestParameters): ClientAuthentication {
  const bodyId = single(form, 'client_id');
  const bodySecret = single(form, 'client_secret');
  if ('repeated' in bodyId || 'repeated' in bodySecret)
    return { ok: false, error: 'invalid_request', reason: 'repeated-parameter', description: 'client_id or client_secret is given more than once.' };
  const basic = authorization !== undefined && /^basic /i.test(authorization.trim());
  if (authorization !== undefined && authorization.trim() !== '' && !basic) {
    return {
      ok: false,
      error: 'invalid_client',
      reason: 'unsupported-client-authentication',
      description: 'Only HTTP Basic client authentication or client_secret in the body is supported.',
    };
  }
  if (basic) {
    if (bodySecret.value !== undefined)
      return {
        ok: false,
        error: 'invalid_request',
        reason: 'two-client-authentications',
        description: 'The client authenticated twice (Basic and client_secret in the body): use one.',
      };
    const decoded = Buffer.from(authorization!.trim().slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const id = colon > 0 ? formDecode(decoded.slice(0, colon)) : undefined;
    const secret = colon > 0 ? formDecode(decoded.slice(colon + 1)) : undefined;
    if (!id || secret === undefined)
      return {
        ok: false,
        error: 'invalid_client',
        reason: 'malformed-basic-authentication',
        description: 'The Basic credentials are not "client_id:client_secret".',
      };
    if (bodyId.value !== undefined && bodyId.value !== id)
      return {
        ok: false,
        error: 'invalid_request',
        reason: 'client-id-mismatch',
        description: 'The client_id in the body differs from the authenticated one.',
      };
    return { ok: true, clientId: id, clientSecret: secret, method: 'client_secret_basic' };
  }
  if (bodyId.value === undefined || bodySecret.value === undefined) {
    return {
      ok: false,
      error: 'invalid_client',
      reason: 'client-authentication-missing',
      description: 'The client did not authenticate: use HTTP Basic or client_id and client_secret in the body.',
    };
  }
  return { ok: true, clientId: bodyId.value, clientSecret: bodySecret.value, method: 'client_secret_post' };
}

/** Compares secrets in constant time (over their digests, so the length does not leak either). */
export function sameSecret(expected: string, given: string): boolean {
  return timingSafeEqual(createHash('sha256').update(expected).digest(), createHash('sha256').update(given).digest());
}

/** A checked token request (authorization_code grant). */
export type TokenRequestCheck =
  | { readonly ok: true; readonly code: string; readonly redirectUri?: string; readonly codeVerifier?: string }
  | { readonly ok: false; readonly error: 'invalid_request' | 'unsupported_grant_type'; readonly reason: string; readonly description: string };

export function checkTokenRequest(form: RequestParameters): TokenRequestCheck {
  for (const name of ['grant_type', 'code', 'redirect_uri', 'code_verifier']) {
    if ('repeated' in single(form, name))
      return { ok: false, error: 'invalid_request', reason: 'repeated-parameter', description: `The parameter ${name} is given more than once.` };
  }
  const value = (name: string) => (single(form, name) as { value?: string }).value;
  const grantType = value('grant_type');
  if (grantType === undefined) return { ok: false, error: 'invalid_request', reason: 'grant-type-missing', description: 'The request has no grant_type.' };
  if (grantType !== 'authorization_code')
    return {
      ok: false,
      error: 'unsupported_grant_type',
      reason: 'unsupported-grant-type',
      description: `grant_type ${JSON.stringify(grantType.slice(0, 64))} is not supported: only authorization_code is.`,
    };
  const code = value('code');
  if (code === undefined) return { ok: false, error: 'invalid_request', reason: 'code-missing', description: 'The request has no code.' };
  return { ok: true, code, redirectUri: value('redirect_uri'), codeVerifier: value('code_verifier') };
}

/** RFC 7636 4.6: whether the verifier matches the challenge the authorization request carried. */
export function pkceVerifierMatches(challenge: string, method: 'S256' | 'plain', verifier: string | undefined): boolean {
  if (verifier === undefined || !PKCE_VALUE.test(verifier)) return false;
  const computed = method === 'S256' ? createHash('sha256').update(verifier, 'ascii').digest('base64url') : verifier;
  return sameSecret(challenge, computed);
}

/** The digest an authorization code is stored under: the store never holds a code that could be redeemed. */
export function authorizationCodeKey(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('base64url');
}

/**
 * What Looker learns about a user, built from the claims of the user's gateway session (the
 * mapping's result at the last login or refresh): `sub`; the e-mail only as the session has
 * it, that is only an address the IdP verified (and then `email_verified: true`); the
 * names; the mapped Looker groups as a JSON array in the groups claim; one `attr_<name>`
 * claim per mapped user attribute. The same claims go into userinfo and the ID token.
 */
export function lookerUserClaims(session: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const text = (name: string) => (typeof session[name] === 'string' && session[name] !== '' ? (session[name] as string) : undefined);
  const claims: Record<string, unknown> = { sub: session[CLAIMS.subject] };
  const email = text(CLAIMS.email);
  if (email) {
    claims[LOOKER_CLAIMS.email] = email;
    claims.email_verified = true;
  }
  const name = text(CLAIMS.name);
  if (name) claims[LOOKER_CLAIMS.name] = name;
  const given = text(CLAIMS.givenName);
  const family = text(CLAIMS.familyName);
  if (given) claims[LOOKER_CLAIMS.firstName] = given;
  if (family) claims[LOOKER_CLAIMS.lastName] = family;
  claims[LOOKER_CLAIMS.groups] = lookerGroupsOf(session);
  for (const [claim, value] of Object.entries(session)) {
    if (claim.startsWith(ATTRIBUTE_CLAIM_PREFIX) && typeof value === 'string') claims[claim] = value;
  }
  return claims;
}

/** The mapped Looker groups a session carries (its comma-separated claim; names never hold a comma). */
export function lookerGroupsOf(session: Readonly<Record<string, unknown>>): string[] {
  const csv = session[CLAIMS.groupsCsv];
  return typeof csv === 'string' ? csv.split(',').filter((group) => group.length > 0) : [];
}

/** The audience of the broker's access tokens: its userinfo URL, which is the only thing that takes them. */
export function brokerAccessTokenAudience(issuer: string): string {
  return `${issuer}${LOOKER_BROKER_PATHS.userinfo}`;
}

/** OpenID Connect Discovery 1.0 metadata of the broker, for tooling (Looker itself does not read discovery). */
export function lookerBrokerDiscovery(issuer: string, signingAlgorithms: readonly string[], attributeClaims: readonly string[]): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}${LOOKER_BROKER_PATHS.authorize}`,
    token_endpoint: `${issuer}${LOOKER_BROKER_PATHS.token}`,
    userinfo_endpoint: `${issuer}${LOOKER_BROKER_PATHS.userinfo}`,
    jwks_uri: `${issuer}${AUTH_PATHS.jwks}`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...signingAlgorithms],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256', 'plain'],
    scopes_supported: [...LOOKER_SCOPES],
    claims_supported: [
      'sub',
      'iss',
      'aud',
      'exp',
      'iat',
      'nonce',
      LOOKER_CLAIMS.email,
      'email_verified',
      LOOKER_CLAIMS.name,
      LOOKER_CLAIMS.firstName,
      LOOKER_CLAIMS.lastName,
      LOOKER_CLAIMS.groups,
      ...attributeClaims,
    ],
    prompt_values_supported: ['none'],
  };
}
