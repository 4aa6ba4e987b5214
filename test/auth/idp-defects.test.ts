/**
 * Issue 16's numbered defects, each against the dev IdP answering as the IdP in question
 * does (local/dev-idp-quirks.mjs; the facts and their sources are in docs/idps.md), through
 * the auth service and the AWS models. Every test here failed on the code before issue 16
 * part 2 (the comment on each says how); the per-profile flows are in
 * idp-profiles-bundled.test.ts.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { decodeJwt, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import type { CustomFetch } from 'openid-client';
import { AUTH_PATHS, REFRESH_COOKIE, SESSION_COOKIE, ASSERTION_COOKIE } from '../../lib/session-contract';
import { DIRECTORY_GROUP_READONLY_SCOPE, startGoogleDirectoryStandIn, type RunningGoogleDirectoryStandIn } from '../../local/stand-ins/google-directory';
import { startMicrosoftGraphStandIn, type RunningMicrosoftGraphStandIn } from '../../local/stand-ins/microsoft-graph';
import { createClientCertificate } from '../e2e/support/quirky-idp';
import { issueCertificate } from '../support/pki';
import { freePort } from '../support/ports';
import {
  CLIENT_ID,
  CookieJar,
  followIdpLogout,
  Harness,
  idpLogin,
  idpSessionState,
  login,
  loginAt,
  request,
  startHarness,
  type HttpAnswer,
  type RunningIdp,
} from './support/harness';

const ENTRA_TENANT = '3c2f8b1e-7d4a-4e6b-9a1c-5f0e2d8b7a64';
const OTHER_TENANT = '11111111-2222-4333-8444-555555555555';

const inlineRefresh = (h: Harness, jar: CookieJar, base = h.gatewayUrl): Promise<HttpAnswer> => request(h.fetch, jar, `${base}${AUTH_PATHS.session}`, { method: 'POST', headers: { 'x-request-id': `r-${randomBytes(6).toString('hex')}` } });
const lastAudit = (h: Harness, event?: string) => [...h.logs.audits()].reverse().find((e) => event === undefined || e.event === event);
const sessionClaims = (jar: CookieJar, h: Harness) => decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!);

/** A fetch that sends https://login.microsoftonline.com to the emulated Entra ID, as DNS would send it to Microsoft. */
function entraHostOnEmulation(fetchFn: CustomFetch, idp: RunningIdp): CustomFetch {
  return ((url: string, init: Parameters<CustomFetch>[1]) => fetchFn(url.replace(/^https:\/\/login\.microsoftonline\.com/, idp.origin), init)) as CustomFetch;
}

