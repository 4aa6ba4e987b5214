/**
 * The login as a user sees it: Debian's Chromium against the whole local gateway (dev
 * IdP, auth service, real HAProxy 3.0, Looker stand-in), all on 127.0.0.1.
 */
import { Browser, BrowserContext } from 'playwright-core';
import { generateKeyPair, SignJWT, decodeProtectedHeader, decodeJwt } from 'jose';
import { readFileSync } from 'node:fs';
import { ASSERTION_COOKIE, AUTH_PATHS, CLAIMS, DEFAULT_REVOCATION_POLL_SECONDS, HEADERS, REFRESH_COOKIE, SESSION_COOKIE } from '../../core/session-contract';
import { httpsRequest } from '../../dev/readiness';
import { DEV_ANALYST_REGION, DEV_USERS } from '../../dev/stand-ins/idp/dev-users';
import { LocalGateway, startLocalGateway } from '../../local/gateway';
import { launchChromium, newPage as openPage } from './support/browser';
import { countRequestsTo, field, loginFromDeepLink, screenshot, START_PATH, submitLogin } from './support/flows';

let gateway: LocalGateway;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  // Direct mode: these tests read what the gateway sends upstream (headers); broker mode has its own test (looker-broker.test.ts).
  gateway = await startLocalGateway({ mode: 'direct' });
  browser = await launchChromium(gateway.trustedSpkiHashes);
});

afterAll(async () => {
  if (process.env.LG_E2E_DEBUG) console.log(gateway?.authLog());
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await gateway?.stop();
});

const newPage = () => openPage(browser, contexts);

