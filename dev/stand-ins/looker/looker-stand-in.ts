/**
 * The Looker stand-in of `npm run local` and the tests: a small web app in Looker's place.
 *
 * Two ways to learn who the user is, as with a real Looker:
 * - header mode (OpenID Connect off, the default): the page shows the identity headers the
 *   gateway set. Looker itself never reads them; upstreams that do are what direct mode is for.
 * - Looker's own OpenID Connect login (on once `oidc_config.enabled` is true): a request
 *   without a Looker session is redirected to the configured authorization URL, the
 *   callback at /openidconnect exchanges the code server-side, reads userinfo and applies
 *   the group-to-role and attribute mapping as Looker documents it (looker-oidc-model.ts,
 *   looker-oidc-login.ts, docs/looker-oidc.md); the page then shows the Looker user with
 *   the roles, groups and attributes Looker applied, and headers are ignored.
 *
 * Looker's API as the custom resource uses it: `POST /api/4.0/login` with API3 client
 * credentials gives a token for `Authorization: token <t>`; `GET`/`PATCH
 * /api/4.0/oidc_config` (422 when the new state would be invalid), `GET /api/4.0/roles`,
 * `GET /api/4.0/user_attributes`.
 *
 * Like Looker behind the gateway it listens on HTTPS and, when given a client CA, requires
 * the fleet's client certificate (mutual TLS). Every answer carries `Cache-Control: no-store`.
 *
 * Size: one stand-in of Looker with both of its login modes and the API calls the gateway
 * makes; its OIDC model lives in looker-oidc-model.ts.
 */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { AddressInfo } from 'node:net';
import { LOOKER_REDIRECT_PATH } from '../../../core/auth/looker-broker';
import { LookerApiCredentials, LookerNamedObject, LOOKER_API_PATHS, OidcConfigWrite } from '../../../core/looker/oidc-config';
import { HEADERS } from '../../../core/session-contract';
import { DEFAULT_LOOKER_ROLES, DEFAULT_LOOKER_USER_ATTRIBUTES, decideLogin, LOOKER_DOCS, LookerOidcConfigStore, LookerUser } from './looker-oidc-model';
import { LookerOidcLogin, TokenEndpointAuthMethod } from './looker-oidc-login';
import { appPage, attributeChips, chips, escapeHtml, GATEWAY_SIGN_OUT, IdentityRow, messagePage, timeHtml } from './looker-stand-in-pages';

export { escapeHtml } from './looker-stand-in-pages';

export interface LookerStandInOptions {
  /** Server certificate and key, PEM. */
  readonly certPem: string;
  readonly keyPem: string;
  /** CA that the gateway's client certificate must chain to. @default - no client certificate is asked for */
  readonly clientCaPem?: string;
  /** @default 0 - a free port chosen by the kernel */
  readonly port?: number;
  /**
   * The URL users open Looker at: the base of its OIDC redirect URI. Behind the gateway it
   * is the gateway's URL.
   * @default - https://127.0.0.1:<port>
   */
  readonly publicUrl?: string;
  /** Looker's API and OpenID Connect login. @default - API keys: none (every API login fails); OIDC off */
  readonly oidc?: LookerStandInOidcOptions;
  /**
   * Also listen for Looker's API on a port of its own (Looker's API port, 19999 by default),
   * without asking for a client certificate: what the custom resource calls from the VPC.
   * Only `/api/` paths are served there. 0 picks a free port.
   * @default - no API port: the API is on the web port only
   */
  readonly apiPort?: number;
}

export interface LookerStandInOidcOptions {
  /** API3 keys of a Looker admin, for `POST /api/4.0/login`. @default - none */
  readonly apiCredentials?: readonly LookerApiCredentials[];
  /** @default DEFAULT_LOOKER_ROLES (Admin, Developer, User, Viewer) */
  readonly roles?: readonly LookerNamedObject[];
  /** @default DEFAULT_LOOKER_USER_ATTRIBUTES (the system attributes and `region`) */
  readonly userAttributes?: readonly LookerNamedObject[];
  /** CA of the OpenID provider's certificate, PEM, for the server-side calls. @default - Node's trust store */
  readonly trustedCaPem?: string;
  /** How the stand-in authenticates at the token URL (Looker does not document it). @default 'client_secret_basic' */
  readonly tokenEndpointAuthMethod?: TokenEndpointAuthMethod;
  /** A configuration to start with, applied with PATCH semantics (and refused if invalid). @default - OIDC off */
  readonly initialConfig?: OidcConfigWrite;
}

