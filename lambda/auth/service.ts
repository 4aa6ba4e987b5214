/**
 * The auth service: routes of the API Gateway REST proxy event to the OIDC login,
 * callback, refresh (navigation and inline), logout, JWKS and health endpoints.
 * Configuration is parsed once per container; an invalid one answers every request
 * with 503 and is logged once.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as client from 'openid-client';
import type { JWTPayload } from 'jose';
import type { Context } from 'aws-lambda';
import { AUTH_PATHS, InlineRefreshResponse, RETURN_TO_PARAM, type RevocationList } from '../../core/session-contract';
import { parseGatewaySecret, SECRET_KINDS, type CookieKeySetSecret, type SigningKeySetSecret } from '../../core/key-material';
import { AuthServiceConfig, AuthServiceConfigError, parseAuthServiceEnvironment, type AuthServiceEnvironment } from '../../core/auth/environment';
import { evaluateMappingRules, identityFacts, type IdentityFacts, type MappingDenial, type MappingGrant } from '../../core/auth/mapping-rules';
import { checkReturnTo } from '../../core/auth/return-to';
import { AuditEvent, Logger, type LogSink } from '../shared/audit';
import { CachedSecret, SecretReadError, type SecretSource } from '../shared/secrets';
import {
  clearCookie,
  escapeHtml,
  header,
  htmlPage,
  jsonResponse,
  ProxyEvent,
  ProxyResult,
  queryParam,
  queryString,
  redirect,
  requestCookies,
  setCookie,
} from '../shared/http';
import { CookieSealer, KeysNotReadyError, SessionSigner, type MintedSession } from './keys';
import { IdpClient, IdpError, type IdpTokens } from './oidc';
import { DynamoDbRevocationStore, InMemoryRevocationStore, logoutRevocations, RevocationStoreError, type SessionRevocationStore } from './revocations';

export interface AuthServiceDependencies {
  /** Where secrets come from: Secrets Manager in Lambda, a JSON file or map locally. */
  readonly secretSource: SecretSource;
  /** Where log and audit lines go. @default stdout */
  readonly logSink?: LogSink;
  /** Fetch for IdP calls (a test CA, a proxy). @default global fetch */
  readonly idpFetch?: client.CustomFetch;
  /** Clock, epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /**
   * Where revoked sessions are kept.
   * @default - the DynamoDB table LG_REVOCATION_TABLE_NAME names, else this process's memory
   */
  readonly revocationStore?: SessionRevocationStore;
}

export interface AuthService {
  handle(event: ProxyEvent, context?: Partial<Context>): Promise<ProxyResult>;
}

/** process.env, or a typed AuthServiceEnvironment. */
type Env = AuthServiceEnvironment | Readonly<Record<string, string | undefined>>;

/** Builds the service from its environment; never throws (an invalid configuration answers 503). */
export function createAuthService(env: Env, deps: AuthServiceDependencies): AuthService {
  const logger = new Logger(deps.logSink);
  let config: AuthServiceConfig;
  try {
    config = parseAuthServiceEnvironment(env as Readonly<Record<string, string | undefined>>);
  } catch (error) {
    const problems = error instanceof AuthServiceConfigError ? error.problems : [(error as Error).message];
    logger.log('error', 'The auth service configuration is invalid: every request is answered with 503 until it is fixed.', { problems });
    return new MisconfiguredAuthService(logger);
  }
  return new ConfiguredAuthService(config, deps, logger);
}

const ROUTES: readonly string[] = Object.values(AUTH_PATHS);

/**
 * The service route of an event, with or without a stage or base-path prefix: from the
 * `{proxy+}` resource and its parameter, a literal resource, the path, or the stage path.
 */
export function resolveRoute(event: Pick<ProxyEvent, 'path' | 'resource' | 'pathParameters' | 'requestContext'>): string | undefined {
  const candidates: string[] = [];
  const proxy = event.pathParameters?.proxy;
  if (event.resource?.includes('{proxy+}') && proxy !== undefined) candidates.push(event.resource.replace('{proxy+}', proxy));
  if (event.resource && !event.resource.includes('{')) candidates.push(event.resource);
  if (event.path) candidates.push(event.path);
  if (event.requestContext?.path) candidates.push(event.requestContext.path);
  for (const candidate of candidates) {
    const trimmed = candidate.length > 1 ? candidate.replace(/\/+$/, '') : candidate;
    const route = ROUTES.find((r) => trimmed === r || trimmed.endsWith(r));
    if (route) return route;
  }
  return undefined;
}

