/**
 * Forged and malformed tokens against the real haproxy 3.0 with the rendered config, as one
 * corpus: each case builds a token the way an attacker could (alg none, HS256 keyed with the
 * public key, an attacker's key under a real kid, embedded jwk/jku/x5c headers, stripped or
 * re-encoded signatures, wrong claims, an upstream assertion presented as the session) and
 * states the answer. Then the upstream assertion's own corpus (forwarded only when it is
 * valid for this very session), ECDSA malleability against the revocation list, and the
 * verification cache, which must not bring back a revoked or expired token.
 */
import { createHmac, createSign, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, JWTPayload } from 'jose';
import { GATEWAY_FILES } from '../../core/haproxy';
import { ASSERTION_TOKEN_TYPE, assertionAudience } from '../../core/session-contract';
import { createCa } from '../../dev/pki';
import { AUDIENCE, DEFAULT_CLAIMS, GatewayEnv, ISSUER, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';
import { GatewayClient } from '../../dev/proxy-client';

let env: GatewayEnv;
let client: GatewayClient;

beforeAll(async () => {
  env = await startGatewayEnv({
    lookerNodes: 1,
    overrides: (base) => ({ ...base, session: { ...base.session, clockSkewSeconds: 1 }, revocation: { pollSeconds: 1 } }),
  });
  client = env.client();
});

afterAll(async () => {
  await env?.stop();
});

const xhr = { 'x-requested-with': 'XMLHttpRequest', accept: 'application/json' };

function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

function claims(extra: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { ...DEFAULT_CLAIMS, sid: `sid-${randomUUID()}`, iss: ISSUER, aud: AUDIENCE, iat: now, nbf: now - 5, exp: now + 600, ...extra };
}

/** A compact JWS with any header and payload, signed by `sign` over the signing input. */
function compact(header: Record<string, unknown>, payload: JWTPayload, sign: (input: string) => Buffer | string): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const signature = sign(input);
  return `${input}.${typeof signature === 'string' ? signature : b64url(signature)}`;
}

/** P-256 group order: an ECDSA signature (r, s) also verifies as (r, n - s). */
const P256_ORDER = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

function malleate(token: string): string {
  const [h, p, s] = token.split('.');
  const raw = Buffer.from(s, 'base64url');
  const r = raw.subarray(0, 32);
  const sValue = BigInt(`0x${raw.subarray(32).toString('hex')}`);
  const flipped = Buffer.from((P256_ORDER - sValue).toString(16).padStart(64, '0'), 'hex');
  return `${h}.${p}.${b64url(Buffer.concat([r, flipped]))}`;
}

/** The JOSE signature (r || s) of an ES256 token, as the ASN.1 DER that OpenSSL uses natively. */
function derSignature(token: string): string {
  const raw = Buffer.from(token.split('.')[2], 'base64url');
  const integer = (bytes: Buffer) => {
    let value = bytes;
    while (value.length > 1 && value[0] === 0 && value[1] < 0x80) value = value.subarray(1);
    if (value[0] >= 0x80) value = Buffer.concat([Buffer.from([0]), value]);
    return Buffer.concat([Buffer.from([0x02, value.length]), value]);
  };
  const body = Buffer.concat([integer(raw.subarray(0, 32)), integer(raw.subarray(32))]);
  return b64url(Buffer.concat([Buffer.from([0x30, body.length]), body]));
}

interface Case {
  readonly name: string;
  readonly token: () => Promise<string>;
  /** 200: served as the session's user; otherwise the status and the reason of the JSON answer. */
  readonly status: number;
  readonly reason?: string;
}

const BAD_SIGNATURE = 'session signature is invalid';
const NOT_A_SESSION = 'the token is not a session token (typ is not JWT)';
const WRONG_ISS_AUD = 'session issuer or audience is wrong';

async function attackerKey(): Promise<{ privateKey: CryptoKey; jwk: Record<string, unknown> }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)) } };
}

async function signedByAttacker(header: Record<string, unknown>, payload: JWTPayload = claims()): Promise<string> {
  const { privateKey } = await attackerKey();
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', ...header }).sign(privateKey);
}

