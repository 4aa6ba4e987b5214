/**
 * Failure paths: forged or replayed callbacks, tampered and expired cookies, IdP down
 * or slow, unknown key ids, invalid configuration, and what the audit log may contain.
 */
import { randomBytes } from 'node:crypto';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { parseGatewaySecret, SECRET_KINDS, seedSecretValue, type CookieKeySetSecret } from '../../core/key-material';
import { ASSERTION_COOKIE, LOGIN_STATE_COOKIE, REFRESH_COOKIE, SESSION_COOKIE } from '../../core/session-contract';
import { CookieSealer } from '../../lambda/auth/keys';
import { createAuthService, resolveRoute } from '../../lambda/auth/service';
import { CachedSecret, StaticSecretSource } from '../../lambda/shared/secrets';
import { freePort } from '../../dev/ports';
import { CLIENT_SECRET, CookieJar, Harness, idpLogin, login, request, startHarness } from './support/harness';
import { apiGatewayGetEvent } from '../../dev/aws/api-gateway-event';

let h: Harness;
/** Every token, code, cookie and secret value the tests saw, to scan the logs for at the end. */
const sensitive = new Set<string>();
/** Log lines of the extra services the tests start. */
const otherLogs: string[][] = [];

beforeAll(async () => {
  h = await startHarness({ users: undefined });
  sensitive.add(CLIENT_SECRET);
  for (const key of h.cookieKeys.keys) sensitive.add(key.k);
  for (const key of h.signingKeys.keys) sensitive.add(key.privateJwk.d as string);
});

afterAll(async () => {
  await h?.stop();
});

function sealerFor(keys: CookieKeySetSecret): CookieSealer {
  const source = new StaticSecretSource({ keys });
  return new CookieSealer(
    new CachedSecret(source, 'keys', (s) => parseGatewaySecret(s, SECRET_KINDS.cookieKeys, 'keys'), { maxAgeMs: 60_000, rereadIntervalMs: 1000 }),
    0,
  );
}

function remember(jar: CookieJar): void {
  for (const name of [SESSION_COOKIE, REFRESH_COOKIE, LOGIN_STATE_COOKIE, ASSERTION_COOKIE]) {
    const value = jar.get(h.gatewayUrl, name);
    if (value) sensitive.add(value);
  }
}