interface RequestContext {
  readonly event: ProxyEvent;
  readonly route: string;
  readonly requestId: string;
  readonly browser: boolean;
  readonly sourceIp?: string;
}

const REQUEST_ID = /^[A-Za-z0-9._:@+=-]{1,128}$/;

function requestContext(event: ProxyEvent, context: Partial<Context> | undefined, route: string | undefined): RequestContext {
  const fromHeader = header(event, 'x-request-id');
  const requestId = fromHeader && REQUEST_ID.test(fromHeader) ? fromHeader : (event.requestContext?.requestId ?? context?.awsRequestId ?? randomUUID());
  const accept = header(event, 'accept') ?? '';
  const browser = route !== AUTH_PATHS.session && (header(event, 'sec-fetch-mode') === 'navigate' || accept.includes('text/html'));
  const forwarded = header(event, 'x-forwarded-for')?.split(',')[0]?.trim();
  return { event, route: route ?? event.path ?? '', requestId, browser, sourceIp: forwarded || event.requestContext?.identity?.sourceIp || undefined };
}

function errorAnswer(
  ctx: RequestContext,
  status: number,
  code: string,
  reason: string,
  message: string,
  cookies: readonly string[] = [],
  extraHtml = '',
): ProxyResult {
  if (ctx.browser) {
    const title = status === 403 ? 'Access denied' : status >= 500 ? 'Sign-in is unavailable' : 'Sign-in failed';
    return htmlPage(status, title, message, `${extraHtml}<p><small>Reason: ${escapeHtml(reason)}. Request id: ${escapeHtml(ctx.requestId)}</small></p>`, {
      cookies,
    });
  }
  return jsonResponse(status, { error: code, reason, message, requestId: ctx.requestId }, { cookies });
}

class MisconfiguredAuthService implements AuthService {
  constructor(private readonly logger: Logger) {}

  async handle(event: ProxyEvent, context?: Partial<Context>): Promise<ProxyResult> {
    const ctx = requestContext(event, context, resolveRoute(event));
    this.logger.audit({ event: 'error', outcome: 'failure', reason: 'configuration-invalid', requestId: ctx.requestId, route: ctx.route, status: 503 });
    return errorAnswer(
      ctx,
      503,
      'service_misconfigured',
      'configuration-invalid',
      'The sign-in service configuration is invalid. The operator can find the reason in the auth service log.',
    );
  }
}

interface LoginState {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  readonly rd: string;
}

interface RefreshState {
  readonly rt: string;
  readonly sid: string;
  readonly sub: string;
}

interface UserIdentity {
  readonly subject: string;
  /** Only an address the IdP vouches for (see identityFacts). */
  readonly email?: string;
  readonly name?: string;
  readonly facts: IdentityFacts;
  /** The IdP sent an address it does not vouch for, which was left out. */
  readonly unverifiedEmail: boolean;
}

/**
 * Largest `name=value` a browser keeps for one cookie (RFC 6265 section 6.1 asks for at
 * least 4096 bytes; Chrome and Firefox cap name plus value there and drop larger ones).
 */
const BROWSER_COOKIE_BYTES = 4096;

type Minted =
  | { readonly ok: true; readonly token: string; readonly assertion: string; readonly expiresAt: number }
  | { readonly ok: false; readonly bytes: number; readonly limit: number };

class ConfiguredAuthService implements AuthService {
  private readonly signer: SessionSigner;
  private readonly sealer: CookieSealer;
  private readonly idp: IdpClient;
  private readonly clientSecret: CachedSecret<string>;
  private readonly revocations: SessionRevocationStore;
  private readonly now: () => number;

