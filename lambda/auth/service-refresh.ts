/**
 * Refresh: the session record claimed under a lease (or the result of a concurrent refresh
 * reused), the refresh token redeemed at the IdP, the identity mapped again and a new
 * session minted; served inline to HAProxy (`POST /oauth2/session`) and as a navigation
 * (`GET /oauth2/refresh`), plus the revocation list HAProxy polls.
 */
import { AUTH_PATHS, InlineRefreshResponse, RETURN_TO_PARAM, type RevocationList } from '../../core/session-contract';
import { evaluateMappingRules } from '../../core/auth/mapping-rules';
import { checkReturnTo } from '../../core/auth/return-to';
import { AuditEvent } from '../shared/audit';
import { jsonResponse, ProxyResult, queryParam, redirect, requestCookies } from '../shared/http';
import { type IdentityOutcome } from './identity';
import { IdpError, type IdpTokens } from './oidc';
import { newLease, NO_LEASE, openSecrets, sealSecrets, type SessionRecord, type SessionSecrets } from './session-store';
import { AuthServiceLogin } from './service-login';
import { RefreshCookie, isRefreshCookie } from './service-base';
import { errorAnswer, grantFields, RequestContext } from './service-request';

/**
 * A refresh cookie one generation old is answered with the result of the refresh that
 * superseded it for this long: the browser's other requests still carry it until the
 * first answer lands (HAProxy instances do not share their single flight).
 */
const SUPERSEDED_GRACE_SECONDS = 10;
/** How long a refresh waits for another request's refresh of the same session: well under HAProxy's inline-refresh wait (7 s, core/timeouts.ts). */
const CONCURRENT_REFRESH_WAIT_MS = 2500;
const CONCURRENT_REFRESH_POLL_MS = 50;

type RedeemOutcome =
  | { readonly ok: true; readonly minted: { token: string; assertion: string; expiresAt: number }; readonly cookies: string[] }
  | { readonly ok: false; readonly kind: 'login-required' | 'denied' | 'idp'; readonly result: ProxyResult; readonly reason: string };

