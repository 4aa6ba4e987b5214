/**
 * What the gateway needs to know about each identity provider, as data: default scopes
 * and authorization parameters, where the groups are, how logout works, how the client
 * authenticates, how `email_verified` looks, which issuers are safe, and the quirks that
 * break a naive relying party. The facts and their sources are in docs/idps.md.
 *
 * `resolveIdpSettings` merges a profile with the operator's overrides (every field stays
 * overridable); `validateIdpSettings` checks the combination and returns each problem
 * with the bad value and the fix, for the construct (synth time) and the auth service
 * (start-up). Pure: no aws-cdk-lib, no I/O.
 *
 * Size: this file is data, one profile per identity provider with the facts docs/idps.md
 * sources, plus the merge and the checks that read them; split by provider, the differences
 * between providers would no longer be seen side by side.
 */
import { ClaimPointerError, parseClaimPointer, toClaimPointer } from './claim-pointer';
import type { EmailVerifiedShape } from './mapping-rules';

export { readEmailVerified, type EmailVerifiedShape } from './mapping-rules';

export type IdpProvider = 'okta' | 'entra' | 'google' | 'auth0' | 'keycloak' | 'ping' | 'cognito' | 'generic';

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/**
 * How the IdP hands out refresh tokens to a web application using the code flow:
 * - `offline-access-scope`: only when `offline_access` is among the scopes (Okta, Entra, Auth0);
 * - `access-type-offline`: only with the authorization parameter `access_type=offline`, and only
 *   at the first consent unless `prompt=consent` asks again (Google); `offline_access` is refused;
 * - `always`: with every code exchange, whatever the scopes (Keycloak, Cognito, PingOne).
 */
export type RefreshTokenIssuance = 'offline-access-scope' | 'access-type-offline' | 'always';

/**
 * What a refresh does to the refresh token:
 * - `none`: the same token stays valid and no new one is returned (Google, Cognito through /oauth2/token);
 * - `rotate`: a new token is returned, the old one stays valid (Entra; Keycloak by default);
 * - `rotate-reuse-detection`: a new token is returned, the old one is spent, and presenting a spent
 *   one revokes the whole family (Okta and Auth0 when rotation is on).
 */
export type RefreshTokenRotation = 'none' | 'rotate' | 'rotate-reuse-detection';

/** Whether a refresh response carries a new ID token. */
export type IdTokenOnRefresh = 'yes' | 'no' | 'configurable';

/**
 * How RP-initiated logout works at the IdP:
 * - `end-session`: OpenID RP-Initiated Logout at the discovered `end_session_endpoint`;
 * - `cognito-logout`: Cognito's `/logout?client_id=&logout_uri=` on the user pool domain (not in discovery);
 * - `none`: the IdP offers none; its session survives the gateway's logout (Google).
 */
export type LogoutStyle = 'end-session' | 'cognito-logout' | 'none';

/** What the end-session endpoint does without `id_token_hint`. */
export type IdTokenHintNeed = 'required' | 'skips-confirmation' | 'not-used';

/**
 * Where the groups are:
 * - `token`: in the ID token or userinfo, at `groupsClaim`;
 * - `token-or-microsoft-graph`: in the ID token, or (Entra overage, over 200 groups) only in Microsoft Graph;
 * - `google-directory`: never in tokens; Google Workspace's Directory API has them.
 */
export type GroupsSource = 'token' | 'token-or-microsoft-graph' | 'google-directory';

export interface IdpQuirk {
  /** Short stable id, e.g. `no-id-token-on-refresh`. */
  readonly id: string;
  /** What goes wrong and what the gateway (or the operator) does about it. */
  readonly summary: string;
  /** The document that says so. */
  readonly source: string;
}

export interface IdpProfile {
  readonly provider: IdpProvider;
  readonly displayName: string;
  /** An issuer as the operator should write it, e.g. `https://example.okta.com/oauth2/default`. */
  readonly issuerExample: string;
  readonly defaultScopes: readonly string[];
  /** Scopes the IdP answers with `invalid_scope`. */
  readonly refusedScopes: readonly string[];
  /** Authorization request parameters the profile adds (the operator's override the same names). */
  readonly authorizationParams: Readonly<Record<string, string>>;
  readonly refreshTokens: RefreshTokenIssuance;
  readonly refreshTokenRotation: RefreshTokenRotation;
  readonly idTokenOnRefresh: IdTokenOnRefresh;
  /** The groups claim as a JSON pointer (RFC 6901), when tokens carry groups. */
  readonly groupsClaim?: string;
  readonly groupsSource: GroupsSource;
  readonly emailVerified: EmailVerifiedShape;
  readonly logout: LogoutStyle;
  readonly idTokenHint: IdTokenHintNeed;
  /** Token endpoint client authentication the profile uses unless overridden. */
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** The methods the IdP supports for a confidential web client. */
  readonly tokenEndpointAuthMethods: readonly TokenEndpointAuthMethod[];
  /** Whether the IdP has an RFC 7009 revocation endpoint the gateway can call at logout. */
  readonly revocation: boolean;
  readonly quirks: readonly IdpQuirk[];
  /** docs/idps.md section of this IdP. */
  readonly docsSection: string;
}