  constructor(
    private readonly config: AuthServiceConfig,
    deps: AuthServiceDependencies,
    private readonly logger: Logger,
  ) {
    this.now = deps.now ?? Date.now;
    const cacheOptions = { maxAgeMs: config.secretsCacheSeconds * 1000, rereadIntervalMs: config.unknownKidRereadSeconds * 1000, now: this.now };
    const signingKeys = new CachedSecret<SigningKeySetSecret>(
      deps.secretSource,
      config.signingKeysSecretId,
      (s) => parseGatewaySecret(s, SECRET_KINDS.signingKeys, config.signingKeysSecretId),
      cacheOptions,
    );
    const cookieKeys = new CachedSecret<CookieKeySetSecret>(
      deps.secretSource,
      config.cookieKeysSecretId,
      (s) => parseGatewaySecret(s, SECRET_KINDS.cookieKeys, config.cookieKeysSecretId),
      cacheOptions,
    );
    this.clientSecret = new CachedSecret<string>(deps.secretSource, config.idp.clientSecretId, parseClientSecret, cacheOptions);
    this.revocations = deps.revocationStore ?? this.defaultRevocationStore();
    this.signer = new SessionSigner(signingKeys);
    this.sealer = new CookieSealer(cookieKeys, config.clockSkewSeconds);
    this.idp = new IdpClient({
      issuer: config.idp.issuer,
      clientId: config.idp.clientId,
      clientSecret: () => this.clientSecret.get(),
      redirectUri: config.redirectUri,
      timeoutMs: config.idp.timeoutMs,
      clockSkewSeconds: config.clockSkewSeconds,
      fetch: deps.idpFetch,
    });
  }

