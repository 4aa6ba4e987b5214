/**
 * Where groups come from when the token has none: Microsoft Graph for Entra's overage and
 * the Google Workspace Directory API for Google. The stand-ins check credentials the way
 * the services document; the tokens come from the emulated IdP (Entra) or from a service
 * account key (Google), as they will for the auth service.
 */
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import * as client from 'openid-client';
import { issueCertificate, type Pem } from '../../dev/pki';
import { freePort } from '../../dev/ports';
import { DIRECTORY_GROUP_READONLY_SCOPE, startGoogleDirectoryStandIn, type RunningGoogleDirectoryStandIn } from '../../dev/stand-ins/google-directory';
import { startMicrosoftGraphStandIn, type RunningMicrosoftGraphStandIn } from '../../dev/stand-ins/microsoft-graph';
import { CLIENT_SECRET, startQuirkyIdp, type QuirkyIdp } from './support/quirky-idp';

const TENANT = '3c2f8b1e-7d4a-4e6b-9a1c-5f0e2d8b7a64';
const BOB_OID = '9d2b6c4e-1f3a-4b5c-8d7e-6f5a4b3c2d1e';
const MANY = Array.from({ length: 250 }, (_, i) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, securityEnabled: i % 5 !== 0 }));

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

async function serverCert(idp: QuirkyIdp): Promise<Pem> {
  return issueCertificate(idp.ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usages: ['server'] });
}

describe('Microsoft Graph stand-in (Entra groups overage)', () => {
  let idp: QuirkyIdp;
  let graph: RunningMicrosoftGraphStandIn;
  let config: client.Configuration;
  let fetchFn: Fetch;

  beforeAll(async () => {
    const port = await freePort();
    const resource = `https://127.0.0.1:${port}`;
    idp = await startQuirkyIdp({
      quirks: { profile: 'entra', graph: { resource, roles: ['User.Read.All', 'GroupMember.Read.All'] } },
      users: { bigbob: { name: 'Bob', email: 'bob@example.com', oid: BOB_OID, groups: MANY.map((g) => g.id) } },
    });
    fetchFn = idp.fetch as unknown as Fetch;
    const cert = await serverCert(idp);
    graph = await startMicrosoftGraphStandIn({
      certPem: cert.cert,
      keyPem: cert.key,
      port,
      issuer: idp.issuer,
      tenantId: TENANT,
      memberships: { [BOB_OID]: MANY },
      fetch: fetchFn,
    });
    config = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
  });
  afterAll(async () => {
    await graph?.stop();
    await idp?.stop();
  });

  const getMemberGroups = (token: string | undefined, userId = BOB_OID, body: unknown = { securityEnabledOnly: false }) =>
    fetchFn(`${graph.url}/v1.0/users/${userId}/getMemberGroups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  // https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow : scope=<resource>/.default,
  // application permissions in the roles claim.
  test('the Entra emulation issues an app-only token for Graph: a JWT for the Graph audience with the application permissions in roles', async () => {
    const tokens = await client.clientCredentialsGrant(config, { scope: `${graph.url}/.default` });
    const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(payload).toMatchObject({ aud: graph.url, iss: idp.issuer, tid: TENANT, roles: ['User.Read.All', 'GroupMember.Read.All'], idtyp: 'app' });
  });

  // https://learn.microsoft.com/graph/api/directoryobject-getmembergroups
  test('an overage login, then getMemberGroups with the app token, gives every group id; securityEnabledOnly filters', async () => {
    const { tokens } = await idp.login(config, { user: 'bigbob', scope: 'openid email' });
    expect(tokens.claims()?._claim_names).toEqual({ groups: 'src1' });
    expect(tokens.claims()?.oid).toBe(BOB_OID);
    const app = await client.clientCredentialsGrant(config, { scope: `${graph.url}/.default` });
    const all = await getMemberGroups(app.access_token);
    expect(all.status).toBe(200);
    expect(((await all.json()) as { value: string[] }).value).toEqual(MANY.map((g) => g.id));
    const security = await getMemberGroups(app.access_token, BOB_OID, { securityEnabledOnly: true });
    expect(((await security.json()) as { value: string[] }).value).toEqual(MANY.filter((g) => g.securityEnabled).map((g) => g.id));
  });

  test('refuses a missing token, the user token (another audience), and a token of another tenant with 401 InvalidAuthenticationToken', async () => {
    const missing = await getMemberGroups(undefined);
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('InvalidAuthenticationToken');
    const { tokens } = await idp.login(config, { user: 'bigbob', scope: 'openid' });
    expect((await getMemberGroups(tokens.access_token)).status).toBe(401);
    expect((await getMemberGroups(tokens.id_token)).status).toBe(401);

    const cert = await serverCert(idp);
    const otherTenant = await startMicrosoftGraphStandIn({
      certPem: cert.cert,
      keyPem: cert.key,
      issuer: idp.issuer,
      tenantId: '11111111-2222-4333-8444-555555555555',
      audience: graph.url,
      memberships: {},
      fetch: fetchFn,
    });
    try {
      const app = await client.clientCredentialsGrant(config, { scope: `${graph.url}/.default` });
      const answer = await fetchFn(`${otherTenant.url}/v1.0/users/${BOB_OID}/getMemberGroups`, {
        method: 'POST',
        headers: { authorization: `Bearer ${app.access_token}`, 'content-type': 'application/json' },
        body: '{"securityEnabledOnly":false}',
      });
      expect(answer.status).toBe(401);
    } finally {
      await otherTenant.stop();
    }
  });

  test('answers 404 for an unknown user, 400 without securityEnabledOnly, and injected failures with Retry-After', async () => {
    const app = await client.clientCredentialsGrant(config, { scope: `${graph.url}/.default` });
    expect((await getMemberGroups(app.access_token, '00000000-0000-0000-0000-000000000000')).status).toBe(404);
    expect((await getMemberGroups(app.access_token, BOB_OID, {})).status).toBe(400);
    graph.failNext({ status: 429, times: 1, retryAfterSeconds: 7 });
    const throttled = await getMemberGroups(app.access_token);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('7');
    expect((await getMemberGroups(app.access_token)).status).toBe(200);
  });
});

describe('Microsoft Graph stand-in: an app without GroupMember.Read.All', () => {
  test('gets 403 Authorization_RequestDenied', async () => {
    const port = await freePort();
    const resource = `https://127.0.0.1:${port}`;
    const idp = await startQuirkyIdp({
      quirks: { profile: 'entra', graph: { resource, roles: ['User.Read.All'] } },
      users: { bigbob: { oid: BOB_OID, groups: [] } },
    });
    const cert = await serverCert(idp);
    const graph = await startMicrosoftGraphStandIn({
      certPem: cert.cert,
      keyPem: cert.key,
      port,
      issuer: idp.issuer,
      tenantId: TENANT,
      memberships: { [BOB_OID]: MANY },
      fetch: idp.fetch as unknown as Fetch,
    });
    try {
      const config = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
      const app = await client.clientCredentialsGrant(config, { scope: `${resource}/.default` });
      const answer = await (idp.fetch as unknown as Fetch)(`${graph.url}/v1.0/users/${BOB_OID}/getMemberGroups`, {
        method: 'POST',
        headers: { authorization: `Bearer ${app.access_token}`, 'content-type': 'application/json' },
        body: '{"securityEnabledOnly":false}',
      });
      expect(answer.status).toBe(403);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('Authorization_RequestDenied');
    } finally {
      await graph.stop();
      await idp.stop();
    }
  });
});

