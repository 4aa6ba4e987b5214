/**
 * Logout ends the session (issue 11 item 8), against the real OpenID provider and the
 * DynamoDB model as the deployed function uses it: the sid is revoked for the fleet
 * (GET /oauth2/revocations) until the last token that can carry it has expired, every
 * later refresh of it is refused (inline and navigation) by any instance of the service,
 * and the refresh token is revoked at the IdP (RFC 7009).
 */
import { jwtDecrypt, decodeJwt } from 'jose';
import * as client from 'openid-client';
import { ASSERTION_COOKIE, AUTH_PATHS, REFRESH_COOKIE, SESSION_COOKIE, type RevocationList } from '../../lib/session-contract';
import { REVOCATION_TABLE } from '../../lib/auth/revocation-table';
import { openSecrets } from '../../lambda/auth/session-store';
import { CLIENT_ID, CLIENT_SECRET, CookieJar, Harness, login, request, REVOCATION_TABLE_NAME, startHarness, type HttpAnswer } from './support/harness';

/** The service clock runs `offsetSeconds` ahead of the wall clock (the IdP's stays real). */
const clock = { offsetSeconds: 0 };
const now = () => Date.now() + clock.offsetSeconds * 1000;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ revocationTable: true, now });
});

afterAll(async () => {
  await h?.stop();
});

afterEach(async () => {
  clock.offsetSeconds = 0;
  await h.idp.delay(0);
});

const inlineRefresh = (jar: CookieJar, base = h.gatewayUrl): Promise<HttpAnswer> => request(h.fetch, jar, `${base}${AUTH_PATHS.session}`, { method: 'POST', headers: { 'x-request-id': `r-${Math.random().toString(36).slice(2)}` } });
const logout = (jar: CookieJar, base = h.gatewayUrl): Promise<HttpAnswer> => request(h.fetch, jar, `${base}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl, 'sec-fetch-site': 'same-origin' } });
async function revocationList(base = h.gatewayUrl): Promise<RevocationList> {
  const answer = await request(h.fetch, new CookieJar(), `${base}${AUTH_PATHS.revocations}`);
  expect(answer.status).toBe(200);
  return JSON.parse(answer.body) as RevocationList;
}

/** A copy of the browser's cookies, as a thief would hold them, for `base` (another instance has another port). */
function copyOf(jar: CookieJar, base = h.gatewayUrl, names = [SESSION_COOKIE, REFRESH_COOKIE, ASSERTION_COOKIE]): CookieJar {
  const copy = new CookieJar();
  for (const name of names) {
    const value = jar.get(h.gatewayUrl, name);
    if (value) copy.set(base, name, value);
  }
  return copy;
}

/** Polls until `check` holds; fails with `what` after the deadline. */
async function waitFor(what: string, check: () => boolean, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('logout, then a replay of the refresh cookie is refused with session-revoked, inline and on navigation, without calling the IdP', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  const stolen = copyOf(jar);
  const sid = decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!).sid as string;

  const out = await logout(jar);
  expect(out.status).toBe(303);
  for (const name of [SESSION_COOKIE, REFRESH_COOKIE, ASSERTION_COOKIE]) expect(out.setCookies.find((c) => c.startsWith(`${name}=;`))).toContain('Max-Age=0');
  const refreshesBefore = (await h.idp.stats()).refreshes + (await h.idp.stats()).failedRefreshes;

  const inline = await inlineRefresh(copyOf(stolen));
  expect(inline.status).toBe(401);
  expect(JSON.parse(inline.body)).toMatchObject({ error: 'login_required', reason: 'session-revoked' });
  const nav = await request(h.fetch, copyOf(stolen), `${h.gatewayUrl}${AUTH_PATHS.refresh}?rd=${encodeURIComponent('/looks/1')}`, { headers: { accept: 'text/html' } });
  expect(nav.status).toBe(302);
  expect(nav.location).toBe(`${h.gatewayUrl}${AUTH_PATHS.start}?rd=%2Flooks%2F1`);
  const stats = await h.idp.stats();
  expect(stats.refreshes + stats.failedRefreshes).toBe(refreshesBefore);

  const audits = h.logs.audits().filter((e) => e.sessionId === sid);
  expect(audits.find((e) => e.event === 'logout')).toMatchObject({ outcome: 'success', status: 303, user: { sub: 'alice' } });
  expect(audits.filter((e) => e.event === 'refresh' && e.reason === 'session-revoked')).toHaveLength(2);
});

test('logout ends the session even when the IdP cannot revoke the refresh token in time (the old logout let the replay refresh)', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  const stolen = copyOf(jar);
  // RFC 7009 revocation at the IdP times out: the refresh token stays valid there.
  await h.idp.delay(5000, ['/token/revocation']);
  expect((await logout(jar)).status).toBe(303);
  await h.idp.delay(0);
  const replay = await inlineRefresh(stolen);
  expect({ status: replay.status, reason: JSON.parse(replay.body).reason }).toEqual({ status: 401, reason: 'session-revoked' });
  expect(h.logs.audits().some((e) => e.event === 'logout' && String(e.detail).includes('refresh token revocation at the IdP: failed'))).toBe(true);
});

test('the refresh token is revoked at the IdP (RFC 7009) and then fails there', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'bob');
  const key = Buffer.from(h.cookieKeys.keys.find((k) => k.status === 'current')!.k, 'base64url');
  const { payload } = await jwtDecrypt(jar.get(h.gatewayUrl, REFRESH_COOKIE)!, key);
  // The refresh token is in the session's record, under the key the refresh cookie holds.
  const record = h.dynamo!.scanAll(REVOCATION_TABLE_NAME).find((item) => item[REVOCATION_TABLE.partitionKey].S === `sid#${payload.sid as string}` && item[REVOCATION_TABLE.sortKey].S === 'refresh')!;
  const secrets = await openSecrets(record.sealed.S!, payload.sid as string, payload.k as string);
  const revocationsBefore = (await h.idp.stats()).revocations;
  expect((await logout(jar)).status).toBe(303);
  expect((await h.idp.stats()).revocations).toBe(revocationsBefore + 1);
  // Straight to the IdP's token endpoint with the revoked refresh token.
  const config = await client.discovery(new URL(h.idp.issuer), CLIENT_ID, CLIENT_SECRET, client.ClientSecretBasic(CLIENT_SECRET), { [client.customFetch]: h.fetch });
  config[client.customFetch] = h.fetch;
  await expect(client.refreshTokenGrant(config, secrets!.refreshToken!)).rejects.toMatchObject({ error: 'invalid_grant' });
  // ...and the record no longer holds it.
  const after = h.dynamo!.scanAll(REVOCATION_TABLE_NAME).find((item) => item[REVOCATION_TABLE.partitionKey].S === `sid#${payload.sid as string}` && item[REVOCATION_TABLE.sortKey].S === 'refresh')!;
  expect(after.sealed).toBeUndefined();
});

