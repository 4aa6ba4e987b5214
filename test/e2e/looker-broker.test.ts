/**
 * Broker mode end to end (issue 12, "done when"): Debian's Chromium against the whole local
 * gateway as `npm run local` starts it by default: the dev IdP, the auth service's own
 * handler, the real HAProxy 3.0, and the Looker stand-in with Looker's OpenID Connect login
 * configured by the custom resource's code through its API. The roles and attributes the
 * page shows are the ones the stand-in's OIDC login APPLIED (docs/looker-oidc.md, "How
 * Looker applies them"), from the claims it read at the broker's userinfo URL, which it
 * called server-side through the gateway's own listener, as Looker's servers do.
 */
import { readFileSync } from 'node:fs';
import { Browser, BrowserContext } from 'playwright-core';
import { LOOKER_BROKER_PATHS } from '../../core/auth/looker-broker';
import { AUTH_PATHS } from '../../core/session-contract';
import { DEV_ANALYST_REGION, DEV_GROUPS, DEV_USERS } from '../../dev/stand-ins/idp/dev-users';
import { LocalGateway, startLocalGateway } from '../../local/gateway';
import { DEFAULT_LOOKER_ROLES } from '../../dev/stand-ins/looker/looker-oidc-model';
import { httpsRequest } from '../../dev/readiness';
import { launchChromium, newPage as openPage } from './support/browser';
import { countRequestsTo, field, loginFromDeepLink, screenshot, START_PATH } from './support/flows';

/** The stand-in's role ids (a Looker numbers its roles its own way: the custom resource resolves names to ids). */
const ROLE_IDS = Object.fromEntries(DEFAULT_LOOKER_ROLES.map((r) => [r.name, r.id]));

let gateway: LocalGateway;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  gateway = await startLocalGateway({ idpTestAdmin: true });
  browser = await launchChromium(gateway.trustedSpkiHashes);
});

afterAll(async () => {
  if (process.env.LG_E2E_DEBUG) console.log(gateway?.authLog());
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await gateway?.stop();
});

const newPage = () => openPage(browser, contexts);

/** The authorization codes the browser carried back to Looker's /openidconnect. */
function codesSeen(context: BrowserContext): string[] {
  const codes: string[] = [];
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/openidconnect' && url.searchParams.get('code')) codes.push(url.searchParams.get('code')!);
  });
  return codes;
}

function ca(): string {
  return readFileSync(gateway.caFile, 'utf8');
}

function audits(): Record<string, unknown>[] {
  return gateway
    .authLog()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.type === 'audit');
}

function lookerUser(email: string) {
  return gateway.looker.users().find((u) => u.email === email);
}

