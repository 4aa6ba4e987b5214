/**
 * IdP profiles as data: every profile is internally consistent, overrides win, and the
 * validation names the bad value and the fix for each combination the issue lists
 * (Google or Cognito with offline_access, Entra with /common, Auth0's restricted claim
 * names and trailing slash, Cognito's logout and issuer, unsupported auth methods).
 */
import { parseClaimPointer } from '../../core/auth/claim-pointer';
import {
  IDP_PROVIDERS,
  idpProfile,
  readEmailVerified,
  resolveIdpSettings,
  validateIdpSettings,
  type IdpProblem,
  type IdpSettings,
} from '../../core/auth/idp-profiles';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

/** Settings that validate cleanly with each profile's defaults (what docs/idps.md tells the operator to write). */
const WORKING: Record<string, IdpSettings> = {
  okta: { provider: 'okta', issuer: 'https://example.okta.com/oauth2/default' },
  entra: { provider: 'entra', issuer: `https://login.microsoftonline.com/${TENANT}/v2.0` },
  google: { provider: 'google', issuer: 'https://accounts.google.com', endSession: 'off' },
  auth0: { provider: 'auth0', issuer: 'https://example.eu.auth0.com/', groupsClaim: '/https:~1~1example.com~1groups' },
  keycloak: { provider: 'keycloak', issuer: 'https://keycloak.example.com/realms/example' },
  ping: { provider: 'ping', issuer: 'https://auth.pingone.eu/0b1c9f38-5e49-4b8c-8a5e-2f7d3c1b9a10/as' },
  cognito: {
    provider: 'cognito',
    issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123',
    endSession: 'https://example.auth.eu-west-1.amazoncognito.com/logout?client_id={clientId}&logout_uri={postLogoutRedirectUri}',
  },
  generic: { issuer: 'https://idp.example.com' },
};

function errors(settings: IdpSettings): IdpProblem[] {
  return validateIdpSettings(settings).filter((p) => p.severity === 'error');
}

function messages(settings: IdpSettings, setting?: string): string[] {
  return validateIdpSettings(settings)
    .filter((p) => setting === undefined || p.setting === setting)
    .map((p) => `${p.severity}: ${p.message}`);
}

describe('the profiles', () => {
  test.each(IDP_PROVIDERS)('%s: defaults ask for openid, never for a scope it refuses, and name a supported auth method', (provider) => {
    const profile = idpProfile(provider);
    expect(profile.provider).toBe(provider);
    expect(profile.defaultScopes).toContain('openid');
    expect(profile.defaultScopes.filter((s) => profile.refusedScopes.includes(s))).toEqual([]);
    expect(profile.tokenEndpointAuthMethods).toContain(profile.tokenEndpointAuthMethod);
    if (profile.groupsClaim !== undefined) expect(() => parseClaimPointer(profile.groupsClaim!)).not.toThrow();
    for (const quirk of profile.quirks) expect(quirk.source).toMatch(/^https:\/\//);
  });

  test.each(IDP_PROVIDERS)('%s: the settings docs/idps.md recommends validate without errors or warnings', (provider) => {
    expect(validateIdpSettings(WORKING[provider])).toEqual([]);
  });

  test('an IdP that issues refresh tokens only for offline_access has it in its default scopes', () => {
    for (const provider of IDP_PROVIDERS) {
      const profile = idpProfile(provider);
      if (profile.refreshTokens === 'offline-access-scope') expect(profile.defaultScopes).toContain('offline_access');
    }
  });

  test('Google and Cognito refuse offline_access, and Google gets refresh tokens from access_type=offline with prompt=consent', () => {
    expect(idpProfile('google').refusedScopes).toContain('offline_access');
    expect(idpProfile('cognito').refusedScopes).toContain('offline_access');
    expect(idpProfile('google').authorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });
  });

  test('the groups claim paths: Okta /groups, Keycloak /realm_access/roles, Cognito /cognito:groups, Google none', () => {
    expect(idpProfile('okta').groupsClaim).toBe('/groups');
    expect(idpProfile('keycloak').groupsClaim).toBe('/realm_access/roles');
    expect(idpProfile('cognito').groupsClaim).toBe('/cognito:groups');
    expect(idpProfile('google').groupsClaim).toBeUndefined();
    expect(idpProfile('google').groupsSource).toBe('google-directory');
    expect(idpProfile('entra').groupsSource).toBe('token-or-microsoft-graph');
  });
});