describe('Google Workspace Directory API stand-in', () => {
  const SERVICE_ACCOUNT = 'looker-gateway@example-project.iam.gserviceaccount.com';
  const GROUPS = [
    { id: '01abc', email: 'looker-analysts@example.com', name: 'Looker analysts', directMembersCount: 12 },
    { id: '02def', email: 'everyone@example.com', name: 'Everyone', directMembersCount: 340 },
    { id: '03ghi', email: 'emea@example.com', name: 'EMEA' },
  ];
  let idp: QuirkyIdp;
  let directory: RunningGoogleDirectoryStandIn;
  let privateKey: CryptoKey;
  let fetchFn: Fetch;

  beforeAll(async () => {
    idp = await startQuirkyIdp({ quirks: { profile: 'google' }, users: { alice: { email: 'alice@example.com', email_verified: true, hd: 'example.com' } } });
    fetchFn = idp.fetch as unknown as Fetch;
    const keys = await generateKeyPair('RS256', { extractable: true });
    privateKey = keys.privateKey;
    const cert = await serverCert(idp);
    directory = await startGoogleDirectoryStandIn({
      certPem: cert.cert,
      keyPem: cert.key,
      serviceAccount: { clientEmail: SERVICE_ACCOUNT, publicKeyPem: await exportSPKI(keys.publicKey), delegatedScopes: [DIRECTORY_GROUP_READONLY_SCOPE] },
      administrators: ['admin@example.com'],
      memberships: { 'alice@example.com': GROUPS, 'admin@example.com': [], 'bob@example.com': [] },
    });
  });
  afterAll(async () => {
    await directory?.stop();
    await idp?.stop();
  });

  /** What the auth service will do with the service account key from Secrets Manager (key file fields: client_email, private_key, token_uri). */
  async function serviceAccountToken(claims: { sub?: string; scope?: string; lifetime?: number; key?: CryptoKey } = {}): Promise<Response> {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({
      scope: claims.scope ?? DIRECTORY_GROUP_READONLY_SCOPE,
      ...(claims.sub === '' ? {} : { sub: claims.sub ?? 'admin@example.com' }),
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setIssuer(SERVICE_ACCOUNT)
      .setAudience(directory.tokenUri)
      .setIssuedAt(now)
      .setExpirationTime(now + (claims.lifetime ?? 3600))
      .sign(claims.key ?? privateKey);
    return fetchFn(directory.tokenUri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
    });
  }

  const groups = (token: string | undefined, query: string) =>
    fetchFn(`${directory.directoryApi}/groups?${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  test('a Google login has no groups; the e-mail claim is the userKey that lists them through the Directory API', async () => {
    const config = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email profile' });
    expect(tokens.claims()?.groups).toBeUndefined();
    const token = (await (await serviceAccountToken()).json()) as { access_token: string; expires_in: number; token_type: string };
    expect(token).toMatchObject({ token_type: 'Bearer', expires_in: 3599 });
    const answer = await groups(token.access_token, `userKey=${encodeURIComponent(String(tokens.claims()!.email))}`);
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { kind: string; groups: Array<{ email: string; directMembersCount: unknown }> };
    expect(body.kind).toBe('admin#directory#groups');
    expect(body.groups.map((g) => g.email)).toEqual(GROUPS.map((g) => g.email));
    expect(body.groups[0].directMembersCount).toBe('12');
  });

  test('pages with maxResults and nextPageToken', async () => {
    const token = ((await (await serviceAccountToken()).json()) as { access_token: string }).access_token;
    const first = (await (await groups(token, 'userKey=alice@example.com&maxResults=2')).json()) as { groups: Array<{ id: string }>; nextPageToken?: string };
    expect(first.groups.map((g) => g.id)).toEqual(['01abc', '02def']);
    expect(first.nextPageToken).toBeTruthy();
    const second = (await (await groups(token, `userKey=alice@example.com&maxResults=2&pageToken=${first.nextPageToken!}`)).json()) as {
      groups: Array<{ id: string }>;
      nextPageToken?: string;
    };
    expect(second.groups.map((g) => g.id)).toEqual(['03ghi']);
    expect(second.nextPageToken).toBeUndefined();
  });

  // https://developers.google.com/identity/protocols/oauth2/service-account#httprest (error responses)
  test('the token endpoint refuses a wrong key, an undelegated scope, a long-lived assertion and an unknown subject', async () => {
    const other = await generateKeyPair('RS256');
    expect(await (await serviceAccountToken({ key: other.privateKey })).json()).toEqual({
      error: 'invalid_grant',
      error_description: 'Invalid JWT Signature.',
    });
    const undelegated = await serviceAccountToken({ scope: 'https://www.googleapis.com/auth/admin.directory.user' });
    expect(undelegated.status).toBe(401);
    expect(((await undelegated.json()) as { error: string }).error).toBe('unauthorized_client');
    expect(((await (await serviceAccountToken({ lifetime: 7200 })).json()) as { error_description: string }).error_description).toMatch(
      /short-lived token \(60 minutes\)/,
    );
    expect(await (await serviceAccountToken({ sub: 'nobody@example.com' })).json()).toEqual({
      error: 'invalid_grant',
      error_description: 'Invalid email or User ID',
    });
  });

  test('the API refuses no token (401), a non-administrator subject (403), an unknown user (404), and passes injected failures', async () => {
    expect((await groups(undefined, 'userKey=alice@example.com')).status).toBe(401);
    const bobToken = ((await (await serviceAccountToken({ sub: 'bob@example.com' })).json()) as { access_token: string }).access_token;
    const forbidden = await groups(bobToken, 'userKey=alice@example.com');
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { message: string } }).error.message).toBe('Not Authorized to access this resource/api');
    const token = ((await (await serviceAccountToken()).json()) as { access_token: string }).access_token;
    expect((await groups(token, 'userKey=mallory@example.com')).status).toBe(404);
    directory.failNext({ status: 503, times: 1, retryAfterSeconds: 3 });
    const unavailable = await groups(token, 'userKey=alice@example.com');
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get('retry-after')).toBe('3');
  });
});