/** The session record found for a refresh, and what this request may do with it. */
type Claim =
  | { readonly kind: 'claimed'; readonly record: SessionRecord; readonly lease: string; readonly secrets: SessionSecrets }
  | { readonly kind: 'fresh'; readonly record: SessionRecord; readonly secrets: SessionSecrets }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'busy' };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export abstract class AuthServiceRefresh extends AuthServiceLogin {
  /**
   * Finds the session's record and decides what this request may do: redeem the refresh
   * token (it took the lease: a conditional write on the generation and the lease, so no
   * two requests redeem one token), use the result of the refresh another request just
   * made (its cookie is one generation behind, within the grace), or nothing.
   */
  protected async claimRecord(cookie: RefreshCookie): Promise<Claim> {
    const deadline = this.now() + CONCURRENT_REFRESH_WAIT_MS;
    for (;;) {
      const now = this.seconds();
      const record = await this.records.get(cookie.sid, now);
      if (!record || record.sealed === undefined) return { kind: 'refused', reason: 'session-ended' };
      const secrets = await openSecrets(record.sealed, cookie.sid, cookie.k);
      if (!secrets) return { kind: 'refused', reason: 'session-record-unreadable' };
      if (cookie.g !== record.gen) {
        if (cookie.g === record.gen - 1 && now - record.genAt <= SUPERSEDED_GRACE_SECONDS) return { kind: 'fresh', record, secrets };
        return { kind: 'refused', reason: 'refresh-cookie-superseded' };
      }
      if (record.lease !== NO_LEASE && record.leaseUntil > now) {
        // Another request is at the IdP for this session: wait for its result.
        if (this.now() >= deadline) return { kind: 'busy' };
        await sleep(CONCURRENT_REFRESH_POLL_MS);
        continue;
      }
      const lease = newLease();
      if (await this.records.replace({ gen: record.gen, lease: record.lease }, { ...record, lease, leaseUntil: now + this.leaseSeconds }))
        return { kind: 'claimed', record, lease, secrets };
      // Another request took the lease first: look again.
    }
  }

  /** Redeems the refresh cookie; shared by the inline and navigation refresh. */
  protected async redeem(ctx: RequestContext): Promise<RedeemOutcome> {
    const loginRequired = (reason: string, user?: AuditEvent['user'], sessionId?: string): RedeemOutcome => {
      this.audit(ctx, { event: 'refresh', outcome: 'failure', reason, status: 401, user, sessionId });
      return {
        ok: false,
        kind: 'login-required',
        reason,
        result: jsonResponse(401, { error: 'login_required', reason, requestId: ctx.requestId }, { cookies: this.clearAll() }),
      };
    };
    const sealed = requestCookies(ctx.event).get(this.config.cookies.refresh);
    if (!sealed) return loginRequired('refresh-cookie-missing');
    const opened = await this.sealer.open<Record<string, unknown>>('refresh', sealed);
    if (!opened.ok) return loginRequired(`refresh-cookie-${opened.reason}`);
    // A cookie of the earlier format (the refresh token inside) belongs to no record.
    if (!isRefreshCookie(opened.payload)) return loginRequired('refresh-cookie-outdated');
    const cookie: RefreshCookie = { sid: opened.payload.sid, sub: opened.payload.sub, k: opened.payload.k, g: opened.payload.g };
    const refreshExpiresAt = typeof opened.payload.exp === 'number' ? opened.payload.exp : this.seconds();
    const user = { sub: cookie.sub };
    // Signed out: the refresh cookie of an ended session never mints again (checked
    // before spending the refresh token, and again after minting, below).
    if (await this.revocations.isRevoked(cookie.sid, this.seconds())) return loginRequired('session-revoked', user, cookie.sid);

    const claim = await this.claimRecord(cookie);
    if (claim.kind === 'refused') return loginRequired(claim.reason, user, cookie.sid);
    if (claim.kind === 'busy') {
      this.audit(ctx, { event: 'refresh', outcome: 'failure', reason: 'refresh-in-progress', status: 503, user, sessionId: cookie.sid });
      return {
        ok: false,
        kind: 'idp',
        reason: 'refresh-in-progress',
        result: errorAnswer(ctx, 503, 'temporarily_unavailable', 'refresh-in-progress', 'Another request is renewing this session. Try again in a moment.'),
      };
    }
    if (claim.kind === 'fresh') return this.reuseFreshRefresh(ctx, cookie, claim.record, claim.secrets, refreshExpiresAt);

    const { record, lease, secrets } = claim;
    const release = () => this.records.replace({ gen: record.gen, lease }, { ...record, lease: NO_LEASE, leaseUntil: 0 });
    const end = () => this.records.end(cookie.sid, record.expiresAt);
    let tokens: IdpTokens;
    let outcome: IdentityOutcome;
    try {
      if (!secrets.refreshToken) {
        await end();
        return loginRequired('no-refresh-token', user, cookie.sid);
      }
      tokens = await this.idp.refresh(secrets.refreshToken);
      outcome = await this.identities.resolve(tokens, secrets, cookie.sub);
    } catch (error) {
      if (!(error instanceof IdpError)) {
        await release().catch(() => undefined);
        throw error;
      }
      if (error.kind === 'rejected' || error.kind === 'bad-response') {
        await end();
        return loginRequired(error.kind === 'rejected' ? `refresh-rejected:${error.oauthError ?? 'unknown'}` : 'refresh-response-invalid', user, cookie.sid);
      }
      await release();
      return { ok: false, kind: 'idp', reason: error.kind, result: this.idpFailure(ctx, 'refresh', error, [], user) };
    }
    // The IdP may have rotated the refresh token: from here on only the new one is good.
    const next: SessionSecrets = {
      refreshToken: tokens.refreshToken ?? secrets.refreshToken,
      idToken: tokens.idToken ?? secrets.idToken,
      claims: outcome.ok ? outcome.claims : secrets.claims,
      groupsClaimSeen: outcome.ok ? outcome.groupsClaimSeen || secrets.groupsClaimSeen : secrets.groupsClaimSeen,
      groups: outcome.ok ? outcome.groups : secrets.groups,
    };
    const sealedNext = await sealSecrets(next, cookie.sid, cookie.k);
    if (!outcome.ok) {
      if (outcome.denial.status === 502) {
        // The directory failed for now: keep the session (and the new refresh token) for the next try.
        await this.records.replace({ gen: record.gen, lease }, { ...record, lease: NO_LEASE, leaseUntil: 0, sealed: sealedNext });
        return { ok: false, kind: 'idp', reason: outcome.denial.reason, result: this.identityDenied(ctx, 'refresh', outcome, [], cookie.sid) };
      }
      await end();
      return { ok: false, kind: 'denied', reason: outcome.denial.reason, result: this.identityDenied(ctx, 'refresh', outcome, this.clearAll(), cookie.sid) };
    }
    const { identity } = outcome;
    const fullUser = { sub: identity.subject, email: identity.email };
    const decision = evaluateMappingRules(this.config.mappingRules, identity.facts);
    if (!decision.allowed) {
      await end();
      return { ok: false, kind: 'denied', reason: decision.reason, result: this.denied(ctx, decision, identity, fullUser, cookie.sid) };
    }
    const minted = await this.mint(identity, decision, cookie.sid);
    if (!minted.ok) {
      await end();
      return { ok: false, kind: 'denied', reason: 'session-too-large', result: this.tooLarge(ctx, 'refresh', fullUser, decision, minted, this.clearAll()) };
    }
    const gen = record.gen + 1;
    const stored = await this.records.replace(
      { gen: record.gen, lease },
      { ...record, gen, genAt: this.seconds(), lease: NO_LEASE, leaseUntil: 0, sealed: sealedNext },
    );
    // A logout recorded while the IdP answered: the token just minted is never handed
    // out. Every token that is handed out was minted before its sid was found unrevoked,
    // which is what bounds the revocation list's `until` (see logout).
    if (await this.revocations.isRevoked(cookie.sid, this.seconds())) return loginRequired('session-revoked', fullUser, cookie.sid);
    if (!stored) {
      // The record changed under the lease (it outlived leaseSeconds, or the session ended).
      this.logger.log('error', 'A refresh lost its lease on the session record: the session must sign in again.', {
        requestId: ctx.requestId,
        sessionId: cookie.sid,
      });
      return loginRequired('session-record-changed', fullUser, cookie.sid);
    }
    const rotated = tokens.refreshToken !== undefined && tokens.refreshToken !== secrets.refreshToken;
    const cookies = [...this.sessionCookies(minted, refreshExpiresAt - this.seconds()), await this.refreshCookie({ ...cookie, g: gen }, refreshExpiresAt)];
    this.audit(ctx, {
      event: 'refresh',
      outcome: 'success',
      reason: rotated ? 'refreshed-rotated' : 'refreshed',
      status: 200,
      user: fullUser,
      sessionId: cookie.sid,
      ...grantFields(decision),
    });
    return { ok: true, minted, cookies };
  }

  /**
   * Another request of the same browser refreshed this session a moment ago (its cookie is
   * one generation behind): this one gets a session from that refresh's result, without
   * spending the refresh token again, and the current refresh cookie.
   */
  protected async reuseFreshRefresh(
    ctx: RequestContext,
    cookie: RefreshCookie,
    record: SessionRecord,
    secrets: SessionSecrets,
    refreshExpiresAt: number,
  ): Promise<RedeemOutcome> {
    const identity = this.identities.fromStored(cookie.sub, secrets);
    const user = { sub: identity.subject, email: identity.email };
    const decision = evaluateMappingRules(this.config.mappingRules, identity.facts);
    if (!decision.allowed) return { ok: false, kind: 'denied', reason: decision.reason, result: this.denied(ctx, decision, identity, user, cookie.sid) };
    const minted = await this.mint(identity, decision, cookie.sid);
    if (!minted.ok)
      return { ok: false, kind: 'denied', reason: 'session-too-large', result: this.tooLarge(ctx, 'refresh', user, decision, minted, this.clearAll()) };
    if (await this.revocations.isRevoked(cookie.sid, this.seconds())) {
      this.audit(ctx, { event: 'refresh', outcome: 'failure', reason: 'session-revoked', status: 401, user, sessionId: cookie.sid });
      return {
        ok: false,
        kind: 'login-required',
        reason: 'session-revoked',
        result: jsonResponse(401, { error: 'login_required', reason: 'session-revoked', requestId: ctx.requestId }, { cookies: this.clearAll() }),
      };
    }
    const cookies = [
      ...this.sessionCookies(minted, refreshExpiresAt - this.seconds()),
      await this.refreshCookie({ ...cookie, g: record.gen }, refreshExpiresAt),
    ];
    this.audit(ctx, {
      event: 'refresh',
      outcome: 'success',
      reason: 'refreshed-by-concurrent-request',
      status: 200,
      user,
      sessionId: cookie.sid,
      ...grantFields(decision),
    });
    return { ok: true, minted, cookies };
  }

  protected async inlineRefresh(ctx: RequestContext): Promise<ProxyResult> {
    const outcome = await this.redeem(ctx);
    if (!outcome.ok) return outcome.result;
    const body: InlineRefreshResponse = { session: outcome.minted.token, expiresAt: outcome.minted.expiresAt, assertion: outcome.minted.assertion };
    return jsonResponse(200, body, { cookies: outcome.cookies });
  }

  protected async refreshNavigation(ctx: RequestContext): Promise<ProxyResult> {
    const returnTo = checkReturnTo(queryParam(ctx.event, RETURN_TO_PARAM));
    if (!returnTo.ok) return this.badReturnTo(ctx, returnTo.reason);
    const rd = returnTo.path;
    const current = await this.currentSession(ctx);
    const sid = typeof current?.sid === 'string' ? current.sid : undefined;
    if (
      current?.exp &&
      current.exp > this.seconds() + this.config.session.refreshWindowSeconds &&
      sid &&
      !(await this.revocations.isRevoked(sid, this.seconds()))
    ) {
      return redirect(rd);
    }
    const outcome = await this.redeem(ctx);
    if (outcome.ok) return redirect(rd, outcome.cookies);
    if (outcome.kind === 'login-required') return redirect(`${AUTH_PATHS.start}?${RETURN_TO_PARAM}=${encodeURIComponent(rd)}`, this.clearAll());
    return outcome.result;
  }

  /** `GET /oauth2/revocations`: the complete list HAProxy polls (the public listener refuses this path). */
  protected async revocationList(): Promise<ProxyResult> {
    const asOf = this.seconds();
    const body: RevocationList = { revoked: await this.revocations.listRevoked(asOf), asOf };
    return jsonResponse(200, body);
  }
}
