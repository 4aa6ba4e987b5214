/**
 * Issue 16, "Done when": for every IdP profile, against the dev IdP answering as that IdP
 * does (local/dev-idp-quirks.mjs, facts and sources in docs/idps.md), through the auth
 * service as it deploys (the esbuild bundle, its own AWS SDK clients answered by the
 * DynamoDB and Secrets Manager models): a login, an inline refresh, a group-based mapping
 * that follows a group change at the IdP, and a logout that ends the IdP session where
 * the IdP has a logout (checked with a silent `prompt=none` authorization afterwards) and
 * is audited `idp-session-kept` where it has none (Google).
 * Only LG_IDP_PROVIDER and what docs/idps.md tells the operator to set are configured.
 */
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { decodeJwt } from 'jose';
import { IDP_PROVIDERS, type IdpProvider } from '../../lib/auth/idp-profiles';
import { AUTH_PATHS, SESSION_COOKIE } from '../../lib/session-contract';
import { DIRECTORY_GROUP_READONLY_SCOPE, startGoogleDirectoryStandIn, type DirectoryGroup } from '../../local/stand-ins/google-directory';
import { issueCertificate } from '../support/pki';
import { startBundledHarness, type BundledHarness } from './support/bundle';
import { CLIENT_ID, CookieJar, followIdpLogout, idpSessionState, login, request, type HarnessOptions, type TestUsers } from './support/harness';

/** The two groups each IdP names the way it names groups: Entra by object id, Google by group e-mail. */
const GROUPS: Record<IdpProvider, { analysts: string; admins: string }> = {
  okta: { analysts: 'looker-analysts', admins: 'looker-admins' },
  entra: { analysts: '6f0c3d1a-9b2e-4c7f-8a1d-2e3f4a5b6c7d', admins: '0b7e2c4d-5a6f-4e8d-9c1b-3a2f1e0d9c8b' },
  google: { analysts: 'looker-analysts@example.com', admins: 'looker-admins@example.com' },
  auth0: { analysts: 'looker-analysts', admins: 'looker-admins' },
  keycloak: { analysts: 'looker-analysts', admins: 'looker-admins' },
  ping: { analysts: 'looker-analysts', admins: 'looker-admins' },
  cognito: { analysts: 'looker-analysts', admins: 'looker-admins' },
  generic: { analysts: 'looker-analysts', admins: 'looker-admins' },
};

const SERVICE_ACCOUNT = 'looker-gateway@example-project.iam.gserviceaccount.com';

/** What docs/idps.md and the README's IdP table tell the operator to set for each IdP (the rest comes from the profile). */
function setupFor(provider: IdpProvider, memberships: Record<string, DirectoryGroup[]>, directoryCalls: { count: () => number }): HarnessOptions['prepare'] {
  return async ({ ca, idp, model }) => {
    const environment: Record<string, string | undefined> = { LG_IDP_PROVIDER: provider, LG_IDP_SCOPES: undefined };
    if (provider === 'auth0') environment.LG_IDP_GROUPS_CLAIM = '/https:~1~1example.com~1groups';
    if (provider === 'cognito') environment.LG_IDP_END_SESSION = `${idp.origin}/logout?client_id={clientId}&logout_uri={postLogoutRedirectUri}`;
    if (provider !== 'google') return { environment };
    // Google: groups from the Directory API, with a domain-wide-delegated service account key in Secrets Manager.
    const keys = await generateKeyPair('RS256', { extractable: true });
    const cert = await issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usages: ['server'] });
    const directory = await startGoogleDirectoryStandIn({
      certPem: cert.cert,
      keyPem: cert.key,
      serviceAccount: { clientEmail: SERVICE_ACCOUNT, publicKeyPem: await exportSPKI(keys.publicKey), delegatedScopes: [DIRECTORY_GROUP_READONLY_SCOPE] },
      administrators: ['admin@example.com'],
      memberships,
    });
    directoryCalls.count = () => directory.calls.filter((c) => c.path.endsWith('/groups')).length;
    const keyFile = { type: 'service_account', client_email: SERVICE_ACCOUNT, private_key: await exportPKCS8(keys.privateKey), token_uri: directory.tokenUri };
    const secret = model.createSecret({ Name: 'lg/google-service-account', SecretString: JSON.stringify(keyFile) });
    return {
      environment: {
        ...environment,
        LG_IDP_GROUPS_SOURCE: 'google-directory',
        LG_GOOGLE_SERVICE_ACCOUNT_SECRET_ARN: secret.ARN,
        LG_GOOGLE_ADMIN_EMAIL: 'admin@example.com',
        LG_GOOGLE_DIRECTORY_URL: directory.directoryApi,
      },
      stop: () => directory.stop(),
    };
  };
}

