/**
 * The Looker stand-in's API, as Looker's API reference describes it (sources in
 * docs/looker-oidc.md):
 * - `POST /api/4.0/login` takes an API key's client_id and client_secret as form fields
 *   (or query parameters) and answers an AccessToken; the documented answers are 200, 400
 *   and 404 (https://cloud.google.com/looker/docs/reference/looker-api/latest/methods/ApiAuth/login);
 * - later calls carry `Authorization: token <access_token>` ("The word token is a string
 *   literal and must be included exactly as shown", same page);
 * - `GET /oidc_config` never shows the write-only `secret`; `PATCH /oidc_config` changes the
 *   one configuration and "Updates only succeed if the new state will be valid"
 *   (https://cloud.google.com/looker/docs/reference/looker-api/latest/methods/Auth/oidc_config),
 *   answering 422 with a ValidationError otherwise.
 */
import { brokerOidcConfig, LOOKER_API_PATHS } from '../../core/looker/oidc-config';
import { RunningLookerStandIn, startLookerStandIn } from '../../dev/stand-ins/looker/looker-stand-in';
import { createLocalPki, LocalPki } from '../../local/pki';
import { httpsRequest } from '../../dev/readiness';

const API_KEY = { client_id: 'api-key-id', client_secret: 'api-key-secret' };
let pki: LocalPki;
let looker: RunningLookerStandIn;

beforeAll(async () => {
  pki = await createLocalPki();
  looker = await startLookerStandIn({ certPem: pki.looker.cert, keyPem: pki.looker.key, oidc: { apiCredentials: [API_KEY] } });
});
afterAll(() => looker?.stop());

const form = (values: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(values).toString(),
});

async function login(): Promise<string> {
  const answer = await httpsRequest(`${looker.publicUrl}${LOOKER_API_PATHS.login}`, pki.ca.cert, form(API_KEY));
  expect(answer.status).toBe(200);
  return JSON.parse(answer.body).access_token;
}

