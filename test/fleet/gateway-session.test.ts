/**
 * The session check on the real haproxy 3.0: cookie -> JWT -> identity headers, every way a
 * session can be wrong, inline refresh with single flight, and the access log.
 */
import { randomUUID } from 'node:crypto';
import { createConnection } from 'node:net';
import * as path from 'node:path';
import { GATEWAY_FILES } from '../../core/haproxy';
import { AUTH_SERVICE_RETRY_AFTER_SECONDS } from '../../core/haproxy/frontend';
import { SMALL_LISTENER_LIMITS } from '../../core/haproxy/listeners';
import { REFRESH_FLIGHTS_CLI } from '../../core/haproxy/lua';
import { ASSERTION_COOKIE, LOGIN_STATE_COOKIE, REFRESH_COOKIE, SESSION_COOKIE } from '../../core/session-contract';
import { parseAuthServiceEnvironment } from '../../core/auth/environment';
import { AUTH_SERVICE_TIMEOUT_SECONDS, DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS, DEFAULT_REFRESH_GRACE_SECONDS } from '../../core/timeouts';
import { DEFAULT_CLAIMS, GatewayEnv, REFRESHED_CLAIMS, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';
import { API_GATEWAY_ANSWERS } from '../../dev/aws/api-gateway-answers';
import { adminCommand } from '../../dev/haproxy';
import { waitFor } from '../../dev/wait';
import { GatewayClient } from '../../dev/proxy-client';
import { nlbHealthCheck } from '../../dev/proxy-protocol';

let env: GatewayEnv;
let client: GatewayClient;

beforeAll(async () => {
  env = await startGatewayEnv({
    overrides: (base) => ({
      ...base,
      // A 1 s skew lets the cache test see a token expire within seconds.
      session: { ...base.session, clockSkewSeconds: 1 },
      authRateLimit: { requestsPerPeriod: 5, periodSeconds: 10 },
      headerHygiene: { extraStrippedHeaders: ['X-Debug-User'], extraStrippedHeaderPrefixes: ['X-Corp-'] },
    }),
  });
  client = env.client();
});

afterAll(async () => {
  await env?.stop();
});

const navigation = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', accept: 'text/html' };
const xhr = { 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty', accept: 'application/json', 'x-requested-with': 'XMLHttpRequest' };

function uniqueRefreshCookie(): string {
  return `refresh-${randomUUID()}`;
}

/** A session of its own (sid), expiring in `expiresIn` s, with a refresh cookie the auth stand-in redeems. */
async function refreshableSession(expiresIn: number): Promise<{ token: string; refresh: string; sid: string }> {
  const sid = `sid-${randomUUID()}`;
  return { token: await env.mint({ ...DEFAULT_CLAIMS, sid }, { expiresIn }), refresh: env.refreshCookie({ sid }), sid };
}

/** The auth service's environment as the construct sets it: no LG_IDP_TIMEOUT_MS, so the service's default applies. */
const AUTH_ENVIRONMENT = {
  LG_IDP_ISSUER: 'https://idp.example.com',
  LG_IDP_CLIENT_ID: 'gw',
  LG_IDP_CLIENT_SECRET_ARN: 'arn:secret',
  LG_PUBLIC_BASE_URL: 'https://looker.example.com',
  LG_SESSION_ISSUER: 'https://looker.example.com/oauth2',
  LG_SESSION_AUDIENCE: 'looker-gateway',
  LG_MAPPING_RULES: JSON.stringify({ rules: [{ name: 'a', match: { groups: ['g'] }, grant: { groups: ['A'] } }] }),
  LG_SIGNING_KEYS_SECRET_ARN: 'arn:signing',
  LG_COOKIE_KEYS_SECRET_ARN: 'arn:cookie',
};

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

describe('a valid session', () => {
  test('reaches Looker with the identity headers from its claims, and its assertion (never the session token)', async () => {
    const token = await env.mint();
    const assertion = await env.mintAssertion();
    const response = await client.request('/looks/1?x=1', { headers: { cookie: sessionCookies(token, undefined, assertion) } });
    expect(response.status).toBe(200);
    const echoed = response.json();
    expect(echoed.url).toBe('/looks/1?x=1');
    expect(echoed.clientCertificateSubject).toBe('CN=gateway-fleet');
    expect(echoed.headers).toMatchObject({
      'x-forwarded-user': 'user-123',
      'x-forwarded-email': 'ada@example.com',
      'x-forwarded-groups': 'analysts,finance',
      'x-looker-roles': 'viewer,explorer',
      'x-looker-attr-region': 'emea',
      'x-looker-attr-cost-center': 'cc-42',
      'x-gateway-assertion': assertion,
      'x-gateway-auth': 'session',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'gateway.test',
    });
    expect(echoed.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(response.headers['x-request-id']).toBe(echoed.headers['x-request-id']);
    expect(response.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(response.headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
  });

  test('the previous and the next key are accepted too', async () => {
    for (const key of [env.keys.previous, env.keys.next]) {
      const response = await client.request('/', { headers: { cookie: sessionCookies(await env.mint(DEFAULT_CLAIMS, { key })) } });
      expect(response.status).toBe(200);
      expect(response.json().headers['x-forwarded-user']).toBe('user-123');
    }
  });

  test("Looker's own X-Frame-Options stands; SAMEORIGIN only when Looker sent none, and on the gateway's own answers", async () => {
    const cookie = sessionCookies(await env.mint());
    const denied = await client.request('/', { headers: { cookie, 'x-test-frame-options': 'DENY' } });
    expect(denied.status).toBe(200);
    expect(denied.headers['x-frame-options']).toBe('DENY');
    const none = await client.request('/', { headers: { cookie } });
    expect(none.headers['x-frame-options']).toBe('SAMEORIGIN');
    const own = await client.request('/api/x', { headers: xhr });
    expect(own.status).toBe(401);
    expect(own.headers['x-frame-options']).toBe('SAMEORIGIN');
  });

  test("the gateway's cookies never reach Looker, Looker's own cookies do", async () => {
    const token = await env.mint();
    const cookie = `lk_session=abc; ${SESSION_COOKIE}=${token}; csrf=x=y; ${REFRESH_COOKIE}=${uniqueRefreshCookie()}; ${LOGIN_STATE_COOKIE}=state; __Host-lg_sessionx=keep; last=1`;
    const response = await client.request('/', { headers: { cookie } });
    expect(response.status).toBe(200);
    expect(response.json().headers.cookie).toBe('lk_session=abc; csrf=x=y; __Host-lg_sessionx=keep; last=1');
    expect(response.headers['set-cookie']).toEqual(['looker_own=from-looker; Path=/; Secure']);
  });

  test('works over HTTP/2 (ALPN h2) too', async () => {
    const token = await env.mint();
    const response = await client.http2Request('/h2/path?q=1', { cookie: [`${SESSION_COOKIE}=${token}`, 'lk=1'] });
    expect(response.alpn).toBe('h2');
    expect(response.status).toBe(200);
    const echoed = response.json();
    expect(echoed.url).toBe('/h2/path?q=1');
    expect(echoed.headers['x-forwarded-user']).toBe('user-123');
    expect(echoed.headers.cookie).toBe('lk=1');
    const denied = await client.http2Request('/h2/other', { accept: 'text/html', 'sec-fetch-mode': 'navigate' });
    expect(denied.status).toBe(302);
    expect(denied.headers.location).toBe('/oauth2/start?rd=%2Fh2%2Fother');
  });

  test('a websocket upgrade passes through to Looker', async () => {
    const token = await env.mint();
    const { socket, headers } = await client.upgrade('/ws', {
      upgrade: 'websocket',
      cookie: sessionCookies(token),
      'sec-websocket-key': Buffer.from('0123456789abcdef').toString('base64'),
      'sec-websocket-version': '13',
    });
    expect(headers['x-looker-node']).toMatch(/^looker-/);
    const echoed = await new Promise<string>((resolve) => {
      socket.once('data', (data: Buffer) => resolve(data.toString()));
      socket.write('ping-through-the-gateway');
    });
    socket.destroy();
    expect(echoed).toBe('ping-through-the-gateway');
  });
});

describe('header hygiene', () => {
  const spoofed = {
    'x-forwarded-user': 'admin',
    'x-forwarded-email': 'admin@example.com',
    'x-forwarded-groups': 'admins',
    'x-looker-roles': 'admin',
    'x-looker-attr-region': 'everywhere',
    'x-looker-attr-evil': 'yes',
    'x-gateway-assertion': 'forged',
    'x-gateway-auth': 'session',
    'x-request-id': 'client-chosen',
    'x-forwarded-for': '10.9.9.9',
    forwarded: 'for=10.9.9.9',
    'x-real-ip': '10.9.9.9',
    'x-remote-user': 'admin',
    'X-Debug-User': 'admin',
    'x-corp-identity': 'admin',
  };

  test('spoofed identity headers are replaced when a session is present', async () => {
    const token = await env.mint();
    const response = await client.request('/', { headers: { ...spoofed, cookie: sessionCookies(token) } });
    const headers = response.json().headers;
    expect(headers['x-forwarded-user']).toBe('user-123');
    expect(headers['x-looker-roles']).toBe('viewer,explorer');
    expect(headers['x-looker-attr-region']).toBe('emea');
    expect(headers['x-gateway-assertion']).toBeUndefined();
    expect(headers['x-request-id']).not.toBe('client-chosen');
    expect(headers['x-forwarded-for']).toBe('192.0.2.10');
    for (const name of ['x-looker-attr-evil', 'forwarded', 'x-real-ip', 'x-remote-user', 'x-debug-user', 'x-corp-identity'])
      expect(headers[name]).toBeUndefined();
    expect(headers['x-forwarded-proto']).toBe('https');
  });

  test('spoofed identity headers never reach the auth service, and without a session nothing reaches Looker', async () => {
    const response = await client.request('/oauth2/start?rd=%2F', { headers: spoofed });
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ authService: true, url: '/prod/oauth2/start?rd=%2F', host: 'auth.test' });
    const seen = env.auth.calls[env.auth.calls.length - 1].headers;
    for (const name of Object.keys(spoofed).filter((n) => n !== 'x-request-id' && n !== 'x-forwarded-for')) expect(seen[name.toLowerCase()]).toBeUndefined();
    expect(seen['x-forwarded-for']).toBe('192.0.2.10');
    const denied = await client.request('/', { headers: { ...spoofed, ...xhr } });
    expect(denied.status).toBe(401);
  });
});

describe('the auth service behind the gateway', () => {
  test("gets the gateway's cookies and no other: Looker's 11 KB of cookies would pass API Gateway's 10,240-byte header limit", async () => {
    const token = await env.mint();
    const refresh = uniqueRefreshCookie();
    const lookerCookies = `lk_session=abc; big=${'x'.repeat(11_000)}; csrf=x=y`;
    const response = await client.request('/oauth2/start?rd=%2F', {
      headers: { ...navigation, cookie: `${lookerCookies}; ${SESSION_COOKIE}=${token}; ${REFRESH_COOKIE}=${refresh}; ${LOGIN_STATE_COOKIE}=state` },
    });
    expect(response.status).toBe(200);
    const seen = env.auth.calls[env.auth.calls.length - 1].headers;
    expect(seen.cookie).toBe(`${SESSION_COOKIE}=${token}; ${REFRESH_COOKIE}=${refresh}; ${LOGIN_STATE_COOKIE}=state`);
    // API Gateway refuses a request whose headers exceed 10,240 bytes ("Amazon API Gateway quotas", header size).
    expect(Buffer.byteLength(String(seen.cookie))).toBeLessThan(10_240);
  });

  test('without any of the gateway cookies it gets no Cookie header at all', async () => {
    const response = await client.request('/oauth2/start', { headers: { ...navigation, cookie: 'lk_session=abc; other=1' } });
    expect(response.status).toBe(200);
    expect(env.auth.calls[env.auth.calls.length - 1].headers.cookie).toBeUndefined();
  });

  test("an answer slower than API Gateway allows (29 s) is given up on at 30 s with 504, not after Looker's hour", async () => {
    env.auth.otherRoutesDelayMs = 40_000;
    const started = Date.now();
    try {
      const response = await env.client({ sourceAddress: '198.51.100.77' }).request('/oauth2/start', { headers: navigation, timeoutMs: 45_000 });
      const waited = Date.now() - started;
      expect(response.status).toBe(504);
      expect(waited).toBeGreaterThanOrEqual(AUTH_SERVICE_TIMEOUT_SECONDS * 1000 - 500);
      expect(waited).toBeLessThan(39_000);
    } finally {
      env.auth.otherRoutesDelayMs = 0;
    }
  }, 60_000);

  describe("API Gateway's own answers (dev/aws/api-gateway-answers.ts) become the gateway's: a page for a page load, JSON with a reason otherwise", () => {
    afterEach(() => {
      env.auth.otherRoutesAnswer = undefined;
    });

    /** A login start from an address of its own (the auth routes' rate limit is 5 per 10 s here), and its access-log line. */
    async function loginStart(address: string, headers: Record<string, string>) {
      const response = await env.client({ sourceAddress: address }).request('/oauth2/start?rd=%2F', { headers });
      const requestId = response.headers['x-request-id'] as string;
      expect(requestId).toMatch(/\S/);
      const line = await waitFor(`the access-log line of request ${requestId}`, 5000, () => env.logLines().find((l) => l.request_id === requestId));
      return { response, line };
    }

    test('throttled (429 ThrottlingException): 429 "Sign-in is busy" with Retry-After, decision auth-throttled; never the bare {"message"}', async () => {
      env.auth.otherRoutesAnswer = API_GATEWAY_ANSWERS.throttled;
      const page = await loginStart('198.51.100.81', navigation);
      expect(page.response.status).toBe(429);
      expect(page.response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.response.headers['retry-after']).toBe(String(AUTH_SERVICE_RETRY_AFTER_SECONDS));
      expect(page.response.headers['cache-control']).toBe('no-store');
      const html = page.response.body;
      expect(html).toContain('<title>Sign-in is busy</title>');
      expect(html).toContain(`Reason: auth-throttled. Request id: ${String(page.response.headers['x-request-id'])}`);
      expect(html).not.toContain('"message"');
      expect(page.line).toMatchObject({ status: 429, decision: 'auth-throttled', reason: 'API Gateway throttled the request to the auth service' });

      const json = await loginStart('198.51.100.82', xhr);
      expect(json.response.status).toBe(429);
      expect(json.response.json()).toEqual({
        error: 'too_many_requests',
        reason: 'API Gateway throttled the request to the auth service',
        requestId: json.response.headers['x-request-id'],
      });
    });

    test.each([
      ['the function failed', API_GATEWAY_ANSWERS.functionFailed],
      ['Lambda refused the invocation', API_GATEWAY_ANSWERS.invocationRefused],
      ['the integration timed out', API_GATEWAY_ANSWERS.integrationTimedOut],
    ])('%s: the same status, "Sign-in is unavailable", decision auth-unavailable with the status in the reason', async (_, answer) => {
      env.auth.otherRoutesAnswer = answer;
      const page = await loginStart('198.51.100.83', navigation);
      expect(page.response.status).toBe(answer.status);
      expect(page.response.body).toContain('<h1>Sign-in is unavailable</h1>');
      expect(page.response.headers['retry-after']).toBe(String(AUTH_SERVICE_RETRY_AFTER_SECONDS));
      const reason = `the auth service failed: API Gateway answered ${answer.status}`;
      expect(page.line).toMatchObject({ status: answer.status, decision: 'auth-unavailable', reason });
      const json = await loginStart('198.51.100.84', xhr);
      expect(json.response.json()).toEqual({ error: 'auth_unavailable', reason, requestId: json.response.headers['x-request-id'] });
    });

    test("the auth service's own answers pass as they are, whatever their status (its pages name their own reason)", async () => {
      const ownPage = '<!doctype html><title>Sign-in is unavailable</title><p>Reason: idp-timeout.</p>';
      env.auth.otherRoutesAnswer = { status: 504, headers: { 'content-type': 'text/html; charset=utf-8' }, body: ownPage };
      const page = await loginStart('198.51.100.85', navigation);
      expect(page.response.status).toBe(504);
      expect(page.response.body).toBe(ownPage);
      expect(page.line).toMatchObject({ status: 504, decision: 'auth-route' });
      env.auth.otherRoutesAnswer = { status: 429, headers: { 'content-type': 'application/json' }, body: '{"error":"slow_down"}' };
      expect((await loginStart('198.51.100.86', xhr)).response.body).toBe('{"error":"slow_down"}');
    });
  });
});

describe('no session', () => {
  test('a browser navigation is redirected to the login with the original path and query', async () => {
    const response = await client.request('/dashboards/7?filter=a%20b&x=1', { headers: navigation });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe(`/oauth2/start?rd=${encodeURIComponent('/dashboards/7?filter=a%20b&x=1')}`);
  });

  test('without fetch metadata, Accept: text/html on GET decides', async () => {
    expect((await client.request('/explore', { headers: { accept: 'text/html,application/xhtml+xml' } })).status).toBe(302);
    expect((await client.request('/explore', { method: 'HEAD', headers: { accept: 'text/html' } })).status).toBe(302);
  });

  test('XHR, fetch, API paths and non-GET requests get 401 JSON with the request id', async () => {
    const cases: Array<{ path: string; method?: string; headers: Record<string, string> }> = [
      { path: '/api/internal/core/4.0/me', headers: xhr },
      { path: '/explore', headers: { 'sec-fetch-mode': 'cors', accept: 'text/html' } },
      { path: '/explore', headers: { 'x-requested-with': 'XMLHttpRequest', accept: 'text/html' } },
      { path: '/api/4.0/user', headers: { accept: 'text/html' } },
      { path: '/explore', method: 'POST', headers: { accept: 'text/html' } },
      { path: '/explore', headers: { accept: 'application/json' } },
    ];
    for (const c of cases) {
      const response = await client.request(c.path, { method: c.method, headers: c.headers, body: c.method === 'POST' ? '{}' : undefined });
      expect({ path: c.path, status: response.status }).toEqual({ path: c.path, status: 401 });
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.json()).toEqual({ error: 'unauthorized', reason: 'no session cookie', requestId: response.headers['x-request-id'] });
    }
  });
});

// Every way a token can be forged or wrong is in the corpus of token-forgeries.test.ts.

describe('inline refresh', () => {
  test('an expired session with a refresh cookie is refreshed inline for a navigation', async () => {
    const { token, refresh } = await refreshableSession(-120);
    const calls = env.auth.sessionCalls().length;
    const response = await client.request('/dashboards/1', { headers: { ...navigation, cookie: sessionCookies(token, refresh) } });
    expect(response.status).toBe(200);
    const echoed = response.json();
    expect(echoed.headers['x-forwarded-user']).toBe('user-123');
    expect(echoed.headers['x-forwarded-email']).toBe(REFRESHED_CLAIMS.email);
    expect(echoed.headers.cookie).toBeUndefined();
    const setCookies = response.headers['set-cookie'] ?? [];
    const newSession = setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    expect(newSession).toMatch(/; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
    const newAssertion = setCookies.find((c) => c.startsWith(`${ASSERTION_COOKIE}=`));
    expect(echoed.headers['x-gateway-assertion']).toBe(/^[^=]+=([^;]+)/.exec(newAssertion!)![1]);
    expect(echoed.headers['x-gateway-assertion']).not.toBe(/^[^=]+=([^;]+)/.exec(newSession!)![1]);
    expect(setCookies.some((c) => c.startsWith(`${REFRESH_COOKIE}=rt.`))).toBe(true);
    const sessionCalls = env.auth.sessionCalls();
    expect(sessionCalls.length).toBe(calls + 1);
    const call = sessionCalls[sessionCalls.length - 1];
    expect(call.method).toBe('POST');
    expect(call.headers.host).toBe('auth.test');
    expect(call.headers.cookie).toBe(`${REFRESH_COOKIE}=${refresh}`);
    expect(call.headers['x-request-id']).toBe(response.headers['x-request-id']);
  });

  test('an XHR whose session expires within the refresh window is refreshed the same way', async () => {
    const { token, refresh } = await refreshableSession(20);
    const response = await client.request('/api/internal/query', {
      method: 'POST',
      body: '{"q":1}',
      headers: { ...xhr, 'content-type': 'application/json', cookie: sessionCookies(token, refresh) },
    });
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ method: 'POST', body: '{"q":1}', headers: { 'x-forwarded-email': REFRESHED_CLAIMS.email } });
    expect((response.headers['set-cookie'] ?? []).some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(true);
  });

  test('20 concurrent requests at expiry cause exactly one refresh call', async () => {
    const { token: expired, refresh } = await refreshableSession(-1);
    const before = env.auth.sessionCalls().length;
    env.auth.delayMs = 300;
    try {
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => env.client().request('/api/internal/poll', { headers: { ...xhr, cookie: sessionCookies(expired, refresh) } })),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(new Set(responses.map((r) => r.json().headers['x-forwarded-email']))).toEqual(new Set([REFRESHED_CLAIMS.email]));
      expect(env.auth.sessionCalls().length - before).toBe(1);
      expect(env.auth.sessionCalls().filter((c) => c.headers.cookie === `${REFRESH_COOKIE}=${refresh}`)).toHaveLength(1);
    } finally {
      env.auth.delayMs = 0;
    }
  });

  test('a refused refresh sends a navigation to the login and gives an XHR 401', async () => {
    env.auth.refuse = true;
    try {
      const first = await refreshableSession(-120);
      const navigationResponse = await client.request('/dashboards/2', { headers: { ...navigation, cookie: sessionCookies(first.token, first.refresh) } });
      expect(navigationResponse.status).toBe(302);
      expect(navigationResponse.headers.location).toBe('/oauth2/start?rd=%2Fdashboards%2F2');
      const second = await refreshableSession(-120);
      const xhrResponse = await client.request('/api/internal/x', { headers: { ...xhr, cookie: sessionCookies(second.token, second.refresh) } });
      expect(xhrResponse.status).toBe(401);
      expect(xhrResponse.json().reason).toBe('session expired and could not be refreshed');
      expect(xhrResponse.headers['set-cookie']).toBeUndefined();
    } finally {
      env.auth.refuse = false;
    }
  });

  test(`finished refreshes leave the Lua table once they can no longer be joined (grace ${DEFAULT_REFRESH_GRACE_SECONDS} s), not when it is full: admin socket "${REFRESH_FLIGHTS_CLI.join(' ')}"`, async () => {
    // The 30-minute soak of npm run bench:resilience saw HAProxy's memory grow 0.6 MB a minute:
    // every finished refresh kept its answer (session, assertion, cookies) until the table
    // reached its 10,000 entries.
    const flights = async () =>
      JSON.parse(await adminCommand(env.rendered.adminSocket, REFRESH_FLIGHTS_CLI.join(' '))) as { tracked: number; running: number; max: number };
    for (let i = 0; i < 3; i += 1) {
      const { token, refresh } = await refreshableSession(-120);
      expect((await client.request('/dashboards/1', { headers: { ...navigation, cookie: sessionCookies(token, refresh) } })).status).toBe(200);
    }
    const after = await flights();
    expect(after).toMatchObject({ running: 0, max: 10_000 });
    expect(after.tracked).toBeGreaterThanOrEqual(3);
    // Swept every grace period: gone within two of them (and a second for the last sweep to run).
    await waitFor('the finished refreshes to leave the table', (DEFAULT_REFRESH_GRACE_SECONDS * 2 + 1) * 1000 + 2000, async () =>
      (await flights()).tracked === 0 ? true : undefined,
    );
  }, 30_000);

  test('a refresh that the auth service answers within its IdP timeout (4.5 s, under 5 s) is waited for: the session is refreshed', async () => {
    // HAProxy gave up after 3 s while the auth service allowed the IdP 5 s: a slow refresh that
    // succeeded was abandoned, and its rotated refresh token spent (refresh-cookie-superseded).
    env.auth.delayMs = 4500;
    try {
      const { token, refresh } = await refreshableSession(-120);
      const response = await client.request('/api/internal/slow', { headers: { ...xhr, cookie: sessionCookies(token, refresh) } });
      expect(response.status).toBe(200);
      expect(response.json().headers['x-forwarded-email']).toBe(REFRESHED_CLAIMS.email);
      expect((response.headers['set-cookie'] ?? []).some((c) => c.startsWith(`${REFRESH_COOKIE}=rt.`))).toBe(true);
    } finally {
      env.auth.delayMs = 0;
    }
    // Both waits come from core/timeouts.ts: HAProxy's exceeds the auth service's IdP timeout by a margin.
    expect(env.rendered.files.find((f) => f.path === GATEWAY_FILES.refreshLua)!.content).toContain(
      `local TIMEOUT_MS = ${DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS * 1000}`,
    );
    expect(DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS * 1000).toBeGreaterThan(parseAuthServiceEnvironment(AUTH_ENVIRONMENT).idp.timeoutMs + 1000);
  });

  test(`a refresh that takes longer than the timeout (${DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS} s) counts as failed`, async () => {
    env.auth.delayMs = DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS * 1000 + 500;
    try {
      const { token, refresh } = await refreshableSession(-120);
      const response = await client.request('/api/internal/slow', { headers: { ...xhr, cookie: sessionCookies(token, refresh) } });
      expect(response.status).toBe(401);
      expect(response.json().reason).toBe('session expired and could not be refreshed');
    } finally {
      env.auth.delayMs = 0;
    }
  });

  test('a session with a bad signature is never refreshed', async () => {
    const before = env.auth.sessionCalls().length;
    const forged = await env.mint(DEFAULT_CLAIMS, { expiresIn: -120, key: { ...env.keys.unknown, kid: env.keys.current.kid } });
    const response = await client.request('/api/internal/x', { headers: { ...xhr, cookie: sessionCookies(forged, uniqueRefreshCookie()) } });
    expect(response.status).toBe(401);
    expect(env.auth.sessionCalls().length).toBe(before);
  });
});

describe('the verification cache', () => {
  test('serves a repeated token, but an expired token is refused after it was cached', async () => {
    const token = await env.mint({ ...DEFAULT_CLAIMS, sid: randomUUID() }, { expiresIn: 2 });
    const first = await client.request('/', { headers: { cookie: sessionCookies(token) } });
    const second = await client.request('/', { headers: { cookie: sessionCookies(token) } });
    expect([first.status, second.status]).toEqual([200, 200]);
    await new Promise((resolve) => setTimeout(resolve, 3500));
    const late = await client.request('/', { headers: { ...xhr, cookie: sessionCookies(token) } });
    expect(late.status).toBe(401);
    expect(late.json().reason).toBe('session expired');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const decisions = Object.fromEntries(env.logLines().map((line) => [line.request_id, line.decision]));
    expect(decisions[String(first.headers['x-request-id'])]).toBe('session-valid');
    expect(decisions[String(second.headers['x-request-id'])]).toBe('cache-hit');
    expect(decisions[String(late.headers['x-request-id'])]).toBe('expired');
  });
});

describe('revoking a key at run time', () => {
  test('"del map" on the kid map refuses the kid at once, even for a token already in the cache', async () => {
    const token = await env.mint({ ...DEFAULT_CLAIMS, sid: randomUUID() }, { key: env.keys.next });
    expect((await client.request('/', { headers: { cookie: sessionCookies(token) } })).status).toBe(200);
    expect((await client.request('/', { headers: { cookie: sessionCookies(token) } })).status).toBe(200);
    const answer = await adminCommand(env.rendered.adminSocket, `del map ${path.join(env.dir, GATEWAY_FILES.sessionKidMap)} ${env.keys.next.kid}`);
    expect(answer.trim()).toBe('');
    const revoked = await client.request('/', { headers: { ...xhr, cookie: sessionCookies(token) } });
    expect(revoked.status).toBe(401);
    expect(revoked.json().reason).toBe('session signed by an unknown key');
    expect((await client.request('/', { headers: { cookie: sessionCookies(await env.mint()) } })).status).toBe(200);
  });
});

describe('abuse', () => {
  test("a client sending hundreds of crafted bad signatures does not disturb another client's TLS connections", async () => {
    const attacker = env.client({ keepAlive: true, sourceAddress: '203.0.113.66' });
    const victim = env.client({ keepAlive: true, sourceAddress: '203.0.113.77' });
    const good = await env.mint();
    const [h, p] = good.split('.');
    const attack = (async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 300; i += 1) {
        const signature = base64url(Buffer.from(Array.from({ length: 64 }, (_, j) => (i * 7 + j) % 256)));
        statuses.push((await attacker.request('/api/x', { headers: { ...xhr, cookie: sessionCookies(`${h}.${p}.${signature}`) } })).status);
      }
      return statuses;
    })();
    const victimStatuses: number[] = [];
    for (let i = 0; i < 60; i += 1) victimStatuses.push((await victim.request('/', { headers: { cookie: sessionCookies(good) } })).status);
    expect(await attack).toEqual(Array(300).fill(401));
    expect(victimStatuses).toEqual(Array(60).fill(200));
  });

  test('the auth routes are rate limited per client address with 429 and Retry-After', async () => {
    const limited = env.client({ sourceAddress: '198.51.100.9' });
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 7; i += 1) {
      last = await limited.request('/oauth2/start', { headers: navigation });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(last!.headers['retry-after']).toBe('10');
    expect(last!.json()).toEqual({
      error: 'too_many_requests',
      reason: 'too many requests to the auth service from this address',
      requestId: last!.headers['x-request-id'],
    });
    expect((await env.client({ sourceAddress: '198.51.100.10' }).request('/oauth2/start')).status).toBe(200);
  });
});

