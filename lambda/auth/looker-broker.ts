/**
 * Broker mode: the auth service as Looker's OpenID provider, for Looker alone. The routes
 * (core/auth/looker-broker.ts) sit under the gateway's origin:
 * - authorize: a browser with a current gateway session gets a code at once (no second
 *   login, no consent); without one it signs in first and comes back with the same query;
 *   a user whose mapping grants no Looker group gets the "no access" page;
 * - token (called by Looker's servers): client_secret_basic or client_secret_post with the
 *   secret from Secrets Manager, PKCE when Looker sent a challenge, codes single-use
 *   across containers (authorization-codes.ts), redirect_uri exactly Looker's;
 * - userinfo: bearer access token of this broker (audience and type checked);
 * - a discovery document for tooling (the JWKS is the service's `/oauth2/jwks.json`).
 * The OAuth rules are pure (core/auth/looker-broker-protocol.ts); this is the adapter. Errors
 * are RFC 6749 / 6750 codes with a 4xx, each audited; store or secret failures are 503.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { decodeJwt, type JWTPayload } from 'jose';
import { AUTH_PATHS, RETURN_TO_PARAM } from '../../core/session-contract';
import type { LookerBrokerConfig } from '../../core/auth/environment';
import { LOOKER_BROKER_PATHS, lookerAttributeClaim } from '../../core/auth/looker-broker';
import {
  AUTHORIZATION_CODE_SECONDS,
  authorizationCodeKey,
  authorizationResponseUrl,
  BROKER_ACCESS_TOKEN_TYPE,
  BROKER_LOGIN_MARKER,
  BROKER_TOKEN_SECONDS,
  brokerAccessTokenAudience,
  checkAuthorizationRequest,
  checkTokenRequest,
  lookerBrokerDiscovery,
  lookerGroupsOf,
  lookerUserClaims,
  pkceVerifierMatches,
  readClientAuthentication,
  sameSecret,
  type RequestParameters,
} from '../../core/auth/looker-broker-protocol';
import type { AuditEvent } from '../shared/audit';
import type { CachedSecret } from '../shared/secrets';
import { escapeHtml, header, htmlPage, jsonResponse, queryString, redirect, requestBody, type ProxyEvent, type ProxyResult } from '../shared/http';
import type { AuthorizationCodeGrant, AuthorizationCodeStore } from './authorization-codes';
import type { SessionSigner } from './keys';
import type { SessionRevocationStore } from './revocations';

/** What the broker needs of the service around it. */
export interface LookerBrokerDependencies {
  readonly config: LookerBrokerConfig;
  readonly clockSkewSeconds: number;
  readonly signer: SessionSigner;
  readonly codes: AuthorizationCodeStore;
  readonly revocations: SessionRevocationStore;
  /** Looker's client secret (plain text). */
  readonly clientSecret: CachedSecret<string>;
  readonly now: () => number;
  /** The user attributes the mapping rules can set (their `attr_` claims are listed in the discovery document). */
  readonly attributeNames: readonly string[];
}

/** One request as the service hands it over. */
export interface BrokerRequest {
  readonly event: ProxyEvent;
  readonly requestId: string;
  /** Audits one decision; the service adds the request id, route and source address. */
  audit(event: Omit<AuditEvent, 'requestId' | 'route' | 'sourceIp'>): void;
  /** The request's gateway session when it is current and this service signed it. */
  session(): Promise<JWTPayload | undefined>;
  /** Whether the request carries the refresh cookie (a session that can be renewed without the IdP's login page). */
  hasRefreshCookie(): boolean;
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i;
const REALM = 'realm="looker-gateway"';

/** Parameters of a query or form body, every value of each name. */
function parameters(text: string): RequestParameters {
  const map = new Map<string, string[]>();
  for (const [name, value] of new URLSearchParams(text)) map.set(name, [...(map.get(name) ?? []), value]);
  return map;
}

export class LookerBroker {
  constructor(private readonly deps: LookerBrokerDependencies) {}

  private seconds(): number {
    return Math.floor(this.deps.now() / 1000);
  }

  // ---- authorize ----------------------------------------------------------------------