export interface RunningLookerStandIn {
  readonly port: number;
  /** Looker's API port, when asked for (`apiPort`). */
  readonly apiPort?: number;
  /** The URL users open Looker at. */
  readonly publicUrl: string;
  /** Looker's OIDC redirect URI (`publicUrl` + /openidconnect): register it at the OpenID provider. */
  readonly redirectUri: string;
  /** Requests seen so far, newest last (method, path, request id, user). */
  readonly requests: readonly SeenRequest[];
  /** Looker's OIDC configuration (tests read what the API wrote). */
  readonly oidcConfig: LookerOidcConfigStore;
  /** Looker users made by OIDC logins, by id. */
  users(): LookerUser[];
  stop(): Promise<void>;
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly requestId: string;
  readonly user: string;
}

/** What the gateway told the upstream about the caller, read from the request headers. */
export interface GatewayIdentity {
  readonly user: string;
  readonly email: string;
  readonly groups: string[];
  readonly roles: string[];
  readonly attributes: Record<string, string>;
  readonly requestId: string;
  readonly authMethod: string;
  readonly hasAssertion: boolean;
  /** `exp` of the assertion (the session token), epoch seconds, when it is readable. */
  readonly sessionExpiresAt: number | null;
}

const MAX_REQUESTS_KEPT = 1000;
const MAX_BODY_BYTES = 64 * 1024;
/** Looker's session cookie in the stand-in (Looker's own cookie names are not part of its documented interface). */
const SESSION_COOKIE = 'looker_standin_session';
/** Binds a login's state to the browser that started it. */
const LOGIN_BINDING_COOKIE = 'looker_standin_login';
/** Lifetime of an API token, as Looker's login answers (`expires_in`). */
const API_TOKEN_SECONDS = 3600;
const SESSION_SECONDS = 8 * 3600;

export function startLookerStandIn(options: LookerStandInOptions): Promise<RunningLookerStandIn> {
  const requests: SeenRequest[] = [];
  let publicUrl = options.publicUrl?.replace(/\/+$/, '');
  let looker: LookerApp | undefined;
  const server = https.createServer(
    {
      cert: options.certPem,
      key: options.keyPem,
      ...(options.clientCaPem ? { ca: options.clientCaPem, requestCert: true, rejectUnauthorized: true } : {}),
    },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'https://looker.invalid');
      void looker!.handle(req, res, url, requests).catch((error: Error & { statusCode?: number }) => {
        if (!res.headersSent)
          sendJson(res, error.statusCode ?? 500, { message: error.statusCode ? error.message : `The Looker stand-in failed: ${error.message}` });
        else res.destroy();
      });
    },
  );
  const apiServer =
    options.apiPort === undefined
      ? undefined
      : https.createServer({ cert: options.certPem, key: options.keyPem }, (req, res) => {
          const url = new URL(req.url ?? '/', 'https://looker.invalid');
          if (!url.pathname.startsWith('/api/')) return sendJson(res, 404, { message: 'Not found: the API port serves /api/ only.' });
          void looker!.handle(req, res, url, requests).catch((error: Error & { statusCode?: number }) => {
            if (!res.headersSent)
              sendJson(res, error.statusCode ?? 500, { message: error.statusCode ? error.message : `The Looker stand-in failed: ${error.message}` });
            else res.destroy();
          });
        });
  const listenApi = (): Promise<number | undefined> =>
    new Promise((resolve, reject) => {
      if (!apiServer) return resolve(undefined);
      apiServer.once('error', reject);
      apiServer.listen(options.apiPort, '127.0.0.1', () => resolve((apiServer.address() as AddressInfo).port));
    });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', async () => {
      const { port } = server.address() as AddressInfo;
      publicUrl ??= `https://127.0.0.1:${port}`;
      let apiPort: number | undefined;
      try {
        looker = new LookerApp(publicUrl, options.oidc ?? {});
        apiPort = await listenApi();
      } catch (error) {
        server.close();
        apiServer?.close();
        return reject(error);
      }
      const app = looker;
      resolve({
        port,
        apiPort,
        publicUrl,
        redirectUri: app.login.redirectUri,
        requests,
        oidcConfig: app.config,
        users: () => [...app.users.values()],
        stop: async () => {
          for (const running of [server, apiServer]) {
            if (!running) continue;
            await new Promise<void>((done) => {
              running.closeAllConnections();
              running.close(() => done());
            });
          }
        },
      });
    });
  });
}

