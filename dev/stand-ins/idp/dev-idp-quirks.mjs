// The development IdP's IdP-specific behaviour: with `quirks` in its settings, the dev IdP
// (dev/stand-ins/idp/dev-idp-server.mjs, oidc-provider 9) answers the way one of the IdPs companies run
// answers, as their documentation describes it (docs/idps.md has the facts and sources).
// Without `quirks` nothing here changes the dev IdP.
//
//   quirks: { profile: 'okta' | 'entra' | 'google' | 'auth0' | 'keycloak' | 'ping' | 'cognito' | 'generic',
//             ...any field of DEFAULTS below, to override the profile }
//
// oidc-provider does most of the work; this module adds what it does not do by itself:
// - a pre-handler on the raw request (before oidc-provider parses it): refused scopes,
//   the offline marker, client authentication rules and secret rotation, padded refresh
//   tokens, the tenant path of Entra issuers, Cognito's and Auth0's logout endpoints;
// - a koa middleware after oidc-provider answered: discovery metadata, refresh responses
//   (no ID token, no refresh token, a new refresh token that leaves the old one valid);
// - configuration: refresh-token issuance, claim shapes, client credentials for Graph.
//
// Size: the emulated behaviour of eight IdPs as one table of defaults with their sources,
// read by the three hooks above (pre-handler, middleware, configuration); split by IdP, their
// differences would no longer be seen side by side.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { errors } from 'oidc-provider';

/** oidc-provider's routes, set explicitly so the pre-handler and the provider agree. */
export const ROUTES = {
  authorization: '/auth',
  token: '/token',
  userinfo: '/me',
  jwks: '/jwks',
  end_session: '/session/end',
  revocation: '/token/revocation',
  introspection: '/token/introspection',
};

/** Today's dev IdP: what no quirks means. */
const DEFAULTS = {
  /** 'always' | 'offline_access' (only when the scope is asked for) | 'access_type_offline' (Google) */
  refreshTokens: 'always',
  /** Scopes answered with invalid_scope. */
  refusedScopes: [],
  /** 'error-page' (the IdP shows "Error 400: invalid_scope", as Google does) | 'redirect' (RFC 6749 4.1.2.1 error redirect) */
  refusedScopeAnswer: 'redirect',
  idTokenOnRefresh: true,
  /** 'rotate-reuse-detection' (a spent token revokes the family) | 'rotate' (new token, old one stays valid) | 'none' (no new token) */
  refreshTokenRotation: 'rotate-reuse-detection',
  /** Pad refresh tokens to this many bytes (0: oidc-provider's own, 43 characters). */
  refreshTokenBytes: 0,
  /** 'boolean' | 'string-in-userinfo' (Cognito: "true"/"false" in userinfo) */
  emailVerified: 'boolean',
  /** Where the user's groups go: null keeps today's flat `groups`; { path: [...] | null, in: ['id_token', 'userinfo'] } */
  groups: null,
  /** Entra: over this many groups the ID token carries _claim_names/_claim_sources instead (null: never). */
  groupsOverageLimit: null,
  /** Entra: the tenant GUID; the issuer becomes <origin>/<tenantId>/v2.0 and tokens carry tid and oid. */
  tenantId: null,
  /** Entra: { resource: 'https://graph...', roles: [...] } lets the client get app-only tokens for the Graph stand-in. */
  graph: null,
  /** Whether the ID token carries the profile claims (name, e-mail, groups) whatever the scopes; null: the server's setting. */
  idTokenClaims: null,
  /** 'standard' | 'id-token-hint-required' | 'confirm-without-hint' | 'cognito' | 'auth0-v2' | 'none' */
  endSession: 'standard',
  /** The client's registered method: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' */
  tokenEndpointAuthMethod: 'client_secret_basic',
  /** Other secret methods the IdP accepts too (Keycloak, Cognito, Google, Entra take both). */
  alsoAcceptedAuthMethods: [],
  /** private_key_jwt: the client's public keys (JWKS). */
  clientJwks: null,
  /** Entra certificate credentials: the assertion header must carry x5t#S256 (or x5t) of a registered key. */
  requireCertificateThumbprint: false,
  revocation: true,
  /** RFC 9207 `iss` in the authorization response (Entra sends none). */
  authorizationResponseIss: true,
};