describe('limits per listener', () => {
  test("the health and metrics listeners have small connection limits of their own; the public listener has the process's", async () => {
    const stat = await adminCommand(env.rendered.adminSocket, 'show stat');
    const [header, ...rows] = stat.split('\n').filter((line) => line.length > 0);
    const columns = header.replace(/^# /, '').split(',');
    const limit = (proxy: string) => {
      const row = rows.map((line) => line.split(',')).find((cells) => cells[0] === proxy && cells[1] === 'FRONTEND');
      if (!row) throw new Error(`show stat has no FRONTEND row for ${proxy}:\n${stat}`);
      return Number(row[columns.indexOf('slim')]);
    };
    const info = await adminCommand(env.rendered.adminSocket, 'show info');
    const processLimit = Number(/^Maxconn: (\d+)$/m.exec(info)![1]);
    expect(limit('nlb_health')).toBe(SMALL_LISTENER_LIMITS.healthMaxconn);
    expect(limit('metrics')).toBe(SMALL_LISTENER_LIMITS.metricsMaxconn);
    expect(limit('gateway')).toBe(processLimit);
  });

  test("an idle connection to the metrics listener is closed after its own 10 s, not the defaults' 30 s or Looker's hour", async () => {
    const socket = createConnection({ host: '127.0.0.1', port: env.ports.metrics });
    // Flowing, so that the gateway's 408 and its close are read (a paused socket never sees the end).
    socket.resume();
    const opened = Date.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('the metrics listener kept an idle connection open for 25 s')), 25_000);
      socket.on('close', () => {
        clearTimeout(deadline);
        resolve(Date.now() - opened);
      });
      socket.on('error', () => undefined);
    });
    expect(closedAfter).toBeGreaterThanOrEqual(SMALL_LISTENER_LIMITS.timeoutSeconds * 1000 - 500);
    expect(closedAfter).toBeLessThan(SMALL_LISTENER_LIMITS.timeoutSeconds * 1000 + 5000);
  }, 40_000);
});

