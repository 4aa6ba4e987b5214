// The OpenID provider of `npm run local`, of the browser tests and of the auth-service
// tests: oidc-provider 9 (a certified OpenID provider) with a real username/password
// login page, served over HTTPS on 127.0.0.1. oidc-provider is ESM-only, so this file
// runs as a child process under plain `node`; the parent (dev/stand-ins/idp/dev-idp.ts) passes its
// settings as a JSON file:
//
//   node dev/stand-ins/idp/dev-idp-server.mjs <settings.json>
//
// settings: { port, certFile, keyFile,
//             users: [{ username, password, claims: { name, email, groups, ... } }],
//             client: {clientId, clientSecret, redirectUris, postLogoutRedirectUris},
//             extraClients: [{clientId, clientSecret, redirectUris, tokenEndpointAuthMethod}]
//               (other relying parties, such as the Looker stand-in's own OIDC login: no
//               PKCE required, consent skipped like for the gateway's client),
//             accessTokenTtlSeconds, refreshTokenTtlSeconds,
//             idTokenClaims (default true: name, e-mail and groups ride in the ID token;
//               false: the ID token carries `sub` only, so the relying party reads userinfo),
//             testAdminEndpoints (default false; see below),
//             quirks (default none: answer as one IdP does, see dev/stand-ins/idp/dev-idp-quirks.mjs) }
//
// When it listens it prints one JSON line `{"ready": true, "issuer": "https://127.0.0.1:<port>"}`.
// GET /dev/stats answers what it counted (logins, refreshes, userinfo calls, ...).
// Test-only endpoints (JSON), served only when `testAdminEndpoints` is true:
//   POST /test-admin/users/<username>   body: claims to merge (e.g. {"groups": [...]})
//   POST /test-admin/revoke/<username>  destroys every grant of the user (refresh tokens stop working)
//   POST /test-admin/delay              body: {"ms": 3000, "paths": ["/token"]}; {"ms": 0} to clear
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { timingSafeEqual, createHash, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import { createQuirks } from './dev-idp-quirks.mjs';

const settingsFile = process.argv[2];
if (!settingsFile) {
  console.error('usage: node dev/stand-ins/idp/dev-idp-server.mjs <settings.json>');
  process.exit(2);
}
const settings = JSON.parse(readFileSync(settingsFile, 'utf8'));
const users = new Map(settings.users.map((user) => [user.username, user]));
const claimsInIdToken = settings.idTokenClaims ?? true;
const stats = {
  logins: 0,
  failedLogins: 0,
  codeExchanges: 0,
  refreshes: 0,
  failedRefreshes: 0,
  logouts: 0,
  revocations: 0,
  userinfo: 0,
  tokenRequestsBasicAuth: 0,
  tokenRequestsPostAuth: 0,
};
/** The grants this IdP made, by account, so that a test can revoke them. */
const grantsByAccount = new Map();
let delay = { ms: 0, paths: [] };
const quirks = createQuirks(settings.quirks, { client: settings.client, testAdminEndpoints: settings.testAdminEndpoints ?? false });

const server = createServer({ cert: readFileSync(settings.certFile), key: readFileSync(settings.keyFile) });
server.listen(settings.port ?? 0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = quirks.issuerFor(`https://127.0.0.1:${port}`);
  const provider = createProvider(issuer);
  const callback = provider.callback();
  server.on('request', (req, res) => route(provider, callback, req, res));
  process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

function createProvider(issuer) {
  const { client } = settings;
  const extraClients = settings.extraClients ?? [];
  /** Clients whose consent is skipped: the gateway's and every extra relying party. */
  const trustedClientIds = new Set([client.clientId, ...extraClients.map((c) => c.clientId)]);
  const provider = new Provider(
    issuer,
    quirks.configure({
      clients: [
        {
          client_id: client.clientId,
          client_secret: client.clientSecret,
          client_name: 'Looker Gateway (local)',
          redirect_uris: client.redirectUris,
          post_logout_redirect_uris: client.postLogoutRedirectUris,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        ...extraClients.map((extra) => ({
          client_id: extra.clientId,
          client_secret: extra.clientSecret,
          redirect_uris: extra.redirectUris,
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: extra.tokenEndpointAuthMethod ?? 'client_secret_basic',
        })),
      ],
      // The session cookies of the IdP itself: dev-only keys, fresh at every start.
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      // By default groups, name and e-mail travel with the `openid` scope too, so the
      // gateway gets them whichever scopes it asks for.
      claims: {
        openid: claimsInIdToken ? ['sub', 'groups', 'name', 'email'] : ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name', 'preferred_username', 'given_name', 'family_name'],
        groups: ['groups'],
        org: ['department', 'region'],
      },
      scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'org'],
      // By default put the requested claims in the ID token as well as userinfo, as most
      // company IdPs do, so a refresh that returns an ID token carries the current groups.
      conformIdTokenClaims: !claimsInIdToken,
      features: {
        devInteractions: { enabled: false },
        rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
        revocation: { enabled: true },
      },
      // The gateway always sends PKCE; other relying parties (Looker does not document PKCE) need not.
      pkce: { required: (_ctx, oidcClient) => oidcClient.clientId === client.clientId },
      ttl: {
        AccessToken: settings.accessTokenTtlSeconds ?? 300,
        IdToken: settings.accessTokenTtlSeconds ?? 300,
        RefreshToken: settings.refreshTokenTtlSeconds ?? 8 * 3600,
        Session: 8 * 3600,
        Grant: 8 * 3600,
        Interaction: 600,
        AuthorizationCode: 60,
      },
      // Refresh tokens for the gateway whether or not it asks for offline_access, and
      // a new one at every use (rotation): the old one is then spent.
      issueRefreshToken: async (_ctx, oidcClient) => oidcClient.grantTypeAllowed('refresh_token'),
      rotateRefreshToken: () => true,
      // Consent is skipped for the gateway's own client: the grant is made on the spot.
      loadExistingGrant: async (ctx) => {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        // A revoked grant is gone: a new login makes a new one.
        const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
        if (existing) return existing;
        const { accountId } = ctx.oidc.session;
        if (!trustedClientIds.has(ctx.oidc.client.clientId) || !accountId) return undefined;
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId });
        grant.addOIDCScope(
          [...new Set(['openid', 'email', 'profile', 'groups', 'offline_access', ...String(ctx.oidc.params.scope ?? '').split(' ')])].filter(Boolean).join(' '),
        );
        await grant.save();
        if (!grantsByAccount.has(accountId)) grantsByAccount.set(accountId, new Set());
        grantsByAccount.get(accountId).add(grant);
        return grant;
      },
      findAccount: async (_ctx, sub) => {
        const user = users.get(sub);
        if (!user) return undefined;
        return { accountId: sub, claims: async () => ({ ...user.claims, sub }) };
      },
      renderError,
    }),
  );
  quirks.attach(provider);
  provider.on('grant.success', (ctx) => {
    if (ctx.oidc.params.grant_type === 'refresh_token') stats.refreshes += 1;
    if (ctx.oidc.params.grant_type === 'authorization_code') stats.codeExchanges += 1;
  });
  provider.on('grant.error', (ctx) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token') stats.failedRefreshes += 1;
  });
  provider.on('end_session.success', () => {
    stats.logouts += 1;
  });
  // oidc-provider 9 emits no event for a revocation (RFC 7009) or a userinfo answer:
  // count the successful answers of those endpoints instead.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.status !== 200) return;
    if (ctx.method === 'POST' && ctx.path === '/token/revocation') stats.revocations += 1;
    if (ctx.path === '/me') stats.userinfo += 1;
  });
  // How clients authenticate at the token endpoint (oidc-provider accepts either secret method for a secret client).
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/token') {
      if (String(ctx.headers.authorization ?? '').startsWith('Basic ')) stats.tokenRequestsBasicAuth += 1;
      else stats.tokenRequestsPostAuth += 1;
    }
    await next();
  });
  if (settings.testAdminEndpoints) {
    provider.use(async (ctx, next) => {
      if (delay.ms > 0 && delay.paths.some((p) => ctx.path.startsWith(p))) await new Promise((r) => setTimeout(r, delay.ms));
      await next();
    });
  }
  return provider;
}