describe('resolveIdpSettings', () => {
  test('takes everything from the profile when nothing is overridden', () => {
    const resolved = resolveIdpSettings(WORKING.google);
    expect(resolved.scopes).toEqual(['openid', 'email', 'profile']);
    expect(resolved.authorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });
    expect(resolved.tokenEndpointAuthMethod).toBe('client_secret_post');
    expect(resolved.groupsSource).toBe('none');
    expect(resolved.endSession).toEqual({ mode: 'off' });
  });

  test('every field stays overridable; an empty authorization parameter removes the profile one', () => {
    const resolved = resolveIdpSettings({
      ...WORKING.google,
      scopes: ['openid', 'email'],
      authorizationParams: { prompt: '', hd: 'example.com' },
      tokenEndpointAuthMethod: 'client_secret_basic',
      groupsSource: 'google-directory',
    });
    expect(resolved.scopes).toEqual(['openid', 'email']);
    expect(resolved.authorizationParams).toEqual({ access_type: 'offline', hd: 'example.com' });
    expect(resolved.tokenEndpointAuthMethod).toBe('client_secret_basic');
    expect(resolved.groupsSource).toBe('google-directory');
  });

  test('a flat groups claim name (the old setting) becomes a pointer; a pointer stays', () => {
    expect(resolveIdpSettings({ issuer: 'https://idp.example.com', groupsClaim: 'roles' }).groupsClaim).toBe('/roles');
    expect(resolveIdpSettings({ issuer: 'https://idp.example.com', groupsClaim: 'https://example.com/groups' }).groupsClaim).toBe(
      '/https:~1~1example.com~1groups',
    );
    expect(resolveIdpSettings({ ...WORKING.keycloak }).groupsClaim).toBe('/realm_access/roles');
  });

  test('reads the Entra tenant id from a tenant issuer, lower-cased, and none from /common', () => {
    expect(resolveIdpSettings({ provider: 'entra', issuer: `https://login.microsoftonline.com/${TENANT.toUpperCase()}/v2.0` }).tenantId).toBe(TENANT);
    expect(resolveIdpSettings({ provider: 'entra', issuer: 'https://login.microsoftonline.com/common/v2.0' }).tenantId).toBeUndefined();
  });

  test('without a provider the generic profile applies', () => {
    expect(resolveIdpSettings({ issuer: 'https://idp.example.com' }).profile.provider).toBe('generic');
  });
});

describe('validateIdpSettings: refresh tokens (issue 16 item 1)', () => {
  test('Google with offline_access is an error that says why and what to do instead', () => {
    expect(messages({ ...WORKING.google, scopes: ['openid', 'email', 'profile', 'offline_access'] }, 'scopes')).toEqual([
      'error: scopes include "offline_access", which Google Workspace refuses with invalid_scope (the login fails): remove it; refresh tokens come from the authorization parameters access_type=offline and prompt=consent, which the google profile sets.',
    ]);
  });

  test('Cognito with offline_access is an error: refresh tokens come anyway', () => {
    expect(messages({ ...WORKING.cognito, scopes: ['openid', 'offline_access'] }, 'scopes')).toEqual([
      'error: scopes include "offline_access", which Amazon Cognito refuses with invalid_scope (the login fails): remove it; this IdP issues refresh tokens without it.',
    ]);
  });

  test('Google without access_type=offline, or without prompt=consent, warns that refresh tokens will not come', () => {
    expect(messages({ ...WORKING.google, authorizationParams: { access_type: '' } }, 'authorizationParams')[0]).toMatch(
      /^warning: access_type is "\(unset\)": Google Workspace issues refresh tokens only with access_type=offline/,
    );
    expect(messages({ ...WORKING.google, authorizationParams: { prompt: 'select_account' } }, 'authorizationParams')[0]).toMatch(
      /^warning: prompt lacks "consent"/,
    );
  });

  test('Okta without offline_access warns that users sign in again every session lifetime', () => {
    expect(messages({ ...WORKING.okta, scopes: ['openid', 'groups'] }, 'scopes')).toEqual([
      'warning: scopes "openid groups" lack "offline_access", so Okta issues no refresh token: users sign in again every session lifetime. Add offline_access.',
    ]);
  });

  test('scopes without openid, and authorization parameters the flow sets itself, are errors', () => {
    expect(messages({ ...WORKING.okta, scopes: ['email'] }, 'scopes')[0]).toBe('error: scopes "email" lack "openid": OpenID Connect login needs it.');
    expect(messages({ ...WORKING.okta, authorizationParams: { state: 'x', nonce: 'y' } }, 'authorizationParams')).toEqual([
      'error: authorizationParams set state, nonce, which the login flow sets itself: remove them (scopes have their own setting).',
    ]);
  });
});