describe('PROXY protocol and the access log', () => {
  test('the client address comes from the PROXY header, and a connection without one is refused', async () => {
    const response = await env.client({ sourceAddress: '203.0.113.5' }).request('/', { headers: { cookie: sessionCookies(await env.mint()) } });
    expect(response.json().headers['x-forwarded-for']).toBe('203.0.113.5');
    await expect(env.client({ proxyProtocol: false }).request('/')).rejects.toThrow();
  });

  test('one JSON line per request with the fields, and never a token or a cookie', async () => {
    const token = await env.mint({ ...DEFAULT_CLAIMS, sid: randomUUID() });
    const old = await refreshableSession(-100);
    const refresh = old.refresh;
    const ok = await env
      .client({ sourceAddress: '203.0.113.9' })
      .request('/looks/9?secret=query', { headers: { cookie: `${sessionCookies(token)}; looker_csrf=looker-cookie-value` } });
    const refreshed = await client.request('/x', { headers: { ...xhr, cookie: sessionCookies(old.token, refresh) } });
    expect([ok.status, refreshed.status]).toEqual([200, 200]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lines = env.logLines();
    const line = lines.find((l) => l.request_id === ok.headers['x-request-id']);
    expect(line).toMatchObject({
      client_ip: '203.0.113.9',
      method: 'GET',
      path: '/looks/9',
      status: 200,
      route: 'looker',
      decision: 'session-valid',
      user: 'user-123',
      auth: 'session',
      backend: 'looker',
      tls_version: expect.stringMatching(/^TLSv1\.[23]$/),
      frontend: 'gateway',
    });
    for (const field of ['time', 'time_total_ms', 'time_response_ms', 'time_active_ms', 'bytes_in', 'bytes_out', 'server', 'termination', 'client_cert_sha256'])
      expect(line).toHaveProperty(field);
    const refreshLine = lines.find((l) => l.request_id === refreshed.headers['x-request-id'] && l.frontend === 'gateway');
    expect(refreshLine).toMatchObject({ decision: 'session-refreshed', refresh: 'refreshed', user: 'user-123' });
    const relayLine = lines.find((l) => l.request_id === refreshed.headers['x-request-id'] && l.frontend === 'refresh_relay');
    expect(relayLine).toMatchObject({ decision: 'inline-refresh', status: 200, backend: 'auth_service' });
    const output = env.haproxy.output();
    for (const secret of [token, token.split('.')[2], refresh, 'looker-cookie-value', 'secret=query', String(refreshed.headers['set-cookie'])])
      expect(output).not.toContain(secret);
  });

  test('the health listener answers 200 to the NLB health check while Looker has a server, metrics are served on the private listener', async () => {
    const health = await nlbHealthCheck({ port: env.ports.health });
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok', looker: 'available' });
    const metrics = await (await fetch(`http://127.0.0.1:${env.ports.metrics}/metrics`)).text();
    expect(metrics).toMatch(/^haproxy_backend_active_servers\{proxy="looker"\} 2$/m);
    expect((await fetch(`http://127.0.0.1:${env.ports.metrics}/stats;csv`)).status).toBe(200);
  });
});