describe.each(IDP_PROVIDERS)('the %s profile, bundled, against its emulated IdP', (provider) => {
  const groups = GROUPS[provider];
  const users: TestUsers = { alice: { email: 'alice@example.com', email_verified: true, name: 'Alice', hd: 'example.com', groups: [groups.analysts, 'unmapped'] } };
  const memberships: Record<string, DirectoryGroup[]> = { 'alice@example.com': [{ id: '01a', email: groups.analysts, name: 'Analysts' }], 'admin@example.com': [] };
  const rules = {
    rules: [
      { name: 'analysts', match: { groups: [groups.analysts] }, grant: { roles: ['Viewer'], groups: ['Analysts'] } },
      { name: 'admins', match: { groups: [groups.admins] }, grant: { roles: ['Admin'], groups: ['Admins'] } },
    ],
  };
  const directoryCalls = { count: () => 0 };
  let b: BundledHarness;

  beforeAll(async () => {
    b = await startBundledHarness({ quirks: { profile: provider }, users, rules, revocationTable: true, prepare: setupFor(provider, memberships, directoryCalls) });
  });
  afterAll(async () => b?.stop());

  test('login, inline refresh and the group-based mapping (following a group change at the IdP), then a logout that ends the IdP session where it can', async () => {
    const { h } = b;
    const jar = new CookieJar();
    const { callback } = await login(h, jar, 'alice', '/dashboards/1');
    expect({ status: callback.status, location: callback.location }).toEqual({ status: 302, location: `${h.gatewayUrl}/dashboards/1` });
    expect(decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!)).toMatchObject({ sub: 'alice', roles_csv: 'Viewer', groups_csv: 'Analysts' });
    expect(b.audits().find((e) => e.event === 'login')).toMatchObject({ outcome: 'success', reason: 'authenticated', matchedRules: ['analysts'] });

    // The group changes at the IdP (Google: in the directory); the next refresh maps the new one.
    if (provider === 'google') memberships['alice@example.com'] = [{ id: '02b', email: groups.admins, name: 'Admins' }];
    else await h.idp.setUser('alice', { groups: [groups.admins] });
    if (provider === 'google') {
      // The directory was asked once at login; within the groups cache a refresh reuses that
      // answer (the change shows once the cache time has passed).
      expect(directoryCalls.count()).toBe(1);
      const cached = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.session}`, { method: 'POST' });
      expect(cached.status).toBe(200);
      expect(decodeJwt(JSON.parse(cached.body).session)).toMatchObject({ roles_csv: 'Viewer' });
      expect(directoryCalls.count()).toBe(1);
      return finishWithLogout(b, jar, provider, 'Viewer');
    }
    const refreshed = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.session}`, { method: 'POST' });
    expect(refreshed.status).toBe(200);
    expect(decodeJwt(JSON.parse(refreshed.body).session)).toMatchObject({ sub: 'alice', roles_csv: 'Admin', groups_csv: 'Admins' });
    expect(b.audits().filter((e) => e.event === 'refresh').pop()).toMatchObject({ outcome: 'success', matchedRules: ['admins'] });
    await finishWithLogout(b, jar, provider, 'Admin');
  });
});

async function finishWithLogout(b: BundledHarness, jar: CookieJar, provider: IdpProvider, role: string): Promise<void> {
  const { h } = b;
  expect(decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!)).toMatchObject({ roles_csv: role });
  const out = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl } });
  expect(out.status).toBe(303);
  const audit = b.audits().filter((e) => e.event === 'logout').pop()!;
  const redirectUri = `${h.gatewayUrl}${AUTH_PATHS.callback}`;
  if (provider === 'google') {
    // Google has no RP-initiated logout: the gateway says so, and the Google session survives.
    expect(out.location).toBe(`${h.gatewayUrl}${AUTH_PATHS.logout}?signed_out=1`);
    expect(audit).toMatchObject({ outcome: 'success', reason: 'idp-session-kept' });
    expect(await idpSessionState(h.fetch, jar, h.idp.issuer, CLIENT_ID, redirectUri)).toBe('signed-in');
    return;
  }
  expect(audit).toMatchObject({ outcome: 'success', reason: 'idp-end-session' });
  expect(String(audit.detail)).toContain('with id_token_hint');
  const walk = await followIdpLogout(h.fetch, jar, out.location!, h.gatewayUrl);
  // Back at the signed-out page, with no refusal (Okta) and no account picker (Entra, Keycloak, Ping).
  expect(walk).toEqual({ endedAt: `${h.gatewayUrl}${AUTH_PATHS.logout}?signed_out=1`, askedWhichAccount: false });
  expect(await idpSessionState(h.fetch, jar, h.idp.issuer, CLIENT_ID, redirectUri)).toBe('login_required');
}