/** One Looker instance: its API, its OIDC configuration, its users and sessions. */
class LookerApp {
  readonly config: LookerOidcConfigStore;
  readonly login: LookerOidcLogin;
  readonly users = new Map<string, LookerUser>();
  private readonly sessions = new Map<string, { userId: string; expiresAt: number }>();
  private readonly apiTokens = new Map<string, number>();
  private readonly credentials: readonly LookerApiCredentials[];
  private readonly roles: readonly LookerNamedObject[];
  private readonly userAttributes: readonly LookerNamedObject[];
  private nextUserId = 100;

  constructor(publicUrl: string, options: LookerStandInOidcOptions) {
    this.roles = options.roles ?? DEFAULT_LOOKER_ROLES;
    this.userAttributes = options.userAttributes ?? DEFAULT_LOOKER_USER_ATTRIBUTES;
    this.credentials = options.apiCredentials ?? [];
    this.config = new LookerOidcConfigStore({ roles: this.roles, userAttributes: this.userAttributes });
    this.login = new LookerOidcLogin({ publicUrl, trustedCaPem: options.trustedCaPem, tokenEndpointAuthMethod: options.tokenEndpointAuthMethod });
    if (options.initialConfig) {
      const outcome = this.config.patch(options.initialConfig);
      if (!outcome.ok) throw new Error(`The Looker stand-in's initial oidc_config is invalid: ${outcome.errors.map((e) => e.message).join(' ')}`);
    }
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL, requests: SeenRequest[]): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const headerIdentity = identityFrom(req.headers);
    const oidcOn = this.config.current().enabled === true;
    const sessionUser = oidcOn ? this.sessionUser(req) : undefined;
    requests.push({ method, path, requestId: headerIdentity.requestId, user: oidcOn ? (sessionUser?.email ?? '') : headerIdentity.user });
    if (requests.length > MAX_REQUESTS_KEPT) requests.shift();

    if (path === '/alive') return send(res, 200, 'text/plain', 'ok');
    // Static assets are served without a session, as by any web app: the browser fetches
    // /favicon.ico on its own after each page, and a login redirect on it would run a second
    // OIDC login in the background, whose callback spends the login binding of the user's own.
    if (path === '/favicon.ico') return send(res, 204, 'image/x-icon', '');
    if (path === LOOKER_API_PATHS.login) return this.apiLogin(req, res, url);
    if (path === LOOKER_API_PATHS.oidcConfig || path === LOOKER_API_PATHS.roles || path === LOOKER_API_PATHS.userAttributes) {
      if (!this.apiTokenValid(req)) return sendJson(res, 401, { message: 'Requires authentication.', documentation_url: LOOKER_DOCS.apiTroubleshooting });
      return this.adminApi(req, res, method, path);
    }
    if (!oidcOn) return answerFromHeaders(method, url, headerIdentity, res);

