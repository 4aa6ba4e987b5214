/**
 * The Looker stand-in's own OpenID Connect login, with the dev IdP (oidc-provider, a
 * certified OpenID provider) as the OP and Debian's Chromium as the browser: what Looker
 * documents (authorization code flow, explicit endpoints, redirect URI = Looker URL +
 * /openidconnect, roles from groups, attributes from claims; sources in docs/looker-oidc.md)
 * done against a real provider before the gateway's broker takes its place.
 *
 * The stand-in is configured the way the custom resource configures Looker: through
 * `POST /api/4.0/login` and `PATCH /api/4.0/oidc_config`.
 */
import { Browser, BrowserContext, Page } from 'playwright-core';
import { LOOKER_API_PATHS, OidcConfigWrite } from '../../core/looker/oidc-config';
import { DevIdpAccount, RunningDevIdp, startDevIdp } from '../../dev/stand-ins/idp/dev-idp';
import { createLocalFolder, LocalFolder } from '../../local/files';
import { RunningLookerStandIn, startLookerStandIn } from '../../dev/stand-ins/looker/looker-stand-in';
import { TokenEndpointAuthMethod } from '../../dev/stand-ins/looker/looker-oidc-login';
import { createLocalPki, LocalPki, spkiSha256Base64 } from '../../local/pki';
import { httpsRequest } from '../../dev/readiness';
import { launchChromium, newPage as openPage } from './support/browser';
import { field, submitLogin } from './support/flows';

const API_KEY = { client_id: 'looker-admin-api-key', client_secret: 'looker-admin-api-secret' };
const ROLE = { admin: '2', viewer: '5' };
const REGION_ATTRIBUTE_ID = '10';

const ACCOUNTS: DevIdpAccount[] = [
  {
    username: 'alice',
    password: 'alice-pw',
    claims: {
      name: 'Alice Analyst',
      given_name: 'Alice',
      family_name: 'Analyst',
      email: 'alice@example.com',
      email_verified: true,
      groups: ['looker-analysts'],
      region: 'emea',
    },
  },
  {
    username: 'bob',
    password: 'bob-pw',
    claims: { name: 'Bob Admin', given_name: 'Bob', family_name: 'Admin', email: 'bob@example.com', email_verified: true, groups: ['looker-admins'] },
  },
  {
    username: 'carol',
    password: 'carol-pw',
    claims: {
      name: 'Carol Contractor',
      given_name: 'Carol',
      family_name: 'Contractor',
      email: 'carol@example.com',
      email_verified: true,
      groups: ['contractors'],
    },
  },
];
const user = (name: string) => ACCOUNTS.find((a) => a.username === name)!;

/** One stand-in per client authentication method, each a client of its own at the IdP. */
const METHODS: TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post'];
const clientOf = (method: TokenEndpointAuthMethod) => ({ clientId: `looker-${method}`, clientSecret: `secret-of-${method}-0123456789` });

let folder: LocalFolder;
let pki: LocalPki;
let idp: RunningDevIdp;
let browser: Browser;
const lookers = {} as Record<TokenEndpointAuthMethod, RunningLookerStandIn>;
const contexts: BrowserContext[] = [];

async function lookerApi(looker: RunningLookerStandIn, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const login = await httpsRequest(`${looker.publicUrl}${LOOKER_API_PATHS.login}`, pki.ca.cert, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(API_KEY).toString(),
  });
  const token = JSON.parse(login.body).access_token as string;
  const answer = await httpsRequest(`${looker.publicUrl}${path}`, pki.ca.cert, {
    method,
    headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: answer.status, body: answer.body ? JSON.parse(answer.body) : undefined };
}

function oidcConfigFor(method: TokenEndpointAuthMethod): OidcConfigWrite {
  const client = clientOf(method);
  return {
    enabled: true,
    identifier: client.clientId,
    secret: client.clientSecret,
    issuer: idp.issuer,
    audience: client.clientId,
    authorization_endpoint: `${idp.issuer}/auth`,
    token_endpoint: `${idp.issuer}/token`,
    userinfo_endpoint: `${idp.issuer}/me`,
    scopes: ['openid', 'email', 'profile', 'groups', 'org'],
    user_attribute_map_email: 'email',
    user_attribute_map_first_name: 'given_name',
    user_attribute_map_last_name: 'family_name',
    groups_attribute: 'groups',
    set_roles_from_groups: true,
    auth_requires_role: true,
    groups_with_role_ids: [
      { name: 'looker-analysts', looker_group_name: 'Analysts', role_ids: [ROLE.viewer] },
      { name: 'looker-admins', looker_group_name: 'Admins', role_ids: [ROLE.admin] },
    ],
    user_attributes_with_ids: [{ name: 'region', required: false, user_attribute_ids: [REGION_ATTRIBUTE_ID] }],
    alternate_email_login_allowed: true,
  };
}