async function route(provider, callback, req, res) {
  try {
    if (await quirks.handle(req, res)) return;
    const url = new URL(req.url, 'https://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/dev/stats') {
      return send(res, 200, 'application/json', JSON.stringify(stats));
    }
    if (settings.testAdminEndpoints && url.pathname.startsWith('/test-admin/')) return await testAdmin(req, res, url.pathname);
    const interaction = /^\/interaction\/([\w-]+)(\/login|\/abort)?$/.exec(url.pathname);
    if (interaction) return await handleInteraction(provider, req, res, interaction[2] ?? '');
    return callback(req, res);
  } catch (error) {
    console.error(JSON.stringify({ event: 'dev-idp-error', message: String(error?.message ?? error) }));
    if (!res.headersSent)
      send(
        res,
        error?.statusCode ?? 500,
        'text/html',
        page('Something went wrong', `<p class="error">${escapeHtml(error?.error_description ?? error?.message ?? 'error')}</p>`),
      );
  }
}

async function testAdmin(req, res, path) {
  const json = (status, value) => send(res, status, 'application/json', JSON.stringify(value));
  if (req.method !== 'POST') return json(405, { error: 'test-admin endpoints take POST' });
  const body = JSON.parse((await readBody(req)) || '{}');
  let match = /^\/test-admin\/users\/([\w.@-]+)$/.exec(path);
  if (match) {
    const user = users.get(match[1]);
    if (!user) return json(404, { error: `no user ${match[1]}` });
    user.claims = { ...user.claims, ...body };
    return json(200, user.claims);
  }
  match = /^\/test-admin\/revoke\/([\w.@-]+)$/.exec(path);
  if (match) {
    const grants = grantsByAccount.get(match[1]) ?? new Set();
    for (const grant of grants) await grant.destroy();
    grantsByAccount.delete(match[1]);
    return json(200, { revoked: grants.size });
  }
  if (path === '/test-admin/delay') {
    delay = { ms: Number(body.ms ?? 0), paths: body.paths ?? ['/'] };
    return json(200, delay);
  }
  return json(404, { error: 'no such test-admin endpoint' });
}

