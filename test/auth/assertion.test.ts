/**
 * The upstream assertion (issue 11 item 6): at login and at every refresh the service
 * mints, next to the session, a second compact JWS with the same claims, key and
 * lifetime but its own `typ` and `aud`, set as its own `__Host-` cookie and returned in
 * the inline refresh body; the service's own session checks refuse it as a session.
 */
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  ASSERTION_COOKIE,
  ASSERTION_TOKEN_TYPE,
  assertionAudience,
  AUTH_PATHS,
  REFRESH_COOKIE,
  SESSION_COOKIE,
  SESSION_TOKEN_TYPE,
  type InlineRefreshResponse,
} from '../../core/session-contract';
import { CookieJar, Harness, login, loginAt, request, startHarness } from './support/harness';

let h: Harness;
const AUDIENCE = 'looker-gateway';
/** The service clock runs this far ahead of the wall clock. */
let offsetSeconds = 0;

beforeAll(async () => {
  h = await startHarness({ revocationTable: true, now: () => Date.now() + offsetSeconds * 1000 });
});

afterEach(() => {
  offsetSeconds = 0;
});

afterAll(async () => {
  await h?.stop();
});

function cookieLine(setCookies: string[], name: string): string {
  const line = setCookies.find((c) => c.startsWith(`${name}=`));
  if (!line) throw new Error(`no Set-Cookie for ${name} in ${setCookies.map((c) => c.split('=')[0]).join(', ')}`);
  return line;
}

/** The attributes of a Set-Cookie line, without the value. */
const attributes = (line: string) =>
  line
    .split(';')
    .slice(1)
    .map((a) => a.trim());

async function verifyAssertion(token: string) {
  const jwks = createRemoteJWKSet(new URL(`${h.gatewayUrl}${AUTH_PATHS.jwks}`));
  return jwtVerify(token, jwks, {
    issuer: `${h.gatewayUrl}/oauth2`,
    audience: assertionAudience(AUDIENCE),
    algorithms: ['ES256'],
    typ: ASSERTION_TOKEN_TYPE,
    currentDate: new Date(Date.now() + offsetSeconds * 1000),
  });
}

test('login sets the assertion cookie: same claims, key and lifetime as the session, its own typ and aud, the same cookie attributes', async () => {
  const jar = new CookieJar();
  const { callback } = await login(h, jar, 'alice');
  const sessionLine = cookieLine(callback.setCookies, SESSION_COOKIE);
  const assertionLine = cookieLine(callback.setCookies, ASSERTION_COOKIE);
  expect(attributes(assertionLine)).toEqual(attributes(sessionLine));
  expect(attributes(assertionLine)).toEqual(expect.arrayContaining(['Path=/', 'Secure', 'HttpOnly', 'SameSite=Lax']));
  expect(assertionLine).not.toMatch(/Domain=/i);

  const session = jar.get(h.gatewayUrl, SESSION_COOKIE)!;
  const assertion = jar.get(h.gatewayUrl, ASSERTION_COOKIE)!;
  expect(assertion).not.toBe(session);
  const { payload, protectedHeader } = await verifyAssertion(assertion);
  expect(protectedHeader).toMatchObject({ typ: ASSERTION_TOKEN_TYPE, alg: 'ES256', kid: decodeProtectedHeader(session).kid });
  expect(decodeProtectedHeader(session).typ).toBe(SESSION_TOKEN_TYPE);
  const { aud: sessionAudience, ...sessionClaims } = decodeJwt(session);
  const { aud: assertionAud, ...assertionClaims } = payload;
  expect(sessionAudience).toBe(AUDIENCE);
  expect(assertionAud).toBe(`${AUDIENCE}/upstream`);
  expect(assertionClaims).toEqual(sessionClaims);
});

