/**
 * Sign-in: the JWKS, `GET /oauth2/start` (PKCE, state and nonce sealed in the login cookie,
 * then the IdP) and `GET /oauth2/callback` (the code exchanged, the identity resolved and
 * mapped, the session minted and its server-side record written).
 */
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { AUTH_PATHS, RETURN_TO_PARAM } from '../../core/session-contract';
import { evaluateMappingRules } from '../../core/auth/mapping-rules';
import { checkReturnTo } from '../../core/auth/return-to';
import { clearCookie, jsonResponse, ProxyResult, queryParam, queryString, redirect, requestCookies, setCookie } from '../shared/http';
import { type IdentityOutcome } from './identity';
import { IdpError, type IdpTokens } from './oidc';
import { newSessionKey, NO_LEASE, sealSecrets, type SessionSecrets } from './session-store';
import { AuthServiceResponses } from './service-responses';
import { errorAnswer, grantFields, RequestContext } from './service-request';

interface LoginState {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  readonly rd: string;
}

export abstract class AuthServiceLogin extends AuthServiceResponses {
  protected async jwks(ctx: RequestContext): Promise<ProxyResult> {
    try {
      return jsonResponse(200, await this.signer.jwks(), { headers: { 'Cache-Control': 'public, max-age=300', 'Content-Type': 'application/jwk-set+json' } });
    } catch (error) {
      return this.unexpected(ctx, error);
    }
  }

  protected async start(ctx: RequestContext): Promise<ProxyResult> {
    const returnTo = checkReturnTo(queryParam(ctx.event, RETURN_TO_PARAM));
    if (!returnTo.ok) return this.badReturnTo(ctx, returnTo.reason);
    const state = client.randomState();
    const nonce = client.randomNonce();
    const verifier = client.randomPKCECodeVerifier();
    let location: string;
    try {
      location = await this.idp.authorizationUrl({
        scope: this.config.idp.settings.scopes.join(' '),
        state,
        nonce,
        codeChallenge: await client.calculatePKCECodeChallenge(verifier),
        extra: this.config.idp.settings.authorizationParams,
      });
    } catch (error) {
      if (error instanceof IdpError) return this.idpFailure(ctx, 'login', error, []);
      throw error;
    }
    const login: LoginState = { state, nonce, verifier, rd: returnTo.path };
    const sealed = await this.sealer.seal('login', { ...login }, this.seconds() + this.config.loginTimeoutSeconds);
    return redirect(location, [setCookie(this.config.cookies.login, sealed, { maxAgeSeconds: this.config.loginTimeoutSeconds })]);
  }

