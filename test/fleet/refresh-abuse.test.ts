/**
 * The inline refresh cannot be turned into an amplifier (real haproxy 3.0, rendered config,
 * the auth stand-in counting its calls): a validly signed expired token sent with random
 * refresh cookies costs at most the per-session limit of auth-service calls; the per-address
 * limit bounds many sessions from one address; only sessions expired less than
 * refresh.maxExpiredSeconds ago are refreshed inline (a navigation goes to the navigation
 * refresh, an XHR gets 401); the single-flight table is bounded; a refresh that comes back
 * with another sub or sid is refused. Answers that set refreshed cookies are not cacheable.
 */
import { randomUUID } from 'node:crypto';
import { ASSERTION_COOKIE, SESSION_COOKIE } from '../../core/session-contract';
import { DEFAULT_CLAIMS, GatewayEnv, REFRESHED_CLAIMS, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';
import { adminCommand } from '../../dev/haproxy';

const MAX_EXPIRED_SECONDS = 60;
const PER_ADDRESS = 5;
const PER_SESSION = 3;

let env: GatewayEnv;

beforeAll(async () => {
  env = await startGatewayEnv({
    lookerNodes: 1,
    overrides: (base) => ({
      ...base,
      session: { ...base.session, clockSkewSeconds: 1 },
      refresh: { maxExpiredSeconds: MAX_EXPIRED_SECONDS, perClientAddressPerMinute: PER_ADDRESS, perSessionPerMinute: PER_SESSION },
      revocation: { pollSeconds: 1 },
    }),
  });
});

afterAll(async () => {
  await env?.stop();
});

const xhr = { 'x-requested-with': 'XMLHttpRequest', accept: 'application/json' };
const navigation = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', accept: 'text/html' };

let addressCounter = 0;
/** A client address of its own, so the per-address limit of one test does not touch another. */
function freshAddress(): string {
  addressCounter += 1;
  return `198.51.${100 + Math.floor(addressCounter / 250)}.${(addressCounter % 250) + 1}`;
}

async function expiredSession(secondsAgo: number): Promise<{ token: string; refresh: string; sid: string }> {
  const sid = `sid-${randomUUID()}`;
  return { token: await env.mint({ ...DEFAULT_CLAIMS, sid }, { expiresIn: -secondsAgo }), refresh: env.refreshCookie({ sid }), sid };
}

describe('a refresh flood', () => {
  test('80 requests with one expired, validly signed token and random refresh cookies make at most the per-session limit of calls', async () => {
    const { token } = await expiredSession(10);
    const before = env.auth.sessionCalls().length;
    env.auth.delayMs = 100;
    try {
      const responses = await Promise.all(
        Array.from({ length: 80 }, () =>
          env
            .client({ sourceAddress: freshAddress() })
            .request('/api/internal/poll', { headers: { ...xhr, cookie: sessionCookies(token, `refresh-${randomUUID()}`) } }),
        ),
      );
      const calls = env.auth.sessionCalls().length - before;
      expect(calls).toBeGreaterThan(0);
      expect(calls).toBeLessThanOrEqual(PER_SESSION);
      expect(new Set(responses.map((r) => r.status))).toEqual(new Set([401]));
      const reasons = new Set(responses.map((r) => r.json().reason));
      expect(reasons).toEqual(new Set(['session expired and could not be refreshed', 'too many inline refreshes for this session or client address']));
    } finally {
      env.auth.delayMs = 0;
    }
  });

  test('many sessions from one client address make at most the per-address limit of calls; another address is not affected', async () => {
    const address = freshAddress();
    const attacker = env.client({ sourceAddress: address });
    const before = env.auth.sessionCalls().length;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      const { token } = await expiredSession(10);
      statuses.push((await attacker.request('/api/internal/poll', { headers: { ...xhr, cookie: sessionCookies(token, `refresh-${randomUUID()}`) } })).status);
    }
    expect(statuses).toEqual(Array(12).fill(401));
    expect(env.auth.sessionCalls().length - before).toBe(PER_ADDRESS);
    const legitimate = await expiredSession(10);
    const response = await env
      .client({ sourceAddress: freshAddress() })
      .request('/api/internal/poll', { headers: { ...xhr, cookie: sessionCookies(legitimate.token, legitimate.refresh) } });
    expect(response.status).toBe(200);
    expect(response.json().headers['x-forwarded-email']).toBe(REFRESHED_CLAIMS.email);
  });

  test('a navigation over the limit goes to the navigation refresh, which needs no login', async () => {
    const { token, refresh } = await expiredSession(10);
    const client = env.client({ sourceAddress: freshAddress() });
    for (let i = 0; i < PER_SESSION; i += 1) await client.request('/api/x', { headers: { ...xhr, cookie: sessionCookies(token, `refresh-${randomUUID()}`) } });
    const before = env.auth.sessionCalls().length;
    const response = await client.request('/dashboards/3?tab=1', { headers: { ...navigation, cookie: sessionCookies(token, refresh) } });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe(`/oauth2/refresh?rd=${encodeURIComponent('/dashboards/3?tab=1')}`);
    expect(env.auth.sessionCalls().length).toBe(before);
  });
});