const DOCS = {
  googleWebServer: 'https://developers.google.com/identity/protocols/oauth2/web-server#offline',
  googleOidc: 'https://developers.google.com/identity/openid-connect/reference',
  googleDirectory: 'https://developers.google.com/admin-sdk/directory/reference/rest/v1/groups/list',
  entraGroupsClaims: 'https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-fed-group-claims',
  entraOverage: 'https://learn.microsoft.com/troubleshoot/entra/entra-id/app-integration/get-signed-in-users-groups-in-access-token',
  entraIdToken: 'https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference',
  entraOidc: 'https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc',
  entraRefresh: 'https://learn.microsoft.com/entra/identity-platform/refresh-tokens',
  entraCertificates: 'https://learn.microsoft.com/entra/identity-platform/certificate-credentials',
  oktaLogout: 'https://support.okta.com/help/s/article/the-purpose-of-id-token-hint-in-the-logout-api-and-how-does-it-affect-the-single-logout-process',
  oktaRotation: 'https://developer.okta.com/docs/guides/refresh-tokens/refresh-token-rotation/',
  oktaGroups: 'https://developer.okta.com/docs/guides/customize-tokens-groups-claim/',
  auth0Claims: 'https://auth0.com/docs/secure/tokens/json-web-tokens/create-custom-claims',
  auth0Logout: 'https://auth0.com/docs/authenticate/login/logout/log-users-out-of-auth0',
  auth0Discovery: 'https://auth0.com/docs/get-started/applications/configure-applications-with-oidc-discovery',
  auth0Rotation: 'https://auth0.com/docs/secure/tokens/refresh-tokens/refresh-token-rotation',
  keycloakMapper: 'https://www.keycloak.org/docs/latest/server_admin/#_protocol-mappers',
  keycloakLogout: 'https://www.keycloak.org/docs-api/latest/javadocs/org/keycloak/protocol/oidc/endpoints/LogoutEndpoint.html',
  pingFederateOidcPolicy:
    'https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/help_policymanagementtasklet_policymanagementstate.html',
  pingOneAuthMethods: 'https://docs.pingidentity.com/pingone/applications/p1_token_endpoint_authentication_methods.html',
  cognitoLogout: 'https://docs.aws.amazon.com/cognito/latest/developerguide/logout-endpoint.html',
  cognitoUserinfo: 'https://docs.aws.amazon.com/cognito/latest/developerguide/userinfo-endpoint.html',
  cognitoToken: 'https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html',
  cognitoAuthorize: 'https://docs.aws.amazon.com/cognito/latest/developerguide/authorization-endpoint.html',
} as const;

const SECRET_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post'];
const ALL_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];