describe('item 1: Google issues refresh tokens with the provider setting alone', () => {
  // https://developers.google.com/identity/protocols/oauth2/web-server#offline : refresh tokens only with
  // access_type=offline (and again only with prompt=consent); offline_access is refused with invalid_scope.
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      quirks: { profile: 'google' },
      users: { alice: { email: 'alice@example.com', email_verified: true, hd: 'example.com', name: 'Alice' } },
      rules: { rules: [{ name: 'workspace', match: { claims: [{ claim: 'hd', values: ['example.com'] }] }, grant: { roles: ['Viewer'] } }] },
      environment: { LG_IDP_PROVIDER: 'google', LG_IDP_SCOPES: undefined },
    });
  });
  afterAll(async () => h?.stop());

  // Before: the default scopes asked for offline_access and nothing sent access_type: Google's error page (400 invalid_scope).
  test('the login asks for access_type=offline and prompt=consent without offline_access, gets a refresh token, and refreshes (claims from userinfo)', async () => {
    const jar = new CookieJar();
    const start = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.start}`);
    const authorization = new URL(start.location!);
    expect(authorization.searchParams.get('scope')).toBe('openid email profile');
    expect({ access_type: authorization.searchParams.get('access_type'), prompt: authorization.searchParams.get('prompt') }).toEqual({ access_type: 'offline', prompt: 'consent' });
    const callback = await request(h.fetch, jar, await idpLogin(h.fetch, jar, start.location!, 'alice'));
    expect(callback.status).toBe(302);
    expect(jar.get(h.gatewayUrl, REFRESH_COOKIE)).toBeDefined();
    expect(lastAudit(h, 'login')).toMatchObject({ reason: 'authenticated' });
    const userinfoCalls = (await h.idp.stats()).userinfo;
    const refreshed = await inlineRefresh(h, jar);
    expect(refreshed.status).toBe(200);
    // Google's refresh answer has no ID token: the claims come from userinfo.
    expect((await h.idp.stats()).userinfo).toBe(userinfoCalls + 1);
  });
});

describe('item 2: refresh tokens kept server-side', () => {
  describe('a 3 KB refresh token (Entra ID documents no maximum length)', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ quirks: { profile: 'entra', refreshTokenBytes: 3072 }, environment: { LG_IDP_PROVIDER: 'entra', LG_IDP_SCOPES: undefined }, revocationTable: true });
    });
    afterAll(async () => h?.stop());

    // Before: the sealed refresh token made a cookie line over 4096 bytes, which browsers drop silently.
    test('every cookie the service sets stays within 4096 bytes (name and value), and the session refreshes, twice', async () => {
      const jar = new CookieJar();
      const { callback } = await login(h, jar, 'alice');
      expect(callback.status).toBe(302);
      const sizes = (answer: HttpAnswer) => answer.setCookies.map((line) => Buffer.byteLength(line.split(';')[0]));
      expect(Math.max(...sizes(callback))).toBeLessThanOrEqual(4096);
      expect(Buffer.byteLength(`${REFRESH_COOKIE}=${jar.get(h.gatewayUrl, REFRESH_COOKIE)}`)).toBeLessThan(1024);
      for (let i = 0; i < 2; i += 1) {
        const refreshed = await inlineRefresh(h, jar);
        expect(refreshed.status).toBe(200);
        expect(Math.max(...sizes(refreshed))).toBeLessThanOrEqual(4096);
      }
    });
  });

  describe('Okta rotation with reuse detection', () => {
    // https://developer.okta.com/docs/guides/refresh-tokens/refresh-token-rotation/ : presenting a spent
    // refresh token invalidates the newest one too.
    const clock = { offsetSeconds: 0 };
    let h: Harness;
    let other: Awaited<ReturnType<Harness['startAnother']>>;
    beforeAll(async () => {
      h = await startHarness({ quirks: { profile: 'okta' }, environment: { LG_IDP_PROVIDER: 'okta', LG_IDP_SCOPES: undefined }, revocationTable: true, now: () => Date.now() + clock.offsetSeconds * 1000 });
      other = await h.startAnother({});
    });
    afterAll(async () => {
      await other?.stop();
      await h?.stop();
    });
    afterEach(async () => {
      clock.offsetSeconds = 0;
      await h.idp.delay(0);
    });

    // Before: both containers redeemed the same refresh token; Okta revoked the family and the next refresh failed.
    test('two containers refresh one session at once: the token is redeemed once, both answer 200, and the session keeps refreshing', async () => {
      const jar = new CookieJar();
      await login(h, jar, 'alice');
      const atOther = new CookieJar();
      atOther.set(other.url, REFRESH_COOKIE, jar.get(h.gatewayUrl, REFRESH_COOKIE)!);
      const before = await h.idp.stats();
      await h.idp.delay(600, ['/token']);
      const [here, there] = await Promise.all([inlineRefresh(h, jar), inlineRefresh(h, atOther, other.url)]);
      await h.idp.delay(0);
      expect([here.status, there.status]).toEqual([200, 200]);
      const after = await h.idp.stats();
      expect({ redeemed: after.refreshes - before.refreshes, refused: after.failedRefreshes - before.failedRefreshes }).toEqual({ redeemed: 1, refused: 0 });
      const reasons = [...h.logs.audits(), ...other.logs.audits()].filter((e) => e.event === 'refresh').slice(-2).map((e) => e.reason).sort();
      expect(reasons).toEqual(['refreshed-by-concurrent-request', 'refreshed-rotated']);
      // Either answer's cookies carry on.
      expect((await inlineRefresh(h, jar)).status).toBe(200);
      expect((await h.idp.stats()).failedRefreshes).toBe(before.failedRefreshes);
    });

    // Before: the refresh token in an old cookie went to Okta, which took it as reuse and revoked the family.
    test('a refresh cookie superseded longer ago than the grace is refused here, without sending the spent token to the IdP', async () => {
      const jar = new CookieJar();
      await login(h, jar, 'alice');
      const stale = new CookieJar();
      stale.set(h.gatewayUrl, REFRESH_COOKIE, jar.get(h.gatewayUrl, REFRESH_COOKIE)!);
      expect((await inlineRefresh(h, jar)).status).toBe(200);
      clock.offsetSeconds = 11;
      const before = await h.idp.stats();
      const replay = await inlineRefresh(h, stale);
      expect({ status: replay.status, reason: JSON.parse(replay.body).reason }).toEqual({ status: 401, reason: 'refresh-cookie-superseded' });
      expect((await h.idp.stats()).refreshes + (await h.idp.stats()).failedRefreshes).toBe(before.refreshes + before.failedRefreshes);
      expect((await inlineRefresh(h, jar)).status).toBe(200);
    });
  });
});

describe('item 3: the session budget counts the cookie name', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.stop());

  /** A service whose one rule grants attributes of `length` characters in all (values are at most 256 characters each). */
  const withAttribute = (length: number) => {
    const attributes: Record<string, string> = {};
    for (let i = 0; i * 250 < length; i += 1) attributes[`a${String(i).padStart(2, '0')}`] = 'a'.repeat(Math.min(250, length - i * 250));
    return h.startAnother({ LG_MAPPING_RULES: JSON.stringify({ rules: [{ name: 'big', match: { groups: ['looker-analysts'] }, grant: { roles: ['Viewer'], attributes } }] }) });
  };

  // Before: a token of 4079 to 4096 bytes passed the 4096-byte check and its cookie line (name, "=", value) did not fit.
  test('at the first size that does not fit, the token is within 4096 bytes and its cookie line is not: refused with session-too-large, never set', async () => {
    const attempt = async (length: number) => {
      const service = await withAttribute(length);
      try {
        const jar = new CookieJar();
        const callback = await loginAt(h, service.url, jar, 'alice');
        return { callback, jar, url: service.url, audits: service.logs.audits() };
      } finally {
        await service.stop();
      }
    };
    // Binary search for the smallest grant that no longer fits (tokens grow with the attributes).
    let fits = 2000;
    let tooLarge = 3600;
    expect((await attempt(fits)).callback.status).toBe(302);
    expect((await attempt(tooLarge)).callback.status).toBe(403);
    let largestSet = 0;
    while (tooLarge - fits > 1) {
      const middle = Math.floor((fits + tooLarge) / 2);
      const outcome = await attempt(middle);
      if (outcome.callback.status === 302) {
        fits = middle;
        largestSet = Math.max(largestSet, ...[SESSION_COOKIE, ASSERTION_COOKIE].map((name) => Buffer.byteLength(`${name}=${outcome.jar.get(outcome.url, name)}`)));
      } else {
        tooLarge = middle;
      }
    }
    // Everything that was set fitted a browser's 4096 bytes, name included.
    expect(largestSet).toBeLessThanOrEqual(4096);
    const refused = await attempt(tooLarge);
    expect(refused.callback.status).toBe(403);
    expect(JSON.parse(refused.callback.body)).toMatchObject({ reason: 'session-too-large' });
    expect(refused.callback.setCookies.filter((c) => !c.includes('Max-Age=0'))).toEqual([]);
    const [, bytes] = /would be (\d+) bytes, over the budget of 4096/.exec(String(refused.audits.find((e) => e.reason === 'session-too-large')!.detail))!;
    // One character more than the last grant that fitted: the token itself is still within 4096 bytes;
    // only counting the cookie's name (and "=") refuses it.
    expect(Number(bytes)).toBeGreaterThan(4096);
    expect(Number(bytes) - SESSION_COOKIE.length - 1).toBeLessThanOrEqual(4096);
  });
});

describe('item 5: Entra ID multi-tenant issuers enforce the tenant', () => {
  // https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference : tid is the user's tenant.
  // openid-client takes any tenant's token for /organizations (it fills the issuer template with the token's tid).
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      quirks: { profile: 'entra' },
      environment: { LG_IDP_PROVIDER: 'entra', LG_IDP_SCOPES: undefined, LG_IDP_ISSUER: 'https://login.microsoftonline.com/organizations/v2.0', LG_IDP_ALLOWED_TENANTS: OTHER_TENANT },
      wrapFetch: entraHostOnEmulation,
    });
  });
  afterAll(async () => h?.stop());

  // Before: the user of any tenant signed in.
  test('a user of a tenant not in allowedTenants is denied (tenant-not-allowed); with the tenant listed the same login works', async () => {
    const jar = new CookieJar();
    const { callback } = await login(h, jar, 'alice');
    expect(callback.status).toBe(403);
    expect(callback.body).toContain('tenant-not-allowed');
    expect(jar.get(h.gatewayUrl, SESSION_COOKIE)).toBeUndefined();
    expect(lastAudit(h, 'deny')).toMatchObject({ reason: 'tenant-not-allowed', detail: expect.stringContaining(`tid ${ENTRA_TENANT}`) });
    const allowing = await h.startAnother({ LG_IDP_ALLOWED_TENANTS: `${OTHER_TENANT},${ENTRA_TENANT}` });
    try {
      const admitted = await loginAt(h, allowing.url, new CookieJar(), 'alice');
      expect(admitted.status).toBe(302);
    } finally {
      await allowing.stop();
    }
  });
});

describe('item 6: logout where the end-session endpoint is not in discovery (Auth0 without the flag)', () => {
  // https://auth0.com/docs/authenticate/login/logout/log-users-out-of-auth0 : /v2/logout?client_id=&returnTo= .
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      quirks: { profile: 'auth0', endSession: 'auth0-v2' },
      environment: { LG_IDP_PROVIDER: 'auth0', LG_IDP_SCOPES: undefined, LG_IDP_GROUPS_CLAIM: '/https:~1~1example.com~1groups' },
      prepare: async ({ idp }) => ({ environment: { LG_IDP_END_SESSION: `${idp.origin}/v2/logout?client_id={clientId}&returnTo={postLogoutRedirectUri}` } }),
    });
  });
  afterAll(async () => h?.stop());

  // Before: no end_session_endpoint meant a local-only logout and a surviving Auth0 session.
  test('the endSession template ends the Auth0 session: the next silent login at the IdP needs a login', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    const out = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl } });
    expect(new URL(out.location!).pathname).toBe('/v2/logout');
    expect(lastAudit(h, 'logout')).toMatchObject({ reason: 'idp-end-session' });
    const walk = await followIdpLogout(h.fetch, jar, out.location!, h.gatewayUrl);
    expect(walk.endedAt.startsWith(`${h.gatewayUrl}${AUTH_PATHS.logout}?signed_out=1`)).toBe(true);
    expect(await idpSessionState(h.fetch, jar, h.idp.issuer, CLIENT_ID, `${h.gatewayUrl}${AUTH_PATHS.callback}`)).toBe('login_required');
  });
});

describe('item 7: a client secret rotated at the IdP', () => {
  const clock = { offsetSeconds: 0 };
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ quirks: { profile: 'generic' }, now: () => Date.now() + clock.offsetSeconds * 1000 });
  });
  afterAll(async () => h?.stop());

  // Before: "code used twice" (code-rejected:invalid_client), and sign-in failed until a cold start even after the secret was updated.
  test('is reported as idp-client-auth-failed until Secrets Manager has it, then works at once without a restart', async () => {
    const rotated = `rotated-${randomBytes(12).toString('hex')}`;
    await h.idp.rotateClientSecret(rotated);
    const failed = await login(h, new CookieJar(), 'alice');
    expect(failed.callback.status).toBe(502);
    expect(failed.callback.body).toContain('Reason: idp-client-auth-failed');
    expect(lastAudit(h)).toMatchObject({ event: 'login', outcome: 'failure', reason: 'idp-client-auth-failed', status: 502 });
    expect(h.logs.lines.join('\n')).not.toContain(rotated);

    h.model.putSecretValue({ SecretId: h.secretArns.clientSecret, SecretString: JSON.stringify({ clientSecret: rotated }) });
    // Past the re-read interval (30 s) but well within the one-minute cache: the invalid_client itself made the service read again.
    clock.offsetSeconds = 31;
    const jar = new CookieJar();
    const { callback } = await login(h, jar, 'alice');
    expect(callback.status).toBe(302);
    expect((await inlineRefresh(h, jar)).status).toBe(200);
    expect(h.logs.lines.join('\n')).not.toContain(rotated);
  });
});

describe('items 8 and 10: Entra ID certificate credentials (private_key_jwt with x5t#S256) and groups from Microsoft Graph on an overage', () => {
  // https://learn.microsoft.com/entra/identity-platform/certificate-credentials : the assertion header carries x5t#S256.
  // https://learn.microsoft.com/troubleshoot/entra/entra-id/app-integration/get-signed-in-users-groups-in-access-token : over 200 groups, _claim_names.
  const analysts = '6f0c3d1a-9b2e-4c7f-8a1d-2e3f4a5b6c7d';
  const many = [analysts, ...Array.from({ length: 249 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)];
  const bobOid = '9d2b6c4e-1f3a-4b5c-8d7e-6f5a4b3c2d1e';
  const rules = { rules: [{ name: 'analysts', match: { groups: [analysts] }, grant: { roles: ['Viewer'] } }] };
  let h: Harness;
  let graph: RunningMicrosoftGraphStandIn;
  let noCertificateKey: string;

  beforeAll(async () => {
    const certificate = await createClientCertificate();
    const privateKeyPem = await exportPKCS8(certificate.privateKey);
    const certificatePem = `-----BEGIN CERTIFICATE-----\n${(certificate.publicJwk.x5c as string[])[0].match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    const graphPort = await freePort();
    h = await startHarness({
      quirks: {
        profile: 'entra',
        tokenEndpointAuthMethod: 'private_key_jwt',
        clientJwks: { keys: [certificate.publicJwk] },
        requireCertificateThumbprint: true,
        graph: { resource: `https://127.0.0.1:${graphPort}`, roles: ['User.Read.All', 'GroupMember.Read.All'] },
      },
      users: { bigbob: { name: 'Bob', email: 'bob@example.com', email_verified: true, oid: bobOid, groups: many } },
      rules,
      prepare: async ({ ca, idp, model, fetch }) => {
        const cert = await issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usages: ['server'] });
        graph = await startMicrosoftGraphStandIn({
          certPem: cert.cert,
          keyPem: cert.key,
          port: graphPort,
          issuer: idp.issuer,
          tenantId: ENTRA_TENANT,
          memberships: { [bobOid]: many.map((id) => ({ id })) },
          fetch: fetch as unknown as (url: string, init?: RequestInit) => Promise<Response>,
        });
        const key = model.createSecret({ Name: 'lg/idp-client-key', SecretString: JSON.stringify({ privateKeyPem, certificatePem }) });
        noCertificateKey = model.createSecret({ Name: 'lg/idp-client-key-no-certificate', SecretString: JSON.stringify({ privateKeyPem }) }).ARN;
        return {
          environment: {
            LG_IDP_PROVIDER: 'entra',
            LG_IDP_SCOPES: undefined,
            LG_IDP_CLIENT_SECRET_ARN: undefined,
            LG_IDP_TOKEN_AUTH_METHOD: 'private_key_jwt',
            LG_IDP_CLIENT_KEY_SECRET_ARN: key.ARN,
            LG_IDP_GROUPS_SOURCE: 'microsoft-graph',
            LG_GRAPH_BASE_URL: `https://127.0.0.1:${graphPort}`,
          },
          stop: () => graph.stop(),
        };
      },
    });
  });
  afterAll(async () => h?.stop());

  // Before: only client_secret_basic existed (Entra answered invalid_client), and an overage user had no groups (403 no-rule-matched).
  test('the client authenticates with the certificate key; the overage groups come from Graph with an app-only token; results are reused at refresh', async () => {
    const jar = new CookieJar();
    const { callback } = await login(h, jar, 'bigbob');
    expect(callback.status).toBe(302);
    expect(sessionClaims(jar, h)).toMatchObject({ roles_csv: 'Viewer' });
    expect(graph.calls.filter((c) => c.status === 200)).toHaveLength(1);
    expect(graph.calls[0].roles).toEqual(['User.Read.All', 'GroupMember.Read.All']);
    expect((await inlineRefresh(h, jar)).status).toBe(200);
    // Cached for the session (LG_IDP_GROUPS_CACHE_SECONDS, 900 s by default): no second Graph call.
    expect(graph.calls).toHaveLength(1);
  });

  test('a key secret without the certificate makes no x5t#S256: Entra refuses the client, audited idp-client-auth-failed', async () => {
    const other = await h.startAnother({ LG_IDP_CLIENT_KEY_SECRET_ARN: noCertificateKey });
    try {
      const answer = await loginAt(h, other.url, new CookieJar(), 'bigbob');
      expect({ status: answer.status, reason: JSON.parse(answer.body).reason }).toEqual({ status: 502, reason: 'idp-client-auth-failed' });
    } finally {
      await other.stop();
    }
  });

  test('Graph failing (throttled) denies with groups-source-failed, never an empty group list; the groups claim alone denies with groups-overage', async () => {
    graph.failNext({ status: 429, times: 1, retryAfterSeconds: 2 });
    const throttled = await login(h, new CookieJar(), 'bigbob');
    expect(throttled.callback.status).toBe(502);
    expect(throttled.callback.body).toContain('Reason: groups-source-failed');
    expect(lastAudit(h)).toMatchObject({ reason: 'groups-source-failed', detail: expect.stringContaining('HTTP 429') });
    const tokenOnly = await h.startAnother({ LG_IDP_GROUPS_SOURCE: 'token' });
    try {
      const answer = await loginAt(h, tokenOnly.url, new CookieJar(), 'bigbob');
      expect({ status: answer.status, reason: JSON.parse(answer.body).reason }).toEqual({ status: 403, reason: 'groups-overage' });
      expect(tokenOnly.logs.audits().find((e) => e.reason === 'groups-overage')).toMatchObject({ event: 'deny', detail: expect.stringContaining('set groupsSource to microsoft-graph') });
    } finally {
      await tokenOnly.stop();
    }
  });
});

