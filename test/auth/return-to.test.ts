/**
 * `rd` open-redirect corpus: every payload is rejected by the check and, over HTTP, by
 * /oauth2/start with a 400 that says why (no IdP call, no login cookie).
 */
import { checkReturnTo } from '../../lib/auth/return-to';
import { LOGIN_STATE_COOKIE } from '../../lib/session-contract';
import { CookieJar, Harness, request, startHarness } from './support/harness';

/** Values as the handler receives them (API Gateway has decoded the query string once). */
export const OPEN_REDIRECT_PAYLOADS: readonly string[] = [
  '//evil.example',
  '///evil.example',
  '////evil.example/x',
  '/\\evil.example',
  '\\/evil.example',
  '\\\\evil.example',
  '/\\/evil.example',
  'http://evil.example',
  'https://evil.example/path',
  'HTTPS://evil.example',
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'vbscript:msgbox(1)',
  'evil.example',
  '@evil.example',
  'user@evil.example',
  '%2F%2Fevil.example',
  '/%2Fevil.example',
  '%2f%2fevil.example',
  '/%5Cevil.example',
  '%5C%5Cevil.example',
  '%252F%252Fevil.example',
  '/%252Fevil.example',
  '/%255Cevil.example',
  '%25252F%25252Fevil.example',
  '/\t/evil.example',
  '/%09/evil.example',
  '/%0A/evil.example',
  '/%0D%0ALocation:%20https://evil.example',
  '/%00/evil.example',
  ' //evil.example',
  '/ /evil.example',
  '\t//evil.example',
  '/\u3002evil.example',
  '/%EF%BC%8Fevil.example',
  '/\uff0fevil.example',
  '/%E2%80%AE/evil.example',
  '/%E2%81%A0/evil.example',
  'http:evil.example',
  'https:/evil.example',
  '/%',
  '/%E0%A4%A',
  `/${'a'.repeat(2100)}`,
];

describe('checkReturnTo', () => {
  test('the corpus has at least 30 payloads', () => {
    expect(OPEN_REDIRECT_PAYLOADS.length).toBeGreaterThanOrEqual(30);
  });

  test.each(OPEN_REDIRECT_PAYLOADS.map((p) => [JSON.stringify(p).slice(0, 60), p]))('rejects %s', (_label, payload) => {
    const result = checkReturnTo(payload);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(/^rd /);
  });

  test.each([
    ['/', '/'],
    ['/dashboards/12', '/dashboards/12'],
    ['/explore/model/view?fields=a.b&f[x]=%2Fpath', '/explore/model/view?fields=a.b&f[x]=%2Fpath'],
    ['/looks/3?q=a%20b#frag', '/looks/3?q=a%20b#frag'],
    ['/x?next=https://elsewhere.example', '/x?next=https://elsewhere.example'],
    ['/caf%C3%A9', '/caf%C3%A9'],
  ])('accepts the same-origin path %s', (value, expected) => {
    expect(checkReturnTo(value)).toEqual({ ok: true, path: expected });
  });

  test('a missing rd means the home page', () => {
    expect(checkReturnTo(undefined)).toEqual({ ok: true, path: '/' });
    expect(checkReturnTo('')).toEqual({ ok: true, path: '/' });
  });
});

describe('/oauth2/start with a bad rd', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  test('every payload gets 400 with the reason, and no login cookie', async () => {
    for (const payload of OPEN_REDIRECT_PAYLOADS) {
      const jar = new CookieJar();
      const answer = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/start?rd=${encodeURIComponent(payload)}`);
      expect({ payload, status: answer.status }).toEqual({ payload, status: 400 });
      const body = JSON.parse(answer.body) as { error: string; reason: string; message: string };
      expect(body).toMatchObject({ error: 'invalid_request', reason: 'bad-return-to' });
      expect(body.message).toMatch(/The return address is not accepted: rd /);
      expect(answer.location).toBeUndefined();
      expect(jar.get(h.gatewayUrl, LOGIN_STATE_COOKIE)).toBeUndefined();
    }
    const audits = h.logs.audits().filter((e) => e.reason === 'bad-return-to');
    expect(audits).toHaveLength(OPEN_REDIRECT_PAYLOADS.length);
  });

  test('a browser gets the reason on an HTML page', async () => {
    const answer = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}/oauth2/start?rd=${encodeURIComponent('//evil.example')}`, { headers: { accept: 'text/html' } });
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
