/**
 * The development IdP answers as each IdP does, as its documentation describes it
 * (docs/idps.md has the facts and sources; dev/stand-ins/idp/dev-idp-quirks.mjs the machinery). The
 * relying party is openid-client 6, as in the auth service. Each test cites the document
 * for the behaviour it shows, so that the auth service (issue 16, part 2) is tested
 * against what the real IdP does, not against a friendlier one.
 */
import * as client from 'openid-client';
import { CookieJar } from '../auth/support/harness';
import {
  CLIENT_ID,
  CLIENT_SECRET,
  createClientCertificate,
  jwtPayload,
  POST_LOGOUT_URI,
  startQuirkyIdp,
  type QuirkyIdp,
  type Users,
} from './support/quirky-idp';

const ALICE = { name: 'Alice Analyst', email: 'alice@example.com', email_verified: true, groups: ['looker-analysts', 'everyone'] };
const USERS: Users = { alice: ALICE, carol: { name: 'Carol', email: 'carol@example.com', email_verified: false, groups: ['contractors'] } };

async function withIdp(quirks: Parameters<typeof startQuirkyIdp>[0]['quirks'], users: Users = USERS): Promise<QuirkyIdp> {
  return startQuirkyIdp({ quirks, users });
}

/** An authorization request with prompt=none: a code when the IdP session lives, error=login_required once it ended. */
async function silentLogin(idp: QuirkyIdp, config: client.Configuration, jar: CookieJar): Promise<URLSearchParams> {
  const { callbackUrl } = await idp.authorize(config, { user: 'alice', scope: 'openid', params: { prompt: 'none' }, jar });
  return callbackUrl.searchParams;
}

describe('Okta', () => {
  let idp: QuirkyIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'okta' });
    config = await idp.configuration();
  });
  afterAll(async () => idp?.stop());

  // https://developer.okta.com/docs/guides/refresh-tokens/get-refresh-token/ : the authorization
  // request must include the offline_access scope to get a refresh token.
  test('issues a refresh token only when offline_access is asked for (and without prompt=consent)', async () => {
    const without = await idp.login(config, { user: 'alice', scope: 'openid email groups' });
    expect(without.tokens.refresh_token).toBeUndefined();
    const withOffline = await idp.login(config, { user: 'alice', scope: 'openid email groups offline_access' });
    expect(withOffline.tokens.refresh_token).toEqual(expect.any(String));
  });

  // https://developer.okta.com/docs/guides/refresh-tokens/refresh-token-rotation/ : "If a previously
  // used refresh token is used again ... Okta immediately invalidates the most recently issued refresh token".
  test('rotates refresh tokens; reusing a spent one revokes the newest one too (the family)', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid offline_access' });
    const second = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(tokens.refresh_token);
    expect(second.id_token).toBeTruthy();
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(client.refreshTokenGrant(config, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  // https://support.okta.com/help/s/article/the-purpose-of-id-token-hint-in-the-logout-api-and-how-does-it-affect-the-single-logout-process :
  // id_token_hint is a required parameter of /logout.
  test('the end-session endpoint answers 400 without id_token_hint and leaves the Okta session alive', async () => {
    const { jar } = await idp.login(config, { user: 'alice', scope: 'openid' });
    const url = client.buildEndSessionUrl(config, { client_id: CLIENT_ID, post_logout_redirect_uri: POST_LOGOUT_URI });
    const answer = await idp.get(url.href, jar);
    expect(answer.status).toBe(400);
    expect(answer.body).toContain("The 'id_token_hint' parameter is required.");
    expect((await silentLogin(idp, config, jar)).get('code')).toBeTruthy();
  });

  test('with id_token_hint the session ends and the browser goes to the registered post-logout URI', async () => {
    const { tokens, jar } = await idp.login(config, { user: 'alice', scope: 'openid' });
    const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI });
    const page = await idp.get(url.href, jar);
    expect(page.status).toBe(200);
    const done = await idp.submitLogoutForm(page, url.href, jar);
    expect(done.location).toBe(POST_LOGOUT_URI);
    expect((await silentLogin(idp, config, jar)).get('error')).toBe('login_required');
  });

  test('puts groups in the ID token and userinfo as a flat "groups" array', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email groups' });
    expect(tokens.claims()?.groups).toEqual(ALICE.groups);
    const info = await client.fetchUserInfo(config, tokens.access_token, 'alice');
    expect(info.groups).toEqual(ALICE.groups);
  });
});