describe('item 10: Google Workspace groups from the Directory API', () => {
  let h: Harness;
  let directory: RunningGoogleDirectoryStandIn;
  beforeAll(async () => {
    h = await startHarness({
      quirks: { profile: 'google' },
      users: { alice: { email: 'alice@example.com', email_verified: true, hd: 'example.com', name: 'Alice' } },
      rules: { rules: [{ name: 'analysts', match: { groups: ['looker-analysts@example.com'] }, grant: { roles: ['Viewer'] } }] },
      prepare: async ({ ca, model }) => {
        const keys = await generateKeyPair('RS256', { extractable: true });
        const cert = await issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usages: ['server'] });
        const email = 'gateway@example-project.iam.gserviceaccount.com';
        directory = await startGoogleDirectoryStandIn({
          certPem: cert.cert,
          keyPem: cert.key,
          serviceAccount: { clientEmail: email, publicKeyPem: await exportSPKI(keys.publicKey), delegatedScopes: [DIRECTORY_GROUP_READONLY_SCOPE] },
          administrators: ['admin@example.com'],
          memberships: { 'alice@example.com': [{ id: '1', email: 'Looker-Analysts@example.com', name: 'Analysts' }], 'admin@example.com': [] },
        });
        const secret = model.createSecret({ Name: 'lg/google-sa', SecretString: JSON.stringify({ client_email: email, private_key: await exportPKCS8(keys.privateKey), token_uri: directory.tokenUri }) });
        return {
          environment: {
            LG_IDP_PROVIDER: 'google',
            LG_IDP_SCOPES: undefined,
            LG_IDP_GROUPS_SOURCE: 'google-directory',
            LG_GOOGLE_SERVICE_ACCOUNT_SECRET_ARN: secret.ARN,
            LG_GOOGLE_ADMIN_EMAIL: 'admin@example.com',
            LG_GOOGLE_DIRECTORY_URL: directory.directoryApi,
          },
          stop: () => directory.stop(),
        };
      },
    });
  });
  afterAll(async () => h?.stop());

  // Before: Google tokens carry no groups, so no group rule could ever match.
  test('a directory failure denies with groups-source-failed; then the groups (group e-mail addresses, lower case) map', async () => {
    directory.failNext({ status: 503, times: 1 });
    const failed = await login(h, new CookieJar(), 'alice');
    expect(failed.callback.status).toBe(502);
    expect(failed.callback.body).toContain('Reason: groups-source-failed');
    const jar = new CookieJar();
    expect((await login(h, jar, 'alice')).callback.status).toBe(302);
    expect(sessionClaims(jar, h)).toMatchObject({ roles_csv: 'Viewer' });
  });
});

