/**
 * The profiles (core/auth/idp-profiles.ts) against the emulated IdPs (dev/stand-ins/idp/dev-idp-quirks.mjs):
 * both are written from the IdPs' documentation, separately; this checks that they tell
 * the same story. With each profile's defaults a login gets a refresh token, the groups
 * claim pointer finds the groups, a refresh behaves as the profile says (ID token or not,
 * rotation or not), and discovery has (or lacks) the logout and revocation endpoints.
 */
import * as client from 'openid-client';
import { readClaimStrings } from '../../core/auth/claim-pointer';
import { IDP_PROVIDERS, readEmailVerified, resolveIdpSettings, type IdpProvider, type IdpSettings } from '../../core/auth/idp-profiles';
import { CLIENT_SECRET, startQuirkyIdp, type QuirkyIdp } from './support/quirky-idp';

const GROUPS: Record<IdpProvider, string[]> = {
  okta: ['looker-analysts'],
  entra: ['6f0c3d1a-9b2e-4c7f-8a1d-2e3f4a5b6c7d'],
  google: [],
  auth0: ['looker-analysts'],
  keycloak: ['looker-analysts'],
  ping: ['looker-analysts'],
  cognito: ['looker-analysts'],
  generic: ['looker-analysts'],
};

/** The operator's settings (docs/idps.md); the issuer is the emulation's. */
const SETTINGS: Partial<Record<IdpProvider, Partial<IdpSettings>>> = {
  auth0: { groupsClaim: '/https:~1~1example.com~1groups' },
};

describe.each(IDP_PROVIDERS)('the %s profile against its emulated IdP', (provider) => {
  let idp: QuirkyIdp;
  let config: client.Configuration;
  let settings: ReturnType<typeof resolveIdpSettings>;

  beforeAll(async () => {
    idp = await startQuirkyIdp({
      quirks: { profile: provider },
      users: {
        alice: { name: 'Alice', email: 'alice@example.com', email_verified: true, groups: GROUPS[provider] },
        carol: { name: 'Carol', email: 'carol@example.com', email_verified: false, groups: GROUPS[provider] },
      },
    });
    settings = resolveIdpSettings({ provider, issuer: idp.issuer, ...SETTINGS[provider] });
    const auth = settings.tokenEndpointAuthMethod === 'client_secret_post' ? client.ClientSecretPost(CLIENT_SECRET) : client.ClientSecretBasic(CLIENT_SECRET);
    config = await idp.configuration(auth);
  });
  afterAll(async () => idp?.stop());

  const login = (user = 'alice') => idp.login(config, { user, scope: settings.scopes.join(' '), params: { ...settings.authorizationParams } });

  test('the default scopes and parameters log in and bring a refresh token', async () => {
    const { tokens } = await login();
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });

  test('a scope the profile says is refused is refused', async () => {
    for (const scope of settings.profile.refusedScopes) {
      const attempt = idp.authorize(config, { user: 'alice', scope: `${settings.scopes.join(' ')} ${scope}`, params: { ...settings.authorizationParams } });
      // Either an error redirect back (Cognito) or the IdP's own error page (Google).
      await attempt.then(
        ({ callbackUrl }) => expect(callbackUrl.searchParams.get('error')).toBe('invalid_scope'),
        (error: Error) => expect(error.message).toMatch(/invalid_scope/),
      );
    }
  });

  test('the groups claim pointer finds the groups in the ID token or userinfo (or the profile says they are not in tokens)', async () => {
    const { tokens } = await login();
    const info = await client.fetchUserInfo(config, tokens.access_token, 'alice');
    if (settings.groupsClaim === undefined) {
      expect(settings.profile.groupsSource).toBe('google-directory');
      expect(tokens.claims()?.groups).toBeUndefined();
      return;
    }
    const fromIdToken = readClaimStrings(tokens.claims(), settings.groupsClaim);
    const fromUserinfo = readClaimStrings(info, settings.groupsClaim);
    expect(fromIdToken.found || fromUserinfo.found).toBe(true);
    expect(fromIdToken.found ? fromIdToken.values : fromUserinfo.values).toEqual(GROUPS[provider]);
  });

  test('email_verified read with the profile shape is false for an unverified address, from the ID token and userinfo', async () => {
    const { tokens } = await login('carol');
    const info = await client.fetchUserInfo(config, tokens.access_token, 'carol');
    expect(readEmailVerified(tokens.claims()?.email_verified, settings.profile.emailVerified)).toBe(false);
    expect(readEmailVerified(info.email_verified, settings.profile.emailVerified)).toBe(false);
  });

  test('a refresh carries an ID token and rotates as the profile says', async () => {
    const { tokens } = await login();
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    if (settings.profile.idTokenOnRefresh === 'yes') expect(refreshed.id_token).toBeTruthy();
    if (settings.profile.idTokenOnRefresh === 'no') expect(refreshed.id_token).toBeUndefined();
    const old = client.refreshTokenGrant(config, tokens.refresh_token!);
    switch (settings.profile.refreshTokenRotation) {
      case 'none':
        expect(refreshed.refresh_token).toBeUndefined();
        await expect(old).resolves.toMatchObject({ access_token: expect.any(String) });
        break;
      case 'rotate':
        expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
        await expect(old).resolves.toMatchObject({ access_token: expect.any(String) });
        break;
      case 'rotate-reuse-detection':
        expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
        await expect(old).rejects.toMatchObject({ error: 'invalid_grant' });
        break;
    }
  });

  test('discovery has an end-session endpoint exactly when the profile logs out there, and a revocation endpoint when it has one', () => {
    const metadata = config.serverMetadata();
    expect(metadata.end_session_endpoint !== undefined).toBe(settings.profile.logout === 'end-session');
    expect(metadata.revocation_endpoint !== undefined).toBe(settings.profile.revocation);
    expect(metadata.token_endpoint_auth_methods_supported).toContain(settings.tokenEndpointAuthMethod);
  });
});