beforeAll(async () => {
  folder = createLocalFolder();
  pki = await createLocalPki();
  // The stand-ins first: their redirect URIs are registered at the IdP.
  for (const method of METHODS) {
    lookers[method] = await startLookerStandIn({
      certPem: pki.looker.cert,
      keyPem: pki.looker.key,
      oidc: { apiCredentials: [API_KEY], trustedCaPem: pki.ca.cert, tokenEndpointAuthMethod: method },
    });
  }
  idp = await startDevIdp({
    workDir: folder.folder('idp'),
    certFile: folder.write('idp/cert.pem', pki.idp.cert),
    keyFile: folder.write('idp/key.pem', pki.idp.key),
    caPem: pki.ca.cert,
    accounts: ACCOUNTS,
    // The IdP's own (gateway) client is not used here.
    clientId: 'unused-gateway-client',
    clientSecret: 'unused-gateway-secret',
    redirectUris: ['https://127.0.0.1:9/oauth2/callback'],
    postLogoutRedirectUris: ['https://127.0.0.1:9/'],
    // Both clients admit both stand-ins' redirect URIs, so only the client authentication method tells them apart.
    extraClients: METHODS.map((method) => ({ ...clientOf(method), redirectUris: METHODS.map((m) => lookers[m].redirectUri), tokenEndpointAuthMethod: method })),
    testAdminEndpoints: true,
  });
  for (const method of METHODS) {
    const patched = await lookerApi(lookers[method], 'PATCH', LOOKER_API_PATHS.oidcConfig, oidcConfigFor(method));
    expect(patched.status).toBe(200);
  }
  browser = await launchChromium([spkiSha256Base64(pki.looker.cert), spkiSha256Base64(pki.idp.cert), spkiSha256Base64(pki.ca.cert)]);
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await idp?.stop();
  for (const looker of Object.values(lookers)) await looker.stop();
  folder?.remove();
});

const newPage = () => openPage(browser, contexts);

/** Opens `path` on the stand-in, expects the IdP's login form and signs in; returns the callback URL the browser used. */
async function signIn(page: Page, looker: RunningLookerStandIn, path: string, account: DevIdpAccount): Promise<string> {
  const callbacks: string[] = [];
  page.on('request', (request) => {
    if (request.url().startsWith(looker.redirectUri)) callbacks.push(request.url());
  });
  await page.goto(`${looker.publicUrl}${path}`);
  await page.locator('#username').waitFor();
  expect(new URL(page.url()).origin).toBe(idp.issuer);
  await submitLogin(page, account);
  expect(callbacks).toHaveLength(1);
  return callbacks[0];
}

async function setIdpClaims(username: string, claims: Record<string, unknown>): Promise<void> {
  const answer = await httpsRequest(`${idp.issuer}/test-admin/users/${username}`, pki.ca.cert, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(claims),
  });
  expect(answer.status).toBe(200);
}

describe.each(METHODS)('Looker stand-in OIDC login, token endpoint authentication %s', (method) => {
  test('alice opens a deep link, signs in at the IdP and lands there with the Viewer role, the Analysts group and region = emea applied by Looker', async () => {
    const looker = lookers[method];
    const { page } = await newPage();
    const before = await idp.stats();
    const callback = await signIn(page, looker, '/dashboards/42?tab=2', user('alice'));
    const after = await idp.stats();
    // The one code exchange used this stand-in's client authentication method.
    expect({ basic: after.tokenRequestsBasicAuth - before.tokenRequestsBasicAuth, post: after.tokenRequestsPostAuth - before.tokenRequestsPostAuth }).toEqual(
      method === 'client_secret_basic' ? { basic: 1, post: 0 } : { basic: 0, post: 1 },
    );

    expect(new URL(callback).searchParams.get('code')).toBeTruthy();
    expect(page.url()).toBe(`${looker.publicUrl}/dashboards/42?tab=2`);
    await expect(field(page, 'user').textContent()).resolves.toBe('Alice Analyst');
    await expect(field(page, 'email').textContent()).resolves.toBe('alice@example.com');
    await expect(field(page, 'roles').textContent()).resolves.toBe('Viewer');
    await expect(field(page, 'groups').textContent()).resolves.toBe('Analysts');
    await expect(field(page, 'attributes').textContent()).resolves.toBe('region = emea');
    const alice = looker.users().find((u) => u.email === 'alice@example.com')!;
    expect(alice).toMatchObject({
      roleIds: [ROLE.viewer],
      groupNames: ['Analysts'],
      attributeValues: { [REGION_ATTRIBUTE_ID]: 'emea' },
      firstName: 'Alice',
      lastName: 'Analyst',
    });
  });
});