describe('Google Workspace', () => {
  let idp: QuirkyIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'google' }, { alice: { ...ALICE, hd: 'example.com' } });
    config = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
  });
  afterAll(async () => idp?.stop());

  // https://developers.google.com/identity/protocols/oauth2/web-server#offline and the error
  // Google shows ("Error 400: invalid_scope ... invalid=[offline_access]", e.g.
  // https://github.com/int128/kubelogin/issues/405): an error page, no redirect back.
  test('refuses offline_access with "Error 400: invalid_scope" on its own page', async () => {
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: 'https://gateway.invalid/oauth2/callback',
      scope: 'openid email offline_access',
      state: 's',
      nonce: 'n',
      code_challenge: 'c'.repeat(43),
      code_challenge_method: 'S256',
    });
    const answer = await idp.get(url.href, new CookieJar());
    expect(answer.status).toBe(400);
    expect(answer.location).toBeUndefined();
    expect(answer.body).toContain('Error 400: invalid_scope');
    expect(answer.body).toContain('invalid=[offline_access]');
  });

  // https://developers.google.com/identity/protocols/oauth2/web-server#offline : access_type=offline
  // "instructs the Google authorization server to return a refresh token ... the first time that
  // your application exchanges an authorization code"; prompt=consent asks again.
  test('issues a refresh token only with access_type=offline, and again only with prompt=consent', async () => {
    const online = await idp.login(config, { user: 'alice', scope: 'openid email' });
    expect(online.tokens.refresh_token).toBeUndefined();
    const first = await idp.login(config, { user: 'alice', scope: 'openid email', params: { access_type: 'offline' } });
    expect(first.tokens.refresh_token).toEqual(expect.any(String));
    const again = await idp.login(config, { user: 'alice', scope: 'openid email', params: { access_type: 'offline' } });
    expect(again.tokens.refresh_token).toBeUndefined();
    const consented = await idp.login(config, { user: 'alice', scope: 'openid email', params: { access_type: 'offline', prompt: 'consent' } });
    expect(consented.tokens.refresh_token).toEqual(expect.any(String));
  });

  test('a refresh returns a new access token only: no ID token, no new refresh token, and the same one keeps working', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email', params: { access_type: 'offline', prompt: 'consent' } });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
    expect(refreshed.id_token).toBeUndefined();
    expect(refreshed.claims()).toBeUndefined();
    expect(refreshed.refresh_token).toBeUndefined();
    expect((await client.refreshTokenGrant(config, tokens.refresh_token!)).access_token).toBeTruthy();
  });

  // https://developers.google.com/identity/openid-connect/reference : no end_session_endpoint; hd names the Workspace domain.
  test('has no groups in tokens, the hd claim, and no end-session endpoint', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email profile' });
    const claims = tokens.claims()!;
    expect(claims.groups).toBeUndefined();
    expect(claims.hd).toBe('example.com');
    expect((await client.fetchUserInfo(config, tokens.access_token, 'alice')).groups).toBeUndefined();
    expect(config.serverMetadata().end_session_endpoint).toBeUndefined();
    expect(config.serverMetadata().revocation_endpoint).toBeTruthy();
    expect((await idp.get(`${idp.issuer}/session/end`, new CookieJar())).status).toBe(404);
  });
});

