/**
 * Sign-out: the confirmation page, `POST /oauth2/logout` (same origin only; the session ids
 * revoked, the records erased, the refresh token revoked at the IdP) and the way out through
 * the IdP's own logout when it has one.
 */
import * as client from 'openid-client';
import { AUTH_PATHS } from '../../core/session-contract';
import { header, htmlPage, ProxyResult, queryParam, redirect, requestCookies } from '../shared/http';
import { logoutRevocations, RevocationStoreError } from './revocations';
import { openSecrets, SessionStoreError, type SessionSecrets } from './session-store';
import { AuthServiceRefresh } from './service-refresh';
import { RefreshCookie, isRefreshCookie } from './service-base';
import { errorAnswer, RequestContext } from './service-request';

export abstract class AuthServiceLogout extends AuthServiceRefresh {
  protected logoutPage(ctx: RequestContext): ProxyResult {
    if (queryParam(ctx.event, 'signed_out') !== undefined) {
      return htmlPage(200, 'Signed out', 'You are signed out of Looker.', `<p><a href="${AUTH_PATHS.start}">Sign in again</a></p>`);
    }
    return htmlPage(
      200,
      'Sign out',
      'Sign out of Looker on this browser?',
      `<form method="post" action="${AUTH_PATHS.logout}"><button type="submit">Sign out</button></form>`,
    );
  }

  protected sameOrigin(ctx: RequestContext): boolean {
    const site = header(ctx.event, 'sec-fetch-site');
    if (site !== undefined) return site === 'same-origin';
    const origin = header(ctx.event, 'origin');
    return origin !== undefined && origin === this.config.publicBaseUrl;
  }

  /** The secrets of the session a refresh cookie opens, for logout (undefined when there are none to read). */
  protected async secretsForLogout(ctx: RequestContext, cookie: RefreshCookie | undefined): Promise<SessionSecrets | undefined> {
    if (!cookie) return undefined;
    try {
      const record = await this.records.get(cookie.sid, this.seconds());
      return record?.sealed ? await openSecrets(record.sealed, cookie.sid, cookie.k) : undefined;
    } catch (error) {
      if (!(error instanceof SessionStoreError)) throw error;
      this.logger.log('warn', `Logout could not read the session record (no id_token_hint, no refresh token revocation at the IdP): ${error.message}`, {
        requestId: ctx.requestId,
      });
      return undefined;
    }
  }