describe('a session over its limit, whose browser keeps polling (found by the resilience rig: locked out for as long as it polled)', () => {
  test('only refreshes the auth service answered count: refused requests do not keep the counter up, so the session refreshes again once the minute has passed', async () => {
    const { token, sid } = await expiredSession(10);
    const client = env.client({ sourceAddress: freshAddress() });
    env.auth.refuse = true;
    try {
      // The auth service refuses (401): each of these is an answered call, up to the limit.
      for (let i = 0; i < PER_SESSION; i += 1) {
        const answer = await client.request('/api/poll', { headers: { ...xhr, cookie: sessionCookies(token, `refresh-${randomUUID()}`) } });
        expect(answer.json().reason).toBe('session expired and could not be refreshed');
      }
      // Polling on: refused without a call.
      const before = env.auth.sessionCalls().length;
      for (let i = 0; i < 10; i += 1) {
        const answer = await client.request('/api/poll', { headers: { ...xhr, cookie: sessionCookies(token, `refresh-${randomUUID()}`) } });
        expect(answer.json().reason).toBe('too many inline refreshes for this session or client address');
      }
      expect(env.auth.sessionCalls().length).toBe(before);
    } finally {
      env.auth.refuse = false;
    }
    // The per-session counters hold the calls started (0) and failed (1), not the requests refused:
    // they fall back below the limit 60 s after the first call, however long the browser keeps polling.
    const table = await adminCommand(env.rendered.adminSocket, `show table inline_refresh_by_session key ${sid}`);
    expect(table).toMatch(new RegExp(`key=${sid} .*gpc0_rate\\(60000\\)=${PER_SESSION} gpc1_rate\\(60000\\)=0\\b`));
  });

  test('calls that fail (API Gateway answers 503 while the auth service or the IdP is down) do not count: after the outage the session refreshes at once', async () => {
    const { token, sid } = await expiredSession(10);
    const client = env.client({ sourceAddress: freshAddress() });
    env.auth.sessionFailsWith = 503;
    try {
      for (let i = 0; i < PER_SESSION + 1; i += 1) {
        const answer = await client.request('/api/poll', { headers: { ...xhr, cookie: sessionCookies(token, env.refreshCookie({ sid })) } });
        expect(answer.json().reason).toBe('session expired and could not be refreshed');
      }
    } finally {
      env.auth.sessionFailsWith = undefined;
    }
    const answer = await client.request('/api/poll', { headers: { ...xhr, cookie: sessionCookies(token, env.refreshCookie({ sid })) } });
    expect(answer.status).toBe(200);
  });
});

describe('a refresh slower than the clock skew (found by the resilience rig: 401 "not valid yet" with a 1 s skew)', () => {
  test("the new token's nbf (the auth service's clock when it minted) is checked against the clock after the refresh", async () => {
    const { token, sid } = await expiredSession(10);
    // The stand-in mints with nbf = now, as the auth service does, 2.5 s after HAProxy first read the clock.
    env.auth.delayMs = 2500;
    try {
      const answer = await env
        .client({ sourceAddress: freshAddress() })
        .request('/api/poll', { headers: { ...xhr, cookie: sessionCookies(token, env.refreshCookie({ sid })) } });
      expect(answer.status).toBe(200);
      expect(answer.json().headers['x-forwarded-email']).toBe(REFRESHED_CLAIMS.email);
    } finally {
      env.auth.delayMs = 0;
    }
  });
});