const PROFILES: Readonly<Record<IdpProvider, IdpProfile>> = {
  okta: {
    provider: 'okta',
    displayName: 'Okta',
    issuerExample: 'https://example.okta.com/oauth2/default',
    defaultScopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    refusedScopes: [],
    authorizationParams: {},
    refreshTokens: 'offline-access-scope',
    refreshTokenRotation: 'rotate-reuse-detection',
    idTokenOnRefresh: 'yes',
    groupsClaim: '/groups',
    groupsSource: 'token',
    emailVerified: 'boolean',
    logout: 'end-session',
    idTokenHint: 'required',
    tokenEndpointAuthMethod: 'client_secret_basic',
    tokenEndpointAuthMethods: ALL_METHODS,
    revocation: true,
    quirks: [
      {
        id: 'logout-needs-id-token-hint',
        summary: 'The /v1/logout endpoint answers 400 without id_token_hint: the gateway must keep the ID token to end the Okta session.',
        source: DOCS.oktaLogout,
      },
      {
        id: 'groups-claim-configured',
        summary: 'Groups are in tokens only once a groups claim (with a filter) is added to the app or authorization server.',
        source: DOCS.oktaGroups,
      },
      {
        id: 'rotation-reuse-revokes',
        summary: 'With rotation on, presenting a spent refresh token after the grace period invalidates the newest one too.',
        source: DOCS.oktaRotation,
      },
    ],
    docsSection: 'okta',
  },
  entra: {
    provider: 'entra',
    displayName: 'Microsoft Entra ID',
    issuerExample: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0',
    defaultScopes: ['openid', 'email', 'profile', 'offline_access'],
    refusedScopes: [],
    authorizationParams: {},
    refreshTokens: 'offline-access-scope',
    refreshTokenRotation: 'rotate',
    idTokenOnRefresh: 'yes',
    groupsClaim: '/groups',
    groupsSource: 'token-or-microsoft-graph',
    emailVerified: 'boolean',
    logout: 'end-session',
    idTokenHint: 'skips-confirmation',
    tokenEndpointAuthMethod: 'client_secret_post',
    tokenEndpointAuthMethods: ALL_METHODS,
    revocation: false,
    quirks: [
      {
        id: 'groups-are-object-ids',
        summary: 'The groups claim lists object ids (GUIDs), not names: mapping rules match GUIDs.',
        source: DOCS.entraGroupsClaims,
      },
      {
        id: 'groups-overage',
        summary:
          'Over 200 groups, the ID token has no groups claim but _claim_names/_claim_sources: the groups must come from Microsoft Graph (getMemberGroups, application permissions).',
        source: DOCS.entraOverage,
      },
      {
        id: 'multi-tenant-issuer',
        summary:
          'The /common and /organizations documents carry the issuer template https://login.microsoftonline.com/{tenantid}/v2.0: any tenant can sign in unless tid is checked.',
        source: DOCS.entraIdToken,
      },
      {
        id: 'no-revocation-endpoint',
        summary: 'There is no RFC 7009 revocation endpoint; refresh tokens stay valid until they expire or sessions are revoked through Microsoft Graph.',
        source: DOCS.entraRefresh,
      },
      { id: 'old-refresh-token-stays-valid', summary: 'Each refresh returns a new refresh token; the old one is not revoked.', source: DOCS.entraRefresh },
      {
        id: 'certificate-credentials',
        summary: 'private_key_jwt with a certificate: the assertion header carries x5t#S256 (or x5t) of the registered certificate.',
        source: DOCS.entraCertificates,
      },
      { id: 'logout-account-picker', summary: 'Without logout_hint or id_token_hint the logout page asks which account to sign out.', source: DOCS.entraOidc },
    ],
    docsSection: 'microsoft-entra-id',
  },
  google: {
    provider: 'google',
    displayName: 'Google Workspace',
    issuerExample: 'https://accounts.google.com',
    defaultScopes: ['openid', 'email', 'profile'],
    refusedScopes: ['offline_access'],
    authorizationParams: { access_type: 'offline', prompt: 'consent' },
    refreshTokens: 'access-type-offline',
    refreshTokenRotation: 'none',
    idTokenOnRefresh: 'no',
    groupsSource: 'google-directory',
    emailVerified: 'boolean',
    logout: 'none',
    idTokenHint: 'not-used',
    tokenEndpointAuthMethod: 'client_secret_post',
    tokenEndpointAuthMethods: SECRET_METHODS,
    revocation: true,
    quirks: [
      { id: 'offline-access-refused', summary: 'The offline_access scope is refused with "Error 400: invalid_scope".', source: DOCS.googleWebServer },
      {
        id: 'refresh-token-needs-access-type',
        summary: 'Refresh tokens come only with access_type=offline, and only at the first consent unless prompt=consent asks again.',
        source: DOCS.googleWebServer,
      },
      {
        id: 'no-groups-in-tokens',
        summary: 'Tokens never carry groups; the Directory API (groups.list?userKey=) with a domain-wide-delegated service account has them.',
        source: DOCS.googleDirectory,
      },
      {
        id: 'no-end-session',
        summary: 'Google offers no RP-initiated logout: the Google session survives the gateway logout, and the next login is silent.',
        source: DOCS.googleOidc,
      },
      {
        id: 'hosted-domain',
        summary: 'The hd claim names the Workspace domain; a personal Google account has none, so a rule should require it.',
        source: DOCS.googleOidc,
      },
    ],
    docsSection: 'google-workspace',
  },
  auth0: {
    provider: 'auth0',
    displayName: 'Auth0',
    issuerExample: 'https://example.eu.auth0.com/',
    defaultScopes: ['openid', 'email', 'profile', 'offline_access'],
    refusedScopes: [],
    authorizationParams: {},
    refreshTokens: 'offline-access-scope',
    refreshTokenRotation: 'rotate-reuse-detection',
    idTokenOnRefresh: 'yes',
    groupsSource: 'token',
    emailVerified: 'boolean',
    logout: 'end-session',
    idTokenHint: 'skips-confirmation',
    tokenEndpointAuthMethod: 'client_secret_post',
    tokenEndpointAuthMethods: ALL_METHODS,
    revocation: true,
    quirks: [
      {
        id: 'namespaced-groups-claim',
        summary:
          'An Action adds groups under a namespaced URL claim (groups and roles are restricted names): set the groups claim to a pointer such as /https:~1~1example.com~1groups.',
        source: DOCS.auth0Claims,
      },
      { id: 'issuer-trailing-slash', summary: 'The issuer ends with "/": without it discovery fails the issuer check.', source: DOCS.auth0Discovery },
      {
        id: 'end-session-flag',
        summary:
          'end_session_endpoint is in discovery only with "RP-Initiated Logout End Session Endpoint Discovery" on (default for tenants since 14 November 2023); otherwise only /v2/logout exists.',
        source: DOCS.auth0Logout,
      },
      {
        id: 'rotation-reuse-revokes',
        summary: 'With rotation on, reusing a spent refresh token outside the reuse interval revokes the family.',
        source: DOCS.auth0Rotation,
      },
      {
        id: 'auth-method-enforced',
        summary: "The token endpoint accepts only the application's registered authentication method.",
        source: DOCS.auth0Rotation,
      },
    ],
    docsSection: 'auth0',
  },
  keycloak: {
    provider: 'keycloak',
    displayName: 'Keycloak',
    issuerExample: 'https://keycloak.example.com/realms/example',
    defaultScopes: ['openid', 'email', 'profile', 'roles'],
    refusedScopes: [],
    authorizationParams: {},
    refreshTokens: 'always',
    refreshTokenRotation: 'rotate',
    idTokenOnRefresh: 'yes',
    groupsClaim: '/realm_access/roles',
    groupsSource: 'token',
    emailVerified: 'boolean',
    logout: 'end-session',
    idTokenHint: 'skips-confirmation',
    tokenEndpointAuthMethod: 'client_secret_basic',
    tokenEndpointAuthMethods: ALL_METHODS,
    revocation: true,
    quirks: [
      {
        id: 'realm-roles-access-token-only',
        summary: 'The realm roles mapper (realm_access.roles) adds to the access token only by default: turn on "Add to ID token" and "Add to userinfo".',
        source: DOCS.keycloakMapper,
      },
      {
        id: 'logout-needs-id-token-hint',
        summary:
          'post_logout_redirect_uri needs id_token_hint or client_id ("Missing parameters: id_token_hint"); without id_token_hint Keycloak asks the user to confirm.',
        source: DOCS.keycloakLogout,
      },
      {
        id: 'offline-access-is-offline-token',
        summary: 'offline_access asks for an offline token that outlives the SSO session; the gateway does not need it (refresh tokens come anyway).',
        source: DOCS.keycloakMapper,
      },
    ],
    docsSection: 'keycloak',
  },
  ping: {
    provider: 'ping',
    displayName: 'Ping Identity (PingOne, PingFederate)',
    issuerExample: 'https://auth.pingone.eu/00000000-0000-0000-0000-000000000000/as',
    defaultScopes: ['openid', 'email', 'profile'],
    refusedScopes: [],
    authorizationParams: {},
    refreshTokens: 'always',
    refreshTokenRotation: 'rotate',
    idTokenOnRefresh: 'configurable',
    groupsSource: 'token',
    groupsClaim: '/groups',
    emailVerified: 'boolean',
    logout: 'end-session',
    idTokenHint: 'skips-confirmation',
    tokenEndpointAuthMethod: 'client_secret_basic',
    tokenEndpointAuthMethods: ALL_METHODS,
    revocation: true,
    quirks: [
      {
        id: 'no-id-token-on-refresh',
        summary: 'PingFederate returns an ID token on refresh only with "Return ID Token On Refresh Grant": otherwise the claims must come from userinfo.',
        source: DOCS.pingFederateOidcPolicy,
      },
      {
        id: 'auth-method-enforced',
        summary: "The token endpoint accepts only the application's registered tokenEndpointAuthMethod.",
        source: DOCS.pingOneAuthMethods,
      },
      {
        id: 'groups-claim-configured',
        summary: 'Group membership reaches tokens only through an attribute mapping you add (name it groups, or point the groups claim at it).',
        source: DOCS.pingFederateOidcPolicy,
      },
    ],
    docsSection: 'ping-identity',
  },
  cognito: {
    provider: 'cognito',
    displayName: 'Amazon Cognito',
    issuerExample: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123',
    defaultScopes: ['openid', 'email', 'profile'],
    refusedScopes: ['offline_access'],
    authorizationParams: {},
    refreshTokens: 'always',
    refreshTokenRotation: 'none',
    idTokenOnRefresh: 'yes',
    groupsClaim: '/cognito:groups',
    groupsSource: 'token',
    emailVerified: 'boolean-or-string',
    logout: 'cognito-logout',
    idTokenHint: 'not-used',
    tokenEndpointAuthMethod: 'client_secret_basic',
    tokenEndpointAuthMethods: SECRET_METHODS,
    revocation: true,
    quirks: [
      {
        id: 'offline-access-refused',
        summary:
          'offline_access is not a Cognito scope: the authorization request fails with invalid_scope. Refresh tokens come with every code exchange anyway.',
        source: DOCS.cognitoAuthorize,
      },
      {
        id: 'email-verified-string',
        summary: 'userinfo answers email_verified as the string "true" or "false"; "false" is truthy to a naive check.',
        source: DOCS.cognitoUserinfo,
      },
      {
        id: 'logout-endpoint',
        summary:
          'No end_session_endpoint in discovery: logout is GET https://<user pool domain>/logout?client_id=...&logout_uri=... with logout_uri among the allowed sign-out URLs.',
        source: DOCS.cognitoLogout,
      },
      {
        id: 'no-rotation-at-token-endpoint',
        summary: 'A refresh at /oauth2/token returns new ID and access tokens and no refresh token (rotation only through GetTokensFromRefreshToken).',
        source: DOCS.cognitoToken,
      },
    ],
    docsSection: 'amazon-cognito',
  },
  generic: {
    provider: 'generic',
    displayName: 'Any OpenID provider',
    issuerExample: 'https://idp.example.com',
    defaultScopes: ['openid', 'email', 'profile', 'offline_access'],
    refusedScopes: [],
    authorizationParams: {},
    refreshTokens: 'offline-access-scope',
    refreshTokenRotation: 'rotate-reuse-detection',
    idTokenOnRefresh: 'configurable',
    groupsClaim: '/groups',
    groupsSource: 'token',
    emailVerified: 'boolean',
    logout: 'end-session',
    idTokenHint: 'skips-confirmation',
    tokenEndpointAuthMethod: 'client_secret_basic',
    tokenEndpointAuthMethods: ALL_METHODS,
    revocation: true,
    quirks: [],
    docsSection: 'any-openid-provider',
  },
};

