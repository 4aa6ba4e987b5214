/**
 * A Google Workspace stand-in for the two calls that give the gateway a user's groups
 * (Google's ID tokens never carry groups):
 *
 * 1. the service account's token, by domain-wide delegation (RFC 7523 JWT bearer grant,
 *    https://developers.google.com/identity/protocols/oauth2/service-account#httprest):
 *      POST /token  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>
 *    the assertion is RS256-signed with the service account key; claims iss (the service
 *    account e-mail), scope, aud (this token URL), iat, exp (at most an hour later) and
 *    sub (the Workspace user it acts as). The scopes must be among those an administrator
 *    delegated to the service account's client.
 * 2. the Directory API (https://developers.google.com/admin-sdk/directory/reference/rest/v1/groups/list):
 *      GET /admin/directory/v1/groups?userKey=<e-mail>&maxResults=<n>&pageToken=<t>
 *    the groups the user is a direct member of, paginated, with the scope
 *    https://www.googleapis.com/auth/admin.directory.group.readonly; the impersonated
 *    user must be an administrator allowed to read groups, or the API answers 403.
 * Errors follow Google's shapes: OAuth errors at /token, {"error": {"code", "message",
 * "errors", "status"}} at the API.
 */
import { randomBytes } from 'node:crypto';
import { errors as joseErrors, importSPKI, jwtVerify } from 'jose';
import { bearerToken, FailureSwitch, readBody, sendJson, startHttpsServer, type InjectedFailure } from './https-json';

export const DIRECTORY_GROUP_READONLY_SCOPE = 'https://www.googleapis.com/auth/admin.directory.group.readonly';
const DIRECTORY_GROUP_SCOPE = 'https://www.googleapis.com/auth/admin.directory.group';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export interface DirectoryGroup {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly description?: string;
  readonly directMembersCount?: number;
}

export interface GoogleServiceAccount {
  readonly clientEmail: string;
  /** The public key of the service account key, PEM (SPKI). */
  readonly publicKeyPem: string;
  /** The scopes an administrator delegated to the service account's client (Admin console, domain-wide delegation). */
  readonly delegatedScopes: readonly string[];
}

export interface GoogleDirectoryStandInOptions {
  readonly certPem: string;
  readonly keyPem: string;
  readonly serviceAccount: GoogleServiceAccount;
  /** Workspace users the service account may act as who can read groups (administrators). */
  readonly administrators: readonly string[];
  /** Direct group memberships by user e-mail; every user of the domain is a key. */
  readonly memberships: Readonly<Record<string, readonly DirectoryGroup[]>>;
  /** @default 0 - a free port chosen by the kernel */
  readonly port?: number;
}