const SOURCES = {
  okta: [
    'https://developer.okta.com/docs/guides/refresh-tokens/refresh-token-rotation/',
    'https://support.okta.com/help/s/article/the-purpose-of-id-token-hint-in-the-logout-api-and-how-does-it-affect-the-single-logout-process',
  ],
  entra: [
    'https://learn.microsoft.com/entra/identity-platform/refresh-tokens',
    'https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-fed-group-claims',
    'https://learn.microsoft.com/entra/identity-platform/certificate-credentials',
  ],
  google: ['https://developers.google.com/identity/protocols/oauth2/web-server#offline', 'https://developers.google.com/identity/openid-connect/reference'],
  auth0: [
    'https://auth0.com/docs/secure/tokens/refresh-tokens/refresh-token-rotation',
    'https://auth0.com/docs/authenticate/login/logout/log-users-out-of-auth0',
  ],
  keycloak: ['https://www.keycloak.org/docs-api/latest/javadocs/org/keycloak/protocol/oidc/endpoints/LogoutEndpoint.html'],
  ping: [
    'https://docs.pingidentity.com/pingfederate/latest/administrators_reference_guide/help_policymanagementtasklet_policymanagementstate.html',
    'https://docs.pingidentity.com/pingone/applications/p1_token_endpoint_authentication_methods.html',
  ],
  cognito: [
    'https://docs.aws.amazon.com/cognito/latest/developerguide/userinfo-endpoint.html',
    'https://docs.aws.amazon.com/cognito/latest/developerguide/logout-endpoint.html',
    'https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html',
  ],
};

/** Each IdP as its documentation describes it (SOURCES; docs/idps.md has the details). */
export const PRESETS = {
  // Standard OpenID Connect: the ID token carries the profile claims; everything else as the dev IdP does.
  generic: { idTokenClaims: true },
  okta: {
    refreshTokens: 'offline_access',
    refreshTokenRotation: 'rotate-reuse-detection',
    groups: { path: ['groups'], in: ['id_token', 'userinfo'] },
    idTokenClaims: true,
    endSession: 'id-token-hint-required',
    tokenEndpointAuthMethod: 'client_secret_basic',
  },
  entra: {
    refreshTokens: 'offline_access',
    refreshTokenRotation: 'rotate',
    groups: { path: ['groups'], in: ['id_token'] },
    groupsOverageLimit: 200,
    tenantId: '3c2f8b1e-7d4a-4e6b-9a1c-5f0e2d8b7a64',
    idTokenClaims: true,
    endSession: 'confirm-without-hint',
    tokenEndpointAuthMethod: 'client_secret_post',
    alsoAcceptedAuthMethods: ['client_secret_basic'],
    revocation: false,
    authorizationResponseIss: false,
  },
  google: {
    refreshTokens: 'access_type_offline',
    refusedScopes: ['offline_access'],
    refusedScopeAnswer: 'error-page',
    refreshTokenRotation: 'none',
    idTokenOnRefresh: false,
    groups: { path: null, in: [] },
    idTokenClaims: true,
    endSession: 'none',
    tokenEndpointAuthMethod: 'client_secret_post',
    alsoAcceptedAuthMethods: ['client_secret_basic'],
  },
  auth0: {
    refreshTokens: 'offline_access',
    refreshTokenRotation: 'rotate-reuse-detection',
    groups: { path: ['https://example.com/groups'], in: ['id_token', 'userinfo'] },
    idTokenClaims: true,
    endSession: 'standard',
    tokenEndpointAuthMethod: 'client_secret_post',
  },
  keycloak: {
    refreshTokens: 'always',
    refreshTokenRotation: 'rotate',
    // As docs/idps.md has the operator configure it: realm roles mapper with "Add to ID token" and "Add to userinfo" on.
    groups: { path: ['realm_access', 'roles'], in: ['id_token', 'userinfo'] },
    idTokenClaims: true,
    endSession: 'confirm-without-hint',
    tokenEndpointAuthMethod: 'client_secret_basic',
    alsoAcceptedAuthMethods: ['client_secret_post'],
  },
  ping: {
    refreshTokens: 'always',
    refreshTokenRotation: 'rotate',
    idTokenOnRefresh: false,
    groups: { path: ['groups'], in: ['id_token', 'userinfo'] },
    idTokenClaims: true,
    endSession: 'confirm-without-hint',
    tokenEndpointAuthMethod: 'client_secret_basic',
  },
  cognito: {
    refreshTokens: 'always',
    refusedScopes: ['offline_access'],
    refusedScopeAnswer: 'redirect',
    refreshTokenRotation: 'none',
    emailVerified: 'string-in-userinfo',
    groups: { path: ['cognito:groups'], in: ['id_token'] },
    idTokenClaims: true,
    endSession: 'cognito',
    tokenEndpointAuthMethod: 'client_secret_basic',
    alsoAcceptedAuthMethods: ['client_secret_post'],
  },
};