describe('item 10: PingFederate without "Return ID Token On Refresh Grant", groups in the ID token only', () => {
  // https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/help_policymanagementtasklet_policymanagementstate.html
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ quirks: { profile: 'ping', groups: { path: ['groups'], in: ['id_token'] } }, environment: { LG_IDP_PROVIDER: 'ping', LG_IDP_SCOPES: undefined } });
  });
  afterAll(async () => h?.stop());

  // Before: the refresh found no groups and answered the generic 403 no-rule-matched mid-session.
  test('the refresh that finds no groups claim is denied with groups-claim-missing and the fix', async () => {
    const jar = new CookieJar();
    expect((await login(h, jar, 'alice')).callback.status).toBe(302);
    const refreshed = await inlineRefresh(h, jar);
    expect({ status: refreshed.status, reason: JSON.parse(refreshed.body).reason }).toEqual({ status: 403, reason: 'groups-claim-missing' });
    expect(lastAudit(h, 'deny')).toMatchObject({ reason: 'groups-claim-missing', detail: expect.stringContaining('Return ID Token On Refresh Grant') });
  });
});

describe('item 11: a login without a refresh token is reported; foreign cookies do not matter', () => {
  let h: Harness;
  beforeAll(async () => {
    // Okta without offline_access issues no refresh token (docs/idps.md, Okta).
    h = await startHarness({ quirks: { profile: 'okta' }, environment: { LG_IDP_PROVIDER: 'okta', LG_IDP_SCOPES: 'openid email profile groups' } });
  });
  afterAll(async () => h?.stop());

  // Before: the login was audited "authenticated" like any other and the session silently ended after its lifetime.
  test('the login is audited authenticated-without-refresh-token with the fix, and sets no refresh cookie', async () => {
    const jar = new CookieJar();
    expect((await login(h, jar, 'alice')).callback.status).toBe(302);
    expect(jar.get(h.gatewayUrl, REFRESH_COOKIE)).toBeUndefined();
    expect(lastAudit(h, 'login')).toMatchObject({ outcome: 'success', reason: 'authenticated-without-refresh-token', detail: expect.stringContaining('offline_access') });
  });

  test('Looker\'s cookies, malformed pairs and a 6 KB cookie beside the gateway\'s change nothing', async () => {
    const withScopes = await h.startAnother({ LG_IDP_SCOPES: 'openid email profile groups offline_access' });
    try {
      const jar = new CookieJar();
      const foreign: Array<[string, string]> = [['looker.browser', '123'], ['CSRF-TOKEN', 'abc%3D%3D'], ['big', 'x'.repeat(6000)], ['=nameless', 'v'], ['flag', '']];
      for (const [name, value] of foreign) jar.set(withScopes.url, name, value);
      expect((await loginAt(h, withScopes.url, jar, 'alice')).status).toBe(302);
      const refreshed = await inlineRefresh(h, jar, withScopes.url);
      expect(refreshed.status).toBe(200);
    } finally {
      await withScopes.stop();
    }
  });
});