describe('broker mode: Looker signs users in at the gateway and applies the mapped roles', () => {
  test('the stand-in Looker was configured through its API by the custom resource code: OIDC on, pointing at the broker', () => {
    const config = gateway.looker.oidcConfig.read();
    expect(config).toMatchObject({
      enabled: true,
      issuer: gateway.url,
      authorization_endpoint: `${gateway.url}${LOOKER_BROKER_PATHS.authorize}`,
      token_endpoint: `${gateway.url}${LOOKER_BROKER_PATHS.token}`,
      userinfo_endpoint: `${gateway.url}${LOOKER_BROKER_PATHS.userinfo}`,
      set_roles_from_groups: true,
      auth_requires_role: true,
      alternate_email_login_allowed: true,
    });
  });

  test("alice logs in once at the dev IdP and lands in Looker as a Viewer with region=emea, applied by Looker's OIDC login", async () => {
    const { context, page } = await newPage();
    const starts = countRequestsTo(context, START_PATH);
    const authorizations = countRequestsTo(context, LOOKER_BROKER_PATHS.authorize);
    const loginsBefore = (await gateway.idp.stats()).logins;

    await loginFromDeepLink(page, gateway.url, '/dashboards/7', DEV_USERS.alice);
    await field(page, 'looker-user-id').waitFor();

    expect(page.url()).toBe(`${gateway.url}/dashboards/7`);
    await expect(field(page, 'auth').textContent()).resolves.toContain('OpenID Connect');
    await expect(field(page, 'user').textContent()).resolves.toBe('Alice Analyst');
    await expect(field(page, 'email').textContent()).resolves.toBe(DEV_USERS.alice.email);
    await expect(field(page, 'roles').textContent()).resolves.toBe('Viewer');
    await expect(field(page, 'groups').textContent()).resolves.toBe('Analysts');
    await expect(field(page, 'attributes').textContent()).resolves.toBe(`region = ${DEV_ANALYST_REGION}`);
    // One login at the IdP, one pass through the broker: no second login, no consent.
    expect(starts.count()).toBe(1);
    expect(authorizations.count()).toBe(1);
    expect((await gateway.idp.stats()).logins).toBe(loginsBefore + 1);
    // Looker's server called token and userinfo through the gateway's listener.
    const events = audits();
    expect(events.filter((e) => e.event === 'looker-token' && e.outcome === 'success').length).toBeGreaterThan(0);
    expect(events.filter((e) => e.event === 'looker-userinfo' && e.outcome === 'success').length).toBeGreaterThan(0);
    expect(gateway.haproxyLog()).toContain(LOOKER_BROKER_PATHS.token);
    await screenshot(page, 'local-looker-broker.png', [field(page, 'request-id'), field(page, 'looker-user-id')]);
  });

  test('bob gets Admin', async () => {
    const { page } = await newPage();
    await loginFromDeepLink(page, gateway.url, '/browse/shared', DEV_USERS.bob);
    await field(page, 'looker-user-id').waitFor();
    expect(new URL(page.url()).pathname).toBe('/browse/shared');
    await expect(field(page, 'roles').textContent()).resolves.toBe('Admin');
    await expect(field(page, 'groups').textContent()).resolves.toBe('Admins');
    expect(lookerUser(DEV_USERS.bob.email)?.roleIds).toEqual([ROLE_IDS.Admin]);
  });

  test('carol is refused at the gateway: a "no access" page, no redirect loop, and Looker never hears of her', async () => {
    const { context, page } = await newPage();
    const starts = countRequestsTo(context, START_PATH);
    await loginFromDeepLink(page, gateway.url, '/dashboards/42', DEV_USERS.carol);
    await page.waitForLoadState('networkidle');
    expect((await page.textContent('body'))?.toLowerCase()).toMatch(/access denied/);
    expect(starts.count()).toBe(1);
    expect(lookerUser(DEV_USERS.carol.email)).toBeUndefined();
  });

  test('a code replayed at the token endpoint is refused with invalid_grant', async () => {
    const { context, page } = await newPage();
    const codes = codesSeen(context);
    await loginFromDeepLink(page, gateway.url, '/looks/1', DEV_USERS.alice);
    await field(page, 'looker-user-id').waitFor();
    expect(codes).toHaveLength(1);
    // What Looker's server sent a moment ago, sent again with Looker's own client credentials.
    const config = gateway.looker.oidcConfig.current();
    const replay = await httpsRequest(`${gateway.url}${LOOKER_BROKER_PATHS.token}`, ca(), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${config.identifier}:${config.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: codes[0], redirect_uri: `${gateway.url}/openidconnect` }).toString(),
    });
    expect(replay.status).toBe(400);
    expect(JSON.parse(replay.body)).toMatchObject({ error: 'invalid_grant' });
    expect(
      audits()
        .filter((e) => e.event === 'looker-token')
        .pop(),
    ).toMatchObject({ outcome: 'failure', reason: 'code-replayed' });
  });

  test("changing alice's IdP group and logging in again changes her Looker role", async () => {
    const before = lookerUser(DEV_USERS.alice.email)!;
    expect(before.roleIds).toEqual([ROLE_IDS.Viewer]);
    await gateway.idp.setUser(DEV_USERS.alice.username, { groups: [DEV_GROUPS.admins] });
    try {
      const { page } = await newPage();
      await loginFromDeepLink(page, gateway.url, '/dashboards/7', DEV_USERS.alice);
      await field(page, 'looker-user-id').waitFor();
      await expect(field(page, 'roles').textContent()).resolves.toBe('Admin');
      await expect(field(page, 'groups').textContent()).resolves.toBe('Admins');
      // The same Looker user (same subject), its role replaced at this login.
      const after = lookerUser(DEV_USERS.alice.email)!;
      expect(after.id).toBe(before.id);
      expect(after.roleIds).toEqual([ROLE_IDS.Admin]);
      expect(after.logins).toBeGreaterThan(before.logins);
    } finally {
      await gateway.idp.setUser(DEV_USERS.alice.username, { groups: [...DEV_USERS.alice.groups] });
    }
  });

  test('the broker is reachable only where it should be: its token endpoint refuses a browser-less request without client credentials', async () => {
    const answer = await httpsRequest(`${gateway.url}${LOOKER_BROKER_PATHS.token}`, ca(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=authorization_code&code=x',
    });
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_client' });
    expect(answer.headers['www-authenticate']).toMatch(/^Basic /);
    // And the gateway's own routes still work beside it.
    expect((await httpsRequest(`${gateway.url}${AUTH_PATHS.jwks}`, ca())).status).toBe(200);
  });

  test("the discovery document is served at the issuer's well-known path through HAProxy (for tooling; Looker reads none)", async () => {
    const answer = await httpsRequest(`${gateway.url}/.well-known/openid-configuration`, ca());
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({
      issuer: gateway.url,
      token_endpoint: `${gateway.url}${LOOKER_BROKER_PATHS.token}`,
      jwks_uri: `${gateway.url}${AUTH_PATHS.jwks}`,
    });
  });
});
