/**
 * A Microsoft Graph stand-in: the one call the gateway makes when Entra ID reports a
 * groups overage (more than 200 groups, so the ID token carries `_claim_names` and
 * `_claim_sources` instead of `groups`):
 *
 *   POST /v1.0/users/{user object id}/getMemberGroups   {"securityEnabledOnly": false}
 *   -> 200 {"@odata.context": "...", "value": ["<group object id>", ...]}
 *
 * https://learn.microsoft.com/graph/api/directoryobject-getmembergroups : transitive,
 * at most 11,000 ids (else 400 Directory_ResultSizeLimitExceeded); with application
 * permissions it needs User.Read.All and GroupMember.Read.All (or Group.Read.All, or
 * Directory.Read.All). The caller presents an app-only access token from the Entra
 * token endpoint (client credentials, scope `<graph>/.default`), which the stand-in
 * checks as Graph does: signature (the IdP's JWKS), issuer, audience, expiry, tenant,
 * and the application permissions in `roles`. Errors use Graph's JSON error shape.
 */
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { bearerToken, FailureSwitch, readBody, sendJson, startHttpsServer, type InjectedFailure } from './https-json';

export interface GraphGroup {
  /** Object id (GUID), what Entra puts in the groups claim. */
  readonly id: string;
  readonly displayName?: string;
  /** @default true */
  readonly securityEnabled?: boolean;
}

export interface MicrosoftGraphStandInOptions {
  readonly certPem: string;
  readonly keyPem: string;
  /** The Entra issuer whose tokens are accepted (`https://.../<tenant id>/v2.0`); its JWKS comes from discovery. */
  readonly issuer: string;
  /** The tenant the directory belongs to; tokens of another tenant are refused. */
  readonly tenantId: string;
  /** `aud` of the tokens Graph accepts: the resource the client asked for (`<resource>/.default`). @default the stand-in's own URL */
  readonly audience?: string;
  /** Transitive group memberships by user object id. */
  readonly memberships: Readonly<Record<string, readonly GraphGroup[]>>;
  /** Fetch for the IdP's discovery and JWKS (one that trusts the test CA). */
  readonly fetch: (url: string, init?: RequestInit) => Promise<Response>;
  /** @default 0 - a free port chosen by the kernel */
  readonly port?: number;
}

export interface GraphCall {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** The `roles` of the presented token, when it was valid. */
  readonly roles?: readonly string[];
}

export interface RunningMicrosoftGraphStandIn {
  /** `https://127.0.0.1:<port>`, the Graph base URL (the API is under /v1.0). */
  readonly url: string;
  readonly calls: readonly GraphCall[];
  /** The next calls fail (a throttled or broken Graph). */
  failNext(failure: InjectedFailure | undefined): void;
  stop(): Promise<void>;
}

/** The permission sets that allow getMemberGroups on a user with application permissions (any one of them). */
const APPLICATION_PERMISSIONS: readonly (readonly string[])[] = [
  ['User.Read.All', 'GroupMember.Read.All'],
  ['User.Read.All', 'Group.Read.All'],
  ['Directory.Read.All'],
];
const MAX_RESULTS = 11_000;

export async function startMicrosoftGraphStandIn(options: MicrosoftGraphStandInOptions): Promise<RunningMicrosoftGraphStandIn> {
  const calls: GraphCall[] = [];
  const failures = new FailureSwitch();
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  let audience = options.audience;

  const keySet = async () => {
    if (!jwks) {
      const discovery = (await (await options.fetch(`${options.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
      jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), { [customFetch]: options.fetch as never });
    }
    return jwks;
  };

  const graphError = (status: number, code: string, message: string, headers: Record<string, string> = {}) => ({
    status,
    body: { error: { code, message, innerError: { date: new Date().toISOString() } } },
    headers,
  });

  const authenticate = async (token: string | undefined): Promise<{ payload: JWTPayload } | { failure: ReturnType<typeof graphError> }> => {
    const unauthorized = (message: string) => ({
      failure: graphError(401, 'InvalidAuthenticationToken', message, { 'www-authenticate': 'Bearer realm="", error="invalid_token"' }),
    });
    if (!token) return unauthorized('Access token is empty.');
    try {
      const { payload } = await jwtVerify(token, await keySet(), { issuer: options.issuer, audience });
      if (payload.tid !== options.tenantId) return unauthorized('Access token validation failure. Invalid audience.');
      return { payload };
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return unauthorized('Lifetime validation failed, the token is expired.');
      if (error instanceof joseErrors.JOSEError) return unauthorized(`Access token validation failure. ${error.code}`);
      throw error;
    }
  };

  const server = await startHttpsServer(options, async (req, res, url) => {
    const record = (status: number, roles?: readonly string[]) => calls.push({ method: req.method ?? '', path: url.pathname, status, roles });
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}, roles?: readonly string[]) => {
      record(status, roles);
      sendJson(res, status, body, headers);
    };
    const injected = failures.take();
    if (injected) {
      if (injected.delayMs) await new Promise((resolve) => setTimeout(resolve, injected.delayMs));
      const failure = graphError(
        injected.status,
        injected.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable',
        'Injected failure.',
        injected.retryAfterSeconds ? { 'retry-after': String(injected.retryAfterSeconds) } : {},
      );
      return answer(failure.status, failure.body, failure.headers);
    }
    const match = /^\/v1\.0\/(?:users|directoryObjects)\/([^/]+)\/getMemberGroups$/.exec(url.pathname);
    if (!match) return answer(404, graphError(404, 'UnknownError', `No route ${url.pathname} in the Graph stand-in.`).body);
    if (req.method !== 'POST') return answer(405, graphError(405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.').body);

    const auth = await authenticate(bearerToken(req));
    if ('failure' in auth) return answer(auth.failure.status, auth.failure.body, auth.failure.headers);
    const roles = Array.isArray(auth.payload.roles) ? (auth.payload.roles as string[]) : [];
    if (!APPLICATION_PERMISSIONS.some((set) => set.every((permission) => roles.includes(permission)))) {
      return answer(403, graphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.').body, {}, roles);
    }

    let body: { securityEnabledOnly?: unknown };
    try {
      body = JSON.parse((await readBody(req)) || '{}') as { securityEnabledOnly?: unknown };
    } catch {
      return answer(400, graphError(400, 'Request_BadRequest', 'Invalid JSON in the request body.').body, {}, roles);
    }
    if (typeof body.securityEnabledOnly !== 'boolean') {
      return answer(400, graphError(400, 'Request_BadRequest', "The parameter 'securityEnabledOnly' is required and must be a boolean.").body, {}, roles);
    }
    const userId = decodeURIComponent(match[1]);
    const groups = options.memberships[userId];
    if (!groups)
      return answer(
        404,
        graphError(404, 'Request_ResourceNotFound', `Resource '${userId}' does not exist or one of its queried reference-property objects are not present.`)
          .body,
        {},
        roles,
      );
    const ids = groups.filter((g) => !body.securityEnabledOnly || g.securityEnabled !== false).map((g) => g.id);
    if (ids.length > MAX_RESULTS)
      return answer(400, graphError(400, 'Directory_ResultSizeLimitExceeded', `The result exceeds the limit of ${MAX_RESULTS} ids.`).body, {}, roles);
    return answer(200, { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)', value: ids }, {}, roles);
  });
  audience ??= server.url;

  return {
    url: server.url,
    calls,
    failNext: (failure) => failures.set(failure),
    stop: () => server.stop(),
  };
}