async function api(method: string, path: string, body?: unknown, authorization?: string): Promise<{ status: number; body: any }> {
  const answer = await httpsRequest(`${looker.publicUrl}${path}`, pki.ca.cert, {
    method,
    headers: { authorization: authorization ?? `token ${await login()}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: answer.status, body: answer.body ? JSON.parse(answer.body) : undefined };
}

/** What the custom resource writes (brokerOidcConfig), for a gateway at gateway.example.com. */
const VALID = brokerOidcConfig(
  {
    apiUrl: 'https://looker.internal:19999',
    apiCredentialsSecretArn: 'arn:api',
    clientSecretArn: 'arn:client',
    clientId: 'looker',
    gatewayOrigin: 'https://gateway.example.com',
    groupRoles: [{ group: 'Analysts', roleNames: ['Viewer'] }],
    userAttributes: [{ attribute: 'region', lookerUserAttribute: 'region', required: false }],
    authRequiresRole: true,
    migrationTypes: ['email'],
    requestTimeoutSeconds: 10,
  },
  'the-client-secret',
  new Map([['Viewer', '5']]),
  new Map([['region', '10']]),
);

describe('POST /api/4.0/login', () => {
  test('API3 credentials as form fields give a token (token_type Bearer, an hour)', async () => {
    const answer = await httpsRequest(`${looker.publicUrl}${LOOKER_API_PATHS.login}`, pki.ca.cert, form(API_KEY));
    expect(JSON.parse(answer.body)).toEqual({ access_token: expect.stringMatching(/^\S{20,}$/), token_type: 'Bearer', expires_in: 3600, refresh_token: null });
  });

  test('as query parameters too, as the API still accepts', async () => {
    const answer = await httpsRequest(`${looker.publicUrl}${LOOKER_API_PATHS.login}?${new URLSearchParams(API_KEY)}`, pki.ca.cert, { method: 'POST' });
    expect(answer.status).toBe(200);
  });

  test('a wrong secret is 404 Not found; missing fields are 400; GET is not a login', async () => {
    const wrong = await httpsRequest(`${looker.publicUrl}${LOOKER_API_PATHS.login}`, pki.ca.cert, form({ ...API_KEY, client_secret: 'wrong' }));
    expect({ status: wrong.status, message: JSON.parse(wrong.body).message }).toEqual({ status: 404, message: 'Not found' });
    const missing = await httpsRequest(`${looker.publicUrl}${LOOKER_API_PATHS.login}`, pki.ca.cert, form({ client_id: API_KEY.client_id }));
    expect(missing.status).toBe(400);
    const get = await httpsRequest(`${looker.publicUrl}${LOOKER_API_PATHS.login}`, pki.ca.cert);
    expect(get.status).toBe(405);
  });
});

describe('the admin API needs the token, in the documented "token" scheme', () => {
  test.each([
    ['no Authorization header', ''],
    ['a made-up token', 'token made-up'],
    ['the Bearer scheme', 'Bearer <real token>'],
  ])('%s: 401', async (_case, authorization) => {
    const header = authorization === 'Bearer <real token>' ? `Bearer ${await login()}` : authorization;
    const answer = await api('GET', LOOKER_API_PATHS.oidcConfig, undefined, header);
    expect(answer.status).toBe(401);
  });

  test('roles and user attributes list ids and names', async () => {
    expect((await api('GET', LOOKER_API_PATHS.roles)).body).toEqual(
      expect.arrayContaining([
        { id: '2', name: 'Admin' },
        { id: '5', name: 'Viewer' },
      ]),
    );
    expect((await api('GET', LOOKER_API_PATHS.userAttributes)).body).toEqual(expect.arrayContaining([{ id: '10', name: 'region' }]));
  });
});

describe('GET and PATCH /api/4.0/oidc_config', () => {
  test('a valid PATCH is applied and answered with the new state, without the secret; GET shows the same', async () => {
    const patched = await api('PATCH', LOOKER_API_PATHS.oidcConfig, VALID);
    expect(patched.status).toBe(200);
    expect(patched.body).not.toHaveProperty('secret');
    const { secret: _secret, ...visible } = VALID;
    expect(patched.body).toMatchObject(visible);
    expect(patched.body.groups).toEqual([{ name: 'Analysts', looker_group_name: 'Analysts', roles: [{ id: '5', name: 'Viewer' }] }]);
    const read = await api('GET', LOOKER_API_PATHS.oidcConfig);
    expect(read.body).toEqual(patched.body);
    expect(looker.oidcConfig.secretIs('the-client-secret')).toBe(true);
  });

  test('a partial PATCH changes only the fields it names; the secret stays unless a new one is given', async () => {
    await api('PATCH', LOOKER_API_PATHS.oidcConfig, VALID);
    const patched = await api('PATCH', LOOKER_API_PATHS.oidcConfig, { auth_requires_role: true });
    expect(patched.body).toMatchObject({ auth_requires_role: true, identifier: 'looker', groups_attribute: 'groups' });
    expect(looker.oidcConfig.secretIs('the-client-secret')).toBe(true);
  });

  test('enabling without the required fields is 422 with one error per field, and nothing changes', async () => {
    await api('PATCH', LOOKER_API_PATHS.oidcConfig, { enabled: false });
    const before = (await api('GET', LOOKER_API_PATHS.oidcConfig)).body;
    const answer = await api('PATCH', LOOKER_API_PATHS.oidcConfig, { enabled: true, identifier: '', token_endpoint: null, scopes: ['email'] });
    expect(answer.status).toBe(422);
    expect(answer.body.message).toBe('Validation Failed');
    expect(answer.body.errors.map((e: { field: string; code: string }) => `${e.field}:${e.code}`)).toEqual(
      expect.arrayContaining(['identifier:missing', 'token_endpoint:missing', 'scopes:invalid']),
    );
    const after = (await api('GET', LOOKER_API_PATHS.oidcConfig)).body;
    expect({ ...after, modified_at: null }).toEqual({ ...before, modified_at: null });
  });

  test.each([
    ['a role id that does not exist', { groups_with_role_ids: [{ name: 'Analysts', role_ids: ['999'] }] }, 'groups_with_role_ids[0].role_ids:not_found'],
    [
      'a user attribute id that does not exist',
      { user_attributes_with_ids: [{ name: 'attr_region', user_attribute_ids: ['999'] }] },
      'user_attributes_with_ids[0].user_attribute_ids:not_found',
    ],
    ['roles from groups without a groups attribute', { groups_attribute: null }, 'groups_attribute:missing'],
    ['an http endpoint', { token_endpoint: 'http://gateway.example.com/token' }, 'token_endpoint:invalid'],
    ['an unknown migration type', { new_user_migration_types: 'email,carrier-pigeon' }, 'new_user_migration_types:invalid'],
    ['a field OIDCConfig does not have', { groups_claim: 'groups' }, 'groups_claim:invalid'],
    ['a boolean given as a string', { enabled: 'true' }, 'enabled:invalid'],
  ])('%s: 422', async (_case, change, expected) => {
    await api('PATCH', LOOKER_API_PATHS.oidcConfig, VALID);
    const answer = await api('PATCH', LOOKER_API_PATHS.oidcConfig, change);
    expect(answer.status).toBe(422);
    expect(answer.body.errors.map((e: { field: string; code: string }) => `${e.field}:${e.code}`)).toContain(expected);
  });

  test('a body over 64 KiB is 413, not a failure of the server', async () => {
    const answer = await api('PATCH', LOOKER_API_PATHS.oidcConfig, { identifier: 'x'.repeat(70_000) });
    expect(answer.status).toBe(413);
  });

  test('a body that is not JSON is 400; read-only fields in a PATCH change nothing', async () => {
    expect((await api('PATCH', LOOKER_API_PATHS.oidcConfig, '{not json')).status).toBe(400);
    const answer = await api('PATCH', LOOKER_API_PATHS.oidcConfig, { ...VALID, url: 'https://elsewhere', groups: [] });
    expect(answer.status).toBe(200);
    expect(answer.body.url).toBe('/api/4.0/oidc_config');
    expect(answer.body.groups).toHaveLength(1);
  });
});