const SECRET_METHODS = ['client_secret_basic', 'client_secret_post'];
const OFFLINE_MARKER = 'lg_offline_requested';
const MAX_BODY = 56 * 1024;

/** The dev IdP without quirks: exactly what dev-idp-server.mjs configures. */
const NO_QUIRKS = {
  settings: null,
  issuerFor: (origin) => origin,
  configure: (config) => config,
  attach: () => {},
  handle: async () => false,
};

export function resolveQuirks(input = {}) {
  const { profile, ...overrides } = input;
  if (profile !== undefined && !Object.prototype.hasOwnProperty.call(PRESETS, profile)) {
    throw new Error(`dev IdP quirks: unknown profile ${JSON.stringify(profile)}; known: ${Object.keys(PRESETS).join(', ')}`);
  }
  const unknown = Object.keys(overrides).filter((key) => !(key in DEFAULTS));
  if (unknown.length > 0) throw new Error(`dev IdP quirks: unknown setting(s) ${unknown.join(', ')}`);
  return { profile: profile ?? null, sources: SOURCES[profile] ?? [], ...DEFAULTS, ...(PRESETS[profile] ?? {}), ...overrides };
}

/**
 * @param input the `quirks` settings
 * @param context { client: { clientId, clientSecret, redirectUris, postLogoutRedirectUris }, testAdminEndpoints }
 */
