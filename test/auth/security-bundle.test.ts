/**
 * Issue 11, the auth-service half, through the BUNDLED handler (the esbuild bundle the
 * construct deploys, its own AWS SDK clients answered by the Secrets Manager and DynamoDB
 * models, the real OpenID provider):
 *   - the open-redirect corpus through /oauth2/start and /oauth2/refresh: every answer
 *     is the one the case states, and no Location ever leaves the origin (item 2);
 *   - the JWT forgery corpus against the service's own session checks, refresh
 *     navigation and logout: each forgery refused, each control accepted; a re-encoded
 *     ECDSA signature of a revoked sid stays revoked (items 6, 7);
 *   - logout then replay of the refresh cookie refused, and seen by a second instance
 *     sharing the table (item 8).
 */
import { decodeJwt } from 'jose';
import { AUTH_PATHS, REFRESH_COOKIE, SESSION_COOKIE, type RevocationList } from '../../core/session-contract';
import { buildForgeryCorpus, malleate, type ForgeryCase } from './corpus/jwt-forgeries';
import { OPEN_REDIRECT_CASES } from './corpus/open-redirect';
import { startBundledHarness, type BundledHarness } from './support/bundle';
import { CookieJar, login, request, type Harness } from './support/harness';

let b: BundledHarness;
let h: Harness;

beforeAll(async () => {
  b = await startBundledHarness({ revocationTable: true });
  h = b.h;
});

afterAll(async () => {
  await b?.stop();
});

/** Where a Location sends the browser, resolved as a browser resolves it against the page it came from. */
function destination(location: string | undefined): string | undefined {
  return location === undefined ? undefined : new URL(location, `${h.gatewayUrl}/oauth2/refresh`).origin;
}