    // Looker's own OpenID Connect login.
    if (path === LOOKER_REDIRECT_PATH) return this.callback(req, res, url);
    if (path === '/logout') return this.logout(req, res);
    if (path === '/login/email') {
      return this.config.current().alternate_email_login_allowed
        ? send(
            res,
            200,
            'text/html',
            messagePage(
              'Alternate login',
              'E-mail and password login for Looker admins and users with the login_special_email permission (alternate_email_login_allowed).',
            ),
          )
        : send(res, 404, 'text/html', messagePage('Not found', 'Alternate e-mail login is off (alternate_email_login_allowed is false).'));
    }
    if (path.startsWith('/api/')) {
      if (!sessionUser && !this.apiTokenValid(req))
        return sendJson(res, 401, {
          message: 'Requires authentication.',
          documentation_url: LOOKER_DOCS.apiTroubleshooting,
          request_id: headerIdentity.requestId,
        });
      return answerApiAsLookerUser(method, path, sessionUser, this.lookerView(sessionUser), headerIdentity.requestId, res);
    }
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'text/plain', `Method ${method} is not supported here.`);
    if (!sessionUser) return this.beginLogin(req, res, path + url.search);
    return send(res, 200, 'text/html', lookerUserPage(path + url.search, this.lookerView(sessionUser), headerIdentity.requestId));
  }

  /** `POST /api/4.0/login`: API3 client credentials (form body, or query as the API still accepts) for a token. */
  private async apiLogin(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    if (req.method !== 'POST') return sendJson(res, 405, { message: 'Method not allowed: use POST.', documentation_url: LOOKER_DOCS.login });
    const form = new URLSearchParams(await readBody(req));
    const clientId = form.get('client_id') ?? url.searchParams.get('client_id') ?? '';
    const clientSecret = form.get('client_secret') ?? url.searchParams.get('client_secret') ?? '';
    if (!clientId || !clientSecret) return sendJson(res, 400, { message: 'client_id and client_secret are required.', documentation_url: LOOKER_DOCS.login });
    const known = this.credentials.some((c) => c.client_id === clientId && sameSecret(c.client_secret, clientSecret));
    // The documented answers of login are 200, 400 and 404: wrong credentials are "Not found".
    if (!known) return sendJson(res, 404, { message: 'Not found', documentation_url: LOOKER_DOCS.login });
    const token = randomBytes(30).toString('base64url');
    this.apiTokens.set(token, Date.now() + API_TOKEN_SECONDS * 1000);
    return sendJson(res, 200, { access_token: token, token_type: 'Bearer', expires_in: API_TOKEN_SECONDS, refresh_token: null });
  }

  /** `Authorization: token <access_token>`, exactly as the login method's documentation shows it. */
  private apiTokenValid(req: http.IncomingMessage): boolean {
    const match = /^token (\S+)$/.exec(String(req.headers.authorization ?? ''));
    const expiresAt = match ? this.apiTokens.get(match[1]) : undefined;
    return expiresAt !== undefined && expiresAt > Date.now();
  }

  private async adminApi(req: http.IncomingMessage, res: http.ServerResponse, method: string, path: string): Promise<void> {
    if (path === LOOKER_API_PATHS.roles && method === 'GET') return sendJson(res, 200, this.roles);
    if (path === LOOKER_API_PATHS.userAttributes && method === 'GET') return sendJson(res, 200, this.userAttributes);
    if (path === LOOKER_API_PATHS.oidcConfig && method === 'GET') return sendJson(res, 200, this.config.read());
    if (path === LOOKER_API_PATHS.oidcConfig && method === 'PATCH') {
      const text = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return sendJson(res, 400, { message: 'The body is not JSON.', documentation_url: LOOKER_DOCS.updateOidcConfig });
      }
      const outcome = this.config.patch(body);
      if (!outcome.ok) {
        return sendJson(res, 422, {
          message: 'Validation Failed',
          errors: outcome.errors.map((e) => ({ ...e, documentation_url: LOOKER_DOCS.updateOidcConfig })),
          documentation_url: LOOKER_DOCS.updateOidcConfig,
        });
      }
      return sendJson(res, 200, outcome.config);
    }
    return sendJson(res, 405, { message: `Method ${method} is not supported on ${path}.` });
  }

  private beginLogin(req: http.IncomingMessage, res: http.ServerResponse, returnTo: string): void {
    const binding = cookiesOf(req).get(LOGIN_BINDING_COOKIE) || randomBytes(24).toString('base64url');
    const location = this.login.begin(this.config.current(), returnTo, binding);
    res.writeHead(302, { location, 'set-cookie': cookie(LOGIN_BINDING_COOKIE, binding, 600), 'cache-control': 'no-store' });
    res.end();
  }

  private async callback(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const config = this.config.current();
    const result = await this.login.complete(config, url.searchParams, cookiesOf(req).get(LOGIN_BINDING_COOKIE) ?? '');
    if (!result.ok) return send(res, result.status, 'text/html', messagePage('Looker could not sign you in', result.detail, result.reason, '/', 'Try again'));
    const existing = [...this.users.values()].find((u) => u.subject === result.claims.sub);
    const decision = decideLogin(config, result.claims, existing, () => String((this.nextUserId += 1)));
    if (!decision.ok) return send(res, 403, 'text/html', messagePage('Looker refused the sign-in', decision.detail, decision.reason));
    this.users.set(decision.user.id, decision.user);
    const session = randomBytes(30).toString('base64url');
    this.sessions.set(session, { userId: decision.user.id, expiresAt: Date.now() + SESSION_SECONDS * 1000 });
    res.writeHead(302, {
      location: result.returnTo.startsWith('/') && !result.returnTo.startsWith('//') ? result.returnTo : '/',
      'set-cookie': [cookie(SESSION_COOKIE, session, SESSION_SECONDS), cookie(LOGIN_BINDING_COOKIE, '', 0)],
      'cache-control': 'no-store',
    });
    res.end();
  }

  private logout(req: http.IncomingMessage, res: http.ServerResponse): void {
    const session = cookiesOf(req).get(SESSION_COOKIE);
    if (session) this.sessions.delete(session);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': cookie(SESSION_COOKIE, '', 0), 'cache-control': 'no-store' });
    res.end(messagePage('Signed out of Looker', 'Your Looker session has ended.', undefined, '/', 'Sign in again'));
  }

  private sessionUser(req: http.IncomingMessage): LookerUser | undefined {
    const id = cookiesOf(req).get(SESSION_COOKIE);
    const session = id ? this.sessions.get(id) : undefined;
    if (!session || session.expiresAt < Date.now()) return undefined;
    return this.users.get(session.userId);
  }

  /** The user as Looker shows it: role and attribute names instead of ids. */
  lookerView(user: LookerUser | undefined): LookerUserView | undefined {
    if (!user) return undefined;
    const roleName = (id: string) => this.roles.find((r) => r.id === id)?.name ?? id;
    const attributeName = (id: string) => this.userAttributes.find((a) => a.id === id)?.name ?? id;
    return {
      user,
      displayName: [user.firstName, user.lastName].filter(Boolean).join(' ') || user.email,
      roleNames: user.roleIds.map(roleName),
      attributes: Object.fromEntries(Object.entries(user.attributeValues).map(([id, value]) => [attributeName(id), value])),
    };
  }
}