async function handleInteraction(provider, req, res, action) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && action === '') {
    if (details.prompt.name === 'login') return send(res, 200, 'text/html', loginPage(details.uid, details.params, ''));
    // Any other prompt (consent) is granted for the dev client by loadExistingGrant.
    return provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'POST' && action === '/login') {
    const form = new URLSearchParams(await readBody(req));
    const username = form.get('username') ?? '';
    const user = users.get(username);
    if (!user || !sameSecret(user.password, form.get('password') ?? '')) {
      stats.failedLogins += 1;
      return send(res, 401, 'text/html', loginPage(details.uid, details.params, 'Unknown user or wrong password.', username));
    }
    stats.logins += 1;
    return provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === '/abort') {
    return provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'The user cancelled the login.' },
      { mergeWithLastSubmission: false },
    );
  }
  return send(res, 405, 'text/plain', 'Method not allowed');
}

function sameSecret(expected, given) {
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 16_384) reject(Object.assign(new Error('form too large'), { statusCode: 413 }));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
  res.end(body);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const STYLE = `
  :root { color-scheme: light; --ink: #1f2937; --muted: #6b7280; --brand: #4f46e5; --line: #e5e7eb; }
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f1f5f9;
         font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); }
  .card { width: 360px; background: #fff; border: 1px solid var(--line); border-radius: 14px; padding: 28px 28px 22px;
          box-shadow: 0 10px 30px rgba(79, 70, 229, .10); }
  .brand { font-size: 13px; letter-spacing: .08em; text-transform: uppercase; color: var(--brand); font-weight: 700; }
  h1 { font-size: 22px; margin: 6px 0 4px; }
  p { margin: 0 0 16px; color: var(--muted); }
  label { display: block; font-size: 13px; font-weight: 600; margin: 12px 0 4px; }
  input { width: 100%; padding: 10px 12px; border: 1px solid #d1d5db; border-radius: 8px; font: inherit; }
  input:focus { outline: 2px solid #c7d2fe; border-color: var(--brand); }
  button { width: 100%; margin-top: 18px; padding: 11px; border: 0; border-radius: 8px; background: var(--brand); color: #fff; font: inherit; font-weight: 600; cursor: pointer; }
  button.secondary { background: transparent; color: var(--muted); margin-top: 6px; }
  .error { color: #b91c1c; background: #fef2f2; border: 1px solid #fecaca; border-radius: 8px; padding: 8px 10px; }
  .hint { font-size: 12px; color: var(--muted); margin-top: 14px; }
`;

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main class="card">${body}</main></body></html>`;
}

function loginPage(uid, params, error, username = '') {
  return page(
    'Sign in - Dev IdP',
    `<div class="brand">Dev IdP</div>
<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(settings.client.clientName ?? 'Looker')}</strong></p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" value="${escapeHtml(username)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button class="secondary" type="submit">Cancel</button></form>
<div class="hint">Local development provider. Client: ${escapeHtml(params.client_id ?? '')}</div>`,
  );
}

async function logoutSource(ctx, form) {
  // The gateway's logout already asked the user; sign out of the IdP too without a second question.
  ctx.type = 'html';
  ctx.body = page(
    'Signing out - Dev IdP',
    `<div class="brand">Dev IdP</div><h1>Signing out…</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<script>var f=document.getElementById('op.logoutForm');var i=document.createElement('input');i.type='hidden';i.name='logout';i.value='yes';f.appendChild(i);f.submit();</script>`,
  );
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out - Dev IdP', '<div class="brand">Dev IdP</div><h1>Signed out</h1><p>You have been signed out.</p>');
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page(
    'Error - Dev IdP',
    `<div class="brand">Dev IdP</div><h1>Something went wrong</h1>${Object.entries(out)
      .map(([k, v]) => `<p class="error"><strong>${escapeHtml(k)}</strong>: ${escapeHtml(v)}</p>`)
      .join('')}`,
  );
}