  async authorize(req: BrokerRequest): Promise<ProxyResult> {
    const { config } = this.deps;
    const query = queryString(req.event);
    const check = checkAuthorizationRequest(parameters(query), { clientId: config.clientId, redirectUri: config.redirectUri });
    if (!check.ok) {
      req.audit({ event: 'looker-authorize', outcome: 'failure', reason: check.reason, status: check.redirect ? 302 : 400, detail: check.description });
      if (!check.redirect)
        return htmlPage(
          400,
          'Looker sign-in failed',
          check.description,
          `<p><small>Reason: ${escapeHtml(check.reason)}. Request id: ${escapeHtml(req.requestId)}</small></p>`,
        );
      return redirect(authorizationResponseUrl(check.redirectUri, { error: check.error, error_description: check.description, state: check.state }));
    }
    const { request } = check;
    const session = await req.session();
    if (!session) {
      if (request.promptNone) {
        req.audit({ event: 'looker-authorize', outcome: 'failure', reason: 'login-required', status: 302, detail: 'prompt=none without a gateway session' });
        return redirect(authorizationResponseUrl(request.redirectUri, { error: 'login_required', state: request.state }));
      }
      if (parameters(query).has(BROKER_LOGIN_MARKER)) {
        // Sent to sign in once already and back without a session: the browser does not keep the gateway's cookies.
        req.audit({
          event: 'looker-authorize',
          outcome: 'failure',
          reason: 'session-not-kept',
          status: 400,
          detail: 'back from the gateway sign-in without a session (cookies blocked?)',
        });
        return htmlPage(
          400,
          'Looker sign-in failed',
          "You signed in, but your browser did not keep the gateway's session cookie, so Looker cannot sign you in. Allow cookies for this site and open Looker again.",
        );
      }
      const again = new URLSearchParams(query);
      again.append(BROKER_LOGIN_MARKER, '1');
      const returnTo = `${LOOKER_BROKER_PATHS.authorize}?${again.toString()}`;
      const via = req.hasRefreshCookie() ? AUTH_PATHS.refresh : AUTH_PATHS.start;
      req.audit({
        event: 'looker-authorize',
        outcome: 'success',
        reason: 'sign-in-first',
        status: 302,
        detail: `no current gateway session: through ${via}, then back`,
      });
      return redirect(`${via}?${RETURN_TO_PARAM}=${encodeURIComponent(returnTo)}`);
    }
    const sid = String(session.sid);
    const user = { sub: String(session.sub), email: typeof session.email === 'string' && session.email ? session.email : undefined };
    const groups = lookerGroupsOf(session);
    if (groups.length === 0) {
      // Looker would refuse the login anyway (auth_requires_role) or let the user in without a role: refused here, once, with no redirect to come back through.
      req.audit({
        event: 'looker-authorize',
        outcome: 'denied',
        reason: 'no-looker-group',
        status: 403,
        user,
        sessionId: sid,
        detail: 'the mapping grants this user no Looker group',
      });
      return htmlPage(
        403,
        'Access denied',
        'Your account has no Looker group: the access rules give you nothing Looker can map to a role. Ask your administrator for access to Looker.',
        `<p><small>Reason: no-looker-group. Request id: ${escapeHtml(req.requestId)}</small></p>`,
      );
    }
    const code = randomBytes(32).toString('base64url');
    const grant: AuthorizationCodeGrant = {
      clientId: request.clientId,
      redirectUri: request.redirectUri,
      scope: request.scope,
      nonce: request.nonce,
      codeChallenge: request.codeChallenge,
      codeChallengeMethod: request.codeChallengeMethod,
      sessionId: sid,
      claims: lookerUserClaims(session),
    };
    await this.deps.codes.issue(authorizationCodeKey(code), grant, this.seconds() + AUTHORIZATION_CODE_SECONDS);
    req.audit({
      event: 'looker-authorize',
      outcome: 'success',
      reason: 'code-issued',
      status: 302,
      user,
      sessionId: sid,
      groups,
      detail: request.codeChallenge ? `PKCE ${request.codeChallengeMethod}` : 'no PKCE',
    });
    return redirect(authorizationResponseUrl(request.redirectUri, { code, state: request.state }));
  }

  // ---- token --------------------------------------------------------------------------