export function createQuirks(input, context) {
  if (!input) return NO_QUIRKS;
  const q = resolveQuirks(input);
  const { client } = context;
  const prefix = q.tenantId ? `/${q.tenantId}/v2.0` : '';
  const paddingKey = randomBytes(32);
  /** The secret the IdP accepts now (a test can rotate it); the provider itself keeps the configured one. */
  let currentSecret = client.clientSecret;
  /** Whether each authorization code may come with a refresh token, decided at the authorization request. */
  const offlineCodes = new Map();
  /** Accounts that consented to offline access before (Google returns a refresh token at the first consent only). */
  const offlineConsented = new Set();
  let issuer = '';
  let provider;

  return {
    settings: q,
    issuerFor(origin) {
      issuer = `${origin}${prefix}`;
      return issuer;
    },
    configure(config) {
      return configure(config);
    },
    attach(p) {
      provider = p;
      attach(p);
    },
    handle(req, res) {
      return handle(req, res);
    },
  };

  function configure(config) {
    const next = { ...config, routes: { ...ROUTES }, features: { ...config.features } };
    const [registered] = next.clients;
    const metadata = { ...registered, token_endpoint_auth_method: q.tokenEndpointAuthMethod };
    if (q.tokenEndpointAuthMethod === 'private_key_jwt') {
      if (!q.clientJwks) throw new Error('dev IdP quirks: private_key_jwt needs clientJwks (the client public keys)');
      metadata.jwks = q.clientJwks;
    }
    if (q.graph) metadata.grant_types = [...new Set([...metadata.grant_types, 'client_credentials'])];
    next.clients = [metadata, ...config.clients.slice(1)]; // extra relying parties (the Looker stand-in) keep their own settings

    next.extraParams = [...new Set([...(config.extraParams ?? []), 'access_type', OFFLINE_MARKER])];
    next.issueRefreshToken = async (ctx, oidcClient, code) =>
      oidcClient.grantTypeAllowed('refresh_token') && (q.refreshTokens === 'always' || offlineCodes.get(code.jti) === true);
    next.rotateRefreshToken = () => q.refreshTokenRotation === 'rotate-reuse-detection';

    next.claims = claimLayout(config.claims);
    if (q.idTokenClaims !== null) {
      next.conformIdTokenClaims = !q.idTokenClaims;
      if (q.idTokenClaims) next.claims.openid = [...new Set(Object.values(next.claims).flat())];
    }
    const originalFindAccount = config.findAccount;
    next.findAccount = async (ctx, sub, token) => {
      const account = await originalFindAccount(ctx, sub, token);
      if (!account) return account;
      return {
        accountId: account.accountId,
        claims: async (use, scope, claims, rejected) => shapeClaims(await account.claims(use, scope, claims, rejected), use),
      };
    };

    const logout = config.features.rpInitiatedLogout;
    next.features.rpInitiatedLogout = {
      ...logout,
      // Entra, Keycloak and PingFederate ask the user which session to end when no id_token_hint names it.
      logoutSource: async (ctx, form) =>
        q.endSession === 'confirm-without-hint' && !ctx.oidc.params.id_token_hint ? confirmationPage(ctx, form) : logout.logoutSource(ctx, form),
    };
    if (q.graph) {
      next.features.clientCredentials = { enabled: true };
      next.features.resourceIndicators = {
        enabled: true,
        defaultResource: async (ctx, _client, oneOf) => {
          // Entra's app-only tokens: scope=<resource>/.default names the resource.
          const scope = String(ctx.oidc.params.scope ?? '');
          if (ctx.oidc.params.grant_type === 'client_credentials' && scope === `${q.graph.resource}/.default`) return q.graph.resource;
          return oneOf;
        },
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== q.graph.resource) throw new errors.InvalidTarget();
          return {
            scope: `${q.graph.resource}/.default`,
            audience: q.graph.resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 3600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
        useGrantedResource: async () => false,
      };
      next.extraTokenClaims = async (_ctx, token) =>
        token.kind === 'ClientCredentials'
          ? { roles: q.graph.roles ?? [], tid: q.tenantId, idtyp: 'app', oid: stableUuid(`app:${client.clientId}`), azp: client.clientId }
          : undefined;
    }
    return next;
  }

  /** The server's scope-to-claims layout, with the claims this IdP adds wherever groups may go. */
  function claimLayout(claims) {
    const added = [];
    if (q.groups?.path) added.push(q.groups.path[0]);
    if (q.tenantId) added.push('tid', 'oid', 'ver');
    if (q.profile === 'google') added.push('hd');
    const layout = {};
    for (const [scope, names] of Object.entries(claims)) layout[scope] = names.includes('groups') ? [...new Set([...names, ...added])] : [...names];
    if (q.tenantId || q.profile === 'google') layout.openid = [...new Set([...layout.openid, ...added.filter((n) => n !== q.groups?.path?.[0])])];
    return layout;
  }

  /** The account's claims as this IdP would put them in an ID token or userinfo answer. */
  function shapeClaims(claims, use) {
    const out = { ...claims };
    if (q.tenantId) {
      out.tid = q.tenantId;
      out.oid = typeof claims.oid === 'string' ? claims.oid : stableUuid(`user:${claims.sub}`);
      out.ver = '2.0';
    }
    if (q.groups) {
      const groups = Array.isArray(claims.groups) ? claims.groups : [];
      delete out.groups;
      if (q.groups.path && q.groups.in.includes(use)) {
        if (use === 'id_token' && q.groupsOverageLimit !== null && groups.length > q.groupsOverageLimit) {
          // Entra's overage: no groups claim, a pointer to where they can be read instead.
          out._claim_names = { groups: 'src1' };
          out._claim_sources = { src1: { endpoint: `https://graph.windows.net/${q.tenantId}/users/${out.oid}/getMemberObjects` } };
        } else {
          setPath(out, q.groups.path, groups);
        }
      }
    }
    if (q.emailVerified === 'string-in-userinfo' && use === 'userinfo' && typeof out.email_verified === 'boolean')
      out.email_verified = String(out.email_verified);
    return out;
  }

  function attach(p) {
    p.on('authorization.success', (ctx, out) => {
      const code = ctx.oidc.entities.AuthorizationCode;
      if (code) offlineCodes.set(code.jti, offlineAllowed(ctx));
      if (!q.authorizationResponseIss) delete out.iss;
    });
    p.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/.well-known/openid-configuration' && ctx.body && typeof ctx.body === 'object') adjustDiscovery(ctx);
      if (ctx.path === ROUTES.token && ctx.method === 'POST' && ctx.status === 200 && ctx.body?.access_token) await adjustTokenResponse(ctx);
    });
  }

  function offlineAllowed(ctx) {
    const { params } = ctx.oidc;
    if (q.refreshTokens === 'always') return true;
    if (q.refreshTokens === 'offline_access') return params[OFFLINE_MARKER] === '1';
    // access_type_offline: Google's refresh token comes at the first consent, or again with prompt=consent.
    if (params.access_type !== 'offline') return false;
    const accountId = ctx.oidc.session?.accountId;
    const consentAgain = String(params.prompt ?? '')
      .split(' ')
      .includes('consent');
    if (!consentAgain && offlineConsented.has(accountId)) return false;
    offlineConsented.add(accountId);
    return true;
  }

  function adjustDiscovery(ctx) {
    const body = { ...ctx.body };
    if (['cognito', 'auth0-v2', 'none'].includes(q.endSession)) delete body.end_session_endpoint;
    if (!q.revocation) {
      delete body.revocation_endpoint;
      delete body.revocation_endpoint_auth_methods_supported;
    }
    if (!q.authorizationResponseIss) delete body.authorization_response_iss_parameter_supported;
    body.token_endpoint_auth_methods_supported = [q.tokenEndpointAuthMethod, ...q.alsoAcceptedAuthMethods];
    if (q.refusedScopes.length > 0 && Array.isArray(body.scopes_supported))
      body.scopes_supported = body.scopes_supported.filter((s) => !q.refusedScopes.includes(s));
    // Entra's /common and /organizations documents: the issuer is a template, not a URL any token carries.
    if (ctx.req.lgTemplateIssuer) body.issuer = issuer.replace(`/${q.tenantId}/`, '/{tenantid}/');
    ctx.body = body;
  }

  async function adjustTokenResponse(ctx) {
    const body = { ...ctx.body };
    if (ctx.oidc?.params?.grant_type === 'refresh_token') {
      if (!q.idTokenOnRefresh) delete body.id_token;
      if (q.refreshTokenRotation === 'none') delete body.refresh_token;
      if (q.refreshTokenRotation === 'rotate') body.refresh_token = await copyRefreshToken(ctx.oidc.entities.RefreshToken, ctx.oidc.client);
    }
    if (body.refresh_token && q.refreshTokenBytes > 0) body.refresh_token = pad(body.refresh_token);
    ctx.body = body;
  }

  /** A new refresh token of the same grant that leaves the presented one valid (Entra, Keycloak without "Revoke Refresh Token"). */
  async function copyRefreshToken(used, oidcClient) {
    const copy = new provider.RefreshToken({
      accountId: used.accountId,
      acr: used.acr,
      amr: used.amr,
      authTime: used.authTime,
      claims: used.claims,
      client: oidcClient,
      expiresWithSession: used.expiresWithSession,
      iiat: used.iiat,
      grantId: used.grantId,
      gty: used.gty,
      nonce: used.nonce,
      resource: used.resource,
      rotations: (used.rotations ?? 0) + 1,
      scope: used.scope,
      sessionUid: used.sessionUid,
      sid: used.sid,
    });
    return copy.save();
  }

  /** Pads a token to refreshTokenBytes with a keyed suffix, so only tokens this IdP issued unpad. */
  function pad(token) {
    const target = q.refreshTokenBytes - token.length - 1;
    if (target <= 0) return token;
    return `${token}.${padding(token, target)}`;
  }

  function padding(token, length) {
    let out = '';
    for (let counter = 0; out.length < length; counter += 1) out += createHmac('sha256', paddingKey).update(`${counter}:${token}`).digest('base64url');
    return out.slice(0, length);
  }

  function unpad(value) {
    if (typeof value !== 'string' || q.refreshTokenBytes <= 0) return value;
    const dot = value.indexOf('.');
    if (dot < 0) return value;
    const token = value.slice(0, dot);
    return value.slice(dot + 1) === padding(token, value.length - dot - 1) ? token : value;
  }

  // ---- the raw pre-handler --------------------------------------------------------------

  /** Returns true when it answered the request itself. */
  async function handle(req, res) {
    let url = new URL(req.url, 'https://127.0.0.1');
    if (q.tenantId && /^\/(common|organizations)\/v2\.0\/\.well-known\/openid-configuration$/.test(url.pathname)) {
      req.lgTemplateIssuer = true;
      req.url = `${prefix}/.well-known/openid-configuration`;
      url = new URL(req.url, 'https://127.0.0.1');
    }
    if (prefix && url.pathname.startsWith(`${prefix}/`)) {
      // oidc-provider mounted under the issuer's path: it reads the mount path from originalUrl.
      req.originalUrl = req.url;
      req.url = req.url.slice(prefix.length);
      url = new URL(req.url, 'https://127.0.0.1');
    }
    const path = url.pathname;
    if (context.testAdminEndpoints && path.startsWith('/test-admin/quirks')) return testAdmin(req, res, path);
    if (path === ROUTES.authorization && req.method === 'GET') return authorizationRequest(req, res, url);
    if (req.method === 'POST' && [ROUTES.token, ROUTES.revocation, ROUTES.introspection].includes(path)) {
      if (path === ROUTES.revocation && !q.revocation) return notFound(res);
      return tokenRequest(req, res);
    }
    if (path === ROUTES.revocation && !q.revocation) return notFound(res);
    if (path === '/logout' && q.endSession === 'cognito') return cognitoLogout(res, url);
    if (path === '/v2/logout' && q.endSession === 'auth0-v2') return auth0Logout(res, url);
    if (path.startsWith(ROUTES.end_session)) {
      if (q.endSession === 'none') return notFound(res);
      if (q.endSession === 'id-token-hint-required' && path === ROUTES.end_session && !url.searchParams.get('id_token_hint') && req.method === 'GET') {
        // Okta: "The 'id_token_hint' parameter is required."
        return sendJson(res, 400, { errorCode: 'invalid_request', errorSummary: "The 'id_token_hint' parameter is required." });
      }
    }
    return false;
  }

  function authorizationRequest(req, res, url) {
    const scopes = String(url.searchParams.get('scope') ?? '')
      .split(' ')
      .filter(Boolean);
    const refused = scopes.filter((s) => q.refusedScopes.includes(s));
    if (refused.length > 0) {
      const description = `Some requested scopes were invalid. {valid=[${scopes.filter((s) => !refused.includes(s)).join(', ')}], invalid=[${refused.join(', ')}]}`;
      const redirectUri = url.searchParams.get('redirect_uri') ?? '';
      if (q.refusedScopeAnswer === 'redirect' && url.searchParams.get('client_id') === client.clientId && client.redirectUris.includes(redirectUri)) {
        const target = new URL(redirectUri);
        target.searchParams.set('error', 'invalid_scope');
        target.searchParams.set('error_description', description);
        if (url.searchParams.get('state')) target.searchParams.set('state', url.searchParams.get('state'));
        res.writeHead(302, { location: target.href, 'cache-control': 'no-store' });
        res.end();
        return true;
      }
      return sendHtml(res, 400, `<h1>Error 400: invalid_scope</h1><p>${escapeHtml(description)}</p>`);
    }
    // Whether the client asked for offline_access, before oidc-provider drops it (it keeps the
    // scope only with prompt=consent, a rule of OpenID Connect Core section 11 that Okta,
    // Entra and Auth0 do not apply).
    url.searchParams.delete(OFFLINE_MARKER);
    if (scopes.includes('offline_access')) url.searchParams.set(OFFLINE_MARKER, '1');
    req.url = `${url.pathname}${url.search}`;
    return false;
  }

  async function tokenRequest(req, res) {
    const raw = await readBody(req);
    const form = new URLSearchParams(raw);
    const basic = basicCredentials(req.headers.authorization);
    const used = form.get('client_assertion') ? 'private_key_jwt' : basic ? 'client_secret_basic' : form.get('client_secret') ? 'client_secret_post' : 'none';
    const invalidClient = (description) => sendJson(res, 401, { error: 'invalid_client', error_description: description });

    if (SECRET_METHODS.includes(used)) {
      const secret = basic ? basic.secret : form.get('client_secret');
      const id = basic ? basic.id : form.get('client_id');
      const accepted = used === q.tokenEndpointAuthMethod || q.alsoAcceptedAuthMethods.includes(used);
      // oidc-provider takes basic and post interchangeably; Auth0 and Ping take only the registered one.
      if (id === client.clientId && !accepted)
        return invalidClient(`client authentication failed (the client is registered for ${q.tokenEndpointAuthMethod}, not ${used})`);
      if (id === client.clientId && SECRET_METHODS.includes(q.tokenEndpointAuthMethod)) {
        if (secret !== currentSecret) return invalidClient('client authentication failed (the client secret is not valid)');
        // The provider keeps the configured secret and one registered method: hand it that.
        form.delete('client_secret');
        delete req.headers.authorization;
        if (q.tokenEndpointAuthMethod === 'client_secret_basic') {
          req.headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`;
          form.delete('client_id');
        } else {
          form.set('client_id', client.clientId);
          form.set('client_secret', client.clientSecret);
        }
      }
    }
    if (used === 'private_key_jwt' && q.requireCertificateThumbprint && !assertionNamesRegisteredCertificate(form.get('client_assertion'))) {
      // Entra: AADSTS700027, the assertion's certificate thumbprint is not registered for the application.
      return invalidClient('AADSTS700027: the client assertion header has no x5t#S256 (or x5t) of a certificate registered for the application');
    }
    for (const name of ['refresh_token', 'token']) if (form.has(name)) form.set(name, unpad(form.get(name)));
    req.body = form.toString();
    req.headers['content-length'] = String(Buffer.byteLength(req.body));
    return false;
  }

  function assertionNamesRegisteredCertificate(assertion) {
    let header;
    try {
      header = JSON.parse(Buffer.from(String(assertion).split('.')[0], 'base64url').toString('utf8'));
    } catch {
      return false;
    }
    const keys = q.clientJwks?.keys ?? [];
    return keys.some((key) => (header['x5t#S256'] && key['x5t#S256'] === header['x5t#S256']) || (header.x5t && key.x5t === header.x5t));
  }

  function cognitoLogout(res, url) {
    // GET /logout?client_id=...&logout_uri=...: the IdP session ends and the browser goes to
    // logout_uri, which must be one of the client's allowed sign-out URLs.
    const clientId = url.searchParams.get('client_id');
    const logoutUri = url.searchParams.get('logout_uri');
    if (clientId !== client.clientId)
      return sendHtml(
        res,
        400,
        "<h1>An error was encountered with the requested page.</h1><p>Required String parameter 'client_id' is not present or not valid.</p>",
      );
    if (!logoutUri || !client.postLogoutRedirectUris.includes(logoutUri))
      return sendHtml(
        res,
        400,
        '<h1>An error was encountered with the requested page.</h1><p>Invalid logout_uri: it is not an allowed sign-out URL of the app client.</p>',
      );
    return endSessionThenRedirect(res, logoutUri);
  }

  function auth0Logout(res, url) {
    // Auth0's /v2/logout?client_id=...&returnTo=... (the legacy endpoint, not in discovery).
    const clientId = url.searchParams.get('client_id');
    const returnTo = url.searchParams.get('returnTo');
    if (clientId !== client.clientId || (returnTo && !client.postLogoutRedirectUris.includes(returnTo))) {
      return sendHtml(
        res,
        400,
        '<h1>Oops!, something went wrong</h1><p>invalid_request: The "returnTo" querystring parameter must be one of the "Allowed Logout URLs".</p>',
      );
    }
    return endSessionThenRedirect(res, returnTo ?? client.postLogoutRedirectUris[0]);
  }

  /** Ends the oidc-provider session through its own end-session endpoint (which does not ask: no confirmation here). */
  function endSessionThenRedirect(res, target) {
    const end = new URL(`${issuer}${ROUTES.end_session}`);
    end.searchParams.set('client_id', client.clientId);
    end.searchParams.set('post_logout_redirect_uri', target);
    res.writeHead(302, { location: end.href, 'cache-control': 'no-store' });
    res.end();
    return true;
  }

  async function testAdmin(req, res, path) {
    if (req.method === 'GET' && path === '/test-admin/quirks') return sendJson(res, 200, { ...q, issuer });
    if (req.method === 'POST' && path === '/test-admin/quirks/client-secret') {
      const body = JSON.parse((await readBody(req)) || '{}');
      if (typeof body.clientSecret !== 'string' || body.clientSecret === '') return sendJson(res, 400, { error: 'clientSecret (a string) is required' });
      currentSecret = body.clientSecret;
      return sendJson(res, 200, { rotated: true });
    }
    return sendJson(res, 404, { error: 'no such quirks endpoint' });
  }

  function confirmationPage(ctx, form) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign out - Dev IdP</title></head><body>
<main><h1>Pick an account to sign out</h1><p>You are still signed in here until you choose.</p>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button></main></body></html>`;
  }
}

function setPath(target, path, value) {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key];
  }
  node[path[path.length - 1]] = value;
}

/** A stable UUID-shaped id (Entra object ids are GUIDs). */
export function stableUuid(seed) {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function basicCredentials(header) {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) reject(Object.assign(new Error('request body too large'), { statusCode: 413 }));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function notFound(res) {
  return sendJson(res, 404, { error: 'not_found' });
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
  return true;
}

function sendHtml(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dev IdP</title></head><body>${body}</body></html>`);
  return true;
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