describe('validateIdpSettings: Entra issuers and tenants (issue 16 item 5)', () => {
  test('/common and /organizations without allowedTenants are errors', () => {
    for (const tenant of ['common', 'organizations']) {
      expect(messages({ provider: 'entra', issuer: `https://login.microsoftonline.com/${tenant}/v2.0` }, 'issuer')).toEqual([
        `error: issuer "https://login.microsoftonline.com/${tenant}/v2.0" lets users of any Entra ID tenant sign in: use your tenant's issuer https://login.microsoftonline.com/<tenant id>/v2.0, or list the tenants that may sign in in allowedTenants (their tid claim is then enforced).`,
      ]);
    }
  });

  test('/organizations with allowedTenants (GUIDs) is accepted; a non-GUID tenant is an error', () => {
    expect(errors({ provider: 'entra', issuer: 'https://login.microsoftonline.com/organizations/v2.0', allowedTenants: [TENANT] })).toEqual([]);
    expect(
      messages({ provider: 'entra', issuer: 'https://login.microsoftonline.com/organizations/v2.0', allowedTenants: ['contoso.com'] }, 'allowedTenants')[0],
    ).toMatch(/^error: allowedTenants entry "contoso.com" is not a tenant id/);
  });

  test('/consumers, a domain-named tenant, the v1.0 issuer and a non-Entra URL are errors with the right form', () => {
    expect(messages({ provider: 'entra', issuer: 'https://login.microsoftonline.com/consumers/v2.0', allowedTenants: [TENANT] }, 'issuer')[0]).toMatch(
      /personal Microsoft accounts only/,
    );
    expect(messages({ provider: 'entra', issuer: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0' }, 'issuer')[0]).toMatch(
      /names the tenant by domain \(contoso.onmicrosoft.com\)/,
    );
    expect(messages({ provider: 'entra', issuer: `https://sts.windows.net/${TENANT}/` }, 'issuer')[0]).toMatch(/is the v1.0 issuer: use the v2.0 one/);
    expect(messages({ provider: 'entra', issuer: `https://login.microsoftonline.com/${TENANT}` }, 'issuer')[0]).toMatch(/is not an Entra ID v2.0 issuer/);
  });

  test('allowedTenants on another provider is an error', () => {
    expect(messages({ ...WORKING.okta, allowedTenants: [TENANT] }, 'allowedTenants')[0]).toMatch(/tenants are an Entra ID setting/);
  });
});

describe('validateIdpSettings: other issuers', () => {
  test('Auth0 without the trailing slash, Cognito with the user pool domain, Google with another host', () => {
    expect(messages({ ...WORKING.auth0, issuer: 'https://example.eu.auth0.com' }, 'issuer')).toEqual([
      'error: issuer "https://example.eu.auth0.com" lacks the trailing "/" of Auth0 issuers, so discovery fails its issuer check: use "https://example.eu.auth0.com/".',
    ]);
    expect(messages({ ...WORKING.cognito, issuer: 'https://example.auth.eu-west-1.amazoncognito.com' }, 'issuer')[0]).toMatch(
      /that is the user pool domain, which serves the login pages, not the issuer/,
    );
    expect(messages({ ...WORKING.google, issuer: 'https://accounts.google.com/' }, 'issuer')[0]).toMatch(/use "https:\/\/accounts.google.com"/);
  });

  test('not a URL, or http, is an error', () => {
    expect(messages({ ...WORKING.generic, issuer: 'idp.example.com' }, 'issuer')[0]).toMatch(/is not a URL/);
    expect(messages({ ...WORKING.generic, issuer: 'http://idp.example.com' }, 'issuer')[0]).toMatch(/must use https/);
    expect(errors({ ...WORKING.generic, issuer: 'https://127.0.0.1:8443' })).toEqual([]);
  });

  test('unknown provider', () => {
    expect(messages({ provider: 'onelogin', issuer: 'https://idp.example.com' }, 'provider')[0]).toBe(
      'error: provider "onelogin" is not known: use one of okta, entra, google, auth0, keycloak, ping, cognito, generic (generic for any other OpenID provider).',
    );
  });
});

describe('validateIdpSettings: groups (issue 16 items 9 and 10)', () => {
  test('a malformed pointer is an error naming the pointer', () => {
    expect(messages({ ...WORKING.okta, groupsClaim: '/a~2b' }, 'groupsClaim')[0]).toMatch(/^error: The claim path "\/a~2b" is not a JSON pointer/);
  });

  test('Auth0 with the restricted "groups" claim, or with none, is an error pointing at a namespaced claim', () => {
    expect(messages({ ...WORKING.auth0, groupsClaim: 'groups' }, 'groupsClaim')[0]).toMatch(/restricted claim name at Auth0/);
    expect(messages({ provider: 'auth0', issuer: 'https://example.eu.auth0.com/' }, 'groupsClaim')[0]).toMatch(/^error: groupsClaim is not set/);
    expect(errors({ provider: 'auth0', issuer: 'https://example.eu.auth0.com/', groupsSource: 'none' })).toEqual([]);
  });

  test('group sources belong to their IdP', () => {
    expect(messages({ ...WORKING.okta, groupsSource: 'microsoft-graph' }, 'groupsSource')[0]).toMatch(/needs provider entra/);
    expect(messages({ ...WORKING.entra, groupsSource: 'google-directory' }, 'groupsSource')[0]).toMatch(/needs provider google/);
    expect(messages({ ...WORKING.google, groupsSource: 'token' }, 'groupsSource')[0]).toMatch(/its tokens never carry groups/);
    expect(messages({ ...WORKING.okta, groupsSource: 'ldap' }, 'groupsSource')[0]).toMatch(/is not a source/);
    expect(errors({ ...WORKING.entra, groupsSource: 'microsoft-graph' })).toEqual([]);
    expect(errors({ ...WORKING.google, groupsSource: 'google-directory' })).toEqual([]);
  });
});

describe('validateIdpSettings: client authentication (issue 16 item 8)', () => {
  test('private_key_jwt is accepted where the IdP supports it, refused at Google and Cognito', () => {
    expect(errors({ ...WORKING.entra, tokenEndpointAuthMethod: 'private_key_jwt' })).toEqual([]);
    expect(messages({ ...WORKING.google, tokenEndpointAuthMethod: 'private_key_jwt' }, 'tokenEndpointAuthMethod')).toEqual([
      'error: tokenEndpointAuthMethod "private_key_jwt" is not supported by Google Workspace: use client_secret_basic or client_secret_post, the one registered for the client at the IdP.',
    ]);
    expect(errors({ ...WORKING.cognito, tokenEndpointAuthMethod: 'private_key_jwt' })).toHaveLength(1);
  });

  test('an unknown method is an error', () => {
    expect(messages({ ...WORKING.okta, tokenEndpointAuthMethod: 'client_secret_jwt' }, 'tokenEndpointAuthMethod')[0]).toMatch(
      /"client_secret_jwt" is not a method/,
    );
  });
});

describe('validateIdpSettings: logout (issue 16 item 6)', () => {
  test('Cognito with endSession auto is an error that gives the template to use', () => {
    expect(messages({ ...WORKING.cognito, endSession: 'auto' }, 'endSession')).toEqual([
      'error: endSession "auto" cannot find Cognito\'s logout endpoint (it is on the user pool domain and not in discovery): set endSession to "https://<your user pool domain>/logout?client_id={clientId}&logout_uri={postLogoutRedirectUri}", or "off".',
    ]);
  });

  test('Google with endSession auto warns that the Google session survives', () => {
    expect(messages({ ...WORKING.google, endSession: undefined }, 'endSession')[0]).toMatch(/^warning: Google Workspace has no RP-initiated logout/);
  });

  test('a template must be https and use known placeholders only', () => {
    expect(messages({ ...WORKING.okta, endSession: 'http://idp.example.com/logout' }, 'endSession')[0]).toMatch(/must be an https URL/);
    expect(messages({ ...WORKING.okta, endSession: 'https://idp.example.com/logout?u={user}' }, 'endSession')[0]).toMatch(
      /uses \{user\}: the placeholders are/,
    );
    expect(messages({ ...WORKING.okta, endSession: 'not a url' }, 'endSession')[0]).toMatch(/is neither "auto", "off" nor an https URL template/);
  });
});

describe('readEmailVerified (issue 16 item 4)', () => {
  test('the string "false" is never verified; "true" counts only where the IdP sends strings', () => {
    expect(readEmailVerified('false', 'boolean-or-string')).toBe(false);
    expect(readEmailVerified('true', 'boolean-or-string')).toBe(true);
    expect(readEmailVerified('true', 'boolean')).toBeUndefined();
    expect(readEmailVerified('false', 'boolean')).toBeUndefined();
    expect(readEmailVerified(true, 'boolean')).toBe(true);
    expect(readEmailVerified(false, 'boolean-or-string')).toBe(false);
    expect(readEmailVerified(undefined, 'boolean')).toBeUndefined();
    expect(readEmailVerified('TRUE', 'boolean-or-string')).toBeUndefined();
    expect(readEmailVerified(1, 'boolean-or-string')).toBeUndefined();
  });

  test('Cognito is the profile that sends strings', () => {
    expect(IDP_PROVIDERS.filter((p) => idpProfile(p).emailVerified === 'boolean-or-string')).toEqual(['cognito']);
  });
});