describe('Amazon Cognito', () => {
  let idp: QuirkyIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'cognito' });
    config = await idp.configuration();
  });
  afterAll(async () => idp?.stop());

  // https://docs.aws.amazon.com/cognito/latest/developerguide/authorization-endpoint.html : the scopes
  // must be ones the app client allows (openid, email, phone, profile, aws.cognito.signin.user.admin,
  // custom); offline_access is none of them. Modelled as the RFC 6749 4.1.2.1 error redirect.
  test('refuses offline_access with an invalid_scope error redirect that keeps the state', async () => {
    const { callbackUrl, state } = await idp.authorize(config, { user: 'alice', scope: 'openid email offline_access' });
    expect(callbackUrl.searchParams.get('error')).toBe('invalid_scope');
    expect(callbackUrl.searchParams.get('state')).toBe(state);
    expect(callbackUrl.searchParams.get('code')).toBeNull();
  });

  // https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html : a code exchange
  // returns ID, access and refresh tokens; a refresh returns new ID and access tokens only.
  test('issues a refresh token with every code exchange; a refresh returns ID and access tokens but no refresh token', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email' });
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.id_token).toBeTruthy();
    expect(refreshed.refresh_token).toBeUndefined();
  });

  // https://docs.aws.amazon.com/cognito/latest/developerguide/userinfo-endpoint.html (the sample
  // response has "email_verified": "true", a string).
  test('userinfo answers email_verified as the strings "true" and "false"; the ID token has booleans', async () => {
    for (const [user, expected] of [
      ['alice', 'true'],
      ['carol', 'false'],
    ] as const) {
      const { tokens } = await idp.login(config, { user, scope: 'openid email' });
      expect(tokens.claims()?.email_verified).toBe(expected === 'true');
      expect((await client.fetchUserInfo(config, tokens.access_token, user)).email_verified).toBe(expected);
    }
  });

  test('puts groups in the ID token as cognito:groups, not in userinfo', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email' });
    expect(tokens.claims()?.['cognito:groups']).toEqual(ALICE.groups);
    expect(tokens.claims()?.groups).toBeUndefined();
    expect((await client.fetchUserInfo(config, tokens.access_token, 'alice'))['cognito:groups']).toBeUndefined();
  });

  // https://docs.aws.amazon.com/cognito/latest/developerguide/logout-endpoint.html : GET /logout with
  // client_id and logout_uri (an allowed sign-out URL); not in the discovery document.
  test('logout is /logout?client_id&logout_uri, absent from discovery; a wrong logout_uri is refused', async () => {
    expect(config.serverMetadata().end_session_endpoint).toBeUndefined();
    const { jar } = await idp.login(config, { user: 'alice', scope: 'openid' });
    const refused = await idp.get(`${idp.issuer}/logout?client_id=${CLIENT_ID}&logout_uri=${encodeURIComponent('https://elsewhere.invalid/')}`, jar);
    expect(refused.status).toBe(400);
    expect((await idp.get(`${idp.issuer}/logout?logout_uri=${encodeURIComponent(POST_LOGOUT_URI)}`, jar)).status).toBe(400);
    expect((await silentLogin(idp, config, jar)).get('code')).toBeTruthy();

    let answer = await idp.get(`${idp.issuer}/logout?client_id=${CLIENT_ID}&logout_uri=${encodeURIComponent(POST_LOGOUT_URI)}`, jar);
    expect(answer.status).toBe(302);
    answer = await idp.get(answer.location!, jar);
    const done = await idp.submitLogoutForm(answer, `${idp.issuer}/session/end`, jar);
    expect(done.location).toBe(POST_LOGOUT_URI);
    expect((await silentLogin(idp, config, jar)).get('error')).toBe('login_required');
  });

  test('takes client_secret_post as well as client_secret_basic', async () => {
    const post = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
    expect((await idp.login(post, { user: 'alice', scope: 'openid' })).tokens.access_token).toBeTruthy();
  });
});

