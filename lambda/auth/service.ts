/**
 * The auth service: routes of the API Gateway REST proxy event to the OIDC login,
 * callback, refresh (navigation and inline), logout, JWKS and health endpoints.
 * Configuration is parsed once per container; an invalid one answers every request
 * with 503 and is logged once.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import * as client from 'openid-client';
import type { JWTPayload } from 'jose';
import type { Context } from 'aws-lambda';
import { AUTH_PATHS, InlineRefreshResponse, RETURN_TO_PARAM, type RevocationList } from '../../core/session-contract';
import { parseGatewaySecret, SECRET_KINDS, type CookieKeySetSecret, type SigningKeySetSecret } from '../../core/key-material';
import { AuthServiceConfig, AuthServiceConfigError, parseAuthServiceEnvironment, type AuthServiceEnvironment } from '../../core/auth/environment';
import { evaluateMappingRules, type MappingDenial, type MappingGrant } from '../../core/auth/mapping-rules';
import { checkReturnTo } from '../../core/auth/return-to';
import { LOOKER_BROKER_DISCOVERY_PATHS, LOOKER_BROKER_PATHS } from '../../core/auth/looker-broker';
import {
  AuthorizationCodeStoreError,
  DynamoDbAuthorizationCodeStore,
  InMemoryAuthorizationCodeStore,
  type AuthorizationCodeStore,
} from './authorization-codes';
import { LookerBroker, type BrokerRequest } from './looker-broker';
import { parseClientSecret } from './idp-credentials';
import { AuditEvent, Logger, type LogSink } from '../shared/audit';
import { CachedSecret, SecretReadError, type ReadinessOptions, type SecretSource } from '../shared/secrets';
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
import { GoogleDirectoryGroups, MicrosoftGraphGroups, type FetchLike, type GroupSource } from './group-sources';
import { IdentityResolver, type IdentityOutcome, type UserIdentity } from './identity';
import { IdpClientCredentials } from './idp-credentials';
import { CookieSealer, KeysNotReadyError, SessionSigner, type MintedSession } from './keys';
import { IdpClient, IdpError, type IdpTokens } from './oidc';
import { DynamoDbRevocationStore, InMemoryRevocationStore, logoutRevocations, RevocationStoreError, type SessionRevocationStore } from './revocations';
import {
  DynamoDbSessionRecordStore,
  InMemorySessionRecordStore,
  newLease,
  newSessionKey,
  NO_LEASE,
  openSecrets,
  sealSecrets,
  SessionStoreError,
  type SessionRecord,
  type SessionRecordStore,
  type SessionSecrets,
} from './session-store';

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
  /**
   * Where the sessions' server-side records (refresh token, ID token, group-source results, encrypted) are kept.
   * @default - the DynamoDB table LG_REVOCATION_TABLE_NAME names, else this process's memory
   */
  readonly sessionStore?: SessionRecordStore;
  /** Waits between reads of a key set that has no keys yet. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Where the broker's authorization codes are kept (broker mode).
   * @default - the DynamoDB table LG_REVOCATION_TABLE_NAME names, else this process's memory
   */
  readonly authorizationCodeStore?: AuthorizationCodeStore;
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

const ROUTES: readonly string[] = [...Object.values(AUTH_PATHS), ...Object.values(LOOKER_BROKER_PATHS), ...LOOKER_BROKER_DISCOVERY_PATHS];

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

/**
 * The refresh cookie: which session, whose, the key that opens the session's server-side
 * record (256 bits, this cookie is its only copy), and the record generation it was issued
 * for (a refresh that redeemed the refresh token moves the record on).
 */
interface RefreshCookie {
  readonly sid: string;
  readonly sub: string;
  readonly k: string;
  readonly g: number;
}

function isRefreshCookie(value: Record<string, unknown>): value is Record<string, unknown> & RefreshCookie {
  return typeof value.sid === 'string' && typeof value.sub === 'string' && typeof value.k === 'string' && Number.isSafeInteger(value.g);
}

