/**
 * The configured auth service's shared part (see AuthServiceBase): its wiring and the
 * helpers every route uses.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import * as client from 'openid-client';
import type { JWTPayload } from 'jose';
import { parseGatewaySecret, SECRET_KINDS, type CookieKeySetSecret, type SigningKeySetSecret } from '../../core/key-material';
import { AuthServiceConfig } from '../../core/auth/environment';
import { type MappingGrant } from '../../core/auth/mapping-rules';
import { DynamoDbAuthorizationCodeStore, InMemoryAuthorizationCodeStore, type AuthorizationCodeStore } from './authorization-codes';
import { LookerBroker, type BrokerRequest } from './looker-broker';
import { parseClientSecret } from './idp-credentials';
import { AuditEvent, Logger, type LogSink } from '../shared/audit';
import { CachedSecret, type ReadinessOptions, type SecretSource } from '../shared/secrets';
import { clearCookie, requestCookies, setCookie } from '../shared/http';
import { GoogleDirectoryGroups, MicrosoftGraphGroups, type FetchLike, type GroupSource } from './group-sources';
import { IdentityResolver, type UserIdentity } from './identity';
import { IdpClientCredentials } from './idp-credentials';
import { CookieSealer, SessionSigner, type MintedSession } from './keys';
import { IdpClient } from './oidc';
import { DynamoDbRevocationStore, InMemoryRevocationStore, type SessionRevocationStore } from './revocations';
import { DynamoDbSessionRecordStore, InMemorySessionRecordStore, type SessionRecordStore } from './session-store';
import { RequestContext } from './service-request';

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

/**
 * The refresh cookie: which session, whose, the key that opens the session's server-side
 * record (256 bits, this cookie is its only copy), and the record generation it was issued
 * for (a refresh that redeemed the refresh token moves the record on).
 */
export interface RefreshCookie {
  readonly sid: string;
  readonly sub: string;
  readonly k: string;
  readonly g: number;
}

export function isRefreshCookie(value: Record<string, unknown>): value is Record<string, unknown> & RefreshCookie {
  return typeof value.sid === 'string' && typeof value.sub === 'string' && typeof value.k === 'string' && Number.isSafeInteger(value.g);
}

/**
 * Largest `name=value` a browser keeps for one cookie (RFC 6265 section 6.1 asks for at
 * least 4096 bytes; Chrome and Firefox cap name plus value there and drop larger ones).
 */
const BROWSER_COOKIE_BYTES = 4096;

export type Minted =
  | { readonly ok: true; readonly token: string; readonly assertion: string; readonly expiresAt: number }
  | { readonly ok: false; readonly bytes: number; readonly limit: number };

/**
 * What every route of the configured service shares: the wiring built once per container
 * (keys, IdP client, identity resolver, stores, broker), the audit line, the cookies and
 * the minting of a session. The routes build on it, one file per job (responses, login,
 * refresh, logout); service.ts dispatches.
 */
export abstract class AuthServiceBase {
  protected readonly signer: SessionSigner;
  protected readonly sealer: CookieSealer;
  protected readonly idp: IdpClient;
  protected readonly identities: IdentityResolver;
  protected readonly revocations: SessionRevocationStore;
  protected readonly records: SessionRecordStore;
  protected readonly now: () => number;
  /** How long one refresh may hold a session's lease: every IdP and group-source call it makes, with margin. */
  protected readonly leaseSeconds: number;

  constructor(
    protected readonly config: AuthServiceConfig,
    deps: AuthServiceDependencies,
    protected readonly logger: Logger,
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
  protected readonly broker?: LookerBroker;

  protected brokerRequest(ctx: RequestContext): BrokerRequest {
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
  protected dynamoClient?: DynamoDBClient;

  protected dynamo(): DynamoDBClient {
    this.dynamoClient ??= new DynamoDBClient({ maxAttempts: 3 });
    return this.dynamoClient;
  }

  protected defaultRevocationStore(): SessionRevocationStore {
    if (this.config.revocationTableName) return new DynamoDbRevocationStore(this.config.revocationTableName, this.dynamo());
    this.logger.log(
      'info',
      'LG_REVOCATION_TABLE_NAME is not set: revoked sessions and session records are kept in this process only (fine for one local process, not for Lambda).',
    );
    return new InMemoryRevocationStore();
  }

  protected defaultSessionStore(): SessionRecordStore {
    return this.config.revocationTableName ? new DynamoDbSessionRecordStore(this.config.revocationTableName, this.dynamo()) : new InMemorySessionRecordStore();
  }

  protected groupSource(deps: AuthServiceDependencies, rereadIntervalMs: number): GroupSource | undefined {
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

  protected seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  protected audit(ctx: RequestContext, event: Omit<AuditEvent, 'requestId' | 'route' | 'sourceIp'>): void {
    this.logger.audit({ ...event, requestId: ctx.requestId, route: ctx.route, sourceIp: ctx.sourceIp });
  }

  // ---- cookies ---------------------------------------------------------------------

  protected clearAll(): string[] {
    const { session, refresh, login, assertion } = this.config.cookies;
    return [clearCookie(session), clearCookie(refresh), clearCookie(login), clearCookie(assertion)];
  }

  /**
   * The session cookie and the assertion cookie, with one lifetime. They outlive the
   * tokens: HAProxy needs the session (expired) with the refresh cookie to refresh inline.
   */
  protected sessionCookies(minted: { token: string; assertion: string }, maxAgeSeconds: number): string[] {
    return [
      setCookie(this.config.cookies.session, minted.token, { maxAgeSeconds }),
      setCookie(this.config.cookies.assertion, minted.assertion, { maxAgeSeconds }),
    ];
  }

  protected async refreshCookie(cookie: RefreshCookie, expiresAt: number): Promise<string> {
    const sealed = await this.sealer.seal('refresh', { ...cookie }, expiresAt);
    return setCookie(this.config.cookies.refresh, sealed, { maxAgeSeconds: expiresAt - this.seconds() });
  }

  // ---- session -----------------------------------------------------------------------

  /** The session and its assertion, within the token budget and the browser's cookie size (name and value). */
  protected async mint(identity: UserIdentity, grant: MappingGrant, sessionId: string): Promise<Minted> {
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

  /** The session token of the request when this service signed it and it is current (typ, iss, aud, exp checked). */
  protected async currentSession(ctx: RequestContext): Promise<JWTPayload | undefined> {
    const token = requestCookies(ctx.event).get(this.config.cookies.session);
    if (!token) return undefined;
    return this.signer.verify(token, this.config.session.issuer, this.config.session.audience, this.config.clockSkewSeconds);
  }
}

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