describe('Ping Identity', () => {
  let idp: QuirkyIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'ping' });
    config = await idp.configuration();
  });
  afterAll(async () => idp?.stop());

  // https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/help_policymanagementtasklet_policymanagementstate.html :
  // an ID token on refresh only with "Return ID Token On Refresh Grant" (off by default).
  test('a refresh returns no ID token: the claims must come from userinfo', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email' });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.id_token).toBeUndefined();
    expect(refreshed.claims()).toBeUndefined();
    expect((await client.fetchUserInfo(config, refreshed.access_token, 'alice')).groups).toEqual(ALICE.groups);
  });

  // https://docs.pingidentity.com/pingone/applications/p1_token_endpoint_authentication_methods.html :
  // the application's tokenEndpointAuthMethod decides how it must authenticate.
  test('enforces the registered client authentication: client_secret_post is refused for a client_secret_basic client', async () => {
    const post = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
    const { callbackUrl, verifier, state, nonce } = await idp.authorize(post, { user: 'alice', scope: 'openid' });
    await expect(
      client.authorizationCodeGrant(post, callbackUrl, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }),
    ).rejects.toMatchObject({ error: 'invalid_client' });
  });

  test('without id_token_hint the logout page waits for the user, and the Ping session survives', async () => {
    const { jar } = await idp.login(config, { user: 'alice', scope: 'openid' });
    const url = client.buildEndSessionUrl(config, { client_id: CLIENT_ID, post_logout_redirect_uri: POST_LOGOUT_URI });
    const page = await idp.get(url.href, jar);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Pick an account to sign out');
    expect(page.body).not.toContain('<script');
    expect((await silentLogin(idp, config, jar)).get('code')).toBeTruthy();
  });
});

describe('Auth0', () => {
  let idp: QuirkyIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'auth0' });
    config = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
  });
  afterAll(async () => idp?.stop());

  // https://auth0.com/docs/secure/tokens/json-web-tokens/create-custom-claims : groups and roles are
  // restricted names; an Action adds a namespaced claim.
  test('puts groups under a namespaced URL claim', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email offline_access' });
    expect(tokens.claims()?.['https://example.com/groups']).toEqual(ALICE.groups);
    expect(tokens.claims()?.groups).toBeUndefined();
  });

  // https://auth0.com/docs/secure/tokens/refresh-tokens/refresh-token-rotation : reuse of a spent
  // rotating refresh token invalidates the family.
  test('rotating refresh tokens: a reuse revokes the family', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid offline_access' });
    const second = await client.refreshTokenGrant(config, tokens.refresh_token!);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(client.refreshTokenGrant(config, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('enforces the registered method: client_secret_basic is refused for a client_secret_post client', async () => {
    const basic = await idp.configuration(client.ClientSecretBasic(CLIENT_SECRET));
    const { callbackUrl, verifier, state, nonce } = await idp.authorize(basic, { user: 'alice', scope: 'openid' });
    await expect(
      client.authorizationCodeGrant(basic, callbackUrl, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }),
    ).rejects.toMatchObject({ error: 'invalid_client' });
  });
});

describe('Auth0 without "RP-Initiated Logout End Session Endpoint Discovery"', () => {
  let idp: QuirkyIdp;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'auth0', endSession: 'auth0-v2' });
  });
  afterAll(async () => idp?.stop());

  // https://auth0.com/docs/authenticate/login/logout/log-users-out-of-auth0 : end_session_endpoint is
  // in discovery only with the tenant flag on; /v2/logout?client_id&returnTo remains.
  test('has no end_session_endpoint in discovery; /v2/logout ends the session and returns to an allowed URL', async () => {
    const config = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
    expect(config.serverMetadata().end_session_endpoint).toBeUndefined();
    const { jar } = await idp.login(config, { user: 'alice', scope: 'openid' });
    expect((await idp.get(`${idp.issuer}/v2/logout?client_id=${CLIENT_ID}&returnTo=${encodeURIComponent('https://elsewhere.invalid/')}`, jar)).status).toBe(
      400,
    );
    const redirect = await idp.get(`${idp.issuer}/v2/logout?client_id=${CLIENT_ID}&returnTo=${encodeURIComponent(POST_LOGOUT_URI)}`, jar);
    const page = await idp.get(redirect.location!, jar);
    expect((await idp.submitLogoutForm(page, redirect.location!, jar)).location).toBe(POST_LOGOUT_URI);
    expect((await silentLogin(idp, config, jar)).get('error')).toBe('login_required');
  });
});