test('the revocation list names the sid until the last token that can carry it has expired (+ skew), then not; the table keeps the item until TTL deletion', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  const sid = decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!).sid as string;
  const loggedOutAt = Math.floor(now() / 1000);
  expect((await logout(jar)).status).toBe(303);

  const list = await revocationList();
  const entry = list.revoked.find((e) => e.sid === sid);
  // Session lifetime 600 s + clock skew 30 s after the logout (its second, or the next one).
  expect(entry!.until - loggedOutAt).toBeGreaterThanOrEqual(630);
  expect(entry!.until - loggedOutAt).toBeLessThanOrEqual(631);
  expect(list.asOf).toBeGreaterThanOrEqual(loggedOutAt);
  expect(list.revoked.every((e) => e.until > list.asOf)).toBe(true);

  clock.offsetSeconds = entry!.until - 1 - Math.floor(Date.now() / 1000);
  expect((await revocationList()).revoked.map((e) => e.sid)).toContain(sid);
  clock.offsetSeconds = entry!.until - Math.floor(Date.now() / 1000);
  expect((await revocationList()).revoked.map((e) => e.sid)).not.toContain(sid);
  // DynamoDB's TTL has not run: the item is still there, and the service filtered it.
  expect(h.dynamo!.scanAll(REVOCATION_TABLE_NAME).some((item) => item.sid?.S === sid && item[REVOCATION_TABLE.sortKey].S !== 'session')).toBe(true);
  // Refreshes stay refused after the listing ends, for as long as the refresh cookie lives.
  const session = h.dynamo!.scanAll(REVOCATION_TABLE_NAME).find((item) => item[REVOCATION_TABLE.partitionKey].S === `sid#${sid}` && item[REVOCATION_TABLE.sortKey].S === 'session')!;
  expect(Number(session.refuseRefreshUntil.N)).toBeGreaterThan(entry!.until + 40_000);
});

