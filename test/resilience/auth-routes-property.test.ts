/**
 * Malformed input to every auth-service route, property-based (fast-check), through the
 * bundled handler as Lambda runs it (the esbuild bundle, its own SDK clients and global fetch,
 * the dev IdP behind it): whatever the method, path, query, headers, cookies and body of the
 * API Gateway event, the answer is a success (2xx/3xx) or a 4xx that names its reason, never
 * a 5xx, never a throw, never a hang.
 *
 * Cookies are drawn from real ones (a login state, a session, a refresh cookie, made by a
 * real login), their mutations and garbage, so the checks behind the first one run too.
 */
import fc from 'fast-check';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { AUTH_PATHS, ASSERTION_COOKIE, LOGIN_STATE_COOKIE, REFRESH_COOKIE, RETURN_TO_PARAM, SESSION_COOKIE } from '../../core/session-contract';
import { startBundledHarness, type BundledHarness } from '../auth/support/bundle';
import { CookieJar, login, request } from '../auth/support/harness';

jest.setTimeout(180_000);

let b: BundledHarness;
let handler: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
const real: Record<string, string> = {};

beforeAll(async () => {
  b = await startBundledHarness();

  handler = (require(b.built.file) as { handler: typeof handler }).handler;
  const jar = new CookieJar();
  await login(b.h, jar, 'alice');
  for (const name of [SESSION_COOKIE, REFRESH_COOKIE, ASSERTION_COOKIE]) real[name] = jar.get(b.h.gatewayUrl, name) ?? '';
  const startJar = new CookieJar();
  await request(b.h.fetch, startJar, `${b.h.gatewayUrl}${AUTH_PATHS.start}?${RETURN_TO_PARAM}=%2F`);
  real[LOGIN_STATE_COOKIE] = startJar.get(b.h.gatewayUrl, LOGIN_STATE_COOKIE) ?? '';
  for (const [name, value] of Object.entries(real)) if (!value) throw new Error(`the real login gave no ${name} cookie`);
});

afterAll(async () => {
  await b?.stop();
});

const ROUTES = [...Object.values(AUTH_PATHS), '/oauth2/', '/oauth2/unknown', '/', '/oauth2/callback/', '/OAUTH2/START', '/oauth2//start', '/oauth2/start%00'];

/** A string that may look like the real value, a cut or changed copy of it, or garbage. */
function cookieValue(name: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(real[name] ?? ''),
    fc.nat().map((n) => (real[name] ?? '').slice(0, n % Math.max(1, (real[name] ?? '').length))),
    fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 1 })).map(([n, c]) => {
      const value = real[name] ?? '';
      const at = n % Math.max(1, value.length);
      return `${value.slice(0, at)}${c}${value.slice(at + 1)}`;
    }),
    fc.string({ maxLength: 64 }),
    fc.constantFrom('', 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.', '..', '%00', 'x'.repeat(9000)),
  );
}

const cookieHeader = fc
  .array(
    fc.oneof(
      fc
        .constantFrom(SESSION_COOKIE, REFRESH_COOKIE, ASSERTION_COOKIE, LOGIN_STATE_COOKIE)
        .chain((name) => cookieValue(name).map((value) => `${name}=${value}`)),
      fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 })).map(([n, v]) => `${n}=${v}`),
    ),
    { maxLength: 5 },
  )
  .map((pairs) => pairs.join('; '));

const headerValue = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.constantFrom(
    'same-origin',
    'cross-site',
    'navigate',
    'document',
    'text/html',
    'application/json',
    'application/x-www-form-urlencoded',
    'https://gateway.test',
    'XMLHttpRequest',
  ),
);
const headers = fc
  .record(
    {
      cookie: cookieHeader,
      accept: headerValue,
      'content-type': headerValue,
      origin: headerValue,
      'sec-fetch-site': headerValue,
      'sec-fetch-mode': headerValue,
      'x-request-id': headerValue,
      'x-requested-with': headerValue,
      host: headerValue,
    },
    { requiredKeys: [] },
  )
  .chain((known) =>
    fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 40 }), { maxKeys: 3 }).map((extra) => ({ ...extra, ...known })),
  );

const query = fc.dictionary(
  fc.oneof(fc.constantFrom(RETURN_TO_PARAM, 'code', 'state', 'error', 'error_description', 'iss', 'signed_out', 'session_state'), fc.string({ maxLength: 12 })),
  fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('/', '//evil.example', 'https://evil.example/', '/\\evil', '%2F%2Fevil', 'access_denied', '1')),
  { maxKeys: 4 },
);

const body = fc.option(fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 2 }), fc.constant('{"session":')), { nil: null });

const event = fc.record({
  method: fc.oneof(fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'), fc.string({ minLength: 1, maxLength: 8 })),
  path: fc.oneof(
    fc.constantFrom(...ROUTES),
    fc.string({ maxLength: 30 }).map((rest) => `/oauth2/${rest}`),
  ),
  query,
  headers,
  body,
  base64: fc.boolean(),
});

interface DrawnEvent {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly headers: Record<string, string>;
  readonly body: string | null;
  readonly base64: boolean;
}

function toEvent(e: DrawnEvent): APIGatewayProxyEvent {
  const hasQuery = Object.keys(e.query).length > 0;
  const body = e.body === null ? null : e.base64 ? Buffer.from(e.body).toString('base64') : e.body;
  return {
    resource: '/{proxy+}',
    path: e.path,
    httpMethod: e.method,
    headers: e.headers,
    multiValueHeaders: Object.fromEntries(Object.entries(e.headers).map(([k, v]): [string, string[]] => [k, [v]])),
    queryStringParameters: hasQuery ? e.query : null,
    multiValueQueryStringParameters: hasQuery ? Object.fromEntries(Object.entries(e.query).map(([k, v]): [string, string[]] => [k, [v]])) : null,
    pathParameters: { proxy: e.path.replace(/^\//, '') },
    stageVariables: null,
    body,
    isBase64Encoded: e.base64 && body !== null,
    requestContext: {
      requestId: 'property',
      stage: 'prod',
      path: `/prod${e.path}`,
      identity: { sourceIp: '198.51.100.7' },
    } as unknown as APIGatewayProxyEvent['requestContext'],
  };
}

/** The reason an answer gives: JSON `reason`, or the error page's "Reason: <code>." line. */
function reasonOf(result: APIGatewayProxyResult): string | undefined {
  try {
    const parsed = JSON.parse(result.body) as { reason?: unknown };
    if (typeof parsed.reason === 'string' && parsed.reason) return parsed.reason;
  } catch {
    // an HTML page
  }
  return /Reason: ([\w:.-]+)/.exec(result.body)?.[1];
}

const HANG_MS = 15_000;

test('every auth-service route, any method, query, headers, cookies and body: a success or a 4xx with a reason; never a 5xx, a throw or a hang', async () => {
  await fc.assert(
    fc.asyncProperty(event, async (e: DrawnEvent) => {
      const answer = await Promise.race([
        handler(toEvent(e), { awsRequestId: 'property' } as Context),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${HANG_MS} ms`)), HANG_MS).unref()),
      ]);
      expect(answer.statusCode).toBeGreaterThanOrEqual(200);
      expect(answer.statusCode).toBeLessThan(500);
      if (answer.statusCode >= 400)
        expect({ status: answer.statusCode, reason: reasonOf(answer) }).toEqual({ status: answer.statusCode, reason: expect.any(String) });
    }),
    { numRuns: Number(process.env.LG_PROPERTY_RUNS ?? 400) },
  );
});