describe('Keycloak', () => {
  let idp: QuirkyIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'keycloak' });
    config = await idp.configuration();
  });
  afterAll(async () => idp?.stop());

  // https://www.keycloak.org/docs/latest/server_admin/#_protocol-mappers : the realm roles mapper writes realm_access.roles.
  test('puts the roles under realm_access.roles (nested), in the ID token and userinfo', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email' });
    expect(tokens.claims()?.realm_access).toEqual({ roles: ALICE.groups });
    expect((await client.fetchUserInfo(config, tokens.access_token, 'alice')).realm_access).toEqual({ roles: ALICE.groups });
  });

  test('issues refresh tokens without offline_access; a refresh returns a new one and the old one stays valid ("Revoke Refresh Token" off)', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid' });
    expect(tokens.refresh_token).toBeTruthy();
    const second = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(second.refresh_token).not.toBe(tokens.refresh_token);
    expect((await client.refreshTokenGrant(config, tokens.refresh_token!)).access_token).toBeTruthy();
    expect((await client.refreshTokenGrant(config, second.refresh_token!)).access_token).toBeTruthy();
  });

  // https://www.keycloak.org/docs-api/latest/javadocs/org/keycloak/protocol/oidc/endpoints/LogoutEndpoint.html (id_token_hint, client_id, post_logout_redirect_uri).
  test('logout without id_token_hint asks the user to confirm; with it the session ends without asking', async () => {
    const { tokens, jar } = await idp.login(config, { user: 'alice', scope: 'openid' });
    const ask = await idp.get(client.buildEndSessionUrl(config, { client_id: CLIENT_ID, post_logout_redirect_uri: POST_LOGOUT_URI }).href, jar);
    expect(ask.body).toContain('Pick an account to sign out');
    const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI });
    const page = await idp.get(url.href, jar);
    expect(page.body).not.toContain('Pick an account');
    expect((await idp.submitLogoutForm(page, url.href, jar)).location).toBe(POST_LOGOUT_URI);
  });

  test('takes client_secret_post as well as client_secret_basic ("Client Id and Secret")', async () => {
    const post = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
    expect((await idp.login(post, { user: 'alice', scope: 'openid' })).tokens.access_token).toBeTruthy();
  });
});