describe('Looker stand-in OIDC login (client_secret_basic)', () => {
  const method: TokenEndpointAuthMethod = 'client_secret_basic';

  test("the authorization request is a code-flow request with Looker's client id, redirect URI, scopes, state and nonce, and no PKCE", async () => {
    const looker = lookers[method];
    const { page } = await newPage();
    const requests: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(`${idp.issuer}/auth`)) requests.push(request.url());
    });
    await page.goto(`${looker.publicUrl}/`);
    await page.locator('#username').waitFor();
    const params = new URL(requests[0]).searchParams;
    expect(Object.fromEntries(params)).toEqual({
      response_type: 'code',
      client_id: clientOf(method).clientId,
      redirect_uri: `${looker.publicUrl}/openidconnect`,
      scope: 'openid email profile groups org',
      state: expect.stringMatching(/^[\w-]{32}$/),
      nonce: expect.stringMatching(/^[\w-]{32}$/),
    });
  });

  test('bob gets the Admin role', async () => {
    const looker = lookers[method];
    const { page } = await newPage();
    await signIn(page, looker, '/', user('bob'));
    await expect(field(page, 'roles').textContent()).resolves.toBe('Admin');
    await expect(field(page, 'groups').textContent()).resolves.toBe('Admins');
    await expect(field(page, 'attributes').textContent()).resolves.toBe('none');
  });

  test('carol, whose groups map to no role, is refused (auth_requires_role) and gets no Looker session or user', async () => {
    const looker = lookers[method];
    const { context, page } = await newPage();
    await page.goto(`${looker.publicUrl}/browse/shared`);
    await page.locator('#username').waitFor();
    const [response] = await Promise.all([page.waitForResponse((r) => r.url().startsWith(looker.redirectUri)), submitLogin(page, user('carol'))]);
    expect(response.status()).toBe(403);
    await expect(page.locator('#message').getAttribute('data-reason')).resolves.toBe('no-role');
    expect((await context.cookies(looker.publicUrl)).map((c) => c.name)).not.toContain('looker_standin_session');
    expect(looker.users().map((u) => u.email)).not.toContain('carol@example.com');
  });

  test('a callback replayed (same browser or another) is refused: the state is single-use and bound to the browser', async () => {
    const looker = lookers[method];
    const { page } = await newPage();
    const callback = await signIn(page, looker, '/', user('bob'));
    const again = await page.goto(callback);
    expect(again!.status()).toBe(400);
    await expect(page.locator('#message').getAttribute('data-reason')).resolves.toBe('state-mismatch');
    const { page: other } = await newPage();
    const elsewhere = await other.goto(callback);
    expect(elsewhere!.status()).toBe(400);
    // Without any state at all: refused before anything is sent to the OP.
    const bare = await httpsRequest(`${looker.publicUrl}/openidconnect?code=made-up`, pki.ca.cert);
    expect(bare.status).toBe(400);
  });

  test("the browser's own /favicon.ico fetch is answered without a login, so it cannot start a second sign-in racing the user's", async () => {
    const looker = lookers[method];
    const icon = await httpsRequest(`${looker.publicUrl}/favicon.ico`, pki.ca.cert);
    expect({ status: icon.status, location: icon.headers.location }).toEqual({ status: 204, location: undefined });
  });

  test("changing alice's IdP group and signing in again changes her Looker role (roles mirror the groups at every login)", async () => {
    const looker = lookers[method];
    const { page } = await newPage();
    await signIn(page, looker, '/', user('alice'));
    await expect(field(page, 'roles').textContent()).resolves.toBe('Viewer');
    const firstId = await field(page, 'looker-user-id').textContent();
    try {
      await setIdpClaims('alice', { groups: ['looker-admins'] });
      await page.goto(`${looker.publicUrl}/logout`);
      // The IdP session is still there: the second sign-in needs no password.
      await page.goto(`${looker.publicUrl}/`);
      await expect(field(page, 'roles').textContent()).resolves.toBe('Admin');
      await expect(field(page, 'groups').textContent()).resolves.toBe('Admins');
      await expect(field(page, 'looker-user-id').textContent()).resolves.toBe(firstId);
    } finally {
      await setIdpClaims('alice', { groups: ['looker-analysts'] });
    }
  });

  test('a wrong client secret in oidc_config: the token URL refuses the code and Looker shows why, without a session', async () => {
    const looker = lookers[method];
    expect((await lookerApi(looker, 'PATCH', LOOKER_API_PATHS.oidcConfig, { secret: 'not-the-secret' })).status).toBe(200);
    try {
      const { context, page } = await newPage();
      await page.goto(`${looker.publicUrl}/`);
      await page.locator('#username').waitFor();
      const [response] = await Promise.all([page.waitForResponse((r) => r.url().startsWith(looker.redirectUri)), submitLogin(page, user('bob'))]);
      expect(response.status()).toBe(502);
      await expect(page.locator('#message').getAttribute('data-reason')).resolves.toBe('token-refused');
      await expect(page.locator('#message').textContent()).resolves.toContain('invalid_client');
      expect((await context.cookies(looker.publicUrl)).map((c) => c.name)).not.toContain('looker_standin_session');
    } finally {
      await lookerApi(looker, 'PATCH', LOOKER_API_PATHS.oidcConfig, { secret: clientOf(method).clientSecret });
    }
  });

  test('with OIDC on, the API refuses a browser without a Looker session, and the alternate e-mail login stays reachable', async () => {
    const looker = lookers[method];
    const api = await httpsRequest(`${looker.publicUrl}/api/4.0/user`, pki.ca.cert, { headers: { 'x-forwarded-user': 'mallory', 'x-looker-roles': 'Admin' } });
    expect(api.status).toBe(401);
    const alternate = await httpsRequest(`${looker.publicUrl}/login/email`, pki.ca.cert);
    expect(alternate.status).toBe(200);
  });
});