  protected async callback(ctx: RequestContext): Promise<ProxyResult> {
    const clearLogin = clearCookie(this.config.cookies.login);
    const restart = `<p><a href="${AUTH_PATHS.start}">Start the sign-in again</a></p>`;
    const refuse = (status: number, reason: string, message: string): ProxyResult => {
      this.audit(ctx, { event: 'login', outcome: status === 403 ? 'denied' : 'failure', reason, status });
      return errorAnswer(ctx, status, status === 403 ? 'access_denied' : 'invalid_request', reason, message, [clearLogin], restart);
    };
    const sealed = requestCookies(ctx.event).get(this.config.cookies.login);
    if (!sealed) return refuse(400, 'login-state-missing', 'This sign-in was not started here, took too long, or cookies are blocked.');
    const opened = await this.sealer.open<LoginState>('login', sealed);
    if (!opened.ok) {
      return refuse(
        400,
        opened.reason === 'expired' ? 'login-state-expired' : 'login-state-invalid',
        opened.reason === 'expired' ? 'This sign-in took too long.' : 'The sign-in state cookie is not valid.',
      );
    }
    const login = opened.payload;
    const idpError = queryParam(ctx.event, 'error');
    if (idpError) {
      const code = /^[\w.-]{1,64}$/.test(idpError) ? idpError : 'invalid';
      return refuse(code === 'access_denied' ? 403 : 400, `idp-error:${code}`, `The identity provider reported "${code}".`);
    }
    const state = queryParam(ctx.event, 'state');
    if (!state || state !== login.state) return refuse(400, 'state-mismatch', 'The sign-in answer does not belong to this browser session (state mismatch).');
    if (!queryParam(ctx.event, 'code')) return refuse(400, 'code-missing', 'The identity provider sent no authorization code.');

    const callbackUrl = new URL(this.config.redirectUri);
    callbackUrl.search = queryString(ctx.event);
    let tokens: IdpTokens;
    let outcome: IdentityOutcome;
    try {
      tokens = await this.idp.exchangeCode(callbackUrl, { state: login.state, nonce: login.nonce, codeVerifier: login.verifier });
      outcome = await this.identities.resolve(tokens);
    } catch (error) {
      if (!(error instanceof IdpError)) throw error;
      if (error.kind === 'rejected')
        return refuse(400, `code-rejected:${error.oauthError ?? 'unknown'}`, 'The identity provider refused the sign-in code (used twice or expired).');
      if (error.kind === 'bad-response') return refuse(400, 'id-token-rejected', `The identity provider's answer failed validation: ${error.message}.`);
      return this.idpFailure(ctx, 'login', error, [clearLogin]);
    }
    if (!outcome.ok) return this.identityDenied(ctx, 'login', outcome, this.clearAll());
    const { identity } = outcome;
    const user = { sub: identity.subject, email: identity.email };
    const decision = evaluateMappingRules(this.config.mappingRules, identity.facts);
    if (!decision.allowed) return this.denied(ctx, decision, identity, user);
    const sessionId = randomBytes(16).toString('base64url');
    const minted = await this.mint(identity, decision, sessionId);
    if (!minted.ok) return this.tooLarge(ctx, 'login', user, decision, minted, this.clearAll());
    const cookies = [clearLogin];
    let reason = 'authenticated';
    let detail: string | undefined;
    if (tokens.refreshToken) {
      const expiresAt = this.seconds() + this.config.refreshCookieMaxAgeSeconds;
      const k = newSessionKey();
      const secrets: SessionSecrets = {
        refreshToken: tokens.refreshToken,
        idToken: tokens.idToken,
        claims: outcome.claims,
        groupsClaimSeen: outcome.groupsClaimSeen,
        groups: outcome.groups,
      };
      await this.records.create({
        sid: sessionId,
        gen: 1,
        genAt: this.seconds(),
        lease: NO_LEASE,
        leaseUntil: 0,
        expiresAt: expiresAt + this.config.clockSkewSeconds,
        sealed: await sealSecrets(secrets, sessionId, k),
      });
      cookies.push(
        ...this.sessionCookies(minted, this.config.refreshCookieMaxAgeSeconds),
        await this.refreshCookie({ sid: sessionId, sub: identity.subject, k, g: 1 }, expiresAt),
      );
    } else {
      // Without a refresh token the session ends with its token: the user signs in again
      // every session lifetime, and Looker's background requests get 401s meanwhile.
      reason = 'authenticated-without-refresh-token';
      detail = `the IdP issued no refresh token: ${this.noRefreshTokenHint()}`;
      cookies.push(...this.sessionCookies(minted, this.config.session.ttlSeconds), clearCookie(this.config.cookies.refresh));
    }
    this.audit(ctx, { event: 'login', outcome: 'success', reason, status: 302, user, sessionId, detail, ...grantFields(decision) });
    // rd was checked at start and sealed in the login cookie; the target is checked again as sent.
    const returnTo = checkReturnTo(login.rd);
    return redirect(returnTo.ok ? returnTo.path : '/', cookies);
  }

  /** What the operator can change so that the IdP issues refresh tokens (the profile says how it issues them). */
  protected noRefreshTokenHint(): string {
    const { settings } = this.config.idp;
    switch (settings.profile.refreshTokens) {
      case 'offline-access-scope':
        return `${settings.profile.displayName} issues one only for the offline_access scope (scopes now: ${settings.scopes.join(' ')}), and only when the application may use the refresh token grant`;
      case 'access-type-offline':
        return 'Google issues one only with access_type=offline, and only at the first consent unless prompt=consent';
      default:
        return 'allow the refresh token grant for the application at the IdP';
    }
  }
}