/**
 * Largest `name=value` a browser keeps for one cookie (RFC 6265 section 6.1 asks for at
 * least 4096 bytes; Chrome and Firefox cap name plus value there and drop larger ones).
 */
const BROWSER_COOKIE_BYTES = 4096;
/**
 * A refresh cookie one generation old is answered with the result of the refresh that
 * superseded it for this long: the browser's other requests still carry it until the
 * first answer lands (HAProxy instances do not share their single flight).
 */
const SUPERSEDED_GRACE_SECONDS = 10;
/** How long a refresh waits for another request's refresh of the same session (HAProxy gives up on the inline refresh after 3 s by default). */
const CONCURRENT_REFRESH_WAIT_MS = 2500;
const CONCURRENT_REFRESH_POLL_MS = 50;

type Minted =
  | { readonly ok: true; readonly token: string; readonly assertion: string; readonly expiresAt: number }
  | { readonly ok: false; readonly bytes: number; readonly limit: number };

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

class ConfiguredAuthService implements AuthService {
  private readonly signer: SessionSigner;
  private readonly sealer: CookieSealer;
  private readonly idp: IdpClient;
  private readonly identities: IdentityResolver;
  private readonly revocations: SessionRevocationStore;
  private readonly records: SessionRecordStore;
  private readonly now: () => number;
  /** How long one refresh may hold a session's lease: every IdP and group-source call it makes, with margin. */
  private readonly leaseSeconds: number;

  constructor(
    private readonly config: AuthServiceConfig,
    deps: AuthServiceDependencies,
    private readonly logger: Logger,
  ) {
    this.now = deps.now ?? Date.now;
    const cacheOptions = { maxAgeMs: config.secretsCacheSeconds * 1000, rereadIntervalMs: config.unknownKidRereadSeconds * 1000, now: this.now };
    // Key sets at their seed are waited for (bounded) and never cached: see firstKeysReadiness.
    const keySetOptions = { ...cacheOptions, readiness: firstKeysReadiness(config.firstKeysWaitSeconds, logger), sleep: deps.sleep };
    const signingKeys = new CachedSecret<SigningKeySetSecret>(
      deps.secretSource,
      config.signingKeysSecretId,
      (s) => parseGatewaySecret(s, SECRET_KINDS.signingKeys, config.signingKeysSecretId),
      keySetOptions,
    );
    const cookieKeys = new CachedSecret<CookieKeySetSecret>(
      deps.secretSource,
      config.cookieKeysSecretId,
      (s) => parseGatewaySecret(s, SECRET_KINDS.cookieKeys, config.cookieKeysSecretId),
      keySetOptions,
    );
    const { settings } = config.idp;
    const credentials = new IdpClientCredentials({
      method: settings.tokenEndpointAuthMethod,
      secretSource: deps.secretSource,
      clientSecretId: config.idp.clientSecretId,
      clientKeySecretId: config.idp.clientKeySecretId,
      assertionAudienceIsTokenEndpoint: settings.profile.provider === 'entra',
      rereadIntervalMs: cacheOptions.rereadIntervalMs,
      now: this.now,
    });
    this.revocations = deps.revocationStore ?? this.defaultRevocationStore();
    this.records = deps.sessionStore ?? this.defaultSessionStore();
    this.signer = new SessionSigner(signingKeys);
    this.sealer = new CookieSealer(cookieKeys, config.clockSkewSeconds);
    this.idp = new IdpClient({
      issuer: config.idp.issuer,
      clientId: config.idp.clientId,
      clientAuth: credentials.clientAuth,
      rereadCredential: () => credentials.rereadAfterRejection(),
      redirectUri: config.redirectUri,
      timeoutMs: config.idp.timeoutMs,
      clockSkewSeconds: config.clockSkewSeconds,
      fetch: deps.idpFetch,
    });
    this.leaseSeconds = Math.ceil((4 * (config.idp.timeoutMs + 250)) / 1000) + 5;
    this.identities = new IdentityResolver(config, this.idp, this.groupSource(deps, cacheOptions.rereadIntervalMs), this.now);
    if (config.lookerBroker) {
      this.broker = new LookerBroker({
        config: config.lookerBroker,
        clockSkewSeconds: config.clockSkewSeconds,
        signer: this.signer,
        codes:
          deps.authorizationCodeStore ??
          (config.revocationTableName ? new DynamoDbAuthorizationCodeStore(config.revocationTableName, this.dynamo()) : new InMemoryAuthorizationCodeStore()),
        revocations: this.revocations,
        clientSecret: new CachedSecret(deps.secretSource, config.lookerBroker.clientSecretId, parseClientSecret, cacheOptions),
        now: this.now,
        attributeNames: [...new Set(config.mappingRules.rules.flatMap((rule) => Object.keys(rule.grant.attributes ?? {})))].sort(),
      });
    }
  }