  protected async logout(ctx: RequestContext): Promise<ProxyResult> {
    if (!this.sameOrigin(ctx)) {
      this.audit(ctx, { event: 'logout', outcome: 'denied', reason: 'cross-site-refused', status: 403 });
      return errorAnswer(
        ctx,
        403,
        'forbidden',
        'cross-site-refused',
        'Sign-out must be confirmed on this site.',
        [],
        `<p><a href="${AUTH_PATHS.logout}">Go to the sign-out page</a></p>`,
      );
    }
    // Only a session this service signed (checked like any other: typ, iss, aud, exp) or
    // its own encrypted refresh cookie names a sid to revoke: a forged token must not
    // be able to sign someone else out.
    const session = await this.currentSession(ctx);
    const sealedRefresh = requestCookies(ctx.event).get(this.config.cookies.refresh);
    const opened = sealedRefresh ? await this.sealer.open<Record<string, unknown>>('refresh', sealedRefresh) : undefined;
    const refresh =
      opened?.ok && isRefreshCookie(opened.payload)
        ? {
            sid: opened.payload.sid,
            sub: opened.payload.sub,
            k: opened.payload.k,
            g: opened.payload.g,
            exp: typeof opened.payload.exp === 'number' ? opened.payload.exp : undefined,
          }
        : undefined;
    const user = session
      ? { sub: session.sub, email: typeof session.email === 'string' && session.email ? session.email : undefined }
      : refresh
        ? { sub: refresh.sub }
        : undefined;
    const revocations = logoutRevocations({
      now: this.seconds(),
      sessionTtlSeconds: this.config.session.ttlSeconds,
      clockSkewSeconds: this.config.clockSkewSeconds,
      refreshCookieMaxAgeSeconds: this.config.refreshCookieMaxAgeSeconds,
      session: typeof session?.sid === 'string' ? { sid: session.sid, exp: session.exp } : undefined,
      refresh: refresh ? { sid: refresh.sid, exp: refresh.exp } : undefined,
    });
    const sessionId = revocations[0]?.sid;
    const secrets = await this.secretsForLogout(ctx, refresh);
    try {
      for (const revocation of revocations) await this.revocations.revoke(revocation);
    } catch (error) {
      if (!(error instanceof RevocationStoreError)) throw error;
      // The cookies stay, so that "Sign out" can be tried again: a sign-out that other
      // copies of the session would survive is not reported as done.
      this.logger.log('error', error.message, { requestId: ctx.requestId });
      this.audit(ctx, { event: 'logout', outcome: 'failure', reason: 'revocation-store-unavailable', status: 503, user, sessionId });
      return errorAnswer(
        ctx,
        503,
        'temporarily_unavailable',
        'revocation-store-unavailable',
        'Sign-out could not be recorded right now, so you are still signed in. Try again in a moment.',
        [],
        `<form method="post" action="${AUTH_PATHS.logout}"><button type="submit">Try again</button></form>`,
      );
    }
    // The records' secrets (refresh token, ID token) are erased; the revocations above are what refuse the sid.
    for (const revocation of revocations) {
      await this.records.end(revocation.sid, revocation.refuseRefreshUntil).catch((error: unknown) => {
        this.logger.log('warn', `Logout could not erase the session record: ${(error as Error).message}`, {
          requestId: ctx.requestId,
          sessionId: revocation.sid,
        });
      });
    }
    let idpRevocation = 'no refresh token';
    if (secrets?.refreshToken) {
      const revoked = await this.idp.revoke(secrets.refreshToken).catch(() => undefined);
      idpRevocation = revoked === undefined ? 'failed' : revoked ? 'done' : 'not offered by the IdP';
    }
    const ending = await this.endSession(ctx, secrets?.idToken);
    const detail = `revoked ${revocations.length} session id(s) until ${revocations.map((r) => r.listUntil).join(', ') || '-'}; refresh token revocation at the IdP: ${idpRevocation}; ${ending.detail}`;
    this.audit(ctx, { event: 'logout', outcome: 'success', reason: ending.reason, status: 303, user, sessionId, detail });
    return redirect(ending.location, this.clearAll(), 303);
  }

  /**
   * Where the browser goes after the gateway's logout: the IdP's logout (so that its
   * session ends too, and the next visit asks for the password) as `endSession` says, or
   * the signed-out page, audited `idp-session-kept` because the IdP session survives.
   */
  protected async endSession(
    ctx: RequestContext,
    idTokenHint: string | undefined,
  ): Promise<{ location: string; reason: 'idp-end-session' | 'idp-session-kept'; detail: string }> {
    const { endSession, profile } = this.config.idp.settings;
    const postLogout = this.config.postLogoutRedirectUrl;
    const kept = (why: string) => ({
      location: postLogout,
      reason: 'idp-session-kept' as const,
      detail: `the ${profile.displayName} session is kept (${why}): the next sign-in there may not ask for a password`,
    });
    const hint = idTokenHint ? 'with id_token_hint' : 'without id_token_hint (no ID token kept for this session)';
    if (endSession.mode === 'off') return kept('endSession is off');
    if (endSession.mode === 'template') {
      // {state} is for IdPs that insist on one; the signed-out page does not need it back.
      const values: Record<string, string> = {
        clientId: this.config.idp.clientId,
        postLogoutRedirectUri: postLogout,
        idTokenHint: idTokenHint ?? '',
        state: client.randomState(),
      };
      return {
        location: endSession.template.replace(/\{([A-Za-z]+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? '')),
        reason: 'idp-end-session',
        detail: `IdP logout through the endSession template ${hint}`,
      };
    }
    try {
      const url = await this.idp.endSessionUrl({ postLogoutRedirectUri: postLogout, idTokenHint });
      if (url) return { location: url, reason: 'idp-end-session', detail: `IdP logout at its end_session_endpoint ${hint}` };
      return kept('the IdP advertises no end_session_endpoint');
    } catch (error) {
      this.logger.log('warn', 'Logout could not reach the IdP; the session is revoked and the cookies cleared anyway.', {
        requestId: ctx.requestId,
        error: (error as Error).message,
      });
      return kept('the IdP could not be reached for its logout endpoint');
    }
  }
}
