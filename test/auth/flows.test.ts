/**
 * Full flows against the real OpenID provider (oidc-provider 9 over HTTPS), through the
 * local adapter, with a cookie jar: login, refresh with rotation, group changes,
 * revocation, denial, logout, the inline-refresh contract and the JWKS.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { CLAIMS, LOGIN_STATE_COOKIE, MAX_SESSION_TOKEN_BYTES, REFRESH_COOKIE, SESSION_COOKIE } from '../../lib/session-contract';
import { CookieJar, Harness, login, request, startHarness } from './support/harness';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.stop();
});

async function verifySession(token: string): Promise<JWTPayload> {
  // The JWKS endpoint is plain HTTP here (local adapter); jose's remote set fetches it.
  const jwks = createRemoteJWKSet(new URL(`${h.gatewayUrl}/oauth2/jwks.json`));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: `${h.gatewayUrl}/oauth2`, audience: 'looker-gateway', algorithms: ['ES256'] });
  expect(protectedHeader.typ).toBe('JWT');
  expect(protectedHeader.kid).toBe(h.signingKeys.keys.find((k) => k.status === 'current')!.kid);
  return payload;
}

async function inlineRefresh(jar: CookieJar) {
  return request(h.fetch, jar, `${h.gatewayUrl}/oauth2/session`, { method: 'POST', headers: { 'x-request-id': `req-${Math.random().toString(36).slice(2)}` } });
}

describe('login', () => {
  test('start -> IdP login -> callback sets a session whose claims carry the mapped roles, groups and attributes', async () => {
    const jar = new CookieJar();
    const { callback } = await login(h, jar, 'alice', '/dashboards/7?tab=1');
    expect(callback.status).toBe(302);
    expect(callback.location).toBe(`${h.gatewayUrl}/dashboards/7?tab=1`);
    const sessionCookie = callback.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    expect(sessionCookie).toMatch(/; Path=\/; Max-Age=\d+; Secure; HttpOnly; SameSite=Lax$/);
    expect(callback.setCookies.find((c) => c.startsWith(`${REFRESH_COOKIE}=`))).toMatch(/Secure; HttpOnly; SameSite=Lax$/);
    expect(callback.setCookies.find((c) => c.startsWith(`${LOGIN_STATE_COOKIE}=`))).toContain('Max-Age=0');

    const token = jar.get(h.gatewayUrl, SESSION_COOKIE)!;
    expect(Buffer.byteLength(token)).toBeLessThanOrEqual(MAX_SESSION_TOKEN_BYTES);
    const claims = await verifySession(token);
    expect(claims).toMatchObject({
      sub: 'alice',
      email: 'alice@emea.example.com',
      name: 'Alice Analyst',
      [CLAIMS.rolesCsv]: 'Viewer',
      [CLAIMS.groupsCsv]: 'Analysts',
      attr_team: 'analytics',
      attr_region: 'emea',
    });
    expect(typeof claims.sid).toBe('string');
    expect(claims.exp! - claims.iat!).toBe(600);
    expect(claims.nbf).toBe(claims.iat);
    // One form of each list (issue 16 item 3): the comma-separated claims HAProxy forwards.
    expect(claims).not.toHaveProperty('roles');
    expect(claims).not.toHaveProperty('groups');
    expect(claims).not.toHaveProperty('attrs');
    // Only what matched travels: the IdP group "everyone" matched no rule.
    expect(JSON.stringify(claims)).not.toContain('everyone');
  });

  test('a user matching no rule gets a clear 403 page, no session and no loop', async () => {
    const jar = new CookieJar();
    const { callback } = await login(h, jar, 'mallory');
    expect(callback.status).toBe(403);
    expect(callback.headers.get('content-type')).toContain('text/html');
    expect(callback.body).toContain('No access rule matches your account');
    expect(callback.location).toBeUndefined();
    expect(jar.get(h.gatewayUrl, SESSION_COOKIE)).toBeUndefined();
    expect(jar.get(h.gatewayUrl, REFRESH_COOKIE)).toBeUndefined();
    const deny = h.logs.audits().find((e) => e.event === 'deny' && (e.user as { sub?: string })?.sub === 'mallory');
    expect(deny).toMatchObject({ outcome: 'denied', reason: 'no-rule-matched', status: 403, matchedRules: [] });
  });
});

describe('refresh', () => {
  test('inline refresh: a new session and a new refresh cookie; the first cookie replayed at once gets that result without a second redemption', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    const firstRefreshCookie = jar.get(h.gatewayUrl, REFRESH_COOKIE)!;

    const refreshed = await inlineRefresh(jar);
    expect(refreshed.status).toBe(200);
    const body = JSON.parse(refreshed.body) as { session: string; expiresAt: number };
    const claims = await verifySession(body.session);
    expect(body.expiresAt).toBe(claims.exp);
    expect(refreshed.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`))).toContain(body.session);
    const secondRefreshCookie = jar.get(h.gatewayUrl, REFRESH_COOKIE)!;
    expect(secondRefreshCookie).toBeDefined();
    expect(secondRefreshCookie).not.toBe(firstRefreshCookie);

    // The browser's other requests still carry the first cookie for a moment: they get the
    // refresh just made (the IdP rotated the token once, and is not asked again).
    const refreshes = (await h.idp.stats()).refreshes;
    const replayJar = new CookieJar();
    replayJar.set(h.gatewayUrl, REFRESH_COOKIE, firstRefreshCookie);
    const replay = await inlineRefresh(replayJar);
    expect(replay.status).toBe(200);
    expect((await h.idp.stats()).refreshes).toBe(refreshes);
    expect(h.logs.audits().filter((e) => e.event === 'refresh').pop()).toMatchObject({ outcome: 'success', reason: 'refreshed-by-concurrent-request' });
    expect((await inlineRefresh(jar)).status).toBe(200);
  });

  test('a group removed at the IdP changes the roles at the next refresh', async () => {
    await h.idp.setUser('bob', { groups: ['looker-admins'] });
    const jar = new CookieJar();
    await login(h, jar, 'bob');
    expect((await verifySession(jar.get(h.gatewayUrl, SESSION_COOKIE)!))[CLAIMS.rolesCsv]).toBe('Admin');

    await h.idp.setUser('bob', { groups: ['looker-analysts'] });
    const refreshed = await inlineRefresh(jar);
    expect(refreshed.status).toBe(200);
    const claims = await verifySession(JSON.parse(refreshed.body).session);
    expect(claims[CLAIMS.rolesCsv]).toBe('Viewer');

    await h.idp.setUser('bob', { groups: ['nothing-mapped'] });
    const denied = await inlineRefresh(jar);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toMatchObject({ error: 'access_denied', reason: 'no-rule-matched' });
    expect(jar.get(h.gatewayUrl, SESSION_COOKIE)).toBeUndefined();
    await h.idp.setUser('bob', { groups: ['looker-admins'] });
  });

  test('a revoked grant forces a new login: 401 inline, 302 to start on navigation', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    const refreshCookie = jar.get(h.gatewayUrl, REFRESH_COOKIE)!;
    await h.idp.revoke('alice');

    const inline = await inlineRefresh(jar);
    expect(inline.status).toBe(401);
    expect(JSON.parse(inline.body).error).toBe('login_required');

    const navJar = new CookieJar();
    navJar.set(h.gatewayUrl, REFRESH_COOKIE, refreshCookie);
    const nav = await request(h.fetch, navJar, `${h.gatewayUrl}/oauth2/refresh?rd=${encodeURIComponent('/looks/3')}`, { headers: { accept: 'text/html' } });
    expect(nav.status).toBe(302);
    expect(nav.location).toBe(`${h.gatewayUrl}/oauth2/start?rd=%2Flooks%2F3`);
  });

  test('navigation refresh redirects back to rd with new cookies', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    jar.delete(h.gatewayUrl, SESSION_COOKIE);
    const nav = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/refresh?rd=${encodeURIComponent('/explore/x')}`, { headers: { accept: 'text/html' } });
    expect(nav.status).toBe(302);
    expect(nav.location).toBe(`${h.gatewayUrl}/explore/x`);
    expect(jar.get(h.gatewayUrl, SESSION_COOKIE)).toBeDefined();
  });

  test('navigation refresh of a session valid beyond the refresh window skips the IdP', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    const before = (await h.idp.stats()).refreshes;
    const nav = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/refresh?rd=${encodeURIComponent('/looks/1')}`, { headers: { accept: 'text/html' } });
    expect(nav.status).toBe(302);
    expect(nav.location).toBe(`${h.gatewayUrl}/looks/1`);
    expect(nav.setCookies).toEqual([]);
    expect((await h.idp.stats()).refreshes).toBe(before);
  });

  test('/oauth2/session without a refresh cookie is 401 JSON, and only POST is accepted', async () => {
    const jar = new CookieJar();
    const missing = await inlineRefresh(jar);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('content-type')).toContain('application/json');
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'login_required', reason: 'refresh-cookie-missing' });
    const get = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/session`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});

describe('logout', () => {
  test('GET shows a confirm page and changes nothing; a cross-site POST is refused', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    const page = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/logout`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<form method="post" action="/oauth2/logout">');
    expect(page.setCookies).toEqual([]);

    const crossSite = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/logout`, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site', origin: 'https://evil.test' } });
    expect(crossSite.status).toBe(403);
    const noOrigin = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/logout`, { method: 'POST' });
    expect(noOrigin.status).toBe(403);
    expect(jar.get(h.gatewayUrl, SESSION_COOKIE)).toBeDefined();
  });

  test('a same-origin POST clears the cookies and goes to the IdP end_session_endpoint; the refresh token is revoked', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    const refreshCookie = jar.get(h.gatewayUrl, REFRESH_COOKIE)!;
    const out = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/logout`, { method: 'POST', headers: { origin: h.gatewayUrl } });
    expect(out.status).toBe(303);
    const location = new URL(out.location!);
    expect(location.origin).toBe(h.idp.issuer);
    expect(location.pathname).toBe('/session/end');
    expect(location.searchParams.get('client_id')).toBe('looker-gateway');
    expect(location.searchParams.get('post_logout_redirect_uri')).toBe(`${h.gatewayUrl}/oauth2/logout?signed_out=1`);
    for (const name of [SESSION_COOKIE, REFRESH_COOKIE, LOGIN_STATE_COOKIE]) {
      expect(out.setCookies.find((c) => c.startsWith(`${name}=;`))).toContain('Max-Age=0');
    }
    const after = new CookieJar();
    after.set(h.gatewayUrl, REFRESH_COOKIE, refreshCookie);
    expect((await inlineRefresh(after)).status).toBe(401);
    expect(h.logs.audits().some((e) => e.event === 'logout' && e.reason === 'idp-end-session' && (e.user as { sub?: string })?.sub === 'alice')).toBe(true);
  });
});

describe('jwks and health', () => {
  test('jwks.json publishes the previous, current and next public keys only', async () => {
    const answer = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}/oauth2/jwks.json`);
    expect(answer.status).toBe(200);
    const { keys } = JSON.parse(answer.body) as { keys: Record<string, string>[] };
    expect(keys.map((k) => k.kid).sort()).toEqual(h.signingKeys.keys.map((k) => k.kid).sort());
    for (const key of keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(key.d).toBeUndefined();
    }
  });

  test('healthz answers 200 without calling the IdP', async () => {
    const answer = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}/oauth2/healthz`);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
  });
});

describe('an IdP that puts the groups in the ID token', () => {
  let idTokenHarness: Harness;
  beforeAll(async () => {
    idTokenHarness = await startHarness({ idTokenClaims: true });
  });
  afterAll(async () => {
    await idTokenHarness?.stop();
  });

  test('login and refresh read the claims from the (new) ID token without calling userinfo', async () => {
    const jar = new CookieJar();
    const { callback } = await login(idTokenHarness, jar, 'bob');
    expect(callback.status).toBe(302);
    await idTokenHarness.idp.setUser('bob', { groups: ['looker-analysts'] });
    const refreshed = await request(idTokenHarness.fetch, jar, `${idTokenHarness.gatewayUrl}/oauth2/session`, { method: 'POST' });
    expect(refreshed.status).toBe(200);
    expect(JSON.parse(Buffer.from(JSON.parse(refreshed.body).session.split('.')[1], 'base64url').toString())[CLAIMS.rolesCsv]).toBe('Viewer');
    const stats = await idTokenHarness.idp.stats();
    expect(stats.refreshes).toBe(1);
    expect(stats.userinfo).toBe(0);
  });
});