interface LookerUserView {
  readonly user: LookerUser;
  readonly displayName: string;
  readonly roleNames: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
}

export function identityFrom(headers: http.IncomingHttpHeaders): GatewayIdentity {
  const one = (name: string) => {
    const value = headers[name.toLowerCase()];
    return (Array.isArray(value) ? value.join(',') : value) ?? '';
  };
  const list = (name: string) =>
    one(name)
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v.length > 0);
  const attributePrefix = HEADERS.attributePrefix.toLowerCase();
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(attributePrefix) && value !== undefined) {
      attributes[name.slice(attributePrefix.length).replace(/-/g, '_')] = Array.isArray(value) ? value.join(',') : value;
    }
  }
  const assertion = one(HEADERS.assertion);
  return {
    user: one(HEADERS.user),
    email: one(HEADERS.email),
    groups: list(HEADERS.groups),
    roles: list(HEADERS.roles),
    attributes,
    requestId: one(HEADERS.requestId),
    authMethod: one(HEADERS.authMethod),
    hasAssertion: assertion.length > 0,
    sessionExpiresAt: expiryOf(assertion),
  };
}

/** Reads `exp` for display only; the gateway verified the token, this page does not rely on it. */
function expiryOf(token: string): number | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

const SAMPLE_LOOKS = [
  { id: 1, title: 'Revenue by region', model: 'thelook', space: 'Shared' },
  { id: 2, title: 'Weekly active users', model: 'product', space: 'Shared' },
  { id: 3, title: 'Open orders', model: 'thelook', space: 'Operations' },
];

/** Header mode: the app as it answers with OpenID Connect off. */
function answerFromHeaders(method: string, url: URL, identity: GatewayIdentity, res: http.ServerResponse): void {
  const path = url.pathname;
  if (path.startsWith('/api/')) {
    if (method !== 'GET' && method !== 'POST')
      return sendJson(res, 405, { message: `Method ${method} is not supported here.`, request_id: identity.requestId });
    if (path === '/api/4.0/user') return sendJson(res, 200, headerApiUser(identity));
    if (path === '/api/4.0/looks') return sendJson(res, 200, { looks: SAMPLE_LOOKS, request_id: identity.requestId, user: identity.user });
    if (path === '/api/4.0/queries/run') {
      return sendJson(res, 200, {
        user: identity.user,
        auth: identity.authMethod,
        rows: [{ region: identity.attributes.region ?? 'all', revenue: 1234.5 }],
        request_id: identity.requestId,
      });
    }
    return sendJson(res, 404, { message: `No API route ${path} in the Looker stand-in.`, request_id: identity.requestId });
  }
  if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'text/plain', `Method ${method} is not supported here.`);
  return send(res, 200, 'text/html', headerPage(path + url.search, identity));
}

