/**
 * Paths on the real haproxy 3.0 with the rendered config: every routing decision (machine
 * routes and their policies, the auth service, API paths) is taken on the normalized path,
 * prefixes match on segment boundaries, what stays ambiguous is refused with 400 and a
 * reason, and Looker receives the normalized path. Over HTTP/1.1 and HTTP/2.
 *
 * The examples are written out with their expected answers; a generated corpus of
 * paths (dot segments plain and encoded, empty segments, encoded unreserved characters,
 * encoded separators, parameters) checks the rest against core/haproxy/paths.ts, whose model
 * of the normalization is itself checked against RFC 3986 in paths.test.ts.
 */
import fc from 'fast-check';
import { AMBIGUOUS_PATH_REASONS, ambiguousPathReason, normalizePath, pathUnderPrefix } from '../../core/haproxy/paths';
import { AUTH_PATH_PREFIX, AUTH_PATHS } from '../../core/session-contract';
import type { Pem } from '../../dev/pki';
import { AUTH_PATH_PREFIX as AUTH_STAGE, GatewayEnv, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';
import { GatewayResponse } from '../../dev/proxy-client';

const MACHINE_ROUTES = ['/api/4.0/queries', '/machine/'];
const AGENT_PATHS = ['/api/4.0/queries/run', '/machine/reports/'];

let env: GatewayEnv;
let token: string;

beforeAll(async () => {
  env = await startGatewayEnv({
    lookerNodes: 1,
    overrides: (base, { pki }) => ({
      ...base,
      machineRoutes: { pathPrefixes: MACHINE_ROUTES },
      machineClients: [
        { name: 'reporting-bot', certificateSha256: pki.machineClient.fingerprint, allowedMethods: ['GET', 'POST'], allowedPathPrefixes: AGENT_PATHS },
      ],
      authRateLimit: { requestsPerPeriod: 100_000, periodSeconds: 10 },
    }),
  });
  token = await env.mint();
});

afterAll(async () => {
  await env?.stop();
});

const xhr = { 'x-requested-with': 'XMLHttpRequest', accept: 'application/json' };

function agent(pem: Pem = env.pki.machineClient) {
  return env.client({ clientCertificate: { cert: pem.cert, key: pem.key } });
}

function lookerRequestCount(): number {
  return env.looker.reduce((n, node) => n + node.requests.length, 0);
}

/** What the gateway must answer for `rawPath` (query `?q=1` appended), by who asks. */
interface Expected {
  readonly status: number;
  /** The path (and query) Looker or the auth service receives, when the request gets there. */
  readonly forwarded?: string;
  readonly reason?: string;
}

function expectedFor(rawPath: string, caller: 'session' | 'agent', method = 'GET'): Expected {
  const normalized = normalizePath(rawPath);
  const ambiguous = ambiguousPathReason(normalized);
  if (ambiguous) return { status: 400, reason: ambiguous };
  if (pathUnderPrefix(normalized.toLowerCase(), AUTH_PATHS.revocations)) return { status: 404, reason: 'the revocation list is only served to the gateway' };
  if (pathUnderPrefix(normalized, AUTH_PATH_PREFIX)) return { status: 200, forwarded: `${AUTH_STAGE}${normalized}?q=1` };
  if (MACHINE_ROUTES.some((route) => pathUnderPrefix(normalized, route))) {
    if (caller === 'session') return { status: 401, reason: 'a client certificate is required on this route' };
    if (!AGENT_PATHS.some((allowed) => pathUnderPrefix(normalized, allowed)) || !['GET', 'POST'].includes(method)) {
      return { status: 403, reason: 'the method or path is outside this client policy' };
    }
    return { status: 200, forwarded: `${normalized}?q=1` };
  }
  if (caller === 'agent') return { status: 401, reason: 'no session cookie' };
  return { status: 200, forwarded: `${normalized}?q=1` };
}

async function send(rawPath: string, caller: 'session' | 'agent', http2 = false, method = 'GET'): Promise<GatewayResponse> {
  const client = caller === 'agent' ? agent() : env.client();
  const headers = caller === 'session' ? { ...xhr, cookie: sessionCookies(token) } : xhr;
  return http2
    ? client.http2Request(`${rawPath}?q=1`, headers, method)
    : client.request(`${rawPath}?q=1`, { method, headers, body: method === 'POST' ? '{}' : undefined });
}

function forwardedPath(response: GatewayResponse): string | undefined {
  const body = response.json();
  return body.url;
}

async function expectAnswer(rawPath: string, caller: 'session' | 'agent', expected: Expected, http2 = false, method = 'GET'): Promise<void> {
  const before = lookerRequestCount();
  const response = await send(rawPath, caller, http2, method);
  const seen = {
    path: rawPath,
    caller,
    http2,
    status: response.status,
    forwarded: expected.forwarded ? forwardedPath(response) : undefined,
    reason: expected.reason ? response.json().reason : undefined,
  };
  expect(seen).toEqual({ path: rawPath, caller, http2, ...expected });
  if (response.status !== 200) expect(lookerRequestCount()).toBe(before);
}

describe('the issue, one way: a machine certificate cannot leave its policy with dot segments', () => {
  const escapes: Array<[string, string, Expected]> = [
    ['GET', '/api/4.0/queries/run/../../users/me', { status: 401, reason: 'no session cookie' }],
    ['GET', '/api/4.0/queries/run/%2e%2e/%2e%2e/users/me', { status: 401, reason: 'no session cookie' }],
    ['POST', '/api/4.0/queries/run/../../users/42/credentials_api3', { status: 401, reason: 'no session cookie' }],
    ['GET', '/api/4.0/queries/run/%2E%2e/%2e./users/me', { status: 401, reason: 'no session cookie' }],
    ['GET', '/machine/reports/../admin', { status: 403, reason: 'the method or path is outside this client policy' }],
    ['GET', '/machine/reports/%2e%2e/admin', { status: 403, reason: 'the method or path is outside this client policy' }],
    ['GET', '/machine/reports/x/../../admin/', { status: 403, reason: 'the method or path is outside this client policy' }],
    ['GET', '/api/4.0/queries/runX', { status: 403, reason: 'the method or path is outside this client policy' }],
    ['GET', '/api/4.0/queries/run%2f..%2f..%2fusers/me', { status: 400, reason: AMBIGUOUS_PATH_REASONS.encodedSeparator }],
    ['GET', '/api/4.0/queries/run/..;/..;/users/me', { status: 400, reason: AMBIGUOUS_PATH_REASONS.parameters }],
    ['GET', '/api/4.0/queries/run/..\\..\\users/me', { status: 400, reason: AMBIGUOUS_PATH_REASONS.parameters }],
  ];
  for (const http2 of [false, true]) {
    test.each(escapes)(`${http2 ? 'HTTP/2' : 'HTTP/1.1'}: %s %s`, async (method, rawPath, expected) => {
      if (http2 && method !== 'GET') return;
      await expectAnswer(rawPath, 'agent', expected, http2, method);
    });
  }

  test('inside its policy the agent still gets through, and Looker receives the normalized path', async () => {
    for (const [rawPath, forwarded] of [
      ['/api/4.0/queries/run/json', '/api/4.0/queries/run/json?q=1'],
      ['/api/4.0/queries//run/./json', '/api/4.0/queries/run/json?q=1'],
      ['/api/4.0/queries/run/x/../%6Ason', '/api/4.0/queries/run/json?q=1'],
      ['/machine/reports/a%2db/%7e', '/machine/reports/a-b/~?q=1'],
    ]) {
      await expectAnswer(rawPath, 'agent', { status: 200, forwarded });
      await expectAnswer(rawPath, 'agent', { status: 200, forwarded }, true);
    }
  });
});

describe('the issue, the other way: a browser session cannot reach a machine-only prefix', () => {
  const detours = [
    '/api/4.0//queries/run',
    '/api/4.0/x/../queries/run',
    '/api/4.0/%71ueries/run',
    '/api/4.0/./queries/run',
    '//api/4.0/queries/run',
    '/api/4.0/queries/%2e/run',
    '/api/4.0/QUERIES/../queries/run',
    '/x/%2e%2e/api/4.0/queries',
    '/../api/4.0/queries',
    '/machine//reports/',
    '/%6dachine/reports/',
  ];
  for (const http2 of [false, true]) {
    test.each(detours)(`${http2 ? 'HTTP/2' : 'HTTP/1.1'}: %s needs the client certificate`, async (rawPath) => {
      await expectAnswer(rawPath, 'session', { status: 401, reason: 'a client certificate is required on this route' }, http2);
    });
  }

  test('prefixes end on a segment boundary: /api/4.0/queriesX is not under /api/4.0/queries', async () => {
    await expectAnswer('/api/4.0/queriesX', 'session', { status: 200, forwarded: '/api/4.0/queriesX?q=1' });
    await expectAnswer('/api/4.0/queries', 'session', { status: 401, reason: 'a client certificate is required on this route' });
    await expectAnswer('/machinery/x', 'session', { status: 200, forwarded: '/machinery/x?q=1' });
  });
});

describe('what stays ambiguous is refused with 400 and a reason, in the answer and the access log', () => {
  const refused: Array<[string, string]> = [
    ['/a/%2F/b', AMBIGUOUS_PATH_REASONS.encodedSeparator],
    ['/a/%2f', AMBIGUOUS_PATH_REASONS.encodedSeparator],
    ['/a/%5c..%5cb', AMBIGUOUS_PATH_REASONS.encodedSeparator],
    ['/a/%252e%252e/b', AMBIGUOUS_PATH_REASONS.encodedSeparator],
    ['/a/%00.json', AMBIGUOUS_PATH_REASONS.encodedSeparator],
    ['/a/%c0%ae%c0%ae/b', AMBIGUOUS_PATH_REASONS.encodedSeparator],
    ['/a;jsessionid=1/b', AMBIGUOUS_PATH_REASONS.parameters],
    ['/a/..;/b', AMBIGUOUS_PATH_REASONS.parameters],
    ['/a\\b', AMBIGUOUS_PATH_REASONS.parameters],
    ['/a/%zz', AMBIGUOUS_PATH_REASONS.badEscape],
    ['/a/%2', AMBIGUOUS_PATH_REASONS.badEscape],
    ['/a/%u002e%u002e/b', AMBIGUOUS_PATH_REASONS.badEscape],
  ];
  test.each(refused)('%s', async (rawPath, reason) => {
    expect(ambiguousPathReason(normalizePath(rawPath))).toBe(reason);
    const response = await send(rawPath, 'session');
    expect(response.status).toBe(400);
    expect(response.json()).toEqual({ error: 'bad_request', reason, requestId: response.headers['x-request-id'] });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const line = env.logLines().find((l) => l.request_id === response.headers['x-request-id']);
    expect(line).toMatchObject({ status: 400, decision: 'bad-request', reason });
  });
});

describe('a generated corpus of paths', () => {
  // Pieces that normalization changes, that it must leave alone, and that it must refuse.
  const segment = fc.constantFrom(
    'api',
    '4.0',
    'queries',
    'run',
    'users',
    'me',
    'machine',
    'reports',
    'admin',
    'oauth2',
    'start',
    'revocations',
    'x',
    '',
    '.',
    '..',
    '%2e',
    '%2E',
    '%2e%2e',
    '.%2e',
    '%2E.',
    '...',
    '..a',
    'a..',
    '%71ueries',
    'r%75n',
    '%61pi',
    '%7E',
    '%7e',
    '%2d',
    '%5F',
    'a%20b',
    '%C3%A9t%c3%a9',
    'Queries',
    '%2f',
    '%2F',
    '%5c',
    '%25',
    '%252e',
    ';v=1',
    'a;b',
    '%zz',
    '%00',
    '%c0%ae',
  );
  const rawPaths = fc.sample(
    fc.array(segment, { minLength: 1, maxLength: 7 }).map((segments) => `/${segments.join('/')}`),
    { seed: 20261125, numRuns: 160 },
  );

  test('every path gets the answer its normalized form calls for, and Looker receives that form (HTTP/1.1)', async () => {
    let routedDifferently = 0;
    for (const rawPath of rawPaths) {
      for (const caller of ['session', 'agent'] as const) {
        const expected = expectedFor(rawPath, caller);
        const response = await send(rawPath, caller);
        const seen = {
          rawPath,
          caller,
          status: response.status,
          forwarded: expected.forwarded ? response.json().url : undefined,
          reason: expected.reason ? response.json().reason : undefined,
        };
        expect(seen).toEqual({ rawPath, caller, ...expected });
      }
      if (normalizePath(rawPath) !== rawPath) routedDifferently += 1;
    }
    // The corpus exercises normalization, not only paths that are already normal.
    expect(routedDifferently).toBeGreaterThan(rawPaths.length / 2);
  });

  test('the same over HTTP/2', async () => {
    for (const rawPath of rawPaths.slice(0, 60)) {
      const expected = expectedFor(rawPath, 'session');
      const response = await send(rawPath, 'session', true);
      const seen = {
        rawPath,
        status: response.status,
        forwarded: expected.forwarded ? response.json().url : undefined,
        reason: expected.reason ? response.json().reason : undefined,
      };
      expect(seen).toEqual({ rawPath, ...expected });
    }
  });
});