/** Signed by the gateway's current key with exactly these claims (env.mint would set exp, aud, iss itself). */
function signedByGateway(payload: JWTPayload): Promise<string> {
  const key = env.keys.current;
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: key.kid }).sign(key.privateKey);
}

const CORPUS: Case[] = [
  { name: 'a valid session (the control)', token: () => env.mint(claims()), status: 200 },
  { name: 'expired, no refresh cookie', token: () => env.mint(claims(), { expiresIn: -60 }), status: 401, reason: 'session expired' },
  { name: 'nbf in the future', token: () => env.mint(claims(), { notBeforeIn: 300 }), status: 401, reason: 'session is not valid yet' },
  { name: 'another issuer', token: () => env.mint(claims(), { issuer: 'https://evil.test/oauth2' }), status: 401, reason: WRONG_ISS_AUD },
  { name: 'another audience', token: () => env.mint(claims(), { audience: 'someone-else' }), status: 401, reason: WRONG_ISS_AUD },
  // Tokens the gateway's own key signed, with claims in shapes the auth service never mints:
  // what HAProxy makes of them, written down (only the key's holder can make them).
  {
    name: 'the audience in an array with another one (the contract says a string)',
    token: () => signedByGateway(claims({ aud: ['other', AUDIENCE] })),
    status: 401,
    reason: WRONG_ISS_AUD,
  },
  {
    name: 'an array of other audiences',
    token: () => signedByGateway(claims({ aud: ['other', assertionAudience(AUDIENCE)] })),
    status: 401,
    reason: WRONG_ISS_AUD,
  },
  { name: 'no sid claim', token: () => signedByGateway(claims({ sid: undefined })), status: 401, reason: 'session has no exp, nbf or sid claim' },
  { name: 'no exp claim', token: () => signedByGateway(claims({ exp: undefined })), status: 401, reason: 'session has no exp, nbf or sid claim' },
  {
    name: 'exp as a word (json_query reads 0)',
    token: () => signedByGateway(claims({ exp: 'never' as unknown as number })),
    status: 401,
    reason: 'session expired',
  },
  {
    name: 'exp as a string of digits (json_query reads the number)',
    token: () => signedByGateway(claims({ exp: String(Math.floor(Date.now() / 1000) + 600) as unknown as number })),
    status: 200,
  },
  { name: 'exp far in the past as a negative number', token: () => signedByGateway(claims({ exp: -1 })), status: 401, reason: 'session expired' },
  {
    name: 'signed by a key the gateway does not know',
    token: () => env.mint(claims(), { key: env.keys.unknown }),
    status: 401,
    reason: 'session signed by an unknown key',
  },
  {
    name: 'a kid that looks like a path',
    token: () => env.mint(claims(), { key: { ...env.keys.current, kid: '../../keys/session-current.pem' } }),
    status: 401,
    reason: 'session signed by an unknown key',
  },
  { name: 'no kid', token: () => env.mint(claims(), { omitKid: true }), status: 401, reason: BAD_SIGNATURE },
  {
    name: "an attacker's key under the current kid",
    token: () => signedByAttacker({ kid: env.keys.current.kid, typ: 'JWT' }),
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: "the attacker's public key embedded as a jwk header, under the current kid",
    token: async () => {
      const { privateKey, jwk } = await attackerKey();
      return new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: env.keys.current.kid, jwk: jwk as never }).sign(privateKey);
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'an embedded jwk header and no kid',
    token: async () => {
      const { privateKey, jwk } = await attackerKey();
      return new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', typ: 'JWT', jwk: jwk as never }).sign(privateKey);
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: "a jku header pointing at the attacker's key set",
    token: () => signedByAttacker({ kid: env.keys.current.kid, typ: 'JWT', jku: 'https://evil.test/jwks.json' }),
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: "an x5c header with the attacker's self-signed certificate",
    token: async () => {
      const ca = await createCa('attacker');
      const der = ca.cert.replace(/-----[^-]+-----|\s/g, '');
      return new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: env.keys.current.kid, x5c: [der] }).sign(ca.keys.privateKey);
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'alg none, empty signature',
    token: async () => compact({ alg: 'none', typ: 'JWT', kid: env.keys.current.kid }, claims(), () => ''),
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'alg none with a signature',
    token: async () => compact({ alg: 'none', typ: 'JWT', kid: env.keys.current.kid }, claims(), () => Buffer.alloc(64, 7)),
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'HS256 keyed with the public key file',
    token: async () => {
      const pem = readFileSync(path.join(env.dir, GATEWAY_FILES.sessionKey('current')));
      return compact({ alg: 'HS256', typ: 'JWT', kid: env.keys.current.kid }, claims(), (input) => createHmac('sha256', pem).update(input).digest());
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'HS256 keyed with the public JWK',
    token: async () =>
      compact({ alg: 'HS256', typ: 'JWT', kid: env.keys.current.kid }, claims(), (input) =>
        createHmac('sha256', JSON.stringify(env.keys.current.publicJwk)).update(input).digest(),
      ),
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: "RS256 with the attacker's RSA key under the current kid",
    token: async () => {
      const { privateKey } = await generateKeyPair('RS256', { extractable: true });
      return new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: env.keys.current.kid }).sign(privateKey);
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'ES384 claimed in the header',
    token: async () => {
      const { privateKey } = await generateKeyPair('ES384', { extractable: true });
      return new SignJWT(claims()).setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: env.keys.current.kid }).sign(privateKey);
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'the payload changed after signing',
    token: async () => {
      const [h, , s] = (await env.mint(claims())).split('.');
      return `${h}.${b64url(JSON.stringify(claims({ sub: 'admin', roles_csv: 'admin' })))}.${s}`;
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'the header changed after signing (kid of another known key)',
    token: async () => {
      const [, p, s] = (await env.mint(claims())).split('.');
      return `${b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: env.keys.previous.kid }))}.${p}.${s}`;
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  { name: 'the signature stripped', token: async () => `${(await env.mint(claims())).split('.').slice(0, 2).join('.')}.`, status: 401, reason: BAD_SIGNATURE },
  { name: 'two segments only', token: async () => (await env.mint(claims())).split('.').slice(0, 2).join('.'), status: 401, reason: BAD_SIGNATURE },
  {
    name: "another token's signature",
    token: async () => {
      const [h, p] = (await env.mint(claims())).split('.');
      return `${h}.${p}.${(await env.mint(claims())).split('.')[2]}`;
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'the signature re-encoded as padded standard base64',
    token: async () => {
      const [h, p, s] = (await env.mint(claims())).split('.');
      return `${h}.${p}.${Buffer.from(s, 'base64url').toString('base64')}`;
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  {
    name: 'the signature re-encoded as ASN.1 DER',
    token: async () => {
      const token = await env.mint(claims());
      return `${token.split('.').slice(0, 2).join('.')}.${derSignature(token)}`;
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  { name: 'a fourth segment', token: async () => `${await env.mint(claims())}.AAAA`, status: 401, reason: BAD_SIGNATURE },
  { name: 'an upstream assertion presented as the session', token: () => env.mintAssertion(claims()), status: 401, reason: NOT_A_SESSION },
  { name: 'the assertion type with the session audience', token: () => env.mint(claims(), { type: ASSERTION_TOKEN_TYPE }), status: 401, reason: NOT_A_SESSION },
  {
    name: 'no typ header',
    token: async () => {
      const key = env.keys.current;
      return new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: key.kid }).sign(key.privateKey);
    },
    status: 401,
    reason: NOT_A_SESSION,
  },
  {
    name: 'a signature made with node:crypto in DER form under the real key (what a careless signer would send)',
    token: async () => {
      const key = await import('node:crypto').then((c) => c.KeyObject.from(env.keys.current.privateKey));
      return compact({ alg: 'ES256', typ: 'JWT', kid: env.keys.current.kid }, claims(), (input) => createSign('sha256').update(input).sign(key));
    },
    status: 401,
    reason: BAD_SIGNATURE,
  },
  { name: 'not a JWT at all', token: async () => 'this-is-not-a-jwt-at-all', status: 401, reason: BAD_SIGNATURE },
  { name: 'too short', token: async () => 'a.b.c', status: 401, reason: 'session cookie too short or too long' },
  { name: 'too long', token: async () => `${await env.mint(claims())}${'A'.repeat(4200)}`, status: 401, reason: 'session cookie too short or too long' },
  {
    name: 'an ES256 signature malleated (s -> n - s): still the same session (see the revocation test below)',
    token: async () => malleate(await env.mint(claims())),
    status: 200,
  },
];

describe('forged and malformed session tokens', () => {
  test.each(CORPUS.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = env.looker[0].requests.length;
    const response = await client.request('/api/internal/session', { headers: { ...xhr, cookie: sessionCookies(await c.token()) } });
    if (c.status === 200) {
      expect(response.status).toBe(200);
      expect(response.json().headers['x-forwarded-user']).toBe('user-123');
      return;
    }
    expect({ status: response.status, body: response.json() }).toEqual({
      status: c.status,
      body: { error: 'unauthorized', reason: c.reason, requestId: response.headers['x-request-id'] },
    });
    expect(env.looker[0].requests.length).toBe(before);
  });

  test('every refusal is in the access log with its reason, never as a 500', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const lines = env.logLines().filter((l) => l.frontend === 'gateway' && l.path === '/api/internal/session');
    expect(lines.length).toBeGreaterThanOrEqual(CORPUS.length);
    for (const line of lines) {
      if (line.status === 200) continue;
      expect({ status: line.status, hasReason: typeof line.reason === 'string' && line.reason.length > 0 }).toEqual({ status: 401, hasReason: true });
    }
  });
});

describe('the upstream assertion', () => {
  interface AssertionCase {
    readonly name: string;
    readonly assertion: (session: JWTPayload) => Promise<string>;
    readonly forwarded: boolean;
  }
  const ASSERTIONS: AssertionCase[] = [
    { name: 'minted with the session (same sub, sid, key)', assertion: (s) => env.mintAssertion(s), forwarded: true },
    { name: 'the session token itself', assertion: (s) => env.mint(s), forwarded: false },
    { name: 'typ JWT', assertion: (s) => env.mintAssertion(s, { type: 'JWT' }), forwarded: false },
    { name: "the session's audience", assertion: (s) => env.mintAssertion(s, { audience: AUDIENCE }), forwarded: false },
    { name: 'another issuer', assertion: (s) => env.mintAssertion(s, { issuer: 'https://evil.test/oauth2' }), forwarded: false },
    { name: "another user's (sub)", assertion: (s) => env.mintAssertion({ ...s, sub: 'someone-else' }), forwarded: false },
    { name: "another session's (sid)", assertion: (s) => env.mintAssertion({ ...s, sid: 'another-sid' }), forwarded: false },
    { name: 'expired', assertion: (s) => env.mintAssertion(s, { expiresIn: -60 }), forwarded: false },
    { name: 'signed by another key the gateway knows', assertion: (s) => env.mintAssertion(s, { key: env.keys.previous }), forwarded: false },
    {
      name: "signed by an attacker's key under the current kid",
      assertion: (s) => signedByAttacker({ kid: env.keys.current.kid, typ: ASSERTION_TOKEN_TYPE }, { ...s, aud: assertionAudience(AUDIENCE), iss: ISSUER }),
      forwarded: false,
    },
    {
      name: 'alg none',
      assertion: async (s) =>
        compact({ alg: 'none', typ: ASSERTION_TOKEN_TYPE, kid: env.keys.current.kid }, { ...claims(s), aud: assertionAudience(AUDIENCE) }, () => ''),
      forwarded: false,
    },
    { name: 'garbage', assertion: async () => 'not-an-assertion-at-all', forwarded: false },
  ];

  test.each(ASSERTIONS.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const session = claims();
    const token = await env.mint(session);
    const assertion = await c.assertion(session);
    // Twice: the second answer comes from the verification cache.
    for (const round of ['verified', 'cached']) {
      const response = await client.request('/', { headers: { cookie: sessionCookies(token, undefined, assertion) } });
      expect({ round, status: response.status }).toEqual({ round, status: 200 });
      const forwarded = response.json().headers['x-gateway-assertion'];
      expect({ round, forwarded }).toEqual({ round, forwarded: c.forwarded ? assertion : undefined });
    }
  });

  test('a valid assertion is not forwarded with another session, even once the pair is cached', async () => {
    const mine = claims();
    const theirs = claims({ sub: 'victim', sid: 'victim-sid' });
    const myToken = await env.mint(mine);
    const theirAssertion = await env.mintAssertion(theirs);
    // The victim's own pair is cached...
    const victim = await client.request('/', { headers: { cookie: sessionCookies(await env.mint(theirs), undefined, theirAssertion) } });
    expect(victim.json().headers['x-gateway-assertion']).toBe(theirAssertion);
    // ...and the attacker sends it next to their own session.
    for (let round = 0; round < 2; round += 1) {
      const response = await client.request('/', { headers: { cookie: sessionCookies(myToken, undefined, theirAssertion) } });
      expect(response.status).toBe(200);
      expect(response.json().headers['x-gateway-assertion']).toBeUndefined();
    }
  });

  test('an assertion that expires while its session is still valid stops being forwarded, cached or not', async () => {
    const session = claims();
    const token = await env.mint(session);
    const assertion = await env.mintAssertion(session, { expiresIn: 2 });
    const first = await client.request('/', { headers: { cookie: sessionCookies(token, undefined, assertion) } });
    expect(first.json().headers['x-gateway-assertion']).toBe(assertion);
    await new Promise((resolve) => setTimeout(resolve, 3500));
    const later = await client.request('/', { headers: { cookie: sessionCookies(token, undefined, assertion) } });
    expect(later.status).toBe(200);
    expect(later.json().headers['x-gateway-assertion']).toBeUndefined();
  });
});

describe('ECDSA malleability and the revocation list', () => {
  async function waitForStatus(token: string, status: number, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const response = await client.request('/api/x', { headers: { ...xhr, cookie: sessionCookies(token) } });
      if (response.status === status) return;
      if (Date.now() > deadline) throw new Error(`${what}: still ${response.status} after 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test('a malleated signature of a revoked sid is refused like the original: the deny is keyed by sid, not by the token', async () => {
    const session = claims();
    const token = await env.mint(session);
    const twin = malleate(token);
    expect(twin).not.toBe(token);
    // Both encodings verify, and both are in the verification cache after two requests each.
    for (const encoding of [token, twin, token, twin]) expect((await client.request('/', { headers: { cookie: sessionCookies(encoding) } })).status).toBe(200);
    env.auth.revoke(String(session.sid), Number(session.exp) + 30);
    await waitForStatus(token, 401, 'the revoked session');
    for (const encoding of [token, twin, malleate(twin)]) {
      const response = await client.request('/api/x', { headers: { ...xhr, cookie: sessionCookies(encoding) } });
      expect(response.status).toBe(401);
      expect(response.json().reason).toBe('session revoked (logged out)');
    }
    // A malleated encoding never seen before is not in the cache: verified, then still revoked.
    const fresh = await env.mint(session);
    const response = await client.request('/api/x', { headers: { ...xhr, cookie: sessionCookies(malleate(fresh)) } });
    expect(response.json().reason).toBe('session revoked (logged out)');
  });

  test('the verification cache does not bring back a revoked token, nor an expired one', async () => {
    const session = claims();
    const token = await env.mint(session, { expiresIn: 5 });
    for (let i = 0; i < 2; i += 1) expect((await client.request('/', { headers: { cookie: sessionCookies(token) } })).status).toBe(200);
    // As the contract says: listed until the token's exp plus the skew (1 s here).
    const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).exp as number;
    env.auth.revoke(String(session.sid), exp + 1);
    await waitForStatus(token, 401, 'the revoked, cached session');
    const revoked = await client.request('/api/x', { headers: { ...xhr, cookie: sessionCookies(token) } });
    expect(revoked.json().reason).toBe('session revoked (logged out)');
    // The entry leaves the map at exp + skew; the cache entry (a signature only) does not
    // make the token valid again: it has expired by then.
    while (Date.now() / 1000 < exp + 2.5) await new Promise((resolve) => setTimeout(resolve, 250));
    const response = await client.request('/api/x', { headers: { ...xhr, cookie: sessionCookies(token) } });
    expect(response.status).toBe(401);
    expect(response.json().reason).toBe('session expired');
  });
});