function headerApiUser(identity: GatewayIdentity) {
  return {
    id: identity.user,
    display_name: identity.user,
    email: identity.email,
    role_names: identity.roles,
    group_names: identity.groups,
    user_attributes: identity.attributes,
    auth: identity.authMethod,
    request_id: identity.requestId,
    session_expires_at: identity.sessionExpiresAt,
  };
}

/** OIDC mode: the API answers about the Looker user of the session (or the API user of a token). */
function answerApiAsLookerUser(
  method: string,
  path: string,
  user: LookerUser | undefined,
  view: LookerUserView | undefined,
  requestId: string,
  res: http.ServerResponse,
): void {
  if (method !== 'GET' && method !== 'POST') return sendJson(res, 405, { message: `Method ${method} is not supported here.`, request_id: requestId });
  const who = view?.user.email ?? 'api-user';
  if (path === '/api/4.0/user') {
    if (!user || !view) return sendJson(res, 200, { id: 'api', display_name: 'API user', request_id: requestId });
    return sendJson(res, 200, {
      id: user.id,
      email: user.email,
      first_name: user.firstName,
      last_name: user.lastName,
      display_name: view.displayName,
      role_ids: user.roleIds,
      role_names: view.roleNames,
      group_names: user.groupNames,
      user_attributes: view.attributes,
      auth: 'oidc',
      request_id: requestId,
    });
  }
  if (path === '/api/4.0/looks') return sendJson(res, 200, { looks: SAMPLE_LOOKS, request_id: requestId, user: who });
  if (path === '/api/4.0/queries/run')
    return sendJson(res, 200, { user: who, auth: 'oidc', rows: [{ region: view?.attributes.region ?? 'all', revenue: 1234.5 }], request_id: requestId });
  return sendJson(res, 404, { message: `No API route ${path} in the Looker stand-in.`, request_id: requestId });
}

function headerPage(location: string, id: GatewayIdentity): string {
  const rows: IdentityRow[] = [
    ['User', 'user', escapeHtml(id.user || '-')],
    ['E-mail', 'email', escapeHtml(id.email || '-')],
    ['Roles', 'roles', chips(id.roles, 'role')],
    ['Groups', 'groups', chips(id.groups, 'group')],
    ['Attributes', 'attributes', attributeChips(id.attributes)],
    ['Signed in with', 'auth', escapeHtml(id.authMethod || '-')],
    ['Request id', 'request-id', `<code>${escapeHtml(id.requestId || '-')}</code>`],
    ['Session expires', 'session-expires', timeHtml(id.sessionExpiresAt)],
  ];
  return appPage({
    location,
    greeting: `Hello, ${id.user || 'unknown'}`,
    intro: 'This is what the gateway told Looker about you:',
    rows,
    signOutHref: GATEWAY_SIGN_OUT,
  });
}

function lookerUserPage(location: string, view: LookerUserView | undefined, requestId: string): string {
  const user = view!.user;
  const rows: IdentityRow[] = [
    ['User', 'user', escapeHtml(view!.displayName)],
    ['E-mail', 'email', escapeHtml(user.email)],
    ['Roles', 'roles', chips(view!.roleNames, 'role')],
    ['Groups', 'groups', chips(user.groupNames, 'group')],
    ['Attributes', 'attributes', attributeChips(view!.attributes)],
    ['Signed in with', 'auth', 'OpenID Connect (Looker&#39;s own login)'],
    ['Looker user id', 'looker-user-id', `<code>${escapeHtml(user.id)}</code>`],
    ['Logins', 'logins', String(user.logins)],
    ['Request id', 'request-id', `<code>${escapeHtml(requestId || '-')}</code>`],
  ];
  return appPage({
    location,
    greeting: `Hello, ${view!.displayName}`,
    intro: 'These are the roles, groups and attributes Looker applied at your OpenID Connect sign-in:',
    rows,
    signOutHref: '/logout',
  });
}

function cookiesOf(req: http.IncomingMessage): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) {
      const name = part.slice(0, eq).trim();
      if (!cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim());
    }
  }
  return cookies;
}

function cookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; Secure; HttpOnly; SameSite=Lax`;
}

function sameSecret(expected: string, given: string): boolean {
  return timingSafeEqual(createHash('sha256').update(expected).digest(), createHash('sha256').update(given).digest());
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY_BYTES) {
        reject(Object.assign(new Error(`The request body is larger than ${MAX_BODY_BYTES} bytes.`), { statusCode: 413 }));
        req.pause();
      }
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', JSON.stringify(body));
}