async function startFlow(user = 'alice'): Promise<{ jar: CookieJar; callbackUrl: string; loginCookie: string }> {
  const jar = new CookieJar();
  const start = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/start?rd=%2F`);
  const loginCookie = jar.get(h.gatewayUrl, LOGIN_STATE_COOKIE)!;
  const callbackUrl = await idpLogin(h.fetch, jar, start.location!, user);
  sensitive.add(loginCookie);
  sensitive.add(new URL(callbackUrl).searchParams.get('code')!);
  return { jar, callbackUrl, loginCookie };
}

function tamper(value: string): string {
  const parts = value.split('.');
  const target = parts.length - 2;
  const chars = parts[target].split('');
  chars[5] = chars[5] === 'A' ? 'B' : 'A';
  parts[target] = chars.join('');
  return parts.join('.');
}

describe('callback refusals', () => {
  test('a state that does not match the login cookie is refused (400, state-mismatch)', async () => {
    const { jar, callbackUrl } = await startFlow();
    const forged = new URL(callbackUrl);
    forged.searchParams.set('state', 'forged-state');
    const answer = await request(h.fetch, jar, forged.toString());
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ reason: 'state-mismatch' });
  });

  test('a callback without the login cookie is refused (400, login-state-missing)', async () => {
    const { callbackUrl } = await startFlow();
    const answer = await request(h.fetch, new CookieJar(), callbackUrl, { headers: { accept: 'text/html' } });
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('This sign-in was not started here, took too long, or cookies are blocked.');
    expect(answer.body).toContain('href="/oauth2/start"');
  });

  test('a reused authorization code is refused (400, code-rejected)', async () => {
    const { jar, callbackUrl, loginCookie } = await startFlow();
    const first = await request(h.fetch, jar, callbackUrl);
    expect(first.status).toBe(302);
    remember(jar);
    const replayJar = new CookieJar();
    replayJar.set(h.gatewayUrl, LOGIN_STATE_COOKIE, loginCookie);
    const replay = await request(h.fetch, replayJar, callbackUrl);
    expect(replay.status).toBe(400);
    expect(JSON.parse(replay.body)).toMatchObject({ reason: 'code-rejected:invalid_grant' });
    expect(replayJar.get(h.gatewayUrl, SESSION_COOKIE)).toBeUndefined();
  });

  test('an ID token whose nonce belongs to another login is refused (400, id-token-rejected)', async () => {
    const { jar, callbackUrl, loginCookie } = await startFlow();
    const sealer = sealerFor(h.cookieKeys);
    const opened = await sealer.open<{ state: string; nonce: string; verifier: string; rd: string }>('login', loginCookie);
    if (!opened.ok) throw new Error(opened.reason);
    const { state, verifier, rd } = opened.payload;
    const otherNonce = randomBytes(32).toString('base64url');
    jar.set(h.gatewayUrl, LOGIN_STATE_COOKIE, await sealer.seal('login', { state, nonce: otherNonce, verifier, rd }, Math.floor(Date.now() / 1000) + 300));
    const answer = await request(h.fetch, jar, callbackUrl);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ reason: 'id-token-rejected' });
  });

  test('tampered and expired login cookies are refused with their reasons', async () => {
    const { jar, callbackUrl, loginCookie } = await startFlow();
    jar.set(h.gatewayUrl, LOGIN_STATE_COOKIE, tamper(loginCookie));
    expect(JSON.parse((await request(h.fetch, jar, callbackUrl)).body)).toMatchObject({ reason: 'login-state-invalid' });

    const sealer = sealerFor(h.cookieKeys);
    const opened = await sealer.open<Record<string, unknown>>('login', loginCookie);
    if (!opened.ok) throw new Error(opened.reason);
    const { state, nonce, verifier, rd } = opened.payload;
    const expiredJar = new CookieJar();
    expiredJar.set(h.gatewayUrl, LOGIN_STATE_COOKIE, await sealer.seal('login', { state, nonce, verifier, rd }, Math.floor(Date.now() / 1000) - 120));
    const expired = await request(h.fetch, expiredJar, callbackUrl);
    expect(expired.status).toBe(400);
    expect(JSON.parse(expired.body)).toMatchObject({ reason: 'login-state-expired' });
  });

  test('an IdP error on the callback is reported (access_denied -> 403)', async () => {
    const { jar, callbackUrl } = await startFlow();
    const url = new URL(callbackUrl);
    const denied = new URL(`${h.gatewayUrl}/oauth2/callback`);
    denied.searchParams.set('error', 'access_denied');
    denied.searchParams.set('state', url.searchParams.get('state')!);
    const answer = await request(h.fetch, jar, denied.toString(), { headers: { accept: 'text/html' } });
    expect(answer.status).toBe(403);
    expect(answer.body).toContain('The identity provider reported &quot;access_denied&quot;.');
  });
});

describe('refresh cookie refusals', () => {
  test('tampered, expired and wrong-purpose refresh cookies get 401 JSON and cleared cookies', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    remember(jar);
    const refresh = jar.get(h.gatewayUrl, REFRESH_COOKIE)!;
    const sealer = sealerFor(h.cookieKeys);
    const opened = await sealer.open<{ sid: string; sub: string; k: string; g: number }>('refresh', refresh);
    if (!opened.ok) throw new Error(opened.reason);
    // The session key that opens the server-side record must never be logged either.
    sensitive.add(opened.payload.k);
    const { sid, sub, k, g } = opened.payload;
    const cases: Array<[string, string]> = [
      ['refresh-cookie-invalid', tamper(refresh)],
      ['refresh-cookie-expired', await sealer.seal('refresh', { sid, sub, k, g }, Math.floor(Date.now() / 1000) - 120)],
      ['refresh-cookie-wrong-purpose', await sealer.seal('login', { sid, sub, k, g }, Math.floor(Date.now() / 1000) + 120)],
      ['refresh-cookie-invalid', 'not-a-jwe'],
      // The format before server-side records (the refresh token inside the cookie): sign in again.
      ['refresh-cookie-outdated', await sealer.seal('refresh', { rt: 'an-old-refresh-token', sid, sub }, Math.floor(Date.now() / 1000) + 120)],
      // Another session key does not open the record.
      [
        'session-record-unreadable',
        await sealer.seal('refresh', { sid, sub, k: randomBytes(32).toString('base64url'), g }, Math.floor(Date.now() / 1000) + 120),
      ],
    ];
    for (const [reason, value] of cases) {
      const caseJar = new CookieJar();
      caseJar.set(h.gatewayUrl, REFRESH_COOKIE, value);
      const answer = await request(h.fetch, caseJar, `${h.gatewayUrl}/oauth2/session`, { method: 'POST' });
      expect({ reason, status: answer.status }).toEqual({ reason, status: 401 });
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'login_required', reason });
      expect(answer.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=;`))).toBe(true);
    }
    // The genuine cookie still works.
    const ok = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/session`, { method: 'POST' });
    expect(ok.status).toBe(200);
    remember(jar);
    sensitive.add(JSON.parse(ok.body).session);
  });
});

describe('IdP down or slow', () => {
  test('IdP unreachable -> 502 with a reason, for API callers and browsers', async () => {
    const closed = await freePort();
    const other = await h.startAnother({ LG_IDP_ISSUER: `https://127.0.0.1:${closed}` });
    otherLogs.push(other.logs.lines);
    const api = await request(h.fetch, new CookieJar(), `${other.url}/oauth2/start`);
    expect(api.status).toBe(502);
    expect(JSON.parse(api.body)).toMatchObject({ error: 'idp_unavailable', reason: 'idp-unreachable' });
    const page = await request(h.fetch, new CookieJar(), `${other.url}/oauth2/start`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(502);
    expect(page.body).toContain('the IdP could not be reached');
    expect(other.logs.audits().some((e) => e.reason === 'idp-unreachable' && e.status === 502)).toBe(true);
    await other.stop();
  });

  test('IdP slower than the bound -> 504 (discovery and token endpoint)', async () => {
    const other = await h.startAnother({ LG_IDP_TIMEOUT_MS: '300' });
    otherLogs.push(other.logs.lines);
    await h.idp.delay(3000, ['/.well-known']);
    try {
      const start = await request(h.fetch, new CookieJar(), `${other.url}/oauth2/start`);
      expect(start.status).toBe(504);
      expect(JSON.parse(start.body)).toMatchObject({ error: 'idp_timeout', reason: 'idp-timeout' });
    } finally {
      await h.idp.delay(0);
    }
    // Discovery failed above and is retried now that the IdP answers.
    expect((await request(h.fetch, new CookieJar(), `${other.url}/oauth2/start`)).status).toBe(302);
    await other.stop();

    const refreshJar = new CookieJar();
    await login(h, refreshJar, 'alice');
    remember(refreshJar);
    const slowService = await h.startAnother({ LG_IDP_TIMEOUT_MS: '300' });
    otherLogs.push(slowService.logs.lines);
    // Warm the discovery first, then slow the token endpoint only.
    expect((await request(h.fetch, new CookieJar(), `${slowService.url}/oauth2/start`)).status).toBe(302);
    await h.idp.delay(3000, ['/token']);
    try {
      refreshJar.set(slowService.url, REFRESH_COOKIE, refreshJar.get(h.gatewayUrl, REFRESH_COOKIE)!);
      const refreshed = await request(h.fetch, refreshJar, `${slowService.url}/oauth2/session`, { method: 'POST' });
      expect(refreshed.status).toBe(504);
      expect(JSON.parse(refreshed.body)).toMatchObject({ reason: 'idp-timeout' });
      // A transient IdP failure does not log the user out.
      expect(refreshed.setCookies).toEqual([]);
    } finally {
      await h.idp.delay(0);
    }
    await slowService.stop();
  });
});