export const IDP_PROVIDERS: readonly IdpProvider[] = Object.keys(PROFILES) as IdpProvider[];

export function isIdpProvider(value: string): value is IdpProvider {
  return Object.prototype.hasOwnProperty.call(PROFILES, value);
}

/** The profile of a provider. */
export function idpProfile(provider: IdpProvider): IdpProfile {
  return PROFILES[provider];
}

/**
 * The authorization parameters the login flow sets itself; an override naming one is an
 * error (scopes have their own setting).
 */
export const RESERVED_AUTHORIZATION_PARAMS: readonly string[] = [
  'client_id',
  'redirect_uri',
  'response_type',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
];

/** Placeholders an `endSession` URL template may use; the auth service URL-encodes each value. */
export const END_SESSION_PLACEHOLDERS: readonly string[] = ['clientId', 'postLogoutRedirectUri', 'idTokenHint', 'state'];

/** What the operator sets; every field left out comes from the profile. */
export interface IdpSettings {
  /** @default 'generic' */
  readonly provider?: string;
  readonly issuer: string;
  readonly scopes?: readonly string[];
  /** Merged over the profile's parameters; a value of "" removes a profile parameter. */
  readonly authorizationParams?: Readonly<Record<string, string>>;
  /** A JSON pointer, or the name of one top-level claim. */
  readonly groupsClaim?: string;
  readonly tokenEndpointAuthMethod?: string;
  /**
   * `auto` (the profile's logout), `off` (clear the gateway session only), or an https URL
   * template with {clientId}, {postLogoutRedirectUri}, {idTokenHint}, {state}.
   */
  readonly endSession?: string;
  /** Entra only: tenant ids (GUIDs) allowed to sign in through a multi-tenant issuer. */
  readonly allowedTenants?: readonly string[];
  /**
   * Where groups come from: `token` (the groups claim), `microsoft-graph` (the claim, or Graph
   * when Entra reports an overage), `google-directory` (Google Workspace's Directory API), or
   * `none` (rules match e-mail domains and other claims only).
   * @default 'none' for google, 'token' otherwise
   */
  readonly groupsSource?: string;
}