test('every inline refresh mints a new assertion: in the JSON body and as a cookie, for the same sid and sub', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'bob');
  const first = decodeJwt(jar.get(h.gatewayUrl, ASSERTION_COOKIE)!);
  offsetSeconds = 5; // a later iat, so the new tokens differ
  const refreshed = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.session}`, { method: 'POST' });
  expect(refreshed.status).toBe(200);
  const body = JSON.parse(refreshed.body) as InlineRefreshResponse;
  expect(body.assertion).toBe(jar.get(h.gatewayUrl, ASSERTION_COOKIE));
  const { payload } = await verifyAssertion(body.assertion!);
  expect(payload).toMatchObject({ sub: 'bob', sid: first.sid, exp: body.expiresAt });
  expect(payload.iat).toBeGreaterThan(first.iat!);
  expect(attributes(cookieLine(refreshed.setCookies, ASSERTION_COOKIE))).toEqual(attributes(cookieLine(refreshed.setCookies, SESSION_COOKIE)));
});

test('the service never takes an assertion for a session: refresh navigation goes to the login, logout revokes nothing', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  const assertion = jar.get(h.gatewayUrl, ASSERTION_COOKIE)!;
  const sid = decodeJwt(assertion).sid as string;

  // As the session cookie, with no refresh cookie: a current session would go straight back to rd.
  const replay = new CookieJar();
  replay.set(h.gatewayUrl, SESSION_COOKIE, assertion);
  const nav = await request(h.fetch, replay, `${h.gatewayUrl}${AUTH_PATHS.refresh}?rd=%2Flooks%2F1`, { headers: { accept: 'text/html' } });
  expect(nav.location).toBe(`${h.gatewayUrl}${AUTH_PATHS.start}?rd=%2Flooks%2F1`);
  // The genuine session does go straight back.
  const genuine = new CookieJar();
  genuine.set(h.gatewayUrl, SESSION_COOKIE, jar.get(h.gatewayUrl, SESSION_COOKIE)!);
  expect((await request(h.fetch, genuine, `${h.gatewayUrl}${AUTH_PATHS.refresh}?rd=%2Flooks%2F1`)).location).toBe(`${h.gatewayUrl}/looks/1`);

  const logout = await request(h.fetch, replay, `${h.gatewayUrl}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl } });
  expect(logout.status).toBe(303);
  const list = JSON.parse((await request(h.fetch, new CookieJar(), `${h.gatewayUrl}${AUTH_PATHS.revocations}`)).body) as { revoked: Array<{ sid: string }> };
  expect(list.revoked.map((e) => e.sid)).not.toContain(sid);
});

test('logout and refusals clear the assertion cookie with the others', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  const out = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl } });
  expect(cookieLine(out.setCookies, ASSERTION_COOKIE)).toContain('Max-Age=0');
  const refused = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}${AUTH_PATHS.session}`, { method: 'POST' });
  expect(cookieLine(refused.setCookies, ASSERTION_COOKIE)).toContain('Max-Age=0');
  expect(jar.get(h.gatewayUrl, ASSERTION_COOKIE)).toBeUndefined();
  expect(jar.get(h.gatewayUrl, REFRESH_COOKIE)).toBeUndefined();
});

test('the session budget counts the assertion: a budget the session fits but the assertion does not refuses the login (fail closed)', async () => {
  const jar = new CookieJar();
  await login(h, jar, 'alice');
  const sessionBytes = Buffer.byteLength(jar.get(h.gatewayUrl, SESSION_COOKIE)!);
  const assertionBytes = Buffer.byteLength(jar.get(h.gatewayUrl, ASSERTION_COOKIE)!);
  expect(assertionBytes).toBeGreaterThan(sessionBytes);
  const tight = await h.startAnother({ LG_SESSION_MAX_BYTES: String(sessionBytes) });
  try {
    const tightJar = new CookieJar();
    const callback = await loginAt(h, tight.url, tightJar, 'alice');
    expect(callback.status).toBe(403);
    expect(JSON.parse(callback.body)).toMatchObject({ reason: 'session-too-large' });
    expect(tight.logs.audits().find((e) => e.reason === 'session-too-large')).toMatchObject({
      detail: `login: the session (or its assertion) would be ${assertionBytes} bytes, over the budget of ${sessionBytes}`,
    });
    expect(tightJar.get(tight.url, SESSION_COOKIE)).toBeUndefined();
  } finally {
    await tight.stop();
  }
});