  /** Broker mode's routes, when it is on. */
  private readonly broker?: LookerBroker;

  private brokerRequest(ctx: RequestContext): BrokerRequest {
    return {
      event: ctx.event,
      requestId: ctx.requestId,
      audit: (event) => this.audit(ctx, event),
      session: async () => {
        const session = await this.currentSession(ctx);
        return session && !(await this.revocations.isRevoked(String(session.sid), this.seconds())) ? session : undefined;
      },
      hasRefreshCookie: () => requestCookies(ctx.event).has(this.config.cookies.refresh),
    };
  }

  /** One DynamoDB client for the table's two item types (revocations and session records). */
  private dynamoClient?: DynamoDBClient;

  private dynamo(): DynamoDBClient {
    this.dynamoClient ??= new DynamoDBClient({ maxAttempts: 3 });
    return this.dynamoClient;
  }

  private defaultRevocationStore(): SessionRevocationStore {
    if (this.config.revocationTableName) return new DynamoDbRevocationStore(this.config.revocationTableName, this.dynamo());
    this.logger.log(
      'info',
      'LG_REVOCATION_TABLE_NAME is not set: revoked sessions and session records are kept in this process only (fine for one local process, not for Lambda).',
    );
    return new InMemoryRevocationStore();
  }

  private defaultSessionStore(): SessionRecordStore {
    return this.config.revocationTableName ? new DynamoDbSessionRecordStore(this.config.revocationTableName, this.dynamo()) : new InMemorySessionRecordStore();
  }