describe('the window after expiry', () => {
  test(`a session expired more than ${MAX_EXPIRED_SECONDS} s ago is not refreshed inline: an XHR gets 401, a navigation the navigation refresh`, async () => {
    const old = await expiredSession(MAX_EXPIRED_SECONDS + 60);
    const before = env.auth.sessionCalls().length;
    const client = env.client({ sourceAddress: freshAddress() });
    const xhrResponse = await client.request('/api/internal/x', { headers: { ...xhr, cookie: sessionCookies(old.token, old.refresh) } });
    expect(xhrResponse.status).toBe(401);
    expect(xhrResponse.json().reason).toBe(`session expired more than ${MAX_EXPIRED_SECONDS} s ago: refreshed by a page load only`);
    const page = await client.request('/looks/5', { headers: { ...navigation, cookie: sessionCookies(old.token, old.refresh) } });
    expect(page.status).toBe(302);
    expect(page.headers.location).toBe('/oauth2/refresh?rd=%2Flooks%2F5');
    expect(env.auth.sessionCalls().length).toBe(before);
    // Without a refresh cookie there is nothing to refresh: the login.
    const noCookie = await client.request('/looks/5', { headers: { ...navigation, cookie: sessionCookies(old.token) } });
    expect(noCookie.headers.location).toBe('/oauth2/start?rd=%2Flooks%2F5');
  });

  test('inside the window it is refreshed inline', async () => {
    const recent = await expiredSession(MAX_EXPIRED_SECONDS - 20);
    const response = await env
      .client({ sourceAddress: freshAddress() })
      .request('/api/internal/x', { headers: { ...xhr, cookie: sessionCookies(recent.token, recent.refresh) } });
    expect(response.status).toBe(200);
    expect(response.json().headers['x-forwarded-email']).toBe(REFRESHED_CLAIMS.email);
  });
});

describe('the refreshed session must be the same session', () => {
  test.each([
    ['another sub', { sub: 'someone-else' }],
    ['another sid', { sid: 'another-session' }],
  ])('%s: refused, and its cookies are not set', async (_name, change) => {
    const { token, refresh } = await expiredSession(10);
    const before = env.auth.sessionCalls().length;
    env.refreshedClaims = { ...REFRESHED_CLAIMS, ...change };
    try {
      const response = await env
        .client({ sourceAddress: freshAddress() })
        .request('/api/internal/x', { headers: { ...xhr, cookie: sessionCookies(token, refresh) } });
      expect(response.status).toBe(401);
      expect(response.json().reason).toBe('the refreshed session has another sub or sid');
      expect(response.headers['set-cookie']).toBeUndefined();
      expect(env.auth.sessionCalls().length).toBe(before + 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(env.logLines().find((l) => l.request_id === response.headers['x-request-id'] && l.frontend === 'gateway')).toMatchObject({
        decision: 'refresh-refused',
        refresh: 'mismatch',
      });
    } finally {
      env.refreshedClaims = { ...REFRESHED_CLAIMS };
    }
  });
});

describe('a revoked session', () => {
  test('is never refreshed', async () => {
    const { token, refresh, sid } = await expiredSession(10);
    env.auth.revoke(sid, Math.floor(Date.now() / 1000) + 120);
    const client = env.client({ sourceAddress: freshAddress() });
    const deadline = Date.now() + 10_000;
    let response;
    for (;;) {
      const before = env.auth.sessionCalls().length;
      response = await client.request('/api/internal/x', { headers: { ...xhr, cookie: sessionCookies(token, env.refreshCookie({ sid })) } });
      if (response.json().reason === 'session revoked (logged out)') {
        expect(env.auth.sessionCalls().length).toBe(before);
        break;
      }
      if (Date.now() > deadline) throw new Error(`the revocation of ${sid} was not applied within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const page = await client.request('/x', { headers: { ...navigation, cookie: sessionCookies(token, refresh) } });
    expect(page.headers.location).toBe('/oauth2/start?rd=%2Fx');
  });
});

describe('the answer of a refresh', () => {
  test('is never stored by a cache: Cache-Control no-store and Vary: Cookie, over what Looker said', async () => {
    const { token, refresh } = await expiredSession(10);
    const client = env.client({ sourceAddress: freshAddress() });
    const refreshed = await client.request('/static/app.js', {
      headers: { 'x-test-cache-control': 'public, max-age=600', cookie: sessionCookies(token, refresh) },
    });
    expect(refreshed.status).toBe(200);
    expect((refreshed.headers['set-cookie'] ?? []).some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(true);
    expect(refreshed.headers['cache-control']).toBe('no-store');
    expect(String(refreshed.headers.vary)).toMatch(/(^|, )Cookie($|,)/);
    // Without a refresh, Looker's own caching headers pass untouched.
    const plain = await client.request('/static/app.js', {
      headers: { 'x-test-cache-control': 'public, max-age=600', cookie: sessionCookies(await env.mint()) },
    });
    expect(plain.headers['cache-control']).toBe('public, max-age=600');
    expect(plain.headers.vary).toBe('Accept-Encoding');
    expect(plain.headers['set-cookie']).toEqual(['looker_own=from-looker; Path=/; Secure']);
  });

  test('carries the new assertion: used for this request when the body has it, and set as a cookie either way', async () => {
    for (const inBody of [true, false]) {
      env.auth.assertionInBody = inBody;
      try {
        const old = await expiredSession(10);
        const oldAssertion = await env.mintAssertion({ ...DEFAULT_CLAIMS, sid: old.sid }, { expiresIn: 300 });
        const response = await env
          .client({ sourceAddress: freshAddress() })
          .request('/x', { headers: { cookie: sessionCookies(old.token, old.refresh, oldAssertion) } });
        expect(response.status).toBe(200);
        const cookie = (response.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${ASSERTION_COOKIE}=`));
        const newAssertion = /^[^=]+=([^;]+)/.exec(cookie ?? '')?.[1];
        expect(newAssertion).toBeDefined();
        expect({ inBody, forwarded: response.json().headers['x-gateway-assertion'] }).toEqual({ inBody, forwarded: inBody ? newAssertion : undefined });
      } finally {
        env.auth.assertionInBody = true;
      }
    }
  });
});

