// The OpenID provider of the auth-service tests: oidc-provider 9 (ESM-only, so a child
// process under plain `node`), served over HTTPS with a test-CA certificate on 127.0.0.1.
//
//   node test/auth/support/test-idp-server.mjs <settings.json>
//
// settings: { certFile, keyFile, users: { <id>: { email, email_verified, name, groups, ...claims } },
//             client: { clientId, clientSecret, redirectUris, postLogoutRedirectUris },
//             idTokenClaims (bool: also put profile claims in ID tokens; default false, so
//             the gateway has to read userinfo) }
// Prints one JSON line {"ready": true, "issuer": "..."} when it listens.
//
// Login: GET /interaction/<uid> shows a form; POST /interaction/<uid> with `login=<user id>`
// logs that user in and grants consent (the test drives it over HTTP).
// Test-only admin endpoints (JSON):
//   POST /admin/users/<id>   body: claims to merge (e.g. {"groups": [...]})
//   POST /admin/revoke/<id>  destroys every grant of the user (refresh tokens stop working)
//   POST /admin/delay        body: {"ms": 3000, "paths": ["/token"]}; {"ms": 0} to clear
//   GET  /admin/stats        counts of code exchanges, refreshes, failed refreshes, revocations
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(Object.entries(settings.users));
const grantsByAccount = new Map();
const stats = { codeExchanges: 0, refreshes: 0, failedRefreshes: 0, revocations: 0, userinfo: 0 };
let delay = { ms: 0, paths: [] };

const server = createServer({ cert: readFileSync(settings.certFile), key: readFileSync(settings.keyFile) });
server.listen(0, '127.0.0.1', () => {
  const issuer = `https://127.0.0.1:${server.address().port}`;
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
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        redirect_uris: client.redirectUris,
        post_logout_redirect_uris: client.postLogoutRedirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'], org: ['department', 'region'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'org'],
    conformIdTokenClaims: !settings.idTokenClaims,
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true }, revocation: { enabled: true } },
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    issueRefreshToken: async (_ctx, oidcClient) => oidcClient.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    ttl: { AccessToken: 300, IdToken: 300, RefreshToken: 3600, Session: 3600, Grant: 3600, Interaction: 600, AuthorizationCode: 60 },
    findAccount: async (_ctx, sub) => {
      const user = users.get(sub);
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...user }) };
    },
  });
  provider.on('grant.success', (ctx) => {
    if (ctx.oidc.params.grant_type === 'refresh_token') stats.refreshes += 1;
    if (ctx.oidc.params.grant_type === 'authorization_code') stats.codeExchanges += 1;
  });
  provider.on('grant.error', (ctx) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token') stats.failedRefreshes += 1;
  });
  provider.on('revocation.success', () => {
    stats.revocations += 1;
  });
  provider.on('userinfo.success', () => {
    stats.userinfo += 1;
  });
  provider.use(async (ctx, next) => {
    if (delay.ms > 0 && delay.paths.some((p) => ctx.path.startsWith(p))) await new Promise((r) => setTimeout(r, delay.ms));
    await next();
  });
  return provider;
}

async function route(provider, callback, req, res) {
  try {
    const url = new URL(req.url, 'https://127.0.0.1');
    if (url.pathname.startsWith('/admin/')) return await admin(req, res, url.pathname);
    const interaction = /^\/interaction\/([\w-]+)$/.exec(url.pathname);
    if (interaction) return await handleInteraction(provider, req, res);
    return callback(req, res);
  } catch (error) {
    if (!res.headersSent) send(res, error?.statusCode ?? 500, { error: String(error?.message ?? error) });
  }
}

async function admin(req, res, path) {
  if (req.method === 'GET' && path === '/admin/stats') return send(res, 200, stats);
  const body = JSON.parse((await readBody(req)) || '{}');
  let match = /^\/admin\/users\/([\w.@-]+)$/.exec(path);
  if (req.method === 'POST' && match) {
    users.set(match[1], { ...(users.get(match[1]) ?? {}), ...body });
    return send(res, 200, users.get(match[1]));
  }
  match = /^\/admin\/revoke\/([\w.@-]+)$/.exec(path);
  if (req.method === 'POST' && match) {
    const ids = grantsByAccount.get(match[1]) ?? new Set();
    for (const grant of ids) await grant.destroy();
    grantsByAccount.delete(match[1]);
    return send(res, 200, { revoked: ids.size });
  }
  if (req.method === 'POST' && path === '/admin/delay') {
    delay = { ms: Number(body.ms ?? 0), paths: body.paths ?? ['/'] };
    return send(res, 200, delay);
  }
  return send(res, 404, { error: 'no such admin endpoint' });
}

async function handleInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    return sendHtml(res, `<form method="post"><input name="login"><button>Sign in</button></form><p>${details.prompt.name}</p>`);
  }
  const form = new URLSearchParams(await readBody(req));
  const accountId = details.session?.accountId ?? form.get('login');
  if (!users.has(accountId)) return send(res, 401, { error: 'unknown user' });
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope('openid email profile groups org offline_access');
  const grantId = await grant.save();
  if (!grantsByAccount.has(accountId)) grantsByAccount.set(accountId, new Set());
  grantsByAccount.get(accountId).add(grant);
  return provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function send(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(value));
}

function sendHtml(res, body) {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><body>${body}</body></html>`);
}