describe('unknown key ids', () => {
  test('a cookie under an unknown kid re-reads the cookie key set once, however many arrive', async () => {
    const other = await h.startAnother({});
    otherLogs.push(other.logs.lines);
    const cookieReads = () => h.model.calls.filter((c) => c.operation === 'GetSecretValue' && c.input.SecretId === h.secretArns.cookie).length;
    const before = cookieReads();
    // First use reads the key set.
    expect((await request(h.fetch, new CookieJar(), `${other.url}/oauth2/start`)).status).toBe(302);
    expect(cookieReads()).toBe(before + 1);

    // Rotation elsewhere: a new current key that this container has not seen.
    const rotated: CookieKeySetSecret = {
      ...h.cookieKeys,
      keys: [
        {
          kid: `cookie-new-${randomBytes(4).toString('hex')}`,
          status: 'current',
          createdAt: new Date().toISOString(),
          k: randomBytes(32).toString('base64url'),
        },
        { ...h.cookieKeys.keys[0], status: 'previous' },
      ],
    };
    sensitive.add(rotated.keys[0].k);
    h.model.putSecretValue({ SecretId: h.secretArns.cookie, SecretString: JSON.stringify(rotated) });
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    remember(jar);
    const refresh = await sealerFor(h.cookieKeys).open<{ sid: string; sub: string; k: string; g: number }>('refresh', jar.get(h.gatewayUrl, REFRESH_COOKIE)!);
    if (!refresh.ok) throw new Error(refresh.reason);
    sensitive.add(refresh.payload.k);
    const underNewKey = await sealerFor(rotated).seal('refresh', { ...refresh.payload }, Math.floor(Date.now() / 1000) + 600);
    const newKeyJar = new CookieJar();
    newKeyJar.set(other.url, REFRESH_COOKIE, underNewKey);
    const accepted = await request(h.fetch, newKeyJar, `${other.url}/oauth2/session`, { method: 'POST' });
    expect(accepted.status).toBe(200);
    remember(newKeyJar);
    expect(cookieReads()).toBe(before + 2);

    // A flood of bogus kids: refused, and no further reads within the re-read interval.
    const bogus = { ...rotated, keys: [{ kid: 'bogus', status: 'current' as const, createdAt: '', k: randomBytes(32).toString('base64url') }] };
    for (let i = 0; i < 25; i += 1) {
      const forged = await sealerFor({ ...bogus, keys: [{ ...bogus.keys[0], kid: `bogus-${i}` }] }).seal(
        'refresh',
        { sid: 's', sub: 'alice', k: randomBytes(32).toString('base64url'), g: 1 },
        Math.floor(Date.now() / 1000) + 600,
      );
      const floodJar = new CookieJar();
      floodJar.set(other.url, REFRESH_COOKIE, forged);
      const answer = await request(h.fetch, floodJar, `${other.url}/oauth2/session`, { method: 'POST' });
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.body).reason).toBe('refresh-cookie-unknown-key');
    }
    expect(cookieReads()).toBe(before + 2);
    h.model.putSecretValue({ SecretId: h.secretArns.cookie, SecretString: JSON.stringify(h.cookieKeys) });
    await other.stop();
  });
});