  private defaultRevocationStore(): SessionRevocationStore {
    if (this.config.revocationTableName) return new DynamoDbRevocationStore(this.config.revocationTableName);
    this.logger.log(
      'info',
      'LG_REVOCATION_TABLE_NAME is not set: revoked sessions are kept in this process only (fine for one local process, not for Lambda).',
    );
    return new InMemoryRevocationStore();
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  async handle(event: ProxyEvent, context?: Partial<Context>): Promise<ProxyResult> {
    const route = resolveRoute(event);
    const ctx = requestContext(event, context, route);
    try {
      return await this.dispatch(ctx, route, (event.httpMethod ?? 'GET').toUpperCase());
    } catch (error) {
      return this.unexpected(ctx, error);
    }
  }

  private dispatch(ctx: RequestContext, route: string | undefined, method: string): Promise<ProxyResult> | ProxyResult {
    const gate = (methods: string[], run: () => Promise<ProxyResult> | ProxyResult): Promise<ProxyResult> | ProxyResult => {
      if (methods.includes(method)) return run();
      const refused = errorAnswer(ctx, 405, 'method_not_allowed', 'method-not-allowed', `${route} does not accept ${method}; use ${methods.join(' or ')}.`);
      return { ...refused, headers: { ...refused.headers, Allow: methods.join(', ') } };
    };
    switch (route) {
      case AUTH_PATHS.health:
        return gate(['GET', 'HEAD'], () => jsonResponse(200, { status: 'ok' }));
      case AUTH_PATHS.jwks:
        return gate(['GET', 'HEAD'], () => this.jwks(ctx));
      case AUTH_PATHS.start:
        return gate(['GET', 'HEAD'], () => this.start(ctx));
      case AUTH_PATHS.callback:
        return gate(['GET'], () => this.callback(ctx));
      case AUTH_PATHS.refresh:
        return gate(['GET'], () => this.refreshNavigation(ctx));
      case AUTH_PATHS.session:
        return gate(['POST'], () => this.inlineRefresh(ctx));
      case AUTH_PATHS.logout:
        return gate(['GET', 'POST'], () => (method === 'POST' ? this.logout(ctx) : this.logoutPage(ctx)));
      case AUTH_PATHS.revocations:
        return gate(['GET', 'HEAD'], () => this.revocationList());
      default:
        return errorAnswer(ctx, 404, 'not_found', 'unknown-route', `There is no sign-in endpoint at ${ctx.event.path ?? '?'}.`);
    }
  }

  private audit(ctx: RequestContext, event: Omit<AuditEvent, 'requestId' | 'route' | 'sourceIp'>): void {
    this.logger.audit({ ...event, requestId: ctx.requestId, route: ctx.route, sourceIp: ctx.sourceIp });
  }

  private unexpected(ctx: RequestContext, error: unknown): ProxyResult {
    if (error instanceof IdpError) return this.idpFailure(ctx, 'error', error, []);
    if (error instanceof KeysNotReadyError) {
      this.logger.log('error', error.message, { requestId: ctx.requestId });
      this.audit(ctx, { event: 'error', outcome: 'failure', reason: 'keys-not-ready', status: 503 });
      return errorAnswer(ctx, 503, 'keys_not_ready', 'keys-not-ready', 'The sign-in keys are not provisioned yet. Try again in a few minutes.');
    }
    if (error instanceof RevocationStoreError) {
      this.logger.log('error', error.message, { requestId: ctx.requestId });
      this.audit(ctx, { event: 'error', outcome: 'failure', reason: 'revocation-store-unavailable', status: 503 });
      return errorAnswer(
        ctx,
        503,
        'temporarily_unavailable',
        'revocation-store-unavailable',
        'The sign-in service cannot check signed-out sessions right now. Try again in a moment.',
      );
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

  private idpFailure(ctx: RequestContext, event: AuditEvent['event'], error: IdpError, cookies: readonly string[], user?: AuditEvent['user']): ProxyResult {
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

  // ---- cookies ---------------------------------------------------------------------

  private clearAll(): string[] {
    const { session, refresh, login, assertion } = this.config.cookies;
    return [clearCookie(session), clearCookie(refresh), clearCookie(login), clearCookie(assertion)];
  }

  /**
   * The session cookie and the assertion cookie, with one lifetime. They outlive the
   * tokens: HAProxy needs the session (expired) with the refresh cookie to refresh inline.
   */
  private sessionCookies(minted: { token: string; assertion: string }, maxAgeSeconds: number): string[] {
    return [
      setCookie(this.config.cookies.session, minted.token, { maxAgeSeconds }),
      setCookie(this.config.cookies.assertion, minted.assertion, { maxAgeSeconds }),
    ];
  }

  private async refreshCookie(state: RefreshState, expiresAt: number): Promise<string> {
    const sealed = await this.sealer.seal('refresh', { ...state }, expiresAt);
    return setCookie(this.config.cookies.refresh, sealed, { maxAgeSeconds: expiresAt - this.seconds() });
  }

  // ---- session -----------------------------------------------------------------------

  /** The session and its assertion, within the token budget and the browser's cookie size. */
  private async mint(identity: UserIdentity, grant: MappingGrant, sessionId: string): Promise<Minted> {
    const minted: MintedSession = await this.signer.mint(
      {
        issuer: this.config.session.issuer,
        audience: this.config.session.audience,
        sessionId,
        identity,
        grant,
        timing: { now: this.seconds(), ttlSeconds: this.config.session.ttlSeconds },
      },
      this.config.session.maxBytes,
    );
    if (!minted.ok) return { ok: false, bytes: minted.bytes, limit: this.config.session.maxBytes };
    const cookieBytes = Math.max(
      Buffer.byteLength(`${this.config.cookies.session}=${minted.token}`),
      Buffer.byteLength(`${this.config.cookies.assertion}=${minted.assertion}`),
    );
    if (cookieBytes > BROWSER_COOKIE_BYTES) return { ok: false, bytes: cookieBytes, limit: BROWSER_COOKIE_BYTES };
    return minted;
  }

  /** Claims from the ID token, completed from userinfo when the groups claim (or the whole ID token) is missing. */
  private async identityFrom(tokens: IdpTokens, expectedSubject?: string): Promise<UserIdentity> {
    let claims: Record<string, unknown> = { ...(tokens.idTokenClaims ?? {}) };
    const subject = (claims.sub as string | undefined) ?? expectedSubject;
    if (!subject) throw new IdpError('bad-response', 'the IdP returned neither an ID token nor a subject');
    if (expectedSubject && subject !== expectedSubject) throw new IdpError('bad-response', 'the refreshed identity belongs to another subject');
    if (!(this.config.idp.groupsClaim in claims) || !tokens.idTokenClaims) {
      const userinfo = await this.idp.userinfo(tokens.accessToken, subject);
      if (userinfo) claims = { ...claims, ...userinfo };
    }
    const name = typeof claims.name === 'string' ? claims.name : typeof claims.preferred_username === 'string' ? claims.preferred_username : undefined;
    const { unverifiedEmail, ...facts } = identityFacts(claims, {
      groupsClaim: this.config.idp.groupsClaim,
      trustUnverifiedEmail: this.config.idp.trustUnverifiedEmail,
    });
    return { subject, email: facts.email, name, facts, unverifiedEmail };
  }

  // ---- routes ------------------------------------------------------------------------

  private async jwks(ctx: RequestContext): Promise<ProxyResult> {
    try {
      return jsonResponse(200, await this.signer.jwks(), { headers: { 'Cache-Control': 'public, max-age=300', 'Content-Type': 'application/jwk-set+json' } });
    } catch (error) {
      return this.unexpected(ctx, error);
    }
  }

  private async start(ctx: RequestContext): Promise<ProxyResult> {
    const returnTo = checkReturnTo(queryParam(ctx.event, RETURN_TO_PARAM));
    if (!returnTo.ok) return this.badReturnTo(ctx, returnTo.reason);
    const state = client.randomState();
    const nonce = client.randomNonce();
    const verifier = client.randomPKCECodeVerifier();
    let location: string;
    try {
      location = await this.idp.authorizationUrl({
        scope: this.config.idp.scopes.join(' '),
        state,
        nonce,
        codeChallenge: await client.calculatePKCECodeChallenge(verifier),
        extra: this.config.idp.authorizationParams,
      });
    } catch (error) {
      if (error instanceof IdpError) return this.idpFailure(ctx, 'login', error, []);
      throw error;
    }
    const login: LoginState = { state, nonce, verifier, rd: returnTo.path };
    const sealed = await this.sealer.seal('login', { ...login }, this.seconds() + this.config.loginTimeoutSeconds);
    return redirect(location, [setCookie(this.config.cookies.login, sealed, { maxAgeSeconds: this.config.loginTimeoutSeconds })]);
  }

  private async callback(ctx: RequestContext): Promise<ProxyResult> {
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
    let identity: UserIdentity;
    try {
      tokens = await this.idp.exchangeCode(callbackUrl, { state: login.state, nonce: login.nonce, codeVerifier: login.verifier });
      identity = await this.identityFrom(tokens);
    } catch (error) {
      if (!(error instanceof IdpError)) throw error;
      if (error.kind === 'rejected')
        return refuse(400, `code-rejected:${error.oauthError ?? 'unknown'}`, 'The identity provider refused the sign-in code (used twice or expired).');
      if (error.kind === 'bad-response') return refuse(400, 'id-token-rejected', `The identity provider's answer failed validation: ${error.message}.`);
      return this.idpFailure(ctx, 'login', error, [clearLogin]);
    }
    const user = { sub: identity.subject, email: identity.email };
    const decision = evaluateMappingRules(this.config.mappingRules, identity.facts);
    if (!decision.allowed) return this.denied(ctx, decision, identity, user);
    const sessionId = randomBytes(16).toString('base64url');
    const minted = await this.mint(identity, decision, sessionId);
    if (!minted.ok) return this.tooLarge(ctx, 'login', user, decision, minted, this.clearAll());
    const canRefresh = tokens.refreshToken !== undefined;
    const cookies = [...this.sessionCookies(minted, canRefresh ? this.config.refreshCookieMaxAgeSeconds : this.config.session.ttlSeconds), clearLogin];
    if (tokens.refreshToken) {
      cookies.push(
        await this.refreshCookie({ rt: tokens.refreshToken, sid: sessionId, sub: identity.subject }, this.seconds() + this.config.refreshCookieMaxAgeSeconds),
      );
    } else {
      cookies.push(clearCookie(this.config.cookies.refresh));
    }
    this.audit(ctx, { event: 'login', outcome: 'success', reason: 'authenticated', status: 302, user, sessionId, ...grantFields(decision) });
    // rd was checked at start and sealed in the login cookie; the target is checked again as sent.
    const returnTo = checkReturnTo(login.rd);
    return redirect(returnTo.ok ? returnTo.path : '/', cookies);
  }

  /** 403 for a user no rule admits; says so when an unverified address kept e-mail rules from applying. */
  private denied(ctx: RequestContext, decision: MappingDenial, identity: UserIdentity, user: AuditEvent['user']): ProxyResult {
    const detail = identity.unverifiedEmail
      ? `${decision.detail} The identity provider did not mark the e-mail address as verified, so rules on the e-mail address did not apply.`
      : decision.detail;
    this.audit(ctx, { event: 'deny', outcome: 'denied', reason: decision.reason, status: 403, user, matchedRules: decision.matchedRules, detail });
    return errorAnswer(ctx, 403, 'access_denied', decision.reason, `${detail} Ask your administrator for access to Looker.`, this.clearAll());
  }

  private tooLarge(
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

  /** Redeems the refresh cookie; shared by the inline and navigation refresh. */
  private async redeem(
    ctx: RequestContext,
  ): Promise<
    | { ok: true; minted: { token: string; assertion: string; expiresAt: number }; cookies: string[] }
    | { ok: false; kind: 'login-required' | 'denied' | 'idp'; result: ProxyResult; reason: string }
  > {
    const loginRequired = (reason: string, user?: AuditEvent['user'], sessionId?: string) => {
      this.audit(ctx, { event: 'refresh', outcome: 'failure', reason, status: 401, user, sessionId });
      return {
        ok: false as const,
        kind: 'login-required' as const,
        reason,
        result: jsonResponse(401, { error: 'login_required', reason, requestId: ctx.requestId }, { cookies: this.clearAll() }),
      };
    };
    const sealed = requestCookies(ctx.event).get(this.config.cookies.refresh);
    if (!sealed) return loginRequired('refresh-cookie-missing');
    const opened = await this.sealer.open<RefreshState>('refresh', sealed);
    if (!opened.ok) return loginRequired(`refresh-cookie-${opened.reason}`);
    const state = opened.payload;
    const user = { sub: state.sub };
    // Signed out: the refresh cookie of an ended session never mints again (checked
    // before spending the refresh token, and again after minting, below).
    if (await this.revocations.isRevoked(state.sid, this.seconds())) return loginRequired('session-revoked', user, state.sid);
    let tokens: IdpTokens;
    let identity: UserIdentity;
    try {
      tokens = await this.idp.refresh(state.rt);
      identity = await this.identityFrom(tokens, state.sub);
    } catch (error) {
      if (!(error instanceof IdpError)) throw error;
      if (error.kind === 'rejected') return loginRequired(`refresh-rejected:${error.oauthError ?? 'unknown'}`, user);
      if (error.kind === 'bad-response') return loginRequired('refresh-response-invalid', user);
      return { ok: false, kind: 'idp', reason: error.kind, result: this.idpFailure(ctx, 'refresh', error, [], user) };
    }
    const fullUser = { sub: identity.subject, email: identity.email };
    const decision = evaluateMappingRules(this.config.mappingRules, identity.facts);
    if (!decision.allowed) return { ok: false, kind: 'denied', reason: decision.reason, result: this.denied(ctx, decision, identity, fullUser) };
    const minted = await this.mint(identity, decision, state.sid);
    if (!minted.ok)
      return { ok: false, kind: 'denied', reason: 'session-too-large', result: this.tooLarge(ctx, 'refresh', fullUser, decision, minted, this.clearAll()) };
    // A logout recorded while the IdP answered: the token just minted is never handed
    // out. Every token that is handed out was minted before its sid was found unrevoked,
    // which is what bounds the revocation list's `until` (see logout).
    if (await this.revocations.isRevoked(state.sid, this.seconds())) return loginRequired('session-revoked', fullUser, state.sid);
    const refreshExpiresAt = opened.payload.exp ?? this.seconds();
    const cookies = this.sessionCookies(minted, refreshExpiresAt - this.seconds());
    const rotated = tokens.refreshToken !== undefined && tokens.refreshToken !== state.rt;
    if (rotated || opened.kid !== opened.currentKid) {
      cookies.push(await this.refreshCookie({ rt: tokens.refreshToken ?? state.rt, sid: state.sid, sub: state.sub }, refreshExpiresAt));
    }
    this.audit(ctx, {
      event: 'refresh',
      outcome: 'success',
      reason: rotated ? 'refreshed-rotated' : 'refreshed',
      status: 200,
      user: fullUser,
      sessionId: state.sid,
      ...grantFields(decision),
    });
    return { ok: true, minted, cookies };
  }

  private async inlineRefresh(ctx: RequestContext): Promise<ProxyResult> {
    const outcome = await this.redeem(ctx);
    if (!outcome.ok) return outcome.result;
    const body: InlineRefreshResponse = { session: outcome.minted.token, expiresAt: outcome.minted.expiresAt, assertion: outcome.minted.assertion };
    return jsonResponse(200, body, { cookies: outcome.cookies });
  }

  private badReturnTo(ctx: RequestContext, reason: string): ProxyResult {
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

  /** The session token of the request when this service signed it and it is current (typ, iss, aud, exp checked). */
  private async currentSession(ctx: RequestContext): Promise<JWTPayload | undefined> {
    const token = requestCookies(ctx.event).get(this.config.cookies.session);
    if (!token) return undefined;
    return this.signer.verify(token, this.config.session.issuer, this.config.session.audience, this.config.clockSkewSeconds);
  }

  private async refreshNavigation(ctx: RequestContext): Promise<ProxyResult> {
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
  private async revocationList(): Promise<ProxyResult> {
    const asOf = this.seconds();
    const body: RevocationList = { revoked: await this.revocations.listRevoked(asOf), asOf };
    return jsonResponse(200, body);
  }

  private logoutPage(ctx: RequestContext): ProxyResult {
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

  private sameOrigin(ctx: RequestContext): boolean {
    const site = header(ctx.event, 'sec-fetch-site');
    if (site !== undefined) return site === 'same-origin';
    const origin = header(ctx.event, 'origin');
    return origin !== undefined && origin === this.config.publicBaseUrl;
  }

  private async logout(ctx: RequestContext): Promise<ProxyResult> {
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
    const opened = sealedRefresh ? await this.sealer.open<RefreshState>('refresh', sealedRefresh) : undefined;
    const refresh = opened?.ok ? opened.payload : undefined;
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
    let location = this.config.postLogoutRedirectUrl;
    let reason = 'local-only';
    let idpRevocation = 'no refresh token';
    try {
      if (refresh) {
        const revoked = await this.idp.revoke(refresh.rt).catch(() => undefined);
        idpRevocation = revoked === undefined ? 'failed' : revoked ? 'done' : 'not offered by the IdP';
      }
      const endSession = await this.idp.endSessionUrl(this.config.postLogoutRedirectUrl);
      if (endSession) {
        location = endSession;
        reason = 'idp-end-session';
      }
    } catch (error) {
      this.logger.log('warn', 'Logout could not reach the IdP; the session is revoked and the cookies cleared anyway.', {
        requestId: ctx.requestId,
        error: (error as Error).message,
      });
    }
    const detail = `revoked ${revocations.length} session id(s) until ${revocations.map((r) => r.listUntil).join(', ') || '-'}; refresh token revocation at the IdP: ${idpRevocation}`;
    this.audit(ctx, { event: 'logout', outcome: 'success', reason, status: 303, user, sessionId, detail });
    return redirect(location, this.clearAll(), 303);
  }
}

function grantFields(grant: MappingGrant): Pick<AuditEvent, 'matchedRules' | 'roles' | 'groups' | 'attributes'> {
  return { matchedRules: grant.matchedRules, roles: grant.roles, groups: grant.groups, attributes: grant.attributes };
}

/** The client secret: plain text, or JSON with `clientSecret` (or `client_secret`). */
export function parseClientSecret(secretString: string): string {
  const trimmed = secretString.trim();
  if (trimmed.startsWith('{')) {
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw new Error('The IdP client secret looks like JSON but does not parse: store the secret as plain text or {"clientSecret": "..."}.');
    }
    const secret = value.clientSecret ?? value.client_secret;
    if (typeof secret !== 'string' || secret === '')
      throw new Error('The IdP client secret JSON has no "clientSecret" string: store {"clientSecret": "..."} or the plain secret.');
    return secret;
  }
  if (!trimmed) throw new Error('The IdP client secret is empty.');
  return trimmed;
}