async function revokedSids(): Promise<string[]> {
  const answer = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}${AUTH_PATHS.revocations}`);
  expect(answer.status).toBe(200);
  return (JSON.parse(answer.body) as RevocationList).revoked.map((e) => e.sid);
}

describe('open-redirect corpus through the bundled handler', () => {
  test('/oauth2/start: refused cases get 400 and no Location; accepted ones go to the IdP only', async () => {
    const outcomes: string[] = [];
    for (const c of OPEN_REDIRECT_CASES) {
      const answer = await request(h.fetch, new CookieJar(), `${h.gatewayUrl}${AUTH_PATHS.start}?rd=${encodeURIComponent(c.payload)}`);
      const expected = 'refuse' in c.expected ? { status: 400, to: undefined } : { status: 302, to: new URL(h.idp.issuer).origin };
      if (answer.status !== expected.status || destination(answer.location) !== expected.to)
        outcomes.push(`${JSON.stringify(c.payload)} -> ${answer.status} ${answer.location}`);
    }
    expect(outcomes).toEqual([]);
  });

  test('/oauth2/refresh with a current session: refused cases get 400; accepted ones land on exactly the stated path of this origin', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'alice');
    const session = jar.get(h.gatewayUrl, SESSION_COOKIE)!;
    const outcomes: string[] = [];
    for (const c of OPEN_REDIRECT_CASES) {
      const caseJar = new CookieJar();
      caseJar.set(h.gatewayUrl, SESSION_COOKIE, session);
      const answer = await request(h.fetch, caseJar, `${h.gatewayUrl}${AUTH_PATHS.refresh}?rd=${encodeURIComponent(c.payload)}`);
      if (answer.location !== undefined && destination(answer.location) !== new URL(h.gatewayUrl).origin)
        outcomes.push(`LEFT THE ORIGIN: ${JSON.stringify(c.payload)} -> ${answer.location}`);
      const expected = 'refuse' in c.expected ? { status: 400, location: undefined } : { status: 302, location: `${h.gatewayUrl}${c.expected.path}` };
      if (answer.status !== expected.status || answer.location !== expected.location)
        outcomes.push(`${JSON.stringify(c.payload)} -> ${answer.status} ${answer.location}`);
    }
    expect(outcomes).toEqual([]);
    const refusals = b.audits().filter((e) => e.route === AUTH_PATHS.refresh && e.reason === 'bad-return-to');
    expect(refusals).toHaveLength(OPEN_REDIRECT_CASES.filter((c) => 'refuse' in c.expected).length);
  });
});

describe('JWT forgery corpus against the bundled handler', () => {
  let corpus: ForgeryCase[];
  beforeAll(async () => {
    corpus = await buildForgeryCorpus({
      keys: h.signingKeys,
      issuer: `${h.gatewayUrl}/oauth2`,
      audience: 'looker-gateway',
      now: Math.floor(Date.now() / 1000),
      sessionTtlSeconds: 600,
      clockSkewSeconds: 30,
    });
  });

  test('the corpus covers every class, with controls', () => {
    expect(corpus.filter((c) => c.expected === 'refused').length).toBeGreaterThanOrEqual(45);
    expect(corpus.filter((c) => c.expected === 'accepted').length).toBe(3);
    for (const word of [
      'alg none',
      'HS256',
      'RS256',
      'attacker ES256 key under the real current kid',
      'embedded jwk',
      'jku',
      'x5c',
      'stripped',
      'expired',
      'wrong issuer',
      'wrong audience',
      'upstream assertion',
      'typ missing',
    ]) {
      expect(corpus.some((c) => c.name.includes(word))).toBe(true);
    }
  });

  test('refresh navigation: a forged session is never taken for a current one (no IdP-free redirect back); the controls are', async () => {
    const wrong: string[] = [];
    for (const c of corpus) {
      const jar = new CookieJar();
      jar.set(h.gatewayUrl, SESSION_COOKIE, c.token);
      const answer = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.refresh}?rd=%2Fprobe`);
      const got =
        answer.location === `${h.gatewayUrl}/probe`
          ? 'accepted'
          : answer.location === `${h.gatewayUrl}${AUTH_PATHS.start}?rd=%2Fprobe`
            ? 'refused'
            : `${answer.status} ${answer.location}`;
      if (got !== c.expected) wrong.push(`${c.name}: expected ${c.expected}, got ${got}`);
    }
    expect(wrong).toEqual([]);
  });

  test('logout: a forged session names no sid to revoke (no one is signed out by a forgery); the controls are revoked', async () => {
    for (const c of corpus) {
      const jar = new CookieJar();
      jar.set(h.gatewayUrl, SESSION_COOKIE, c.token);
      const answer = await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl } });
      expect({ name: c.name, status: answer.status }).toEqual({ name: c.name, status: 303 });
    }
    const revoked = new Set(await revokedSids());
    const wrong = corpus.filter((c) => revoked.has(c.sid) !== (c.expected === 'accepted')).map((c) => `${c.name}: expected ${c.expected}`);
    expect(wrong).toEqual([]);
    // The malleated control shares nothing with the genuine one but its signature's r: its own sid was revoked through it.
    const forgedLogouts = b
      .audits()
      .filter((e) => e.event === 'logout' && typeof e.sessionId === 'string' && corpus.some((c) => c.sid === e.sessionId && c.expected === 'refused'));
    expect(forgedLogouts).toEqual([]);
  });

  test('a revoked session stays revoked under its other ECDSA encoding (revocation is keyed by sid, not by the token)', async () => {
    const jar = new CookieJar();
    await login(h, jar, 'bob');
    const token = jar.get(h.gatewayUrl, SESSION_COOKIE)!;
    const [header, payload, signature] = token.split('.');
    const twin = `${header}.${payload}.${malleate(signature)}`;
    expect(twin).not.toBe(token);
    // Before the logout the twin is as good as the original.
    const before = new CookieJar();
    before.set(h.gatewayUrl, SESSION_COOKIE, twin);
    expect((await request(h.fetch, before, `${h.gatewayUrl}${AUTH_PATHS.refresh}?rd=%2Fx`)).location).toBe(`${h.gatewayUrl}/x`);
    expect((await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl } })).status).toBe(303);
    expect(await revokedSids()).toContain(decodeJwt(token).sid);
    const after = new CookieJar();
    after.set(h.gatewayUrl, SESSION_COOKIE, twin);
    expect((await request(h.fetch, after, `${h.gatewayUrl}${AUTH_PATHS.refresh}?rd=%2Fx`)).location).toBe(`${h.gatewayUrl}${AUTH_PATHS.start}?rd=%2Fx`);
  });
});

describe('logout through the bundled handler', () => {
  test('logout, then the refresh cookie replayed at the bundle and at a second instance sharing the table: refused with session-revoked', async () => {
    const other = await h.startAnother({});
    try {
      const jar = new CookieJar();
      await login(h, jar, 'alice');
      const refreshCookie = jar.get(h.gatewayUrl, REFRESH_COOKIE)!;
      const sid = decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!).sid as string;
      expect((await request(h.fetch, jar, `${h.gatewayUrl}${AUTH_PATHS.logout}`, { method: 'POST', headers: { origin: h.gatewayUrl } })).status).toBe(303);
      for (const base of [h.gatewayUrl, other.url]) {
        const replay = new CookieJar();
        replay.set(base, REFRESH_COOKIE, refreshCookie);
        const answer = await request(h.fetch, replay, `${base}${AUTH_PATHS.session}`, { method: 'POST' });
        expect({ base, status: answer.status, reason: JSON.parse(answer.body).reason }).toEqual({ base, status: 401, reason: 'session-revoked' });
      }
      expect(b.audits().find((e) => e.event === 'refresh' && e.reason === 'session-revoked' && e.sessionId === sid)).toMatchObject({ status: 401 });
      // The bundle wrote through its own DynamoDB client: the model saw consistent reads only.
      const reads = h.dynamo!.calls.filter((c) => c.operation !== 'PutItem');
      expect(reads.length).toBeGreaterThan(0);
      expect(reads.every((c) => c.input.ConsistentRead === true)).toBe(true);
    } finally {
      await other.stop();
    }
  });
});
