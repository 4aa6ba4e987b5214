/**
 * The development IdP of `npm run local` on its own: a real login form that refuses
 * wrong passwords (unlike oidc-provider's devInteractions, which accept anyone), no
 * consent step for the gateway's client, groups in the ID token, and refresh tokens
 * that rotate (a spent one is refused). The relying party is openid-client 6, the
 * library the auth service uses.
 */
import 'reflect-metadata';
import * as https from 'node:https';
import { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { Browser } from 'playwright-core';
import { devUserAccount, startDevIdp, RunningDevIdp } from '../../dev/stand-ins/idp/dev-idp';
import { DEV_USERS } from '../../dev/stand-ins/idp/dev-users';
import { createLocalFolder, LocalFolder } from '../../local/files';
import { createLocalPki, LocalPki, spkiSha256Base64 } from '../../local/pki';
import { httpsRequest } from '../../dev/readiness';
import { launchChromium } from './support/browser';
import { submitLogin, VIEWPORT } from './support/flows';

const CLIENT_ID = 'dev-idp-test';
const CLIENT_SECRET = 'dev-idp-test-secret';

let folder: LocalFolder;
let pki: LocalPki;
let idp: RunningDevIdp;
let browser: Browser;
let callbackServer: https.Server;
let redirectUri: string;
let config: client.Configuration;

beforeAll(async () => {
  folder = createLocalFolder();
  pki = await createLocalPki();
  // The relying party's callback: only needs to exist so the browser's last redirect lands.
  callbackServer = https.createServer({ cert: pki.gateway.cert, key: pki.gateway.key }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('callback reached');
  });
  await new Promise<void>((resolve) => callbackServer.listen(0, '127.0.0.1', resolve));
  redirectUri = `https://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/oauth2/callback`;
  idp = await startDevIdp({
    workDir: folder.folder('idp'),
    certFile: folder.write('idp/cert.pem', pki.idp.cert),
    keyFile: folder.write('idp/key.pem', pki.idp.key),
    caPem: pki.ca.cert,
    accounts: Object.values(DEV_USERS).map(devUserAccount),
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUris: [redirectUri],
    postLogoutRedirectUris: [redirectUri],
  });
  const agent = new Agent({ connect: { ca: pki.ca.cert } });
  const trustingFetch = ((url: string, options: Parameters<client.CustomFetch>[1]) =>
    undiciFetch(url, { ...(options as object), dispatcher: agent } as Parameters<typeof undiciFetch>[1])) as unknown as client.CustomFetch;
  config = await client.discovery(new URL(idp.issuer), CLIENT_ID, CLIENT_SECRET, client.ClientSecretBasic(CLIENT_SECRET), {
    [client.customFetch]: trustingFetch,
  });
  config[client.customFetch] = trustingFetch;
  browser = await launchChromium([spkiSha256Base64(pki.idp.cert), spkiSha256Base64(pki.gateway.cert)]);
});

afterAll(async () => {
  await browser?.close();
  await idp?.stop();
  await new Promise((resolve) => callbackServer?.close(resolve));
  folder?.remove();
});

async function authorize(username: string, password: string): Promise<{ callbackUrl: URL; verifier: string; state: string; nonce: string; status: number }> {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email profile offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const context = await browser.newContext({ viewport: VIEWPORT });
  try {
    const page = await context.newPage();
    await page.goto(url.href);
    await page.locator('#username').waitFor();
    let status = 0;
    page.on('response', (response) => {
      if (response.request().method() === 'POST') status = response.status();
    });
    await submitLogin(page, { username, password });
    return { callbackUrl: new URL(page.url()), verifier, state, nonce, status };
  } finally {
    await context.close();
  }
}

describe('the development IdP', () => {
  test('serves no test-admin endpoints unless started with testAdminEndpoints', async () => {
    const answer = await httpsRequest(`${idp.issuer}/test-admin/users/alice`, pki.ca.cert, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ groups: ['looker-admins'] }),
    });
    expect(answer.status).toBe(404);
  });

  test('refuses a wrong password on its login form', async () => {
    const before = await idp.stats();
    const attempt = await authorize('alice', 'guessed');
    expect(attempt.status).toBe(401);
    expect(attempt.callbackUrl.origin).toBe(idp.issuer);
    expect((await idp.stats()).failedLogins).toBe(before.failedLogins + 1);
  });

  test('refuses a user it does not know', async () => {
    const attempt = await authorize('mallory', 'anything');
    expect(attempt.status).toBe(401);
    expect(attempt.callbackUrl.href.startsWith(redirectUri)).toBe(false);
  });

  test('logs alice in without a consent step, with her groups in the ID token, and rotates refresh tokens', async () => {
    const attempt = await authorize(DEV_USERS.alice.username, DEV_USERS.alice.password);
    expect(attempt.callbackUrl.href.startsWith(redirectUri)).toBe(true);

    const tokens = await client.authorizationCodeGrant(config, attempt.callbackUrl, {
      pkceCodeVerifier: attempt.verifier,
      expectedState: attempt.state,
      expectedNonce: attempt.nonce,
    });
    const claims = tokens.claims()!;
    expect(claims.sub).toBe('alice');
    expect(claims.groups).toEqual(['looker-analysts']);
    expect(claims.email).toBe('alice@example.com');
    expect(tokens.refresh_token).toBeTruthy();

    const before = await idp.stats();
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.claims()?.groups).toEqual(['looker-analysts']);

    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const after = await idp.stats();
    expect(after.refreshes).toBe(before.refreshes + 1);
    expect(after.failedRefreshes).toBe(before.failedRefreshes + 1);
  });
});