describe('configuration', () => {
  test('an invalid configuration is reported once at start and every request gets a 503 that says so', async () => {
    const lines: string[] = [];
    const service = createAuthService(
      {
        ...h.environment,
        LG_PUBLIC_BASE_URL: 'http://looker.example.com/app',
        LG_SESSION_TTL_SECONDS: 'ten',
        LG_MAPPING_RULES: '{"rules": [{"name": "x", "match": {}, "grant": {"roles": ["R"]}}]}',
      },
      { secretSource: new StaticSecretSource(), logSink: { write: (l) => void lines.push(l) } },
    );
    expect(lines).toHaveLength(1);
    const logged = JSON.parse(lines[0]) as { level: string; problems: string[] };
    expect(logged.level).toBe('error');
    expect(logged.problems).toEqual([
      expect.stringContaining('LG_PUBLIC_BASE_URL="http://looker.example.com/app" must use https'),
      expect.stringContaining('LG_PUBLIC_BASE_URL="http://looker.example.com/app" must be an origin without a path'),
      expect.stringContaining('LG_SESSION_TTL_SECONDS="ten" is invalid: expected a whole number from 5 to 86400'),
      expect.stringContaining('LG_MAPPING_RULES Invalid claim mapping rules: rule #1 ("x"): match is empty'),
    ]);
    for (const accept of ['application/json', 'text/html']) {
      const answer = await service.handle(apiGatewayGetEvent('/oauth2/start', { accept }));
      expect(answer.statusCode).toBe(503);
      expect(answer.body).toContain('configuration is invalid');
    }
    const health = await service.handle(apiGatewayGetEvent('/oauth2/healthz'));
    expect(health.statusCode).toBe(503);
    // Logged once; each request adds only its audit event.
    expect(lines.filter((l) => l.includes('"type":"log"'))).toHaveLength(1);
  });

  test('a secret that cannot be read, or a key set still at its seed value, gives a 503 with the reason (not a 500)', async () => {
    const missing = await h.startAnother({ LG_COOKIE_KEYS_SECRET_ARN: 'lg/does-not-exist' });
    otherLogs.push(missing.logs.lines);
    const answer = await request(h.fetch, new CookieJar(), `${missing.url}/oauth2/start`);
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toMatchObject({ reason: 'secrets-unavailable' });
    expect(missing.logs.lines.some((l) => l.includes('Reading secret lg/does-not-exist failed'))).toBe(true);
    await missing.stop();

    const seedArn = h.model.createSecret({ Name: 'lg/seed-signing', SecretString: seedSecretValue(SECRET_KINDS.signingKeys) }).ARN;
    // No wait for first keys here (test/auth/first-keys.test.ts covers the wait).
    const seeded = await h.startAnother({ LG_SIGNING_KEYS_SECRET_ARN: seedArn, LG_FIRST_KEYS_WAIT_SECONDS: '0' });
    otherLogs.push(seeded.logs.lines);
    const jwks = await request(h.fetch, new CookieJar(), `${seeded.url}/oauth2/jwks.json`);
    expect(jwks.status).toBe(503);
    expect(JSON.parse(jwks.body)).toMatchObject({ reason: 'keys-not-ready' });
    await seeded.stop();
  });

  test('a missing variable names the variable and the fix', async () => {
    const lines: string[] = [];
    const { LG_IDP_ISSUER: _removed, ...rest } = h.environment;
    void _removed;
    createAuthService(rest, { secretSource: new StaticSecretSource(), logSink: { write: (l) => void lines.push(l) } });
    expect(lines[0]).toContain('LG_IDP_ISSUER is not set: set it to the IdP issuer URL');
  });
});

