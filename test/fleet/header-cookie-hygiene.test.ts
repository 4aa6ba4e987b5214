/**
 * Header and cookie edge cases on the real haproxy 3.0 with the rendered config:
 * - identity headers spelled with "_" (X_Looker_Roles, x_forwarded_user, X-Looker_Roles)
 *   never reach Looker: servers that fold "_" into "-" (Rack, CGI) would read them as the
 *   real header;
 * - a Connection header naming a protected header (the hop-by-hop trick: the next hop would
 *   drop the header the gateway set) is refused, and a client cannot pass one that way;
 * - Cookie header lines, not comma-separated values, are counted;
 * - every spelling of a gateway cookie that HAProxy's cookie reader accepts (after "," or
 *   ";", spaces or tabs around the name) is taken out before Looker, so a cookie read as the
 *   session never reaches Looker; a generated corpus of cookie shapes checks it.
 */
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { ASSERTION_COOKIE, LOGIN_STATE_COOKIE, REFRESH_COOKIE, SESSION_COOKIE } from '../../core/session-contract';
import { DEFAULT_CLAIMS, GatewayEnv, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';
import { GatewayClient } from '../../dev/proxy-client';

let env: GatewayEnv;
let client: GatewayClient;
let token: string;

beforeAll(async () => {
  env = await startGatewayEnv({ lookerNodes: 1 });
  client = env.client();
  token = await env.mint();
});

afterAll(async () => {
  await env?.stop();
});

function lookerRequestCount(): number {
  return env.looker.reduce((n, node) => n + node.requests.length, 0);
}

describe('identity headers spelled with "_"', () => {
  const spoofed: Record<string, string> = {
    X_Looker_Roles: 'admin',
    x_forwarded_user: 'admin',
    'X-Looker_Roles': 'admin',
    'x_looker-attr_region': 'everywhere',
    X_Forwarded_Email: 'admin@example.com',
    x_gateway_assertion: 'forged',
    X_Gateway_Auth: 'client-certificate',
    x_request_id: 'client-chosen',
    'X-Auth_Request-User': 'admin',
    remote_user: 'admin',
    X_Real_IP: '10.9.9.9',
    x_forwarded_for: '10.9.9.9',
  };
  const underscored = Object.keys(spoofed).map((name) => name.toLowerCase());

  test('never reach Looker next to the real headers (HTTP/1.1)', async () => {
    const response = await client.request('/', { headers: { ...spoofed, cookie: sessionCookies(token) } });
    expect(response.status).toBe(200);
    const headers = response.json().headers;
    for (const name of underscored) expect({ name, value: headers[name] }).toEqual({ name, value: undefined });
    expect(headers).toMatchObject({
      'x-looker-roles': 'viewer,explorer',
      'x-forwarded-user': 'user-123',
      'x-forwarded-for': '192.0.2.10',
      'x-gateway-auth': 'session',
    });
  });

  test('never reach Looker over HTTP/2 either', async () => {
    const lower = Object.fromEntries(Object.entries(spoofed).map(([name, value]) => [name.toLowerCase(), value]));
    const response = await client.http2Request('/', { ...lower, cookie: sessionCookies(token) });
    expect(response.status).toBe(200);
    const headers = response.json().headers;
    for (const name of underscored) expect({ name, value: headers[name] }).toEqual({ name, value: undefined });
    expect(headers['x-looker-roles']).toBe('viewer,explorer');
  });

  test('never reach the auth service', async () => {
    const response = await client.request('/oauth2/start', { headers: spoofed });
    expect(response.status).toBe(200);
    const seen = env.auth.calls[env.auth.calls.length - 1].headers;
    for (const name of underscored) expect({ name, value: seen[name] }).toEqual({ name, value: undefined });
  });
});

describe('a Connection header that names a protected header', () => {
  const naming = [
    'X-Looker-Roles',
    'keep-alive, x_forwarded_user',
    'close, X-Request-Id',
    'X-Gateway-Assertion, foo',
    'x-forwarded-for',
    'X_Looker_Attr_Region',
  ];

  test.each(naming)('Connection: %s is refused with 400 and a reason, and nothing reaches Looker', async (value) => {
    const before = lookerRequestCount();
    const response = await client.request('/', { headers: { connection: value, 'x-looker-roles': 'admin', cookie: sessionCookies(token) } });
    expect(response.status).toBe(400);
    expect(response.json()).toEqual({
      error: 'bad_request',
      reason: 'the Connection header names a protected header',
      requestId: response.headers['x-request-id'],
    });
    expect(lookerRequestCount()).toBe(before);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(env.logLines().find((l) => l.request_id === response.headers['x-request-id'])).toMatchObject({
      status: 400,
      decision: 'bad-request',
      reason: 'the Connection header names a protected header',
    });
  });

  test("other Connection values pass, and the gateway's own identity headers arrive with them", async () => {
    for (const value of ['keep-alive', 'close', 'X-Custom-Hop']) {
      const response = await client.request('/', { headers: { connection: value, 'x-looker-roles': 'admin', cookie: sessionCookies(token) } });
      expect({ value, status: response.status }).toEqual({ value, status: 200 });
      const headers = response.json().headers;
      expect(headers['x-looker-roles']).toBe('viewer,explorer');
      expect(String(headers.connection ?? '')).not.toMatch(/looker|forwarded|gateway|request-id/i);
    }
  });
});

describe('cookies', () => {
  test('a comma inside a cookie value is not a second Cookie line (no lock-out by a sibling domain)', async () => {
    const response = await client.request('/', { headers: { cookie: `lk_pref=a,b,c; ${SESSION_COOKIE}=${token}; other="x,y"` } });
    expect(response.status).toBe(200);
    expect(response.json().headers).toMatchObject({ 'x-forwarded-user': 'user-123', cookie: 'lk_pref=a,b,c; other="x,y"' });
  });

  test('two session cookies in one line are refused', async () => {
    const response = await client.request('/', {
      headers: { 'x-requested-with': 'XMLHttpRequest', cookie: `${SESSION_COOKIE}=${token}; ${SESSION_COOKIE}=${token}` },
    });
    expect(response.status).toBe(401);
    expect(response.json().reason).toBe('more than one session cookie');
  });

  test('two Cookie header lines are still refused', async () => {
    const response = await client.request('/', {
      rawHeaders: ['x-requested-with', 'XMLHttpRequest', 'cookie', `${SESSION_COOKIE}=${token}`, 'cookie', 'lk=1,2'],
    });
    expect(response.status).toBe(400);
    expect(response.json().reason).toBe('more than one Cookie header line');
  });

  test('a session cookie after a tab is read as the session and taken out before Looker', async () => {
    const response = await client.request('/', { headers: { cookie: `lk=1;\t${SESSION_COOKIE}=${token}` } });
    expect(response.status).toBe(200);
    const echoed = response.json();
    expect(echoed.headers['x-forwarded-user']).toBe('user-123');
    expect(echoed.headers.cookie).toBe('lk=1');
  });

  test('after a comma, with spaces before "=", in another case: never passed to Looker', async () => {
    for (const cookie of [
      `lk=1, ${SESSION_COOKIE}=${token}`,
      `lk=1,${SESSION_COOKIE} =${token}`,
      `${SESSION_COOKIE}= ${token}, lk=1`,
      `lk=1; ${SESSION_COOKIE.toLowerCase()}=${token}; ${SESSION_COOKIE}=${token}`,
    ]) {
      const response = await client.request('/', { headers: { cookie } });
      expect({ cookie, status: response.status }).toEqual({ cookie, status: 200 });
      const forwarded = String(response.json().headers.cookie ?? '');
      expect({ cookie, forwarded: forwarded.includes(token) }).toEqual({ cookie, forwarded: false });
    }
  });

  describe('a generated corpus of cookie shapes', () => {
    const GATEWAY_COOKIE_NAMES = [SESSION_COOKIE, REFRESH_COOKIE, ASSERTION_COOKIE, LOGIN_STATE_COOKIE];
    // Separators and whitespace HAProxy's reader skips, and some it does not (vertical tab,
    // form feed): the strip must cover at least every shape the reader accepts.
    const shape = fc.record({
      name: fc.constantFrom(...GATEWAY_COOKIE_NAMES),
      casing: fc.constantFrom('exact', 'lower', 'upper'),
      before: fc.constantFrom('', ' ', '  ', '\t', ' \t', '\v', '\f'),
      separator: fc.constantFrom('; ', ';', ', ', ',', ' ;', ';;'),
      beforeEquals: fc.constantFrom('', ' ', '\t'),
      afterEquals: fc.constantFrom('', ' '),
      position: fc.constantFrom('first', 'middle', 'last'),
    });
    const shapes = fc.sample(shape, { seed: 1125, numRuns: 120 });

    test('no gateway cookie value a request carries ever reaches Looker', async () => {
      let readAsSession = 0;
      for (const s of shapes) {
        const value = s.name === SESSION_COOKIE ? await env.mint({ ...DEFAULT_CLAIMS, sid: randomUUID() }) : `secret-${randomUUID()}`;
        const name = s.casing === 'lower' ? s.name.toLowerCase() : s.casing === 'upper' ? s.name.toUpperCase() : s.name;
        const odd = `${s.before}${name}${s.beforeEquals}=${s.afterEquals}${value}`;
        // A valid session in the usual form too, unless the odd one is the session itself.
        const usual = s.name === SESSION_COOKIE ? [] : [`${SESSION_COOKIE}=${token}`];
        const parts =
          s.position === 'first' ? [odd, 'lk_a=1', ...usual] : s.position === 'middle' ? ['lk_a=1', odd, ...usual, 'lk_b=2'] : ['lk_a=1', ...usual, odd];
        const cookie = parts.join(s.separator);
        const response = await client.rawRequest('GET', '/shape', [`Cookie: ${cookie}`, 'X-Requested-With: XMLHttpRequest']);
        const shown = JSON.stringify(cookie);
        expect({ shown, status: response.status === 200 || response.status === 401 }).toEqual({ shown, status: true });
        if (response.status === 200) {
          const echoed = JSON.parse(response.body.slice(response.body.indexOf('{'), response.body.lastIndexOf('}') + 1));
          expect({ shown, leaked: String(echoed.headers.cookie ?? '').includes(value) || String(echoed.headers.cookie ?? '').includes(token) }).toEqual({
            shown,
            leaked: false,
          });
          if (s.name === SESSION_COOKIE) readAsSession += 1;
        }
      }
      // The corpus has shapes HAProxy reads as the session (so the strip is really tested).
      expect(readAsSession).toBeGreaterThan(5);
    });
  });
});