describe('browser login through the local gateway', () => {
  test('alice opens a deep link, logs in at the IdP and lands on that page as a Viewer with her region', async () => {
    const { context, page } = await newPage();
    const starts = countRequestsTo(context, START_PATH);
    const deepLink = '/explore/thelook/orders?fields=orders.count&f[orders.region]=emea';

    await page.goto(`${gateway.url}${deepLink}`);
    await page.locator('#username').waitFor();
    expect(new URL(page.url()).origin).toBe(gateway.idp.issuer);
    await screenshot(page, 'local-login.png');
    await submitLogin(page, DEV_USERS.alice);

    expect(page.url()).toBe(`${gateway.url}${deepLink}`);
    await expect(field(page, 'user').textContent()).resolves.toBe('alice');
    await expect(field(page, 'roles').textContent()).resolves.toBe('Viewer');
    await expect(field(page, 'attributes').textContent()).resolves.toBe(`region = ${DEV_ANALYST_REGION}`);
    await expect(field(page, 'auth').textContent()).resolves.toBe('session');
    expect(starts.count()).toBe(1);
    const seen = gateway.lookerRequests.filter((r) => r.user === 'alice');
    expect(seen.map((r) => r.path)).toContain('/explore/thelook/orders');
    await screenshot(page, 'local-stand-in.png', [field(page, 'request-id'), field(page, 'session-expires')]);
  });

  test('a typed http:// address is redirected to https:// with the same path and query, then logs in and lands there', async () => {
    const { context, page } = await newPage();
    const plainAnswers: Array<{ url: string; status: number; location?: string; hsts?: string }> = [];
    page.on('response', (response) => {
      if (response.url().startsWith(`${gateway.httpUrl}/`)) {
        plainAnswers.push({
          url: response.url(),
          status: response.status(),
          location: response.headers().location,
          hsts: response.headers()['strict-transport-security'],
        });
      }
    });
    const deepLink = '/dashboards/7?tab=2';

    await page.goto(`${gateway.httpUrl}${deepLink}`);
    await page.locator('#username').waitFor();
    // One permanent redirect on plain HTTP, without HSTS; the login starts on the https origin.
    expect(plainAnswers).toEqual([{ url: `${gateway.httpUrl}${deepLink}`, status: 301, location: `${gateway.url}${deepLink}`, hsts: undefined }]);
    await submitLogin(page, DEV_USERS.alice);

    expect(page.url()).toBe(`${gateway.url}${deepLink}`);
    await expect(field(page, 'user').textContent()).resolves.toBe('alice');
    expect((await context.cookies(gateway.url)).map((c) => c.name)).toContain(SESSION_COOKIE);
    // Only the first request went over plain HTTP.
    expect(plainAnswers).toHaveLength(1);
  });

  test('a wrong password is refused at the IdP login form with a message, and nobody is logged in', async () => {
    const { page } = await newPage();
    await page.goto(`${gateway.url}/`);
    await page.locator('#username').waitFor();
    await submitLogin(page, { username: 'alice', password: 'not-her-password' });
    await expect(page.locator('[role=alert]').textContent()).resolves.toContain('wrong password');
    expect(new URL(page.url()).origin).toBe(gateway.idp.issuer);
  });

  test('bob is an Admin', async () => {
    const { page } = await newPage();
    await loginFromDeepLink(page, gateway.url, '/browse/shared', DEV_USERS.bob);
    expect(new URL(page.url()).pathname).toBe('/browse/shared');
    await expect(field(page, 'user').textContent()).resolves.toBe('bob');
    await expect(field(page, 'roles').textContent()).resolves.toBe('Admin');
    await expect(field(page, 'attributes').textContent()).resolves.toBe('none');
  });

  test('carol, who is in no mapped group, gets a clear "no access" page and no redirect loop', async () => {
    const { context, page } = await newPage();
    const starts = countRequestsTo(context, START_PATH);
    const lookerRequestsBefore = gateway.lookerRequests.length;

    await loginFromDeepLink(page, gateway.url, '/dashboards/42', DEV_USERS.carol);
    await page.waitForLoadState('networkidle');

    const text = (await page.textContent('body')) ?? '';
    expect(text.toLowerCase()).toMatch(/no access|not allowed|access denied/);
    expect(new URL(page.url()).origin).toBe(gateway.url);
    expect(starts.count()).toBe(1);
    expect(gateway.lookerRequests.slice(lookerRequestsBefore).filter((r) => r.user === 'carol')).toEqual([]);
    const cookies = await context.cookies(gateway.url);
    expect(cookies.map((c) => c.name)).not.toContain(SESSION_COOKIE);
    await screenshot(page, 'local-no-access.png', [page.locator('p:has(small)')]);
  });

  test('logout ends the session and the back button does not bring the identity back', async () => {
    const { context, page } = await newPage();
    await loginFromDeepLink(page, gateway.url, '/dashboards/42', DEV_USERS.alice);
    await expect(field(page, 'user').textContent()).resolves.toBe('alice');
    const sid = decodeJwt((await context.cookies(gateway.url)).find((c) => c.name === SESSION_COOKIE)!.value).sid;

    const answer = await page.reload();
    expect(answer?.headers()['cache-control']).toContain('no-store');

    // The stand-in's "Sign out" opens the auth service's confirmation page; its button signs out here and at the IdP.
    await Promise.all([page.waitForURL(`${gateway.url}${AUTH_PATHS.logout}`), page.locator('a.logout').click()]);
    await page.locator(`form[action="${AUTH_PATHS.logout}"] button`).click();
    // Through the IdP's end-session page (it signs out there too) back to the gateway's "signed out" page.
    await page.getByText('You are signed out').waitFor({ timeout: 10_000 });
    expect(page.url()).toBe(`${gateway.url}${AUTH_PATHS.logout}?signed_out=1`);
    expect((await gateway.idp.stats()).logouts).toBeGreaterThan(0);
    expect((await context.cookies(gateway.url)).map((c) => c.name)).not.toContain(SESSION_COOKIE);
    // `npm run local` keeps revocations in the auth service's memory: the sid was recorded there.
    const audits = gateway
      .authLog()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(audits.find((e) => e.type === 'audit' && e.event === 'logout' && e.sessionId === sid)).toMatchObject({
      outcome: 'success',
      detail: expect.stringMatching(/^revoked 1 session id/),
    });

    await page.goBack();
    await page.waitForLoadState('networkidle');
    await expect(page.locator('[data-field="user"]').count()).resolves.toBe(0);
    expect(await page.textContent('body')).not.toContain('Hello, alice');

    // A fresh visit needs a new login: the IdP session ended too.
    await page.goto(`${gateway.url}/dashboards/42`);
    await page.locator('#username').waitFor();
    expect(new URL(page.url()).origin).toBe(gateway.idp.issuer);
  });

  test('logout then replay: cookies copied before the logout stop working at every HAProxy within the revocation delay', async () => {
    const { context, page } = await newPage();
    await loginFromDeepLink(page, gateway.url, '/dashboards/7', DEV_USERS.alice);
    await expect(field(page, 'user').textContent()).resolves.toBe('alice');
    // GIVEN an attacker (or a forgotten tab) holding copies of alice's cookies
    const jar = await context.cookies(gateway.url);
    const copied = [SESSION_COOKIE, REFRESH_COOKIE, ASSERTION_COOKIE].map((name) => `${name}=${jar.find((c) => c.name === name)!.value}`).join('; ');
    const ca = readFileSync(gateway.caFile, 'utf8');
    const replay = () => httpsRequest(`${gateway.url}/api/4.0/user`, ca, { headers: { cookie: copied, accept: 'application/json' } });
    expect((await replay()).status).toBe(200);

    // WHEN alice signs out in her browser
    await page.goto(`${gateway.url}${AUTH_PATHS.logout}`);
    await page.locator(`form[action="${AUTH_PATHS.logout}"] button`).click();
    await page.getByText('You are signed out').waitFor({ timeout: 10_000 });
    const loggedOutAt = Date.now();

    // THEN the copied session is refused once HAProxy's next poll of the revocation list has run
    // (every DEFAULT_REVOCATION_POLL_SECONDS); the deadline leaves room for a loaded machine.
    const deadline = loggedOutAt + (DEFAULT_REVOCATION_POLL_SECONDS + 10) * 1000;
    let answer = await replay();
    while (answer.status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      answer = await replay();
    }
    expect({ status: answer.status, reason: JSON.parse(answer.body).reason }).toEqual({ status: 401, reason: expect.stringMatching(/revoked/) });
    // AND it stays refused: the refresh cookie cannot mint a new session for that sid either
    const refresh = await httpsRequest(`${gateway.url}${AUTH_PATHS.refresh}?rd=%2F`, ca, { headers: { cookie: copied } });
    expect(refresh.headers['set-cookie'] ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${SESSION_COOKIE}=[^;]`))]));
    expect((await replay()).status).toBe(401);
  });

  test('a forged session cookie (signed by another key, claiming Admin) is refused', async () => {
    const { context, page } = await newPage();
    await loginFromDeepLink(page, gateway.url, '/', DEV_USERS.alice);
    const real = (await context.cookies(gateway.url)).find((c) => c.name === SESSION_COOKIE);
    expect(real).toBeDefined();
    const realClaims = decodeJwt(real!.value);
    const { kid } = decodeProtectedHeader(real!.value);

    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ ...realClaims, [CLAIMS.subject]: 'mallory', [CLAIMS.rolesCsv]: 'Admin' })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .sign(privateKey);
    await context.clearCookies();
    await context.addCookies([{ name: SESSION_COOKIE, value: forged, url: `${gateway.url}/`, secure: true, httpOnly: true, sameSite: 'Lax' }]);

    const before = gateway.lookerRequests.length;
    const api = await page.evaluate(async () => {
      const res = await fetch('/api/4.0/user', { headers: { accept: 'application/json' } });
      return { status: res.status, type: res.headers.get('content-type') ?? '' };
    });
    expect(api.status).toBe(401);
    expect(api.type).toContain('application/json');

    await page.goto(`${gateway.url}/dashboards/7`);
    await page.locator('#username').waitFor();
    expect(new URL(page.url()).origin).toBe(gateway.idp.issuer);
    expect(gateway.lookerRequests.slice(before).filter((r) => r.user === 'mallory')).toEqual([]);
  });

  test('identity headers a client sends are replaced by the gateway', async () => {
    const { page } = await newPage();
    await loginFromDeepLink(page, gateway.url, '/', DEV_USERS.alice);
    const body = await page.evaluate(
      async ([userHeader, rolesHeader]) => {
        const res = await fetch('/api/4.0/user', { headers: { accept: 'application/json', [userHeader]: 'bob', [rolesHeader]: 'Admin' } });
        return (await res.json()) as { id: string; role_names: string[] };
      },
      [HEADERS.user, HEADERS.roles],
    );
    expect(body.id).toBe('alice');
    expect(body.role_names).toEqual(['Viewer']);
  });
});