describe('Microsoft Entra ID', () => {
  const TENANT = '3c2f8b1e-7d4a-4e6b-9a1c-5f0e2d8b7a64';
  const GROUPS = ['6f0c3d1a-9b2e-4c7f-8a1d-2e3f4a5b6c7d', 'b7e2a9c4-1d3f-4e8a-9c2b-7a6d5e4f3c2b'];
  const MANY = Array.from({ length: 201 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
  let idp: QuirkyIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'entra' }, { alice: { ...ALICE, groups: GROUPS }, bigbob: { name: 'Bob', email: 'bob@example.com', groups: MANY } });
    config = await idp.configuration(client.ClientSecretPost(CLIENT_SECRET));
  });
  afterAll(async () => idp?.stop());

  // https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference : iss ends in /<tid>/v2.0; tid, oid.
  test('the issuer carries the tenant id, and ID tokens carry tid and oid', async () => {
    expect(idp.issuer).toBe(`${idp.origin}/${TENANT}/v2.0`);
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email offline_access' });
    const claims = tokens.claims()!;
    expect(claims.iss).toBe(idp.issuer);
    expect(claims.tid).toBe(TENANT);
    expect(claims.oid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  // https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc : the /common and
  // /organizations documents hold the issuer https://login.microsoftonline.com/{tenantid}/v2.0.
  test('/common and /organizations discovery carry the {tenantid} template, which openid-client refuses as an issuer', async () => {
    for (const tenant of ['common', 'organizations']) {
      const answer = await idp.get(`${idp.origin}/${tenant}/v2.0/.well-known/openid-configuration`, new CookieJar());
      expect(JSON.parse(answer.body).issuer).toBe(`${idp.origin}/{tenantid}/v2.0`);
      await expect(
        client.discovery(new URL(`${idp.origin}/${tenant}/v2.0`), CLIENT_ID, {}, client.ClientSecretPost(CLIENT_SECRET), { [client.customFetch]: idp.fetch }),
      ).rejects.toThrow(/issuer/i);
    }
  });

  // https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-fed-group-claims : object ids; 200 for JWTs.
  test('groups are object ids in the ID token, never in userinfo', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email' });
    expect(tokens.claims()?.groups).toEqual(GROUPS);
    expect((await client.fetchUserInfo(config, tokens.access_token, 'alice')).groups).toBeUndefined();
  });

  // https://learn.microsoft.com/troubleshoot/entra/entra-id/app-integration/get-signed-in-users-groups-in-access-token : over
  // 200 groups the token has a group overage claim instead of the groups.
  test('over 200 groups the ID token has _claim_names/_claim_sources instead of groups', async () => {
    const { tokens } = await idp.login(config, { user: 'bigbob', scope: 'openid email' });
    const claims = tokens.claims()!;
    expect(claims.groups).toBeUndefined();
    expect(claims._claim_names).toEqual({ groups: 'src1' });
    expect(claims._claim_sources).toEqual({ src1: { endpoint: `https://graph.windows.net/${TENANT}/users/${claims.oid as string}/getMemberObjects` } });
  });

  // https://learn.microsoft.com/entra/identity-platform/refresh-tokens : "Refresh tokens replace themselves
  // with a fresh token upon every use. The Microsoft identity platform doesn't revoke old refresh tokens".
  test('a refresh returns a new refresh token and the old one stays valid; there is no revocation endpoint', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid offline_access' });
    const second = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(second.refresh_token).not.toBe(tokens.refresh_token);
    expect(second.id_token).toBeTruthy();
    expect((await client.refreshTokenGrant(config, tokens.refresh_token!)).access_token).toBeTruthy();
    expect(config.serverMetadata().revocation_endpoint).toBeUndefined();
    expect((await idp.get(`${idp.issuer}/token/revocation`, new CookieJar())).status).toBe(404);
  });

  test('sends no iss in the authorization response (no RFC 9207)', async () => {
    const { callbackUrl } = await idp.authorize(config, { user: 'alice', scope: 'openid' });
    expect(callbackUrl.searchParams.get('code')).toBeTruthy();
    expect(callbackUrl.searchParams.has('iss')).toBe(false);
    expect(config.serverMetadata().authorization_response_iss_parameter_supported).toBeUndefined();
  });

  // https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc (send a sign-out request): without a hint the user picks the account.
  test('logout without a hint shows the account picker and the session survives', async () => {
    const { jar } = await idp.login(config, { user: 'alice', scope: 'openid' });
    const page = await idp.get(client.buildEndSessionUrl(config, { client_id: CLIENT_ID, post_logout_redirect_uri: POST_LOGOUT_URI }).href, jar);
    expect(page.body).toContain('Pick an account to sign out');
    expect((await silentLogin(idp, config, jar)).get('code')).toBeTruthy();
  });
});