  async token(req: BrokerRequest): Promise<ProxyResult> {
    const refuse = (status: 400 | 401, error: string, reason: string, description: string, grant?: AuthorizationCodeGrant): ProxyResult => {
      const user = grant ? { sub: String(grant.claims.sub) } : undefined;
      req.audit({ event: 'looker-token', outcome: 'failure', reason, status, user, sessionId: grant?.sessionId, detail: description });
      // RFC 6749 5.2: invalid_client is a 401 with the scheme the client may use.
      const headers: Record<string, string> = status === 401 ? { 'WWW-Authenticate': `Basic ${REALM}` } : {};
      return jsonResponse(status, { error, error_description: description }, { headers });
    };
    const type = (header(req.event, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded')
      return refuse(400, 'invalid_request', 'bad-content-type', 'The token request must be application/x-www-form-urlencoded (RFC 6749 4.1.3).');
    const form = parameters(requestBody(req.event));
    const auth = readClientAuthentication(header(req.event, 'authorization'), form);
    if (!auth.ok) return refuse(auth.error === 'invalid_client' ? 401 : 400, auth.error, auth.reason, auth.description);
    if (auth.clientId !== this.deps.config.clientId)
      return refuse(401, 'invalid_client', 'unknown-client', 'The client is not registered here: only Looker is.');
    if (!(await this.secretMatches(auth.clientSecret)))
      return refuse(
        401,
        'invalid_client',
        'wrong-client-secret',
        `The client secret is wrong (${auth.method}): Looker's oidc_config secret must be the one in the gateway's Secrets Manager secret.`,
      );

    const check = checkTokenRequest(form);
    if (!check.ok) return refuse(400, check.error, check.reason, check.description);
    const redemption = await this.deps.codes.redeem(authorizationCodeKey(check.code), this.seconds());
    if (redemption.kind === 'unknown') return refuse(400, 'invalid_grant', 'code-unknown', 'The authorization code is not one this broker issued.');
    if (redemption.kind === 'expired')
      return refuse(400, 'invalid_grant', 'code-expired', `The authorization code expired (codes are good for ${AUTHORIZATION_CODE_SECONDS} s).`);
    const { grant } = redemption;
    // The tokens of the first redemption are short-lived and self-contained: they expire on their own (RFC 6749 4.1.2 "SHOULD revoke when possible").
    if (redemption.kind === 'replayed')
      return refuse(400, 'invalid_grant', 'code-replayed', 'The authorization code was used before: a code is good for one use.', grant);
    if (grant.clientId !== auth.clientId)
      return refuse(400, 'invalid_grant', 'code-of-another-client', 'The authorization code was issued to another client.', grant);
    // RFC 6749 4.1.3: the redirect_uri of the authorization request, identical.
    if (check.redirectUri !== grant.redirectUri)
      return refuse(400, 'invalid_grant', 'redirect-uri-mismatch', "redirect_uri is missing or differs from the authorization request's.", grant);
    if (grant.codeChallenge !== undefined) {
      if (!pkceVerifierMatches(grant.codeChallenge, grant.codeChallengeMethod ?? 'plain', check.codeVerifier))
        return refuse(400, 'invalid_grant', 'pkce-verifier-mismatch', 'The code_verifier does not match the code_challenge (RFC 7636).', grant);
    } else if (check.codeVerifier !== undefined) {
      return refuse(400, 'invalid_grant', 'pkce-verifier-unexpected', 'A code_verifier was sent for a code issued without a code_challenge.', grant);
    }
    if (await this.deps.revocations.isRevoked(grant.sessionId, this.seconds()))
      return refuse(400, 'invalid_grant', 'session-revoked', 'The gateway session this code was issued from has ended (signed out).', grant);

    const { idToken, accessToken } = await this.mintTokens(grant);
    req.audit({
      event: 'looker-token',
      outcome: 'success',
      reason: 'tokens-issued',
      status: 200,
      user: { sub: String(grant.claims.sub), email: grant.claims.email as string | undefined },
      sessionId: grant.sessionId,
      detail: auth.method,
    });
    return jsonResponse(200, { access_token: accessToken, token_type: 'Bearer', expires_in: BROKER_TOKEN_SECONDS, id_token: idToken, scope: grant.scope });
  }

  /** Compares with the cached secret, then once more after a (rate-limited) re-read: the secret may have just been changed. */
  private async secretMatches(given: string): Promise<boolean> {
    if (sameSecret(await this.deps.clientSecret.get(), given)) return true;
    return sameSecret(await this.deps.clientSecret.rereadForUnknownKey(), given);
  }

  private async mintTokens(grant: AuthorizationCodeGrant): Promise<{ idToken: string; accessToken: string }> {
    const { config, signer } = this.deps;
    const now = this.seconds();
    const exp = now + BROKER_TOKEN_SECONDS;
    const idToken = await signer.sign({
      ...grant.claims,
      iss: config.issuer,
      aud: config.clientId,
      azp: config.clientId,
      iat: now,
      exp,
      ...(grant.nonce !== undefined ? { nonce: grant.nonce } : {}),
    });
    const accessToken = await signer.sign(
      {
        iss: config.issuer,
        aud: brokerAccessTokenAudience(config.issuer),
        sub: grant.claims.sub as string,
        client_id: grant.clientId,
        scope: grant.scope,
        sid: grant.sessionId,
        jti: randomUUID(),
        iat: now,
        exp,
        // What userinfo answers: signed, so it cannot be changed, and nothing to look up.
        userinfo: grant.claims as JWTPayload,
      },
      BROKER_ACCESS_TOKEN_TYPE,
    );
    return { idToken, accessToken };
  }

  // ---- userinfo -----------------------------------------------------------------------

  async userinfo(req: BrokerRequest): Promise<ProxyResult> {
    const { config } = this.deps;
    const refuse = (reason: string, description: string, error?: 'invalid_token' | 'invalid_request'): ProxyResult => {
      req.audit({ event: 'looker-userinfo', outcome: 'failure', reason, status: error === 'invalid_request' ? 400 : 401, detail: description });
      // RFC 6750 3.1: no error code when the request had no token at all.
      const challenge = error ? `Bearer ${REALM}, error="${error}", error_description="${description.replace(/["\\]/g, '')}"` : `Bearer ${REALM}`;
      return jsonResponse(
        error === 'invalid_request' ? 400 : 401,
        error ? { error, error_description: description } : { error: 'invalid_token', error_description: description },
        { headers: { 'WWW-Authenticate': challenge } },
      );
    };
    const authorization = header(req.event, 'authorization');
    if (authorization === undefined || authorization.trim() === '')
      return refuse('access-token-missing', 'The request has no bearer access token (Authorization: Bearer ...).');
    const match = BEARER.exec(authorization.trim());
    if (!match) return refuse('access-token-malformed', 'The Authorization header is not "Bearer <token>".', 'invalid_request');
    const token = match[1];
    const payload = await this.deps.signer.verify(token, config.issuer, brokerAccessTokenAudience(config.issuer), this.deps.clockSkewSeconds, {
      typ: BROKER_ACCESS_TOKEN_TYPE,
      requiredClaims: ['exp', 'sub', 'sid', 'client_id'],
    });
    if (!payload)
      return refuse(
        accessTokenProblem(token, brokerAccessTokenAudience(config.issuer), this.seconds()),
        'The access token is not valid here (expired, for another audience, or not issued by this broker).',
        'invalid_token',
      );
    if (payload.client_id !== config.clientId)
      return refuse('access-token-of-another-client', 'The access token was issued to another client.', 'invalid_token');
    const sid = String(payload.sid);
    if (await this.deps.revocations.isRevoked(sid, this.seconds()))
      return refuse('session-revoked', 'The gateway session behind this token has ended (signed out).', 'invalid_token');
    const claims = payload.userinfo && typeof payload.userinfo === 'object' ? (payload.userinfo as Record<string, unknown>) : {};
    req.audit({
      event: 'looker-userinfo',
      outcome: 'success',
      reason: 'userinfo',
      status: 200,
      user: { sub: String(payload.sub) },
      sessionId: sid,
      groups: Array.isArray(claims.groups) ? (claims.groups as string[]) : [],
    });
    return jsonResponse(200, { ...claims, sub: payload.sub });
  }

  // ---- discovery ----------------------------------------------------------------------

  async discovery(): Promise<ProxyResult> {
    const { keys } = await this.deps.signer.jwks();
    const algorithms = [...new Set(keys.map((key) => String(key.alg)))];
    const attributeClaims = this.deps.attributeNames.map((name) => lookerAttributeClaim(name));
    return jsonResponse(200, lookerBrokerDiscovery(this.deps.config.issuer, algorithms, attributeClaims), {
      headers: { 'Cache-Control': 'public, max-age=300' },
    });
  }
}

/** For the audit only: why a token that failed verification failed, read without trusting it. */
function accessTokenProblem(token: string, audience: string, now: number): string {
  try {
    const claims = decodeJwt(token);
    if (typeof claims.exp === 'number' && claims.exp <= now) return 'access-token-expired';
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(audience)) return 'access-token-wrong-audience';
    return 'access-token-invalid';
  } catch {
    return 'access-token-invalid';
  }
}
