/**
 * Broker mode (issue 12) through the BUNDLED handler, as the construct deploys it (its own
 * AWS SDK clients answered by the Secrets Manager and DynamoDB models, the real OpenID
 * provider at the gateway's login): Looker's side is driven here as Looker documents it
 * (docs/looker-oidc.md: code flow, no discovery, redirect URI = Looker URL + /openidconnect,
 * server-side token and userinfo calls; client_secret_basic or _post, PKCE optional).
 *   - the code flow: a code at once for a gateway session, ID token and userinfo with the
 *     mapped claims; sign-in first without a session, back with the query intact;
 *   - a user whose mapping grants no Looker group: the "no access" page, no redirect;
 *   - codes single-use (also two containers at once), PKCE when a challenge was sent;
 *   - the bad-input corpus of authorize, token and userinfo: RFC 6749 / 6750 errors, a 4xx
 *     each, audited, never a 500.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, SignJWT, type JWK, type JSONWebKeySet } from 'jose';
import { LOOKER_BROKER_PATHS } from '../../core/auth/looker-broker';
import { BROKER_ACCESS_TOKEN_TYPE, BROKER_LOGIN_MARKER } from '../../core/auth/looker-broker-protocol';
import { AUTH_PATHS, SESSION_COOKIE } from '../../core/session-contract';
import { startBundledHarness, type BundledHarness } from './support/bundle';
import { CookieJar, DEFAULT_RULES, DEFAULT_USERS, idpLogin, login, request, type Harness, type HttpAnswer } from './support/harness';

const LOOKER_SECRET = `looker-secret-${randomBytes(16).toString('hex')}`;
const CLIENT_ID = 'looker';

let b: BundledHarness;
let h: Harness;
let redirectUri: string;

beforeAll(async () => {
  b = await startBundledHarness({
    revocationTable: true,
    users: {
      ...DEFAULT_USERS,
      alice: { ...DEFAULT_USERS.alice, given_name: 'Alice', family_name: 'Analyst' },
      // Matches only the rule that grants an attribute: no Looker group.
      erin: { email: 'erin@emea.example.com', email_verified: true, name: 'Erin', groups: ['everyone'] },
      // An address the IdP does not vouch for: never given to Looker.
      uma: { email: 'uma@example.com', email_verified: false, name: 'Uma', groups: ['looker-analysts'] },
    },
    rules: DEFAULT_RULES,
    prepare: async ({ model }) => ({
      environment: { LG_LOOKER_CLIENT_SECRET_ARN: model.createSecret({ Name: 'lg/looker-client-secret', SecretString: LOOKER_SECRET }).ARN },
    }),
  });
  h = b.h;
  redirectUri = `${h.gatewayUrl}/openidconnect`;
});

afterAll(async () => {
  await b?.stop();
});

function authorizeUrl(params: Record<string, string> = {}): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    scope: 'openid email profile',
    state: 'st-1',
    nonce: 'nonce-1',
    ...params,
  });
  return `${h.gatewayUrl}${LOOKER_BROKER_PATHS.authorize}?${query.toString()}`;
}

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** What Looker's server sends to the token URL. */
async function token(form: Record<string, string>, headers: Record<string, string> = { authorization: basic(CLIENT_ID, LOOKER_SECRET) }): Promise<HttpAnswer> {
  return request(h.fetch, new CookieJar(), `${h.gatewayUrl}${LOOKER_BROKER_PATHS.token}`, {
    method: 'POST',
    body: new URLSearchParams(form).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}

async function userinfo(authorization?: string): Promise<HttpAnswer> {
  return request(h.fetch, new CookieJar(), `${h.gatewayUrl}${LOOKER_BROKER_PATHS.userinfo}`, { headers: authorization ? { authorization } : {} });
}

/** A browser signed in at the gateway as `user`, then sent to authorize: the code. */
async function codeFor(user: string, params: Record<string, string> = {}): Promise<{ code: string; jar: CookieJar; answer: HttpAnswer }> {
  const jar = new CookieJar();
  await login(h, jar, user);
  const answer = await request(h.fetch, jar, authorizeUrl(params), { headers: { accept: 'text/html' } });
  const location = answer.location ? new URL(answer.location) : undefined;
  return { code: location?.searchParams.get('code') ?? '', jar, answer };
}

async function jwks(): Promise<JSONWebKeySet> {
  return JSON.parse((await request(h.fetch, new CookieJar(), `${h.gatewayUrl}${AUTH_PATHS.jwks}`)).body) as JSONWebKeySet;
}

function lastAudit(event: string): Record<string, unknown> | undefined {
  return b
    .audits()
    .filter((a) => a.event === event)
    .pop();
}

describe('the code flow, as Looker runs it', () => {
  test('alice with a gateway session gets a code at once; the token endpoint gives an ID token signed with the rotated keys and userinfo the mapped claims', async () => {
    const { code, answer } = await codeFor('alice');
    expect(answer.status).toBe(302);
    const back = new URL(answer.location!);
    expect(`${back.origin}${back.pathname}`).toBe(redirectUri);
    expect(back.searchParams.get('state')).toBe('st-1');
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const answered = await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri });
    expect(answered.status).toBe(200);
    expect(answered.headers.get('cache-control')).toBe('no-store');
    const body = JSON.parse(answered.body) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'openid email profile' });

    // The ID token: the gateway's signing key (its own algorithm), iss = the gateway origin, aud = Looker's client id, the nonce echoed.
    const idToken = body.id_token as string;
    const header = decodeProtectedHeader(idToken);
    const current = h.signingKeys.keys.find((k) => k.status === 'current')!;
    expect({ alg: header.alg, kid: header.kid }).toEqual({ alg: h.signingKeys.alg, kid: current.kid });
    const { payload } = await jwtVerify(idToken, createLocalJWKSet(await jwks()), { issuer: h.gatewayUrl, audience: CLIENT_ID });
    expect(payload).toMatchObject({
      sub: 'alice',
      nonce: 'nonce-1',
      email: 'alice@emea.example.com',
      email_verified: true,
      given_name: 'Alice',
      family_name: 'Analyst',
      groups: ['Analysts'],
      attr_team: 'analytics',
      attr_region: 'emea',
    });
    expect(payload.sid).toBeUndefined();

    const info = await userinfo(`Bearer ${body.access_token as string}`);
    expect(info.status).toBe(200);
    expect(JSON.parse(info.body)).toEqual({
      sub: 'alice',
      email: 'alice@emea.example.com',
      email_verified: true,
      name: 'Alice Analyst',
      given_name: 'Alice',
      family_name: 'Analyst',
      groups: ['Analysts'],
      attr_team: 'analytics',
      attr_region: 'emea',
    });
    expect(lastAudit('looker-token')).toMatchObject({ outcome: 'success', reason: 'tokens-issued', status: 200 });
    expect(lastAudit('looker-userinfo')).toMatchObject({ outcome: 'success', status: 200 });
    // No token in any log line.
    expect(b.stdout().join('\n')).not.toContain(idToken);
    expect(b.stdout().join('\n')).not.toContain(code);
  });

  test('client_secret_post works as well as client_secret_basic (Looker does not document which it uses)', async () => {
    const { code } = await codeFor('bob');
    const answered = await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: CLIENT_ID, client_secret: LOOKER_SECRET }, {});
    expect(answered.status).toBe(200);
    expect(decodeJwt(JSON.parse(answered.body).id_token as string)).toMatchObject({ sub: 'bob', groups: ['Admins'] });
  });

  test('without a gateway session: sign in first, then back to authorize with the same query, then the code', async () => {
    const jar = new CookieJar();
    const first = await request(h.fetch, jar, authorizeUrl({ state: 'st-deep', nonce: 'n-deep' }), { headers: { accept: 'text/html' } });
    expect(first.status).toBe(302);
    const start = new URL(first.location!);
    expect(start.pathname).toBe(AUTH_PATHS.start);
    const returnTo = start.searchParams.get('rd')!;
    const original = new URL(authorizeUrl({ state: 'st-deep', nonce: 'n-deep' }));
    const back = new URL(returnTo, h.gatewayUrl);
    for (const [name, value] of original.searchParams) expect(back.searchParams.getAll(name)).toEqual([value]);
    expect(back.searchParams.get(BROKER_LOGIN_MARKER)).toBe('1');

    const toIdp = await request(h.fetch, jar, first.location!, { headers: { accept: 'text/html' } });
    const callback = await request(h.fetch, jar, await idpLogin(h.fetch, jar, toIdp.location!, 'alice'), { headers: { accept: 'text/html' } });
    expect(callback.status).toBe(302);
    expect(callback.location).toBe(`${h.gatewayUrl}${returnTo}`);
    const again = await request(h.fetch, jar, callback.location!, { headers: { accept: 'text/html' } });
    const code = new URL(again.location!);
    expect(code.searchParams.get('state')).toBe('st-deep');
    expect(code.searchParams.get('code')).toBeTruthy();
    const answered = await token({ grant_type: 'authorization_code', code: code.searchParams.get('code')!, redirect_uri: redirectUri });
    expect(decodeJwt(JSON.parse(answered.body).id_token as string).nonce).toBe('n-deep');
  });

  test('back from the sign-in without a session (cookies not kept): an error page, not another round trip', async () => {
    const answer = await request(h.fetch, new CookieJar(), authorizeUrl({ [BROKER_LOGIN_MARKER]: '1' }), { headers: { accept: 'text/html' } });
    expect(answer.status).toBe(400);
    expect(answer.location).toBeUndefined();
    expect(lastAudit('looker-authorize')).toMatchObject({ reason: 'session-not-kept', status: 400 });
  });

  test('a user whose mapping grants no Looker group gets the "no access" page at authorize: 403, no redirect', async () => {
    const { answer } = await codeFor('erin');
    expect(answer.status).toBe(403);
    expect(answer.location).toBeUndefined();
    expect(answer.body).toContain('no Looker group');
    expect(lastAudit('looker-authorize')).toMatchObject({ outcome: 'denied', reason: 'no-looker-group', status: 403 });
  });

  test('a user the IdP gave an unverified address: Looker gets no e-mail claim', async () => {
    const { code } = await codeFor('uma');
    const answered = JSON.parse((await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri })).body) as Record<string, string>;
    const info = JSON.parse((await userinfo(`Bearer ${answered.access_token}`)).body) as Record<string, unknown>;
    expect(info.email).toBeUndefined();
    expect(info.email_verified).toBeUndefined();
    expect(info.groups).toEqual(['Analysts']);
  });
});