test('logout at one instance of the service is seen by another: refresh refused and sid listed there', async () => {
  const other = await h.startAnother({});
  try {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    const stolen = copyOf(jar);
    const sid = decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!).sid as string;
    // The other instance refreshes fine before the logout...
    const before = await inlineRefresh(copyOf(stolen, other.url), other.url);
    expect(before.status).toBe(200);
    stolen.store(h.gatewayUrl, before.setCookies);
    expect((await logout(jar)).status).toBe(303);
    // ...and refuses right after it.
    const after = await inlineRefresh(copyOf(stolen, other.url), other.url);
    expect({ status: after.status, reason: JSON.parse(after.body).reason }).toEqual({ status: 401, reason: 'session-revoked' });
    expect((await revocationList(other.url)).revoked.map((e) => e.sid)).toContain(sid);
  } finally {
    await other.stop();
  }
});

test('a logout recorded while a refresh is at the IdP: the token minted meanwhile is never handed out', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'bob');
  const stolen = copyOf(jar);
  const sid = decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!).sid as string;
  await h.idp.delay(1200, ['/token']);
  const readsOfSid = () => h.dynamo!.calls.filter((c) => c.operation === 'GetItem' && JSON.stringify(c.input.Key).includes(sid)).length;
  const readsBefore = readsOfSid();
  const refreshing = inlineRefresh(stolen);
  // The refresh has checked the store and is now waiting at the IdP.
  await waitFor('the in-flight refresh to check the revocation store', () => readsOfSid() > readsBefore);
  // Signed out where only the session cookie is left (so the IdP grant stays: the refresh completes there).
  expect((await logout(copyOf(jar, h.gatewayUrl, [SESSION_COOKIE]))).status).toBe(303);
  const refreshed = await refreshing;
  expect({ status: refreshed.status, reason: JSON.parse(refreshed.body).reason }).toEqual({ status: 401, reason: 'session-revoked' });
  expect(refreshed.body).not.toContain('"session"');
});

test('a navigation refresh with a current session of a revoked sid is not sent straight back: it goes to the login', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  const stolen = copyOf(jar);
  expect((await logout(jar)).status).toBe(303);
  const nav = await request(h.fetch, stolen, `${h.gatewayUrl}${AUTH_PATHS.refresh}?rd=%2Fx`, { headers: { accept: 'text/html' } });
  expect(nav.status).toBe(302);
  expect(nav.location).toBe(`${h.gatewayUrl}${AUTH_PATHS.start}?rd=%2Fx`);
});

test('when the store cannot record the logout: 503 with the reason, the cookies kept, nothing at the IdP; trying again works', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  const revocations = (await h.idp.stats()).revocations;
  h.dynamo!.injectFailure({ operation: 'PutItem' });
  const failed = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl, accept: 'text/html' } });
  expect(failed.status).toBe(503);
  expect(failed.body).toContain('you are still signed in');
  expect(failed.body).toContain('revocation-store-unavailable');
  expect(failed.setCookies).toEqual([]);
  expect((await h.idp.stats()).revocations).toBe(revocations);
  expect(h.logs.audits().some((e) => e.event === 'logout' && e.outcome === 'failure' && e.reason === 'revocation-store-unavailable' && e.status === 503)).toBe(true);
  expect((await logout(jar)).status).toBe(303);
});

test('a refresh or list the store cannot answer is 503 with a reason, never a refresh that skipped the check', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  h.dynamo!.injectFailure({ operation: 'GetItem' });
  const refresh = await inlineRefresh(jar);
  expect(refresh.status).toBe(503);
  expect(JSON.parse(refresh.body)).toMatchObject({ error: 'temporarily_unavailable', reason: 'revocation-store-unavailable' });
  h.dynamo!.injectFailure({ operation: 'Query' });
  const list = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}${AUTH_PATHS.revocations}`);
  expect(list.status).toBe(503);
  expect(JSON.parse(list.body)).toMatchObject({ reason: 'revocation-store-unavailable' });
  expect((await inlineRefresh(jar)).status).toBe(200);
});

test('/oauth2/revocations takes GET and HEAD only, and is never cached', async () => {
  const post = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}${AUTH_PATHS.revocations}`, { method: 'POST' });
  expect(post.status).toBe(405);
  expect(post.headers.get('allow')).toBe('GET, HEAD');
  const get = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}${AUTH_PATHS.revocations}`);
  expect(get.headers.get('cache-control')).toBe('no-store');
  expect(get.headers.get('content-type')).toContain('application/json');
});