export type ResolvedGroupsSource = 'token' | 'microsoft-graph' | 'google-directory' | 'none';

export type EndSessionSetting = { readonly mode: 'auto' } | { readonly mode: 'off' } | { readonly mode: 'template'; readonly template: string };

/** A profile merged with the operator's overrides. */
export interface ResolvedIdpSettings {
  readonly profile: IdpProfile;
  readonly issuer: string;
  readonly scopes: readonly string[];
  readonly authorizationParams: Readonly<Record<string, string>>;
  /** JSON pointer, or undefined when groups never come from tokens. */
  readonly groupsClaim?: string;
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  readonly endSession: EndSessionSetting;
  readonly allowedTenants: readonly string[];
  readonly groupsSource: ResolvedGroupsSource;
  /** Entra: the tenant GUID in the issuer, when there is one. */
  readonly tenantId?: string;
}

export interface IdpProblem {
  /** The setting at fault, e.g. `scopes`, `issuer`. */
  readonly setting: string;
  /** `error`: synth fails; `warning`: allowed, but the operator should know. */
  readonly severity: 'error' | 'warning';
  /** The bad value, what is wrong, and the fix, in one sentence or two. */
  readonly message: string;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ENTRA_HOSTS = ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.partner.microsoftonline.cn'];
const ENTRA_MULTI_TENANT = ['common', 'organizations', 'consumers'];
const COGNITO_ISSUER = /^https:\/\/cognito-idp\.([a-z0-9-]+)\.amazonaws\.com\/([a-z0-9-]+)_[A-Za-z0-9]+$/;

/** The tenant segment of an Entra v2.0 issuer (`https://login.microsoftonline.com/<tenant>/v2.0`), if it has that shape. */
export function entraTenantOf(issuer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return undefined;
  }
  const match = /^\/([^/]+)\/v2\.0\/?$/.exec(url.pathname);
  return (ENTRA_HOSTS.includes(url.hostname) || isLoopbackHost(url.hostname)) && match ? match[1] : undefined;
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** A development IdP on this machine (`npm run local`, the tests' emulations). */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.includes(hostname);
}

function parseEndSession(value: string | undefined): EndSessionSetting {
  if (value === undefined || value === 'auto') return { mode: 'auto' };
  if (value === 'off') return { mode: 'off' };
  return { mode: 'template', template: value };
}

/** Google's groups need a Directory API service account, Entra's overage needs Graph permissions: both are opt-in. */
function defaultGroupsSource(profile: IdpProfile): ResolvedGroupsSource {
  return profile.groupsSource === 'google-directory' ? 'none' : 'token';
}

/**
 * Merges a profile and the operator's overrides. Does not validate (an unknown provider
 * falls back to `generic` here; validateIdpSettings reports it).
 */
export function resolveIdpSettings(settings: IdpSettings): ResolvedIdpSettings {
  const provider = settings.provider && isIdpProvider(settings.provider) ? settings.provider : 'generic';
  const profile = idpProfile(provider);
  const params: Record<string, string> = { ...profile.authorizationParams };
  for (const [name, value] of Object.entries(settings.authorizationParams ?? {})) {
    if (value === '') delete params[name];
    else params[name] = value;
  }
  const groupsClaim = settings.groupsClaim !== undefined ? toClaimPointer(settings.groupsClaim) : profile.groupsClaim;
  const tenant = provider === 'entra' ? entraTenantOf(settings.issuer) : undefined;
  return {
    profile,
    issuer: settings.issuer,
    scopes: settings.scopes ?? profile.defaultScopes,
    authorizationParams: params,
    groupsClaim,
    tokenEndpointAuthMethod: (settings.tokenEndpointAuthMethod ?? profile.tokenEndpointAuthMethod) as TokenEndpointAuthMethod,
    endSession: parseEndSession(settings.endSession),
    allowedTenants: settings.allowedTenants ?? [],
    groupsSource: (settings.groupsSource ?? defaultGroupsSource(profile)) as ResolvedGroupsSource,
    tenantId: tenant && GUID.test(tenant) ? tenant.toLowerCase() : undefined,
  };
}

/**
 * Checks a profile and overrides together. Returns every problem (empty when all is
 * well); errors make the configuration unusable, warnings describe a working but
 * surprising result (for example Google without a way to end its session).
 */
export function validateIdpSettings(settings: IdpSettings): IdpProblem[] {
  const problems: IdpProblem[] = [];
  const error = (setting: string, message: string) => problems.push({ setting, severity: 'error', message });
  const warning = (setting: string, message: string) => problems.push({ setting, severity: 'warning', message });

  if (settings.provider !== undefined && !isIdpProvider(settings.provider)) {
    error(
      'provider',
      `provider ${JSON.stringify(settings.provider)} is not known: use one of ${IDP_PROVIDERS.join(', ')} (generic for any other OpenID provider).`,
    );
  }
  const resolved = resolveIdpSettings(settings);
  const { profile } = resolved;
  const name = profile.displayName;

  checkIssuer(settings.issuer, resolved, error, warning);

  if (!resolved.scopes.includes('openid')) error('scopes', `scopes ${JSON.stringify(resolved.scopes.join(' '))} lack "openid": OpenID Connect login needs it.`);
  for (const scope of resolved.scopes.filter((s) => profile.refusedScopes.includes(s))) {
    const fix =
      profile.refreshTokens === 'access-type-offline'
        ? 'remove it; refresh tokens come from the authorization parameters access_type=offline and prompt=consent, which the google profile sets'
        : 'remove it; this IdP issues refresh tokens without it';
    error('scopes', `scopes include ${JSON.stringify(scope)}, which ${name} refuses with invalid_scope (the login fails): ${fix}.`);
  }
  if (profile.refreshTokens === 'offline-access-scope' && !resolved.scopes.includes('offline_access')) {
    warning(
      'scopes',
      `scopes ${JSON.stringify(resolved.scopes.join(' '))} lack "offline_access", so ${name} issues no refresh token: users sign in again every session lifetime. Add offline_access.`,
    );
  }
  if (profile.refreshTokens === 'access-type-offline') {
    if (resolved.authorizationParams.access_type !== 'offline') {
      warning(
        'authorizationParams',
        `access_type is ${JSON.stringify(resolved.authorizationParams.access_type ?? '(unset)')}: ${name} issues refresh tokens only with access_type=offline, so users sign in again every session lifetime.`,
      );
    } else if (!(resolved.authorizationParams.prompt ?? '').split(' ').includes('consent')) {
      warning(
        'authorizationParams',
        `prompt lacks "consent": ${name} returns a refresh token only at a user's first consent, so users who consented before get none. Keep prompt=consent.`,
      );
    }
  }

  const reserved = Object.keys(settings.authorizationParams ?? {}).filter((key) => RESERVED_AUTHORIZATION_PARAMS.includes(key));
  if (reserved.length > 0)
    error(
      'authorizationParams',
      `authorizationParams set ${reserved.join(', ')}, which the login flow sets itself: remove ${reserved.length > 1 ? 'them' : 'it'} (scopes have their own setting).`,
    );

  checkGroups(settings, resolved, error);

  if (!(profile.tokenEndpointAuthMethods as readonly string[]).includes(resolved.tokenEndpointAuthMethod)) {
    const known = ALL_METHODS.includes(resolved.tokenEndpointAuthMethod);
    error(
      'tokenEndpointAuthMethod',
      `tokenEndpointAuthMethod ${JSON.stringify(resolved.tokenEndpointAuthMethod)} ${known ? `is not supported by ${name}` : 'is not a method'}: use ${profile.tokenEndpointAuthMethods.join(' or ')}, the one registered for the client at the IdP.`,
    );
  }

  checkEndSession(resolved, error, warning);
  return problems;
}

function checkIssuer(issuer: string, resolved: ResolvedIdpSettings, error: (s: string, m: string) => void, warning: (s: string, m: string) => void): void {
  const { profile } = resolved;
  let url: URL | undefined;
  try {
    url = new URL(issuer);
  } catch {
    error('issuer', `issuer ${JSON.stringify(issuer)} is not a URL: expected for example ${JSON.stringify(profile.issuerExample)}.`);
  }
  if (url && url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) {
    error('issuer', `issuer ${JSON.stringify(issuer)} must use https.`);
  }
  if (resolved.allowedTenants.length > 0 && profile.provider !== 'entra') {
    error(
      'allowedTenants',
      `allowedTenants is set but provider is ${JSON.stringify(profile.provider)}: tenants are an Entra ID setting. Remove allowedTenants or set provider to entra.`,
    );
  }
  if (!url) return;
  // A development IdP on this machine emulates the provider under its own host name: only
  // the parts of the issuer that the run time reads (an Entra tenant) are checked.
  if (isLoopbackHost(url.hostname) && profile.provider !== 'entra') return;
  switch (profile.provider) {
    case 'entra':
      checkEntraIssuer(issuer, url, resolved, error);
      break;
    case 'cognito':
      if (!COGNITO_ISSUER.test(issuer.replace(/\/$/, ''))) {
        const hostedUi = /\.auth\.[a-z0-9-]+\.amazoncognito\.com$/.test(url.hostname) || url.hostname.endsWith('.amazoncognito.com');
        error(
          'issuer',
          `issuer ${JSON.stringify(issuer)} is not a Cognito user pool issuer${hostedUi ? ' (that is the user pool domain, which serves the login pages, not the issuer)' : ''}: use https://cognito-idp.<region>.amazonaws.com/<user pool id>, e.g. ${JSON.stringify(profile.issuerExample)}.`,
        );
      }
      break;
    case 'auth0':
      if (!issuer.endsWith('/')) {
        error(
          'issuer',
          `issuer ${JSON.stringify(issuer)} lacks the trailing "/" of Auth0 issuers, so discovery fails its issuer check: use ${JSON.stringify(`${issuer}/`)}.`,
        );
      }
      break;
    case 'google':
      if (issuer !== 'https://accounts.google.com') error('issuer', `issuer ${JSON.stringify(issuer)} is not Google's: use "https://accounts.google.com".`);
      break;
    case 'okta':
      if (url.pathname !== '/' && !/^\/oauth2\/[^/]+\/?$/.test(url.pathname)) {
        warning(
          'issuer',
          `issuer ${JSON.stringify(issuer)} is neither an Okta org (https://<org>.okta.com) nor a custom authorization server (https://<org>.okta.com/oauth2/<id>): check it against the discovery document.`,
        );
      }
      break;
    case 'keycloak':
      if (!/\/realms\/[^/]+\/?$/.test(url.pathname)) {
        warning(
          'issuer',
          `issuer ${JSON.stringify(issuer)} does not end in /realms/<realm>: Keycloak issuers look like ${JSON.stringify(profile.issuerExample)} (or /auth/realms/<realm> before Keycloak 17).`,
        );
      }
      break;
    default:
      break;
  }
}

function checkEntraIssuer(issuer: string, url: URL, resolved: ResolvedIdpSettings, error: (s: string, m: string) => void): void {
  if (url.hostname === 'sts.windows.net') {
    error('issuer', `issuer ${JSON.stringify(issuer)} is the v1.0 issuer: use the v2.0 one, https://login.microsoftonline.com/<tenant id>/v2.0.`);
    return;
  }
  const tenant = entraTenantOf(issuer);
  if (tenant === undefined) {
    error(
      'issuer',
      `issuer ${JSON.stringify(issuer)} is not an Entra ID v2.0 issuer: use https://login.microsoftonline.com/<tenant id>/v2.0 (the tenant id is on the Entra admin center's overview page).`,
    );
    return;
  }
  for (const id of resolved.allowedTenants.filter((t) => !GUID.test(t))) {
    error(
      'allowedTenants',
      `allowedTenants entry ${JSON.stringify(id)} is not a tenant id: use the GUID from the Entra admin center, e.g. "00000000-0000-0000-0000-000000000000".`,
    );
  }
  if (ENTRA_MULTI_TENANT.includes(tenant.toLowerCase())) {
    if (tenant.toLowerCase() === 'consumers') {
      error(
        'issuer',
        `issuer ${JSON.stringify(issuer)} admits personal Microsoft accounts only: use your tenant's issuer https://login.microsoftonline.com/<tenant id>/v2.0.`,
      );
    } else if (resolved.allowedTenants.length === 0) {
      error(
        'issuer',
        `issuer ${JSON.stringify(issuer)} lets users of any Entra ID tenant sign in: use your tenant's issuer https://login.microsoftonline.com/<tenant id>/v2.0, or list the tenants that may sign in in allowedTenants (their tid claim is then enforced).`,
      );
    }
    return;
  }
  if (!GUID.test(tenant)) {
    error(
      'issuer',
      `issuer ${JSON.stringify(issuer)} names the tenant by domain (${tenant}), but Entra's discovery document and tokens carry the tenant id: use https://login.microsoftonline.com/<tenant id>/v2.0 (the GUID).`,
    );
  }
}

function checkGroups(settings: IdpSettings, resolved: ResolvedIdpSettings, error: (s: string, m: string) => void): void {
  const { profile } = resolved;
  if (resolved.groupsClaim !== undefined) {
    try {
      parseClaimPointer(resolved.groupsClaim);
    } catch (e) {
      if (!(e instanceof ClaimPointerError)) throw e;
      error('groupsClaim', e.message);
    }
  }
  if (profile.provider === 'auth0' && resolved.groupsClaim !== undefined && ['/groups', '/roles'].includes(resolved.groupsClaim)) {
    error(
      'groupsClaim',
      `groupsClaim ${JSON.stringify(settings.groupsClaim)} is a restricted claim name at Auth0 (an Action cannot set it): add the groups under a namespaced claim and point at it, e.g. "/https:~1~1example.com~1groups".`,
    );
  }
  if (profile.provider === 'auth0' && resolved.groupsClaim === undefined && resolved.groupsSource === 'token') {
    error(
      'groupsClaim',
      'groupsClaim is not set: Auth0 puts groups only where an Action adds them, under a namespaced claim; set groupsClaim to its pointer, e.g. "/https:~1~1example.com~1groups", or groupsSource to "none" if rules match e-mail domains only.',
    );
  }
  const source = resolved.groupsSource as string;
  if (!['token', 'microsoft-graph', 'google-directory', 'none'].includes(source)) {
    error(
      'groupsSource',
      `groupsSource ${JSON.stringify(source)} is not a source: use token, microsoft-graph (Entra), google-directory (Google Workspace) or none.`,
    );
  } else if (source === 'microsoft-graph' && profile.provider !== 'entra') {
    error(
      'groupsSource',
      `groupsSource "microsoft-graph" needs provider entra (it reads Entra ID group memberships), not ${JSON.stringify(profile.provider)}.`,
    );
  } else if (source === 'google-directory' && profile.provider !== 'google') {
    error('groupsSource', `groupsSource "google-directory" needs provider google (it reads Google Workspace groups), not ${JSON.stringify(profile.provider)}.`);
  } else if (source === 'token' && profile.provider === 'google') {
    error(
      'groupsSource',
      'groupsSource "token" cannot work with Google: its tokens never carry groups. Use google-directory, or none to match rules on e-mail domains and the hd claim only.',
    );
  }
}

function checkEndSession(resolved: ResolvedIdpSettings, error: (s: string, m: string) => void, warning: (s: string, m: string) => void): void {
  const { endSession, profile } = resolved;
  if (endSession.mode === 'template') {
    let url: URL | undefined;
    try {
      url = new URL(endSession.template.replace(/\{[A-Za-z]+\}/g, 'x'));
    } catch {
      error('endSession', `endSession ${JSON.stringify(endSession.template)} is neither "auto", "off" nor an https URL template.`);
    }
    if (url && url.protocol !== 'https:') error('endSession', `endSession ${JSON.stringify(endSession.template)} must be an https URL.`);
    const unknown = [...endSession.template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]).filter((p) => !END_SESSION_PLACEHOLDERS.includes(p));
    if (unknown.length > 0)
      error(
        'endSession',
        `endSession uses ${unknown.map((p) => `{${p}}`).join(', ')}: the placeholders are ${END_SESSION_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}.`,
      );
    return;
  }
  if (endSession.mode === 'auto' && profile.logout === 'cognito-logout') {
    error(
      'endSession',
      'endSession "auto" cannot find Cognito\'s logout endpoint (it is on the user pool domain and not in discovery): set endSession to "https://<your user pool domain>/logout?client_id={clientId}&logout_uri={postLogoutRedirectUri}", or "off".',
    );
  }
  if (endSession.mode === 'auto' && profile.logout === 'none') {
    warning(
      'endSession',
      `${profile.displayName} has no RP-initiated logout: signing out of the gateway leaves the ${profile.displayName} session, so the next visit signs the user in again without a password. Set endSession to "off" to acknowledge.`,
    );
  }
}
