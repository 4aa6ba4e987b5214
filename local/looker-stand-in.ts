/**
 * The Looker stand-in of `npm run local`: a small web app that shows who the gateway
 * says you are (the identity headers HAProxy sets), with links for deep navigation and
 * a button that calls API-like JSON routes with fetch(), as Looker's single-page app does.
 *
 * Like Looker behind the gateway it listens on HTTPS and, when given a client CA,
 * requires the fleet's client certificate (mutual TLS). Every answer carries
 * `Cache-Control: no-store`, so the back button after logout cannot show an identity.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { AddressInfo } from 'node:net';
import { HEADERS, AUTH_PATHS } from '../lib/session-contract';

export interface LookerStandInOptions {
  /** Server certificate and key, PEM. */
  readonly certPem: string;
  readonly keyPem: string;
  /** CA that the gateway's client certificate must chain to. @default - no client certificate is asked for */
  readonly clientCaPem?: string;
  /** @default 0 - a free port chosen by the kernel */
  readonly port?: number;
}

export interface RunningLookerStandIn {
  readonly port: number;
  /** Requests seen so far, newest last (method, path, request id, user). */
  readonly requests: readonly SeenRequest[];
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

export function startLookerStandIn(options: LookerStandInOptions): Promise<RunningLookerStandIn> {
  const requests: SeenRequest[] = [];
  const server = https.createServer(
    {
      cert: options.certPem,
      key: options.keyPem,
      ...(options.clientCaPem ? { ca: options.clientCaPem, requestCert: true, rejectUnauthorized: true } : {}),
    },
    (req, res) => {
      const identity = identityFrom(req.headers);
      const url = new URL(req.url ?? '/', 'https://looker.invalid');
      requests.push({ method: req.method ?? '', path: url.pathname, requestId: identity.requestId, user: identity.user });
      if (requests.length > MAX_REQUESTS_KEPT) requests.shift();
      answer(req.method ?? 'GET', url, identity, res);
    },
  );
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        port,
        requests,
        stop: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
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

function answer(method: string, url: URL, identity: GatewayIdentity, res: http.ServerResponse): void {
  const path = url.pathname;
  if (path === '/alive') return send(res, 200, 'text/plain', 'ok');
  if (path.startsWith('/api/')) {
    if (method !== 'GET' && method !== 'POST') return sendJson(res, 405, { message: `Method ${method} is not supported here.`, request_id: identity.requestId });
    if (path === '/api/4.0/user') return sendJson(res, 200, apiUser(identity));
    if (path === '/api/4.0/looks') return sendJson(res, 200, { looks: SAMPLE_LOOKS, request_id: identity.requestId, user: identity.user });
    if (path === '/api/4.0/queries/run') {
      return sendJson(res, 200, { user: identity.user, auth: identity.authMethod, rows: [{ region: identity.attributes.region ?? 'all', revenue: 1234.5 }], request_id: identity.requestId });
    }
    return sendJson(res, 404, { message: `No API route ${path} in the Looker stand-in.`, request_id: identity.requestId });
  }
  if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'text/plain', `Method ${method} is not supported here.`);
  return send(res, 200, 'text/html', standInPage(path + url.search, identity));
}

function apiUser(identity: GatewayIdentity) {
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

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const NAV_LINKS = [
  ['/', 'Home'],
  ['/dashboards/42', 'Dashboard 42'],
  ['/explore/thelook/orders?fields=orders.count&f[orders.region]=emea', 'Explore orders'],
  ['/browse/shared', 'Shared folder'],
] as const;

function standInPage(location: string, id: GatewayIdentity): string {
  const chips = (values: string[], kind: string) =>
    values.length ? values.map((v) => `<span class="chip ${kind}">${escapeHtml(v)}</span>`).join(' ') : '<span class="none">none</span>';
  const attributes = Object.entries(id.attributes);
  const rows: Array<[string, string, string]> = [
    ['User', 'user', escapeHtml(id.user || '-')],
    ['E-mail', 'email', escapeHtml(id.email || '-')],
    ['Roles', 'roles', chips(id.roles, 'role')],
    ['Groups', 'groups', chips(id.groups, 'group')],
    ['Attributes', 'attributes', attributes.length ? attributes.map(([k, v]) => `<span class="chip attr">${escapeHtml(k)} = ${escapeHtml(v)}</span>`).join(' ') : '<span class="none">none</span>'],
    ['Signed in with', 'auth', escapeHtml(id.authMethod || '-')],
    ['Request id', 'request-id', `<code>${escapeHtml(id.requestId || '-')}</code>`],
    ['Session expires', 'session-expires', id.sessionExpiresAt ? `<time data-exp="${id.sessionExpiresAt}">${new Date(id.sessionExpiresAt * 1000).toISOString().replace('.000Z', 'Z')}</time>` : '-'],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Looker (stand-in) - ${escapeHtml(location)}</title>
<style>
  :root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --brand:#4f46e5; --bg:#f8fafc; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--ink); font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; }
  header { display:flex; align-items:center; gap:18px; padding:12px 24px; background:#111827; color:#fff; }
  header .logo { font-weight:700; letter-spacing:.02em; }
  header .logo span { color:#a5b4fc; font-weight:400; }
  header nav a { color:#d1d5db; text-decoration:none; margin-right:14px; font-size:14px; }
  header nav a:hover { color:#fff; }
  header .logout { margin-left:auto; color:#fca5a5; text-decoration:none; font-size:14px; }
  main { max-width:880px; margin:24px auto; padding:0 24px; }
  .card { background:#fff; border:1px solid var(--line); border-radius:12px; padding:20px 22px; margin-bottom:18px; }
  h1 { font-size:20px; margin:0 0 4px; } .where { color:var(--muted); margin:0 0 14px; font-size:14px; }
  table { width:100%; border-collapse:collapse; } th, td { text-align:left; padding:8px 6px; border-top:1px solid var(--line); vertical-align:top; }
  th { width:160px; color:var(--muted); font-weight:600; font-size:13px; }
  .chip { display:inline-block; padding:1px 9px; border-radius:999px; font-size:13px; background:#eef2ff; color:#3730a3; }
  .chip.group { background:#ecfdf5; color:#065f46; } .chip.attr { background:#fff7ed; color:#9a3412; }
  .none { color:var(--muted); } code { font-size:13px; }
  button { padding:8px 14px; border:0; border-radius:8px; background:var(--brand); color:#fff; font:inherit; font-weight:600; cursor:pointer; }
  #api-results { margin:12px 0 0; padding:0; list-style:none; font-size:13px; }
  #api-results li { padding:6px 0; border-top:1px solid var(--line); } .ok { color:#047857; } .fail { color:#b91c1c; }
</style></head>
<body>
<header><div class="logo">Looker <span>stand-in behind the gateway</span></div>
<nav>${NAV_LINKS.map(([href, label]) => `<a href="${escapeHtml(href)}">${escapeHtml(label)}</a>`).join('')}</nav>
<a class="logout" href="${AUTH_PATHS.logout}">Sign out</a></header>
<main>
<section class="card" id="identity">
<h1>Hello, ${escapeHtml(id.user || 'unknown')}</h1>
<p class="where">You are on <code id="location">${escapeHtml(location)}</code>. This is what the gateway told Looker about you:</p>
<table>${rows.map(([label, key, html]) => `<tr><th>${label}</th><td data-field="${key}">${html}</td></tr>`).join('')}</table>
</section>
<section class="card">
<h1>API calls</h1>
<p class="where">Looker's UI is a single-page app: these run with fetch() and the session cookie, like its XHRs.</p>
<button id="call-api" type="button">Call /api/4.0/user and /api/4.0/looks</button>
<ul id="api-results"></ul>
</section>
</main>
<script>
document.getElementById('call-api').addEventListener('click', async function () {
  var list = document.getElementById('api-results');
  for (var path of ['/api/4.0/user', '/api/4.0/looks']) {
    var item = document.createElement('li');
    try {
      var res = await fetch(path, { headers: { accept: 'application/json' } });
      var body = await res.json().catch(function () { return {}; });
      item.className = res.ok ? 'ok' : 'fail';
      item.dataset.status = String(res.status);
      item.dataset.requestId = body.request_id || '';
      item.textContent = res.status + ' ' + path + ' - request id ' + (body.request_id || '?') + (body.role_names ? ' - roles ' + body.role_names.join(', ') : '');
    } catch (error) {
      item.className = 'fail';
      item.dataset.status = 'error';
      item.textContent = 'failed ' + path + ': ' + error;
    }
    list.prepend(item);
  }
});
</script>
</body></html>`;
}