  private groupSource(deps: AuthServiceDependencies, rereadIntervalMs: number): GroupSource | undefined {
    const { settings, timeoutMs, graphBaseUrl, google } = this.config.idp;
    // Looked up at call time: the Lambda's global fetch (a test may replace it), or the one given.
    const fetchFn: FetchLike = (url, init) =>
      deps.idpFetch ? (deps.idpFetch(url, init as Parameters<client.CustomFetch>[1]) as Promise<Response>) : globalThis.fetch(url, init);
    if (settings.groupsSource === 'microsoft-graph')
      return new MicrosoftGraphGroups({ baseUrl: graphBaseUrl, tokens: this.idp, fetch: fetchFn, timeoutMs, now: this.now });
    if (settings.groupsSource === 'google-directory' && google) {
      return new GoogleDirectoryGroups({
        secretSource: deps.secretSource,
        serviceAccountSecretId: google.serviceAccountSecretId,
        adminEmail: google.adminEmail,
        directoryUrl: google.directoryUrl,
        fetch: fetchFn,
        timeoutMs,
        now: this.now,
        keyCacheMs: this.config.secretsCacheSeconds * 1000,
        rereadIntervalMs,
      });
    }
    return undefined;
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
      case LOOKER_BROKER_PATHS.authorize:
      case LOOKER_BROKER_PATHS.token:
      case LOOKER_BROKER_PATHS.userinfo:
      case LOOKER_BROKER_DISCOVERY_PATHS[0]:
      case LOOKER_BROKER_DISCOVERY_PATHS[1]:
        return this.brokerRoute(ctx, route, gate);
      default:
        return errorAnswer(ctx, 404, 'not_found', 'unknown-route', `There is no sign-in endpoint at ${ctx.event.path ?? '?'}.`);
    }
  }

  private brokerRoute(
    ctx: RequestContext,
    route: string,
    gate: (methods: string[], run: () => Promise<ProxyResult> | ProxyResult) => Promise<ProxyResult> | ProxyResult,
  ) {
    const broker = this.broker;
    if (!broker)
      return errorAnswer(
        ctx,
        404,
        'not_found',
        'broker-mode-off',
        "Broker mode is off: this gateway is not configured as Looker's OpenID provider (LG_LOOKER_CLIENT_SECRET_ARN).",
      );
    const req = this.brokerRequest(ctx);
    if (route === LOOKER_BROKER_PATHS.authorize) return gate(['GET'], () => broker.authorize(req));
    if (route === LOOKER_BROKER_PATHS.token) return gate(['POST'], () => broker.token(req));
    // OpenID Connect Core 5.3.1: userinfo takes GET and POST.
    if (route === LOOKER_BROKER_PATHS.userinfo) return gate(['GET', 'POST'], () => broker.userinfo(req));
    return gate(['GET', 'HEAD'], () => broker.discovery());
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

  private idpFailure(ctx: RequestContext, event: AuditEvent['event'], error: IdpError, cookies: readonly string[], user?: AuditEvent['user']): ProxyResult {
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
  private identityDenied(
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

  private async refreshCookie(cookie: RefreshCookie, expiresAt: number): Promise<string> {
    const sealed = await this.sealer.seal('refresh', { ...cookie }, expiresAt);
    return setCookie(this.config.cookies.refresh, sealed, { maxAgeSeconds: expiresAt - this.seconds() });
  }

  // ---- session -----------------------------------------------------------------------

  /** The session and its assertion, within the token budget and the browser's cookie size (name and value). */
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
  private noRefreshTokenHint(): string {
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

  /** 403 for a user no rule admits; says so when an unverified address kept e-mail rules from applying. */
  private denied(ctx: RequestContext, decision: MappingDenial, identity: UserIdentity, user: AuditEvent['user'], sessionId?: string): ProxyResult {
    const detail = identity.unverifiedEmail
      ? `${decision.detail} The identity provider did not mark the e-mail address as verified, so rules on the e-mail address did not apply.`
      : decision.detail;
    this.audit(ctx, { event: 'deny', outcome: 'denied', reason: decision.reason, status: 403, user, sessionId, matchedRules: decision.matchedRules, detail });
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

  /**
   * Finds the session's record and decides what this request may do: redeem the refresh
   * token (it took the lease: a conditional write on the generation and the lease, so no
   * two requests redeem one token), use the result of the refresh another request just
   * made (its cookie is one generation behind, within the grace), or nothing.
   */
  private async claimRecord(cookie: RefreshCookie): Promise<Claim> {
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
  private async redeem(ctx: RequestContext): Promise<RedeemOutcome> {
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
  private async reuseFreshRefresh(
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

  /** The secrets of the session a refresh cookie opens, for logout (undefined when there are none to read). */
  private async secretsForLogout(ctx: RequestContext, cookie: RefreshCookie | undefined): Promise<SessionSecrets | undefined> {
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
  private async endSession(
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

function grantFields(grant: MappingGrant): Pick<AuditEvent, 'matchedRules' | 'roles' | 'groups' | 'attributes'> {
  return { matchedRules: grant.matchedRules, roles: grant.roles, groups: grant.groups, attributes: grant.attributes };
}

export { parseClientSecret } from './idp-credentials';

/**
 * A key set is ready once it has a current key. Until then (a first deployment, whose
 * rotations run after the function can already be called) every read waits for it,
 * bounded, with one log line when the wait starts and one when it ends.
 */
function firstKeysReadiness(waitSeconds: number, logger: Logger): ReadinessOptions {
  return {
    isReady: (set) => (set as { keys: { status: string }[] }).keys.some((key) => key.status === 'current'),
    maxWaitMs: waitSeconds * 1000,
    pollMs: 1000,
    report: (level, message, fields) => logger.log(level, message, { ...fields, event: 'first-keys' }),
  };
}