describe('codes and PKCE', () => {
  test('a code replayed is refused with invalid_grant, and audited as a replay', async () => {
    const { code } = await codeFor('alice');
    expect((await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri })).status).toBe(200);
    const replay = await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri });
    expect(replay.status).toBe(400);
    expect(JSON.parse(replay.body)).toMatchObject({ error: 'invalid_grant' });
    expect(lastAudit('looker-token')).toMatchObject({ outcome: 'failure', reason: 'code-replayed', status: 400, user: { sub: 'alice' } });
  });

  test('one code redeemed at two instances at once (the table is shared): exactly one gets tokens', async () => {
    const another = await h.startAnother({});
    try {
      const { code } = await codeFor('alice');
      const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri }).toString();
      const headers = { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(CLIENT_ID, LOOKER_SECRET) };
      const answers = await Promise.all([
        request(h.fetch, new CookieJar(), `${h.gatewayUrl}${LOOKER_BROKER_PATHS.token}`, { method: 'POST', body: form, headers }),
        request(h.fetch, new CookieJar(), `http://127.0.0.1:${another.port}${LOOKER_BROKER_PATHS.token}`, { method: 'POST', body: form, headers }),
      ]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    } finally {
      await another.stop();
    }
  });

  test('PKCE: a code issued with an S256 challenge needs its verifier; a code without one takes no verifier', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const withChallenge = await codeFor('alice', { code_challenge: challenge, code_challenge_method: 'S256' });
    const wrong = await token({
      grant_type: 'authorization_code',
      code: withChallenge.code,
      redirect_uri: redirectUri,
      code_verifier: randomBytes(32).toString('base64url'),
    });
    expect([wrong.status, JSON.parse(wrong.body).error]).toEqual([400, 'invalid_grant']);
    // The failed attempt spent the code (single use): a new one with the right verifier.
    const again = await codeFor('alice', { code_challenge: challenge, code_challenge_method: 'S256' });
    expect((await token({ grant_type: 'authorization_code', code: again.code, redirect_uri: redirectUri })).status).toBe(400);
    const third = await codeFor('alice', { code_challenge: challenge, code_challenge_method: 'S256' });
    expect((await token({ grant_type: 'authorization_code', code: third.code, redirect_uri: redirectUri, code_verifier: verifier })).status).toBe(200);
    const plain = await codeFor('alice');
    const unexpected = await token({ grant_type: 'authorization_code', code: plain.code, redirect_uri: redirectUri, code_verifier: verifier });
    expect([unexpected.status, JSON.parse(unexpected.body).error]).toEqual([400, 'invalid_grant']);
  });

  test('a code of a session that signed out since is refused', async () => {
    const { code, jar } = await codeFor('bob');
    const out = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.logout}`, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'same-origin', accept: 'text/html' },
    });
    expect(out.status).toBe(303);
    const answered = await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri });
    expect([answered.status, JSON.parse(answered.body).error]).toEqual([400, 'invalid_grant']);
    expect(lastAudit('looker-token')).toMatchObject({ reason: 'session-revoked' });
  });
});

interface Case {
  readonly name: string;
  readonly send: () => Promise<HttpAnswer>;
  readonly status: number;
  /** The OAuth error code in the JSON body, or in the redirect's query. */
  readonly error?: string;
  /** The audited reason. */
  readonly reason: string;
}

describe('bad input: RFC 6749 / 6750 errors, 4xx, audited, never a 500', () => {
  let accessToken: string;
  let sessionToken: string;
  let idToken: string;

  beforeAll(async () => {
    const { code, jar } = await codeFor('alice');
    const body = JSON.parse((await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri })).body) as Record<string, string>;
    accessToken = body.access_token;
    idToken = body.id_token;
    sessionToken = jar.get(h.gatewayUrl, SESSION_COOKIE)!;
  });

  /** A token signed with the gateway's current key, as the broker would sign it, with changes. */
  async function signed(claims: Record<string, unknown>, typ = BROKER_ACCESS_TOKEN_TYPE): Promise<string> {
    const current = h.signingKeys.keys.find((k) => k.status === 'current')!;
    const key = await importJWK(current.privateJwk as JWK, h.signingKeys.alg);
    return new SignJWT(claims).setProtectedHeader({ alg: h.signingKeys.alg, kid: current.kid, typ }).sign(key);
  }

  const validAccess = (now: number) => ({
    iss: h.gatewayUrl,
    aud: `${h.gatewayUrl}${LOOKER_BROKER_PATHS.userinfo}`,
    sub: 'alice',
    client_id: CLIENT_ID,
    sid: 'sid-x',
    iat: now,
    exp: now + 300,
    userinfo: { sub: 'alice' },
  });
  const tokenForm = (overrides: Record<string, string> = {}) => ({
    grant_type: 'authorization_code',
    code: randomBytes(32).toString('base64url'),
    redirect_uri: redirectUri,
    ...overrides,
  });

  const cases = (): Case[] => [
    // authorize: a wrong client or redirect URI is never redirected to (RFC 6749 4.1.2.1).
    {
      name: 'authorize: unknown client_id',
      send: () => request(h.fetch, new CookieJar(), authorizeUrl({ client_id: 'evil' })),
      status: 400,
      reason: 'unknown-client',
    },
    {
      name: 'authorize: no client_id',
      send: () => request(h.fetch, new CookieJar(), authorizeUrl({ client_id: '' })),
      status: 400,
      reason: 'client-id-missing',
    },
    {
      name: 'authorize: redirect_uri not the registered one',
      send: () => request(h.fetch, new CookieJar(), authorizeUrl({ redirect_uri: 'https://evil.example/openidconnect' })),
      status: 400,
      reason: 'redirect-uri-mismatch',
    },
    {
      name: 'authorize: redirect_uri with a suffix',
      send: () => request(h.fetch, new CookieJar(), authorizeUrl({ redirect_uri: `${redirectUri}/x` })),
      status: 400,
      reason: 'redirect-uri-mismatch',
    },
    {
      name: 'authorize: response_type token',
      send: () => request(h.fetch, new CookieJar(), authorizeUrl({ response_type: 'token' })),
      status: 302,
      error: 'unsupported_response_type',
      reason: 'unsupported-response-type',
    },
    {
      name: 'authorize: scope without openid',
      send: () => request(h.fetch, new CookieJar(), authorizeUrl({ scope: 'email' })),
      status: 302,
      error: 'invalid_scope',
      reason: 'openid-scope-missing',
    },
    {
      name: 'authorize: state twice',
      send: () => request(h.fetch, new CookieJar(), `${authorizeUrl()}&state=again`),
      status: 302,
      error: 'invalid_request',
      reason: 'repeated-parameter',
    },
    {
      name: 'authorize: PKCE method unknown',
      send: () => request(h.fetch, new CookieJar(), authorizeUrl({ code_challenge: 'a'.repeat(43), code_challenge_method: 'S512' })),
      status: 302,
      error: 'invalid_request',
      reason: 'pkce-method-unsupported',
    },
    {
      name: 'authorize: prompt=none without a session',
      send: () => request(h.fetch, new CookieJar(), authorizeUrl({ prompt: 'none' })),
      status: 302,
      error: 'login_required',
      reason: 'login-required',
    },
    { name: 'authorize: POST', send: () => request(h.fetch, new CookieJar(), authorizeUrl(), { method: 'POST' }), status: 405, reason: 'method-not-allowed' },
    // token
    {
      name: 'token: GET',
      send: () => request(h.fetch, new CookieJar(), `${h.gatewayUrl}${LOOKER_BROKER_PATHS.token}`),
      status: 405,
      reason: 'method-not-allowed',
    },
    {
      name: 'token: JSON body',
      send: () =>
        request(h.fetch, new CookieJar(), `${h.gatewayUrl}${LOOKER_BROKER_PATHS.token}`, {
          method: 'POST',
          body: '{"grant_type":"authorization_code"}',
          headers: { 'content-type': 'application/json', authorization: basic(CLIENT_ID, LOOKER_SECRET) },
        }),
      status: 400,
      error: 'invalid_request',
      reason: 'bad-content-type',
    },
    {
      name: 'token: no client authentication',
      send: () => token(tokenForm(), {}),
      status: 401,
      error: 'invalid_client',
      reason: 'client-authentication-missing',
    },
    {
      name: 'token: unknown client',
      send: () => token(tokenForm(), { authorization: basic('evil', LOOKER_SECRET) }),
      status: 401,
      error: 'invalid_client',
      reason: 'unknown-client',
    },
    {
      name: 'token: wrong secret (basic)',
      send: () => token(tokenForm(), { authorization: basic(CLIENT_ID, 'wrong') }),
      status: 401,
      error: 'invalid_client',
      reason: 'wrong-client-secret',
    },
    {
      name: 'token: wrong secret (post)',
      send: () => token(tokenForm({ client_id: CLIENT_ID, client_secret: 'wrong' }), {}),
      status: 401,
      error: 'invalid_client',
      reason: 'wrong-client-secret',
    },
    {
      name: 'token: basic and post at once',
      send: () => token(tokenForm({ client_secret: LOOKER_SECRET })),
      status: 400,
      error: 'invalid_request',
      reason: 'two-client-authentications',
    },
    {
      name: 'token: malformed basic',
      send: () => token(tokenForm(), { authorization: 'Basic !!!not-base64' }),
      status: 401,
      error: 'invalid_client',
      reason: 'malformed-basic-authentication',
    },
    {
      name: 'token: bearer instead of client authentication',
      send: () => token(tokenForm(), { authorization: `Bearer ${accessToken}` }),
      status: 401,
      error: 'invalid_client',
      reason: 'unsupported-client-authentication',
    },
    {
      name: 'token: grant_type refresh_token',
      send: () => token(tokenForm({ grant_type: 'refresh_token' })),
      status: 400,
      error: 'unsupported_grant_type',
      reason: 'unsupported-grant-type',
    },
    {
      name: 'token: no grant_type',
      send: () => token({ code: 'x', redirect_uri: redirectUri }),
      status: 400,
      error: 'invalid_request',
      reason: 'grant-type-missing',
    },
    {
      name: 'token: no code',
      send: () => token({ grant_type: 'authorization_code', redirect_uri: redirectUri }),
      status: 400,
      error: 'invalid_request',
      reason: 'code-missing',
    },
    { name: 'token: a code never issued', send: () => token(tokenForm()), status: 400, error: 'invalid_grant', reason: 'code-unknown' },
    {
      name: 'token: a code of garbage',
      send: () => token(tokenForm({ code: '../../etc/passwd\u0000' })),
      status: 400,
      error: 'invalid_grant',
      reason: 'code-unknown',
    },
    {
      name: 'token: redirect_uri differs from the authorization request',
      send: async () => token({ grant_type: 'authorization_code', code: (await codeFor('alice')).code, redirect_uri: `${redirectUri}?x=1` }),
      status: 400,
      error: 'invalid_grant',
      reason: 'redirect-uri-mismatch',
    },
    {
      name: 'token: redirect_uri missing',
      send: async () => token({ grant_type: 'authorization_code', code: (await codeFor('alice')).code }),
      status: 400,
      error: 'invalid_grant',
      reason: 'redirect-uri-mismatch',
    },
    {
      name: 'token: code given twice',
      send: () =>
        request(h.fetch, new CookieJar(), `${h.gatewayUrl}${LOOKER_BROKER_PATHS.token}`, {
          method: 'POST',
          body: 'grant_type=authorization_code&code=a&code=b',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(CLIENT_ID, LOOKER_SECRET) },
        }),
      status: 400,
      error: 'invalid_request',
      reason: 'repeated-parameter',
    },
    // userinfo (RFC 6750)
    { name: 'userinfo: no token', send: () => userinfo(), status: 401, reason: 'access-token-missing' },
    {
      name: 'userinfo: not a bearer',
      send: () => userinfo(basic(CLIENT_ID, LOOKER_SECRET)),
      status: 400,
      error: 'invalid_request',
      reason: 'access-token-malformed',
    },
    { name: 'userinfo: garbage bearer', send: () => userinfo('Bearer abc.def.ghi'), status: 401, error: 'invalid_token', reason: 'access-token-invalid' },
    {
      name: 'userinfo: the gateway session token',
      send: () => userinfo(`Bearer ${sessionToken}`),
      status: 401,
      error: 'invalid_token',
      reason: 'access-token-wrong-audience',
    },
    {
      name: "userinfo: Looker's ID token",
      send: () => userinfo(`Bearer ${idToken}`),
      status: 401,
      error: 'invalid_token',
      reason: 'access-token-wrong-audience',
    },
    {
      name: 'userinfo: expired access token',
      send: async () => userinfo(`Bearer ${await signed(validAccess(Math.floor(Date.now() / 1000) - 3600))}`),
      status: 401,
      error: 'invalid_token',
      reason: 'access-token-expired',
    },
    {
      name: 'userinfo: access token for another audience',
      send: async () => userinfo(`Bearer ${await signed({ ...validAccess(Math.floor(Date.now() / 1000)), aud: 'https://elsewhere.example' })}`),
      status: 401,
      error: 'invalid_token',
      reason: 'access-token-wrong-audience',
    },
    {
      name: 'userinfo: access token with the session type',
      send: async () => userinfo(`Bearer ${await signed(validAccess(Math.floor(Date.now() / 1000)), 'JWT')}`),
      status: 401,
      error: 'invalid_token',
      reason: 'access-token-invalid',
    },
    {
      name: 'userinfo: access token of another client',
      send: async () => userinfo(`Bearer ${await signed({ ...validAccess(Math.floor(Date.now() / 1000)), client_id: 'evil' })}`),
      status: 401,
      error: 'invalid_token',
      reason: 'access-token-of-another-client',
    },
    {
      name: 'userinfo: DELETE',
      send: () =>
        request(h.fetch, new CookieJar(), `${h.gatewayUrl}${LOOKER_BROKER_PATHS.userinfo}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${accessToken}` },
        }),
      status: 405,
      reason: 'method-not-allowed',
    },
  ];

  test('every case gets its status, its OAuth error and an audit event with its reason', async () => {
    const mismatches: string[] = [];
    for (const c of cases()) {
      const before = b.audits().length;
      const answer = await c.send();
      const events = b.audits().slice(before);
      const audited = events.some((e) => e.reason === c.reason) || (c.reason === 'method-not-allowed' && answer.status === 405);
      let error: string | undefined;
      if (answer.status === 302) error = new URL(answer.location!).searchParams.get('error') ?? undefined;
      else if ((answer.headers.get('content-type') ?? '').includes('json')) error = (JSON.parse(answer.body) as { error?: string }).error;
      if (answer.status !== c.status || (c.error !== undefined && error !== c.error) || !audited || answer.status >= 500) {
        mismatches.push(`${c.name}: ${answer.status} ${error ?? ''} audited=${events.map((e) => e.reason).join(',')} ${answer.body.slice(0, 120)}`);
      }
      if (answer.status === 302) expect(new URL(answer.location!).origin + new URL(answer.location!).pathname).toBe(redirectUri);
      if (answer.status === 401) expect(answer.headers.get('www-authenticate')).toMatch(/^(Basic|Bearer) realm=/);
    }
    expect(mismatches).toEqual([]);
  });

  test('userinfo without a token names no error code (RFC 6750 3.1); with a bad one it says invalid_token', async () => {
    expect((await userinfo()).headers.get('www-authenticate')).toBe('Bearer realm="looker-gateway"');
    expect((await userinfo('Bearer abc.def.ghi')).headers.get('www-authenticate')).toContain('error="invalid_token"');
  });
});

describe('discovery and keys, for tooling', () => {
  test('the discovery document names the broker endpoints, the JWKS, both client authentications and the signing algorithm', async () => {
    const answer = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}/oauth2/looker/.well-known/openid-configuration`);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({
      issuer: h.gatewayUrl,
      authorization_endpoint: `${h.gatewayUrl}${LOOKER_BROKER_PATHS.authorize}`,
      token_endpoint: `${h.gatewayUrl}${LOOKER_BROKER_PATHS.token}`,
      userinfo_endpoint: `${h.gatewayUrl}${LOOKER_BROKER_PATHS.userinfo}`,
      jwks_uri: `${h.gatewayUrl}${AUTH_PATHS.jwks}`,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      id_token_signing_alg_values_supported: [h.signingKeys.alg],
      claims_supported: expect.arrayContaining(['groups', 'given_name', 'attr_region', 'attr_team']),
    });
  });
});

describe('broker mode off', () => {
  test('without LG_LOOKER_CLIENT_SECRET_ARN the broker routes answer 404', async () => {
    const off = await h.startAnother({ LG_LOOKER_CLIENT_SECRET_ARN: undefined });
    try {
      const answer = await request(h.fetch, new CookieJar(), `http://127.0.0.1:${off.port}${LOOKER_BROKER_PATHS.token}`, {
        method: 'POST',
        body: 'grant_type=authorization_code',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect([answer.status, JSON.parse(answer.body).reason]).toEqual([404, 'broker-mode-off']);
    } finally {
      await off.stop();
    }
  });
});
