/**
 * `rd` open-redirect corpus (test/auth/corpus/open-redirect.ts): every case gets the
 * answer it states from the check itself and, over HTTP, from /oauth2/start of the
 * service (400 with the reason and no login cookie, or a redirect to the IdP that carries
 * exactly the stated path back). The bundled handler runs the corpus through /oauth2/start
 * and /oauth2/refresh in security-bundle.test.ts.
 */
import { jwtDecrypt } from 'jose';
import { checkReturnTo } from '../../core/auth/return-to';
import { LOGIN_STATE_COOKIE } from '../../core/session-contract';
import { OPEN_REDIRECT_CASES } from './corpus/open-redirect';
import { CookieJar, Harness, request, startHarness } from './support/harness';

const refused = OPEN_REDIRECT_CASES.filter((c) => 'refuse' in c.expected);
const accepted = OPEN_REDIRECT_CASES.filter((c) => 'path' in c.expected);
const label = (payload: string) => JSON.stringify(payload).slice(0, 70);

describe('checkReturnTo over the corpus', () => {
  test('the corpus has hundreds of attack payloads in every class, and same-origin paths', () => {
    expect(refused.length).toBeGreaterThanOrEqual(500);
    expect(accepted.length).toBeGreaterThanOrEqual(15);
    const classes = new Set(refused.map((c) => c.class));
    for (const klass of [
      'scheme-relative',
      'backslash',
      'encoded slash',
      'double-encoded',
      'triple-encoded',
      'dot-segment',
      'encoded dot-segment',
      'whitespace',
      'newline',
      'NUL',
      'unicode look-alike',
      'absolute or pseudo scheme',
      'issue 11',
      'user-info',
    ]) {
      expect(classes).toContain(klass);
    }
  });

  test.each(refused.map((c) => [c.class, label(c.payload), c.payload]))('%s: refuses %s', (_class, _label, payload) => {
    const result = checkReturnTo(payload);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(/^rd /);
  });

  test.each(accepted.map((c) => [label(c.payload), c.payload, (c.expected as { path: string }).path]))('accepts %s as is', (_label, payload, path) => {
    expect(checkReturnTo(payload)).toEqual({ ok: true, path });
  });

  test('issue 11: dot-segments resolved after the checks no longer yield //evil.com', () => {
    for (const payload of ['/.//evil.com', '/a/..//evil.com', '/%2e//evil.com']) {
      // What the old check returned: new URL(value, base).pathname, i.e. "//evil.com".
      expect(new URL(payload, 'https://gateway.invalid').pathname).toBe('//evil.com');
      expect(checkReturnTo(payload)).toMatchObject({ ok: false });
    }
  });

  test('whatever is accepted, the target is the value itself and resolves on the same origin from any page', () => {
    for (const c of accepted) {
      const result = checkReturnTo(c.payload);
      if (!result.ok) throw new Error(`${c.payload} was refused: ${result.reason}`);
      expect(result.path).toBe(c.payload);
      for (const base of ['https://gw.example.com/', 'https://gw.example.com/oauth2/callback?code=x', 'https://gw.example.com/a/b/c']) {
        expect(new URL(result.path, base).origin).toBe('https://gw.example.com');
      }
    }
  });

  test('a missing rd means the home page', () => {
    expect(checkReturnTo(undefined)).toEqual({ ok: true, path: '/' });
    expect(checkReturnTo('')).toEqual({ ok: true, path: '/' });
  });
});

describe('/oauth2/start with the corpus', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  test('every refused payload gets 400 with the reason, no redirect and no login cookie; one audit event each', async () => {
    for (const c of refused) {
      const jar = new CookieJar();
      const answer = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/start?rd=${encodeURIComponent(c.payload)}`);
      expect({ payload: c.payload, status: answer.status }).toEqual({ payload: c.payload, status: 400 });
      const body = JSON.parse(answer.body) as { error: string; reason: string; message: string };
      expect(body).toMatchObject({ error: 'invalid_request', reason: 'bad-return-to' });
      expect(body.message).toMatch(/The return address is not accepted: rd /);
      expect(answer.location).toBeUndefined();
      expect(jar.get(h.gatewayUrl, LOGIN_STATE_COOKIE)).toBeUndefined();
    }
    const audits = h.logs.audits().filter((e) => e.reason === 'bad-return-to');
    expect(audits).toHaveLength(refused.length);
    expect(audits.every((e) => e.status === 400 && typeof e.detail === 'string')).toBe(true);
  });

  test('every accepted path is sealed in the login cookie exactly as stated', async () => {
    const key = Buffer.from(h.cookieKeys.keys.find((k) => k.status === 'current')!.k, 'base64url');
    for (const c of accepted) {
      const jar = new CookieJar();
      const answer = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/start?rd=${encodeURIComponent(c.payload)}`);
      expect({ payload: c.payload, status: answer.status }).toEqual({ payload: c.payload, status: 302 });
      expect(new URL(answer.location!).origin).toBe(h.idp.issuer);
      const { payload } = await jwtDecrypt(jar.get(h.gatewayUrl, LOGIN_STATE_COOKIE)!, key);
      expect(payload.rd).toBe((c.expected as { path: string }).path);
    }
  });

  test('a browser gets the reason on an HTML page', async () => {
    const answer = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}/oauth2/start?rd=${encodeURIComponent('//evil.example')}`, {
      headers: { accept: 'text/html' },
    });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toContain('text/html');
    expect(answer.body).toContain('starts with &quot;//&quot;');
  });

  test('a good rd redirects to the IdP with PKCE S256, state and nonce', async () => {
    const jar = new CookieJar();
    const answer = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/start?rd=${encodeURIComponent('/dashboards/1')}`);
    expect(answer.status).toBe(302);
    const location = new URL(answer.location!);
    expect(location.origin).toBe(h.idp.issuer);
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(location.searchParams.get('state')).toBeTruthy();
    expect(location.searchParams.get('nonce')).toBeTruthy();
    expect(location.searchParams.get('redirect_uri')).toBe(`${h.gatewayUrl}/oauth2/callback`);
    expect(jar.get(h.gatewayUrl, LOGIN_STATE_COOKIE)).toMatch(/^[\w-]+\.\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(location.searchParams.has('access_type')).toBe(false);
  });

  test('extra authorization parameters (e.g. Google offline access) are added', async () => {
    const other = await h.startAnother({ LG_IDP_AUTHORIZATION_PARAMS: '{"access_type": "offline", "prompt": "consent"}' });
    try {
      const answer = await request(h.fetch, new CookieJar(), `${other.url}/oauth2/start`);
      const location = new URL(answer.location!);
      expect(location.searchParams.get('access_type')).toBe('offline');
      expect(location.searchParams.get('prompt')).toBe('consent');
      expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    } finally {
      await other.stop();
    }
  });
});
