/**
 * The answers the routes share for what went wrong: an unexpected failure (503 with the
 * reason), the IdP failing, a user the IdP signed in whose groups, tenant or rules deny the
 * session, a session too large for the browser, and a bad return address.
 */
import { AUTH_PATHS } from '../../core/session-contract';
import { type MappingDenial, type MappingGrant } from '../../core/auth/mapping-rules';
import { AuthorizationCodeStoreError } from './authorization-codes';
import { AuditEvent } from '../shared/audit';
import { SecretReadError } from '../shared/secrets';
import { ProxyResult } from '../shared/http';
import { type IdentityOutcome, type UserIdentity } from './identity';
import { KeysNotReadyError } from './keys';
import { IdpError } from './oidc';
import { RevocationStoreError } from './revocations';
import { SessionStoreError } from './session-store';
import { AuthServiceBase } from './service-base';
import { errorAnswer, grantFields, RequestContext } from './service-request';

export abstract class AuthServiceResponses extends AuthServiceBase {
  protected unexpected(ctx: RequestContext, error: unknown): ProxyResult {
    if (error instanceof IdpError) return this.idpFailure(ctx, 'error', error, []);
    if (error instanceof KeysNotReadyError) {
      this.logger.log('error', error.message, { requestId: ctx.requestId });
      this.audit(ctx, { event: 'error', outcome: 'failure', reason: 'keys-not-ready', status: 503 });
      return errorAnswer(ctx, 503, 'keys_not_ready', 'keys-not-ready', 'The sign-in keys are not provisioned yet. Try again in a few minutes.');
    }
    if (error instanceof RevocationStoreError || error instanceof SessionStoreError || error instanceof AuthorizationCodeStoreError) {
      const reason =
        error instanceof RevocationStoreError
          ? 'revocation-store-unavailable'
          : error instanceof SessionStoreError
            ? 'session-store-unavailable'
            : 'code-store-unavailable';
      this.logger.log('error', error.message, { requestId: ctx.requestId });
      this.audit(ctx, { event: 'error', outcome: 'failure', reason, status: 503 });
      return errorAnswer(ctx, 503, 'temporarily_unavailable', reason, 'The sign-in service cannot reach its session store right now. Try again in a moment.');
    }
    if (error instanceof SecretReadError) {
      this.logger.log('error', error.message, { requestId: ctx.requestId });
      this.audit(ctx, { event: 'error', outcome: 'failure', reason: 'secrets-unavailable', status: 503 });
      return errorAnswer(
        ctx,
        503,
        'temporarily_unavailable',
        'secrets-unavailable',
        'The sign-in service cannot read its keys right now. Try again in a moment.',
      );
    }
    this.logger.log('error', 'Unexpected failure while answering a request.', { requestId: ctx.requestId, error: (error as Error)?.message ?? String(error) });
    this.audit(ctx, { event: 'error', outcome: 'failure', reason: 'internal-error', status: 503 });
    return errorAnswer(
      ctx,
      503,
      'temporarily_unavailable',
      'internal-error',
      'The sign-in service could not answer this request. Try again; if it keeps failing, give the request id to your administrator.',
    );
  }

  protected idpFailure(ctx: RequestContext, event: AuditEvent['event'], error: IdpError, cookies: readonly string[], user?: AuditEvent['user']): ProxyResult {
    if (error.kind === 'client-auth') {
      // The operator's problem, not the user's: a client secret or key that the IdP no longer takes.
      this.audit(ctx, {
        event,
        outcome: 'failure',
        reason: 'idp-client-auth-failed',
        status: 502,
        user,
        detail: `${error.message}; check the client secret (or key) in Secrets Manager against the one registered at the IdP, and tokenEndpointAuthMethod`,
      });
      return errorAnswer(
        ctx,
        502,
        'idp_unavailable',
        'idp-client-auth-failed',
        "The identity provider did not accept the sign-in service's own credentials. Your administrator has to fix this; try again later.",
        cookies,
      );
    }
    const status = error.kind === 'timeout' ? 504 : 502;
    const reason = error.kind === 'timeout' ? 'idp-timeout' : error.kind === 'unreachable' ? 'idp-unreachable' : 'idp-bad-response';
    this.audit(ctx, { event, outcome: 'failure', reason, status, user, detail: error.message });
    return errorAnswer(
      ctx,
      status,
      status === 504 ? 'idp_timeout' : 'idp_unavailable',
      reason,
      `The identity provider could not complete the sign-in: ${error.message}. Try again in a moment.`,
      cookies,
    );
  }

  /** A user the IdP signed in whose groups or tenant rule the session out. */
  protected identityDenied(
    ctx: RequestContext,
    event: AuditEvent['event'],
    outcome: Extract<IdentityOutcome, { ok: false }>,
    cookies: readonly string[],
    sessionId?: string,
  ): ProxyResult {
    const { denial } = outcome;
    this.audit(ctx, {
      event: denial.status === 403 ? 'deny' : event,
      outcome: denial.status === 403 ? 'denied' : 'failure',
      reason: denial.reason,
      status: denial.status,
      user: { sub: outcome.subject },
      sessionId,
      detail: denial.detail,
    });
    return errorAnswer(ctx, denial.status, denial.status === 403 ? 'access_denied' : 'groups_unavailable', denial.reason, denial.message, cookies);
  }

  /** 403 for a user no rule admits; says so when an unverified address kept e-mail rules from applying. */
  protected denied(ctx: RequestContext, decision: MappingDenial, identity: UserIdentity, user: AuditEvent['user'], sessionId?: string): ProxyResult {
    const detail = identity.unverifiedEmail
      ? `${decision.detail} The identity provider did not mark the e-mail address as verified, so rules on the e-mail address did not apply.`
      : decision.detail;
    this.audit(ctx, { event: 'deny', outcome: 'denied', reason: decision.reason, status: 403, user, sessionId, matchedRules: decision.matchedRules, detail });
    return errorAnswer(ctx, 403, 'access_denied', decision.reason, `${detail} Ask your administrator for access to Looker.`, this.clearAll());
  }

  protected tooLarge(
    ctx: RequestContext,
    event: AuditEvent['event'],
    user: AuditEvent['user'],
    grant: MappingGrant,
    size: { bytes: number; limit: number },
    cookies: readonly string[],
  ): ProxyResult {
    this.audit(ctx, {
      event: 'deny',
      outcome: 'denied',
      reason: 'session-too-large',
      status: 403,
      user,
      ...grantFields(grant),
      detail: `${event}: the session (or its assertion) would be ${size.bytes} bytes, over the budget of ${size.limit}`,
    });
    return errorAnswer(
      ctx,
      403,
      'session_too_large',
      'session-too-large',
      'Your account maps to more Looker groups, roles and attributes than fit in a session. Ask your administrator to narrow the access rules.',
      cookies,
    );
  }

  protected badReturnTo(ctx: RequestContext, reason: string): ProxyResult {
    this.audit(ctx, { event: 'error', outcome: 'failure', reason: 'bad-return-to', status: 400, detail: reason });
    return errorAnswer(
      ctx,
      400,
      'invalid_request',
      'bad-return-to',
      `The return address is not accepted: ${reason}. Only a path on this site can be returned to.`,
      [],
      `<p><a href="${AUTH_PATHS.start}">Sign in and go to the home page</a></p>`,
    );
  }
}