describe('the single-flight table', () => {
  let small: GatewayEnv;

  beforeAll(async () => {
    small = await startGatewayEnv({ lookerNodes: 1, overrides: (base) => ({ ...base, refresh: { maxTrackedRefreshes: 2, graceSeconds: 1 } }) });
  });

  afterAll(async () => {
    await small?.stop();
  });

  test('is bounded: when every entry is a running refresh, one more is refused with a reason; finished entries make room', async () => {
    const session = async () => {
      const sid = `sid-${randomUUID()}`;
      // Expired beyond the clock skew (30 s here): a refused refresh cannot fall back on the old token.
      return { token: await small.mint({ ...DEFAULT_CLAIMS, sid }, { expiresIn: -60 }), refresh: small.refreshCookie({ sid }) };
    };
    const sessions = await Promise.all([session(), session(), session()]);
    small.auth.delayMs = 1500;
    try {
      const running = sessions
        .slice(0, 2)
        .map((s) => small.client({ sourceAddress: freshAddress() }).request('/api/x', { headers: { ...xhr, cookie: sessionCookies(s.token, s.refresh) } }));
      await new Promise((resolve) => setTimeout(resolve, 500));
      const before = small.auth.sessionCalls().length;
      const third = await small
        .client({ sourceAddress: freshAddress() })
        .request('/api/x', { headers: { ...xhr, cookie: sessionCookies(sessions[2].token, sessions[2].refresh) } });
      expect(third.status).toBe(401);
      expect(third.json().reason).toBe('too many inline refreshes running on this gateway');
      expect(small.auth.sessionCalls().length).toBe(before);
      expect((await Promise.all(running)).map((r) => r.status)).toEqual([200, 200]);
    } finally {
      small.auth.delayMs = 0;
    }
    // Both entries are finished now: the oldest makes room for a new refresh.
    const retry = await small
      .client({ sourceAddress: freshAddress() })
      .request('/api/x', { headers: { ...xhr, cookie: sessionCookies(sessions[2].token, sessions[2].refresh) } });
    expect(retry.status).toBe(200);
  });
});