describe('routes behind a stage or base path', () => {
  test.each([
    ['proxy resource at the root', { resource: '/{proxy+}', path: '/oauth2/jwks.json', pathParameters: { proxy: 'oauth2/jwks.json' } }],
    ['proxy resource under /oauth2', { resource: '/oauth2/{proxy+}', path: '/oauth2/jwks.json', pathParameters: { proxy: 'jwks.json' } }],
    ['literal resource', { resource: '/oauth2/jwks.json', path: '/oauth2/jwks.json', pathParameters: null }],
    ['custom domain base path in path', { resource: '/{proxy+}', path: '/gateway/oauth2/jwks.json', pathParameters: { proxy: 'oauth2/jwks.json' } }],
    ['stage only in requestContext.path', { resource: undefined as unknown as string, path: '/prod/oauth2/jwks.json', pathParameters: null }],
    ['trailing slash', { resource: '/{proxy+}', path: '/oauth2/jwks.json/', pathParameters: { proxy: 'oauth2/jwks.json/' } }],
  ])('%s', (_name, shape) => {
    expect(resolveRoute({ ...apiGatewayGetEvent('/x'), ...shape } as APIGatewayProxyEvent)).toBe('/oauth2/jwks.json');
  });

  test('an unknown path is 404, not 500', async () => {
    const service = createAuthService(h.environment, { secretSource: new StaticSecretSource(), logSink: { write: () => undefined } });
    expect((await service.handle(apiGatewayGetEvent('/oauth2/nope'))).statusCode).toBe(404);
    expect((await service.handle(apiGatewayGetEvent('/prod/oauth2/healthz'))).statusCode).toBe(200);
  });

  test('several Set-Cookie headers travel in multiValueHeaders', async () => {
    const jar = new CookieJar();
    const { callback } = await login(h, jar, 'alice');
    remember(jar);
    // Session, assertion, the cleared login cookie, refresh.
    expect(callback.setCookies.map((c) => c.split('=')[0]).sort()).toEqual([ASSERTION_COOKIE, LOGIN_STATE_COOKIE, REFRESH_COOKIE, SESSION_COOKIE].sort());
  });
});

describe('audit events', () => {
  test('carry the request id HAProxy sent, the user, the matched rules and the reason', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    remember(jar);
    const requestId = `haproxy-${randomBytes(6).toString('hex')}`;
    const answer = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/session`, { method: 'POST', headers: { 'X-Request-Id': requestId } });
    expect(answer.status).toBe(200);
    remember(jar);
    const event = h.logs.audits().find((e) => e.requestId === requestId);
    expect(event).toMatchObject({
      type: 'audit',
      service: 'auth',
      event: 'refresh',
      outcome: 'success',
      reason: 'refreshed-rotated',
      route: '/oauth2/session',
      status: 200,
      user: { sub: 'alice', email: 'alice@emea.example.com' },
      matchedRules: ['analysts', 'emea'],
      roles: ['Viewer'],
      groups: ['Analysts'],
    });
    expect(typeof event!.time).toBe('string');
    expect(typeof event!.sessionId).toBe('string');
    // Without X-Request-Id, API Gateway's request id is used.
    const bad = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}/oauth2/session`, { method: 'POST' });
    const fallback = JSON.parse(bad.body).requestId as string;
    expect(h.logs.audits().find((e) => e.requestId === fallback)).toMatchObject({ event: 'refresh', outcome: 'failure', reason: 'refresh-cookie-missing' });
  });

  test('every decision of this file was audited and no log line contains a token, code, cookie or secret', () => {
    const lines = [...h.logs.lines, ...otherLogs.flat()];
    const events = new Set(
      lines
        .map((l) => JSON.parse(l) as { type: string; event?: string })
        .filter((e) => e.type === 'audit')
        .map((e) => e.event),
    );
    for (const name of ['login', 'refresh']) expect(events).toContain(name);
    expect(sensitive.size).toBeGreaterThan(15);
    const all = lines.join('\n');
    for (const value of sensitive) {
      expect(value.length).toBeGreaterThan(10);
      expect(all.includes(value)).toBe(false);
    }
  });
});
