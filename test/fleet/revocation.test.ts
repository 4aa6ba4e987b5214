/**
 * Logout across the fleet, on the real haproxy 3.0 with the rendered config and an auth
 * stand-in that follows the contract (core/session-contract.ts: POST /oauth2/logout revokes
 * the session's sid until its exp plus the skew; GET /oauth2/revocations answers the
 * complete RevocationList). Each HAProxy process polls the list through its relay socket and
 * keeps the revoked sids in an in-memory map, without reload: a revoked session is refused
 * (navigation -> login, XHR -> 401; a websocket already open is not closed: see the README),
 * a failed poll keeps the map,
 * entries leave at their `until`, and a reloaded process polls at once. Clients cannot read
 * the list.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { refreshRelaySocket } from '../../core/haproxy';
import { LUA_LOG_EVENTS } from '../../core/haproxy/lua';
import { AUTH_PATHS } from '../../core/session-contract';
import { DEFAULT_CLAIMS, GatewayEnv, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';

const POLL_SECONDS = 1;

let env: GatewayEnv;

beforeAll(async () => {
  env = await startGatewayEnv({ lookerNodes: 1, overrides: (base) => ({ ...base, revocation: { pollSeconds: POLL_SECONDS } }) });
});

afterAll(async () => {
  await env?.stop();
});

const xhr = { 'x-requested-with': 'XMLHttpRequest', accept: 'application/json' };
const navigation = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', accept: 'text/html' };

async function session(expiresIn = 600): Promise<{ token: string; sid: string }> {
  const sid = `sid-${randomUUID()}`;
  return { token: await env.mint({ ...DEFAULT_CLAIMS, sid }, { expiresIn }), sid };
}

async function status(target: GatewayEnv, token: string): Promise<{ status: number; reason?: string }> {
  const response = await target.client().request('/api/internal/me', { headers: { ...xhr, cookie: sessionCookies(token) } });
  return { status: response.status, reason: response.status === 200 ? undefined : response.json().reason };
}

/** Polls the gateway until `token` gets `expected`; fails after `seconds`, naming what it waited for. */
async function waitFor(target: GatewayEnv, token: string, expected: number, seconds: number, what: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    const seen = await status(target, token);
    if (seen.status === expected) return Date.now() - started;
    if (Date.now() - started > seconds * 1000) throw new Error(`${what}: still ${JSON.stringify(seen)} after ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('logout', () => {
  test('revokes the session on the gateway within the poll interval: XHR 401, navigation to the login', async () => {
    const { token } = await session();
    expect(await status(env, token)).toEqual({ status: 200 });
    const logout = await env.client().request(AUTH_PATHS.logout, { method: 'POST', headers: { cookie: sessionCookies(token) } });
    expect(logout.status).toBe(200);
    await waitFor(env, token, 401, POLL_SECONDS + 3, 'the logged-out session');
    expect(await status(env, token)).toEqual({ status: 401, reason: 'session revoked (logged out)' });
    const page = await env.client().request('/dashboards/1', { headers: { ...navigation, cookie: sessionCookies(token, env.refreshCookie()) } });
    expect(page.status).toBe(302);
    expect(page.headers.location).toBe('/oauth2/start?rd=%2Fdashboards%2F1');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(env.logLines().find((l) => l.request_id === page.headers['x-request-id'] && l.frontend === 'gateway')).toMatchObject({
      decision: 'session-revoked',
      reason: 'session revoked (logged out)',
    });
  });

  test('other sessions of the same user are not affected', async () => {
    const mine = await session();
    const other = await session();
    await env.client().request(AUTH_PATHS.logout, { method: 'POST', headers: { cookie: sessionCookies(mine.token) } });
    await waitFor(env, mine.token, 401, POLL_SECONDS + 3, 'the logged-out session');
    expect(await status(env, other.token)).toEqual({ status: 200 });
  });
});

describe('the revocation list', () => {
  test.each([
    AUTH_PATHS.revocations,
    `${AUTH_PATHS.revocations}/`,
    `${AUTH_PATHS.revocations}?x=1`,
    '/oauth2//revocations',
    '/oauth2/x/../revocations',
    '/oauth2/%72evocations',
    '/OAUTH2/Revocations',
  ])('is not served to clients: GET %s is 404', async (path) => {
    const response = await env.client().request(path, { headers: xhr });
    expect(response.status).toBe(404);
    expect(response.json()).toEqual({
      error: 'not_found',
      reason: 'the revocation list is only served to the gateway',
      requestId: response.headers['x-request-id'],
    });
    // Every call the stand-in saw on that path came from the relay, none from a client.
    expect(env.auth.revocationCalls().filter((call) => call.headers['x-forwarded-for'] !== undefined)).toEqual([]);
  });

  test('the relay socket serves the poll and the inline refresh only', async () => {
    const relay = (method: string, path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ socketPath: refreshRelaySocket(`${env.dir}/run`), method, path, headers: { host: 'relay' } }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await relay('GET', AUTH_PATHS.revocations)).toBe(200);
    expect(await relay('GET', AUTH_PATHS.start)).toBe(404);
    expect(await relay('POST', AUTH_PATHS.revocations)).toBe(404);
    expect(await relay('GET', AUTH_PATHS.session)).toBe(404);
  });

  test('a failed poll keeps the revoked sessions and is logged; the next good poll goes on', async () => {
    const { token, sid } = await session();
    env.auth.revoke(sid, Math.floor(Date.now() / 1000) + 300);
    await waitFor(env, token, 401, POLL_SECONDS + 3, 'the revoked session');
    const calls = env.auth.revocationCalls().length;
    env.auth.revocationsFailWith = 503;
    try {
      const deadline = Date.now() + (POLL_SECONDS + 3) * 1000;
      while (env.auth.revocationCalls().length < calls + 2) {
        if (Date.now() > deadline) throw new Error('the gateway did not poll twice while the list failed');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await status(env, token)).toEqual({ status: 401, reason: 'session revoked (logged out)' });
      const failures = env.logLines().filter((l) => l.event === LUA_LOG_EVENTS.revocationPoll && l.outcome === 'failure');
      expect(failures[failures.length - 1]).toMatchObject({ status: 503, reason: 'the auth service answered 503' });
    } finally {
      env.auth.revocationsFailWith = undefined;
    }
    const revokedLater = await session();
    env.auth.revoke(revokedLater.sid, Math.floor(Date.now() / 1000) + 300);
    await waitFor(env, revokedLater.token, 401, POLL_SECONDS + 3, 'a session revoked after the failures');
  });

  test('an entry leaves the map at its "until", even while polls fail', async () => {
    const { token, sid } = await session();
    env.auth.revoke(sid, Math.floor(Date.now() / 1000) + 3);
    await waitFor(env, token, 401, POLL_SECONDS + 3, 'the revoked session');
    env.auth.revocationsFailWith = 500;
    try {
      // The stand-in lists it until then, as the contract says; a real token would have expired by now.
      await waitFor(env, token, 200, 3 + POLL_SECONDS + 3, 'the entry past its until');
    } finally {
      env.auth.revocationsFailWith = undefined;
    }
  });

  test('a long list (2,000 sessions, about 110 kB) is read whole', async () => {
    const until = Math.floor(Date.now() / 1000) + 300;
    const sessions = await Promise.all(Array.from({ length: 3 }, () => session()));
    for (let i = 0; i < 2000; i += 1) env.auth.revoke(`bulk-${i}-${randomUUID()}`, until);
    env.auth.revoke(sessions[2].sid, until);
    for (const s of sessions.slice(0, 2)) env.auth.revoke(s.sid, until);
    for (const s of sessions) await waitFor(env, s.token, 401, POLL_SECONDS + 5, `session ${s.sid} of the long list`);
  });
});

describe('websockets of a revoked session (the documented limit)', () => {
  function openTunnel(token: string): Promise<Socket> {
    return env
      .client()
      .upgrade('/ws', {
        upgrade: 'websocket',
        cookie: sessionCookies(token),
        'sec-websocket-key': Buffer.from(randomUUID().slice(0, 16)).toString('base64'),
        'sec-websocket-version': '13',
      })
      .then(({ socket }) => socket);
  }

  function echo(socket: Socket, text: string): Promise<string> {
    return new Promise((resolve) => {
      socket.once('data', (data: Buffer) => resolve(data.toString()));
      socket.write(text);
    });
  }

  test('a tunnel opened before the logout stays open (HAProxy 3.0 cannot end one stream by rule); a new one is refused', async () => {
    const revoked = await session();
    const tunnel = await openTunnel(revoked.token);
    expect(await echo(tunnel, 'before')).toBe('before');
    env.auth.revoke(revoked.sid, Math.floor(Date.now() / 1000) + 300);
    await waitFor(env, revoked.token, 401, POLL_SECONDS + 3, 'the revoked session');
    expect(await echo(tunnel, 'after')).toBe('after');
    tunnel.destroy();
    await expect(openTunnel(revoked.token)).rejects.toThrow('expected 101, got 401');
  });
});

describe('a reloaded gateway', () => {
  let slow: GatewayEnv;

  beforeAll(async () => {
    // Polls once a minute: only the poll a new process makes at once can see a revocation quickly.
    slow = await startGatewayEnv({ lookerNodes: 1, overrides: (base) => ({ ...base, revocation: { pollSeconds: 60 } }) });
  });

  afterAll(async () => {
    await slow?.stop();
  });

  test('polls at once, so it starts with the revocations the old process had', async () => {
    const sid = `sid-${randomUUID()}`;
    const token = await slow.mint({ ...DEFAULT_CLAIMS, sid });
    // The first process polled at start; the revocation comes after that poll.
    const deadline = Date.now() + 5000;
    while (slow.auth.revocationCalls().length === 0) {
      if (Date.now() > deadline) throw new Error('the first process did not poll within 5 s of its start');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await status(slow, token)).toEqual({ status: 200 });
    slow.auth.revoke(sid, Math.floor(Date.now() / 1000) + 300);
    const calls = slow.auth.revocationCalls().length;
    process.kill(slow.haproxy.process.pid!, 'SIGUSR2');
    const reloaded = Date.now();
    while (slow.auth.revocationCalls().length === calls) {
      if (Date.now() - reloaded > 10_000) throw new Error('the reloaded process did not poll within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The old process may still accept connections for a moment after the new one started;
    // either way the revocation shows long before the 60 s poll would have brought it.
    await waitFor(slow, token, 401, 30, 'the revoked session after the reload');
  });
});