describe('Entra certificate credentials (private_key_jwt)', () => {
  let idp: QuirkyIdp;
  let certificate: Awaited<ReturnType<typeof createClientCertificate>>;
  beforeAll(async () => {
    certificate = await createClientCertificate();
    idp = await withIdp({
      profile: 'entra',
      tokenEndpointAuthMethod: 'private_key_jwt',
      alsoAcceptedAuthMethods: [],
      clientJwks: { keys: [certificate.publicJwk] },
      requireCertificateThumbprint: true,
    });
  });
  afterAll(async () => idp?.stop());

  async function exchangeWith(auth: client.ClientAuth): Promise<client.TokenEndpointResponse> {
    const config = await idp.configuration(auth);
    const { callbackUrl, verifier, state, nonce } = await idp.authorize(config, { user: 'alice', scope: 'openid offline_access' });
    return client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  }

  // https://learn.microsoft.com/entra/identity-platform/certificate-credentials : the assertion header carries x5t#S256.
  test('accepts an assertion signed by the registered certificate key with its x5t#S256', async () => {
    const tokens = await exchangeWith(
      client.PrivateKeyJwt(certificate.privateKey, {
        [client.modifyAssertion]: (header: Record<string, unknown>) => {
          header['x5t#S256'] = certificate.thumbprintS256;
        },
      }),
    );
    expect(tokens.access_token).toBeTruthy();
  });

  test('refuses an assertion without the thumbprint, and a client secret, with invalid_client', async () => {
    await expect(exchangeWith(client.PrivateKeyJwt(certificate.privateKey))).rejects.toMatchObject({ error: 'invalid_client' });
    await expect(exchangeWith(client.ClientSecretPost(CLIENT_SECRET))).rejects.toMatchObject({ error: 'invalid_client' });
  });
});

describe('client secret rotation at the IdP', () => {
  let idp: QuirkyIdp;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'okta' });
  });
  afterAll(async () => idp?.stop());

  test('after the secret is rotated at the IdP the old one gets invalid_client and the new one works', async () => {
    const old = await idp.configuration(client.ClientSecretBasic(CLIENT_SECRET));
    const { tokens } = await idp.login(old, { user: 'alice', scope: 'openid offline_access' });
    await idp.rotateClientSecret('rotated-secret');
    await expect(client.refreshTokenGrant(old, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_client' });
    const rotated = await idp.configuration(client.ClientSecretBasic('rotated-secret'));
    expect((await client.refreshTokenGrant(rotated, tokens.refresh_token!)).access_token).toBeTruthy();
  });
});

describe('a 3 KB refresh token', () => {
  let idp: QuirkyIdp;
  let config: client.Configuration;
  beforeAll(async () => {
    idp = await withIdp({ profile: 'okta', refreshTokenBytes: 3072 });
    config = await idp.configuration();
  });
  afterAll(async () => idp?.stop());

  test('is issued at 3072 bytes, refreshes, and is revocable; a tampered one is refused', async () => {
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid offline_access' });
    expect(tokens.refresh_token).toHaveLength(3072);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toHaveLength(3072);
    const tampered = `${refreshed.refresh_token!.slice(0, -1)}${refreshed.refresh_token!.endsWith('A') ? 'B' : 'A'}`;
    await expect(client.refreshTokenGrant(config, tampered)).rejects.toMatchObject({ error: 'invalid_grant' });
    await client.tokenRevocation(config, refreshed.refresh_token!, { token_type_hint: 'refresh_token' });
    await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('the dev IdP without quirks', () => {
  let idp: QuirkyIdp;
  beforeAll(async () => {
    idp = await withIdp({});
  });
  afterAll(async () => idp?.stop());

  test('an empty quirks object keeps the dev IdP as it was: refresh tokens always, flat groups in userinfo, rotation with reuse detection', async () => {
    const config = await idp.configuration();
    const { tokens } = await idp.login(config, { user: 'alice', scope: 'openid email groups' });
    expect(tokens.refresh_token).toBeTruthy();
    // The tests' IdP (harness startTestIdp) leaves claims to userinfo unless told otherwise.
    expect(jwtPayload(tokens.id_token!).groups).toBeUndefined();
    expect((await client.fetchUserInfo(config, tokens.access_token, 'alice')).groups).toEqual(ALICE.groups);
    const second = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(second.refresh_token).not.toBe(tokens.refresh_token);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});