export interface DirectoryCall {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface RunningGoogleDirectoryStandIn {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** Where service accounts get tokens (the key file's token_uri). */
  readonly tokenUri: string;
  /** The Directory API base (`<url>/admin/directory/v1`). */
  readonly directoryApi: string;
  readonly calls: readonly DirectoryCall[];
  failNext(failure: InjectedFailure | undefined): void;
  stop(): Promise<void>;
}

interface IssuedToken {
  readonly subject: string;
  readonly scopes: readonly string[];
  readonly expiresAt: number;
}

const TOKEN_LIFETIME_SECONDS = 3599;
const MAX_ASSERTION_LIFETIME_SECONDS = 3600;
const CLOCK_SKEW_SECONDS = 300;

export async function startGoogleDirectoryStandIn(options: GoogleDirectoryStandInOptions): Promise<RunningGoogleDirectoryStandIn> {
  const calls: DirectoryCall[] = [];
  const failures = new FailureSwitch();
  const tokens = new Map<string, IssuedToken>();
  const publicKey = await importSPKI(options.serviceAccount.publicKeyPem, 'RS256');
  let tokenUri = '';

  const apiError = (status: number, reason: string, message: string, statusText: string) => ({
    error: { code: status, message, errors: [{ message, domain: 'global', reason }], status: statusText },
  });

  const server = await startHttpsServer(options, async (req, res, url) => {
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      calls.push({ method: req.method ?? '', path: url.pathname, status });
      sendJson(res, status, body, headers);
    };
    const injected = failures.take();
    if (injected) {
      if (injected.delayMs) await new Promise((resolve) => setTimeout(resolve, injected.delayMs));
      return answer(
        injected.status,
        apiError(injected.status, 'backendError', 'Injected failure.', 'UNAVAILABLE'),
        injected.retryAfterSeconds ? { 'retry-after': String(injected.retryAfterSeconds) } : {},
      );
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const outcome = await issueToken(form);
      return answer(outcome.status, outcome.body);
    }
    if (url.pathname === '/admin/directory/v1/groups' && req.method === 'GET') {
      const outcome = listGroups(bearerToken(req), url.searchParams);
      return answer(
        outcome.status,
        outcome.body,
        outcome.status === 401 ? { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' } : {},
      );
    }
    return answer(404, apiError(404, 'notFound', `No route ${url.pathname} in the Google Directory stand-in.`, 'NOT_FOUND'));
  });
  tokenUri = `${server.url}/token`;

  async function issueToken(form: URLSearchParams): Promise<{ status: number; body: unknown }> {
    const oauthError = (error: string, description: string) => ({
      status: error === 'unauthorized_client' ? 401 : 400,
      body: { error, error_description: description },
    });
    if (form.get('grant_type') !== JWT_BEARER) return oauthError('unsupported_grant_type', 'Invalid grant_type: ' + String(form.get('grant_type')));
    const assertion = form.get('assertion');
    if (!assertion) return oauthError('invalid_request', 'Missing required parameter: assertion');
    let claims: Record<string, unknown>;
    try {
      // Lifetime checked below against Google's rule; jose checks signature, iss and aud here.
      ({ payload: claims } = await jwtVerify(assertion, publicKey, {
        issuer: options.serviceAccount.clientEmail,
        audience: tokenUri,
        algorithms: ['RS256'],
        clockTolerance: CLOCK_SKEW_SECONDS,
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWSSignatureVerificationFailed || error instanceof joseErrors.JWSInvalid)
        return oauthError('invalid_grant', 'Invalid JWT Signature.');
      if (error instanceof joseErrors.JWTClaimValidationFailed || error instanceof joseErrors.JWTExpired)
        return oauthError('invalid_grant', `Invalid JWT: ${error.message}`);
      throw error;
    }
    const now = Math.floor(Date.now() / 1000);
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    if (!Number.isFinite(iat) || !Number.isFinite(exp) || exp - iat > MAX_ASSERTION_LIFETIME_SECONDS || iat > now + CLOCK_SKEW_SECONDS) {
      return oauthError(
        'invalid_grant',
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      );
    }
    const scopes = String(claims.scope ?? '')
      .split(' ')
      .filter(Boolean);
    if (scopes.length === 0 || !scopes.every((s) => options.serviceAccount.delegatedScopes.includes(s))) {
      return oauthError(
        'unauthorized_client',
        'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
      );
    }
    const subject = typeof claims.sub === 'string' ? claims.sub : '';
    if (!subject || !(subject in options.memberships)) return oauthError('invalid_grant', 'Invalid email or User ID');
    const accessToken = `ya29.stand-in-${randomBytes(24).toString('base64url')}`;
    tokens.set(accessToken, { subject, scopes, expiresAt: now + TOKEN_LIFETIME_SECONDS });
    return { status: 200, body: { access_token: accessToken, expires_in: TOKEN_LIFETIME_SECONDS, token_type: 'Bearer' } };
  }

  function listGroups(token: string | undefined, query: URLSearchParams): { status: number; body: unknown } {
    const issued = token ? tokens.get(token) : undefined;
    if (!issued || issued.expiresAt <= Math.floor(Date.now() / 1000)) {
      return {
        status: 401,
        body: apiError(
          401,
          'authError',
          'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
          'UNAUTHENTICATED',
        ),
      };
    }
    if (!issued.scopes.some((s) => s === DIRECTORY_GROUP_READONLY_SCOPE || s === DIRECTORY_GROUP_SCOPE)) {
      return { status: 403, body: apiError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.', 'PERMISSION_DENIED') };
    }
    if (!options.administrators.includes(issued.subject)) {
      return { status: 403, body: apiError(403, 'forbidden', 'Not Authorized to access this resource/api', 'PERMISSION_DENIED') };
    }
    const userKey = query.get('userKey');
    if (!userKey)
      return { status: 400, body: apiError(400, 'invalid', 'Invalid Input: userKey or domain or customer is required for this call.', 'INVALID_ARGUMENT') };
    const groups = options.memberships[userKey];
    if (!groups) return { status: 404, body: apiError(404, 'notFound', 'Resource Not Found: userKey', 'NOT_FOUND') };
    const maxResults = Math.min(Math.max(Number(query.get('maxResults') ?? 200) || 200, 1), 200);
    const start = Number(query.get('pageToken') ?? 0) || 0;
    const page = groups.slice(start, start + maxResults);
    const next = start + maxResults < groups.length ? String(start + maxResults) : undefined;
    return {
      status: 200,
      body: {
        kind: 'admin#directory#groups',
        etag: `"${randomBytes(8).toString('hex')}"`,
        // Google's int64 fields are JSON strings (directMembersCount).
        groups: page.map((g) => ({
          kind: 'admin#directory#group',
          id: g.id,
          etag: `"${g.id}"`,
          email: g.email,
          name: g.name,
          directMembersCount: String(g.directMembersCount ?? 1),
          description: g.description ?? '',
          adminCreated: true,
          nonEditableAliases: [],
        })),
        ...(next ? { nextPageToken: next } : {}),
      },
    };
  }

  return {
    url: server.url,
    tokenUri,
    directoryApi: `${server.url}/admin/directory/v1`,
    calls,
    failNext: (failure) => failures.set(failure),
    stop: () => server.stop(),
  };
}
