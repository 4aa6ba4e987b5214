/**
 * JWT forgery corpus for the auth service's own session checks (refresh navigation,
 * logout). Built per test from the deployment's real signing key set, so that every
 * forgery uses what an attacker can see: the published kids and public keys, and a
 * genuine token of their own. Each case states its expected answer: `refused`, or
 * `accepted` for the controls (genuine tokens of each key slot, and a genuine token whose
 * ECDSA signature was re-encoded as (r, n - s): the same session, which is why anything
 * keyed on a token must be keyed on its `sid` instead).
 *
 * Classes (from the JWT attack lists: RFC 8725 "JSON Web Token Best Current Practices",
 * the PortSwigger JWT labs, jwt_tool's attack modes): alg none, algorithm confusion
 * (HS256 keyed with the public key in each encoding; RS256 under an EC kid), attacker
 * key under a real kid, embedded jwk / jku / x5c / x5u keys, kid tricks, stripped,
 * swapped, truncated and DER re-encoded signatures, edited payloads, exp / nbf / iss /
 * aud / typ wrong, `crit` extensions.
 */
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import type { SigningKeySetSecret } from '../../../lib/key-material';
import { ASSERTION_TOKEN_TYPE, assertionAudience, SESSION_TOKEN_TYPE } from '../../../lib/session-contract';
import { createCa } from '../../support/pki';

export interface ForgeryCase {
  readonly name: string;
  readonly token: string;
  /** The sid the token claims (each case its own), to see whether a logout revoked it. */
  readonly sid: string;
  readonly expected: 'refused' | 'accepted';
}

export interface ForgeryContext {
  readonly keys: SigningKeySetSecret;
  readonly issuer: string;
  readonly audience: string;
  /** Epoch seconds. */
  readonly now: number;
  readonly sessionTtlSeconds: number;
  readonly clockSkewSeconds: number;
}

const b64 = (value: string | Buffer | Uint8Array) => Buffer.from(value).toString('base64url');
const json = (value: unknown) => b64(JSON.stringify(value));

/** The order n of P-256: an ECDSA signature (r, s) also verifies as (r, n - s). */
const P256_ORDER = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

function toFixed32(value: bigint): Buffer {
  return Buffer.from(value.toString(16).padStart(64, '0'), 'hex');
}

/** (r, s) -> (r, n - s), in JOSE's raw r||s form. */
export function malleate(signature: string): string {
  const raw = Buffer.from(signature, 'base64url');
  const s = BigInt(`0x${raw.subarray(32).toString('hex')}`);
  return b64(Buffer.concat([raw.subarray(0, 32), toFixed32(P256_ORDER - s)]));
}

/** JOSE raw r||s -> ASN.1 DER, the encoding OpenSSL produces and JOSE forbids. */
function toDer(signature: string): string {
  const raw = Buffer.from(signature, 'base64url');
  const integer = (bytes: Buffer) => {
    let v = bytes;
    while (v.length > 1 && v[0] === 0 && v[1] < 0x80) v = v.subarray(1);
    if (v[0] >= 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([integer(raw.subarray(0, 32)), integer(raw.subarray(32))]);
  return b64(Buffer.concat([Buffer.from([0x30, body.length]), body]));
}

function unsigned(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  return `${json(header)}.${json(payload)}`;
}

/** Signs with a key of the set outside jose, for headers jose will not sign (unknown `crit`). */
function signRaw(header: Record<string, unknown>, payload: Record<string, unknown>, privateJwk: unknown): string {
  const input = unsigned(header, payload);
  const key = createPrivateKey({ key: privateJwk as JsonWebKey, format: 'jwk' });
  return `${input}.${b64(sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }))}`;
}

function hmac(input: string, key: string | Buffer): string {
  return b64(createHmac('sha256', key).update(input).digest());
}

export async function buildForgeryCorpus(ctx: ForgeryContext): Promise<ForgeryCase[]> {
  let counter = 0;
  const sid = () => `forged-${(counter += 1)}-${Math.random().toString(36).slice(2, 10)}`;
  const claims = (id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    iss: ctx.issuer,
    aud: ctx.audience,
    sub: 'mallory',
    email: 'mallory@example.com',
    name: 'Mallory',
    sid: id,
    iat: ctx.now,
    nbf: ctx.now,
    exp: ctx.now + ctx.sessionTtlSeconds,
    roles_csv: 'Admin',
    groups_csv: '',
    ...overrides,
  });
  const slot = (status: string) => {
    const entry = ctx.keys.keys.find((k) => k.status === status);
    if (!entry) throw new Error(`the key set has no ${status} key`);
    return entry;
  };
  const current = slot('current');
  const currentPublic: KeyObject = createPublicKey({ key: current.publicJwk as unknown as JsonWebKey, format: 'jwk' });
  const genuine = async (status: string, payload: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const entry = slot(status);
    const key = await importJWK(entry.privateJwk as JWK, ctx.keys.alg);
    return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: ctx.keys.alg, kid: entry.kid, typ: SESSION_TOKEN_TYPE, ...header }).sign(key);
  };
  const attacker = await generateKeyPair('ES256', { extractable: true });
  const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: 'attacker-1' };
  const signAsAttacker = (payload: Record<string, unknown>, header: Record<string, unknown>) =>
    new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: 'ES256', typ: SESSION_TOKEN_TYPE, ...header }).sign(attacker.privateKey);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ca = await createCa('Attacker CA');
  const x5c = ca.cert.replace(/-----[^-]+-----|\s+/g, '');

  const cases: ForgeryCase[] = [];
  const add = async (name: string, build: (id: string) => Promise<string> | string, expected: ForgeryCase['expected'] = 'refused') => {
    const id = sid();
    cases.push({ name, token: await build(id), sid: id, expected });
  };

  // Controls: what the service itself mints verifies, under every slot of the key set.
  await add('genuine, current key', (id) => genuine('current', claims(id)), 'accepted');
  await add('genuine, previous key (rotation overlap)', (id) => genuine('previous', claims(id)), 'accepted');
  await add('genuine, ECDSA signature re-encoded as (r, n - s): the same session', async (id) => {
    const [h, p, s] = (await genuine('current', claims(id))).split('.');
    return `${h}.${p}.${malleate(s)}`;
  }, 'accepted');

  // alg none and algorithm confusion.
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    await add(`alg ${alg}, real kid, no signature`, (id) => `${unsigned({ alg, kid: current.kid, typ: 'JWT' }, claims(id))}.`);
  }
  await add('alg none with a leftover genuine signature', async (id) => {
    const [, p, s] = (await genuine('current', claims(id))).split('.');
    return `${json({ alg: 'none', kid: current.kid, typ: 'JWT' })}.${p}.${s}`;
  });
  const hmacKeys: Array<[string, string | Buffer]> = [
    ['SPKI PEM', currentPublic.export({ type: 'spki', format: 'pem' }) as string],
    ['SPKI PEM without the final newline', (currentPublic.export({ type: 'spki', format: 'pem' }) as string).trimEnd()],
    ['SPKI DER', currentPublic.export({ type: 'spki', format: 'der' }) as Buffer],
    ['public JWK JSON', JSON.stringify(current.publicJwk)],
    ['x coordinate', Buffer.from(String(current.publicJwk.x), 'base64url')],
  ];
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    for (const [label, key] of hmacKeys) {
      await add(`${alg} keyed with the public key (${label}), real kid`, (id) => {
        const input = unsigned({ alg, kid: current.kid, typ: 'JWT' }, claims(id));
        return `${input}.${hmac(input, key)}`;
      });
    }
  }
  await add('RS256 with an attacker RSA key under the real kid', (id) => new SignJWT(claims(id) as JWTPayload).setProtectedHeader({ alg: 'RS256', kid: current.kid, typ: 'JWT' }).sign(rsa.privateKey));
  await add('ES384 header on an ES256 signature', async (id) => {
    const [, p, s] = (await genuine('current', claims(id))).split('.');
    return `${json({ alg: 'ES384', kid: current.kid, typ: 'JWT' })}.${p}.${s}`;
  });

  // Attacker keys under real or invented kids, or carried in the header.
  for (const status of ['current', 'previous', 'next']) {
    await add(`attacker ES256 key under the real ${status} kid`, (id) => signAsAttacker(claims(id), { kid: slot(status).kid }));
  }
  await add('attacker key, unknown kid', (id) => signAsAttacker(claims(id), { kid: 'attacker-1' }));
  await add('attacker key, no kid', (id) => signAsAttacker(claims(id), {}));
  await add('attacker key, kid path traversal', (id) => signAsAttacker(claims(id), { kid: '../../../../dev/null' }));
  await add('attacker key, kid SQL-ish', (id) => signAsAttacker(claims(id), { kid: "x' UNION SELECT 'k" }));
  await add('embedded jwk (attacker key), no kid', (id) => signAsAttacker(claims(id), { jwk: attackerJwk }));
  await add('embedded jwk (attacker key) with the real kid', (id) => signAsAttacker(claims(id), { jwk: attackerJwk, kid: current.kid }));
  await add('jku to an attacker JWKS', (id) => signAsAttacker(claims(id), { jku: 'https://attacker.invalid/jwks.json', kid: 'attacker-1' }));
  await add('jku to an attacker JWKS, real kid', (id) => signAsAttacker(claims(id), { jku: 'https://attacker.invalid/jwks.json', kid: current.kid }));
  await add('x5u to an attacker certificate', (id) => signAsAttacker(claims(id), { x5u: 'https://attacker.invalid/cert.pem' }));
  await add('x5c with an attacker certificate', async (id) =>
    new SignJWT(claims(id) as JWTPayload).setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [x5c] }).sign(ca.keys.privateKey as unknown as CryptoKey),
  );
  await add('x5c with an attacker certificate, real kid', async (id) =>
    new SignJWT(claims(id) as JWTPayload).setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [x5c], kid: current.kid }).sign(ca.keys.privateKey as unknown as CryptoKey),
  );

  // Signatures stripped, swapped, truncated, re-encoded; payloads edited after signing.
  await add('signature stripped (header.payload.)', async (id) => (await genuine('current', claims(id))).split('.').slice(0, 2).join('.') + '.');
  await add('signature stripped (header.payload)', async (id) => (await genuine('current', claims(id))).split('.').slice(0, 2).join('.'));
  await add('signature of another genuine token', async (id) => {
    const [h, p] = (await genuine('current', claims(id))).split('.');
    const [, , s] = (await genuine('current', claims('someone-else'))).split('.');
    return `${h}.${p}.${s}`;
  });
  await add('signature truncated', async (id) => {
    const token = await genuine('current', claims(id));
    return token.slice(0, -10);
  });
  await add('signature DER-encoded (valid ECDSA, not JOSE)', async (id) => {
    const [h, p, s] = (await genuine('current', claims(id))).split('.');
    return `${h}.${p}.${toDer(s)}`;
  });
  await add('payload edited after signing (roles)', async (id) => {
    const [h, , s] = (await genuine('current', claims(id, { roles_csv: 'Viewer' }))).split('.');
    return `${h}.${json(claims(id))}.${s}`;
  });
  await add('payload edited after signing (sid)', async (id) => {
    const [h, , s] = (await genuine('current', claims('victim-sid'))).split('.');
    return `${h}.${json(claims(id))}.${s}`;
  });
  await add('header edited after signing (kid to previous)', async (id) => {
    const [, p, s] = (await genuine('current', claims(id))).split('.');
    return `${json({ alg: 'ES256', kid: slot('previous').kid, typ: 'JWT' })}.${p}.${s}`;
  });
  await add('five segments (JWE shape)', async (id) => `${await genuine('current', claims(id))}.x.y`);

  // Genuine signatures on claims the session check must refuse.
  const skew = ctx.clockSkewSeconds;
  await add('expired beyond the clock skew', (id) => genuine('current', claims(id, { iat: ctx.now - 4000, nbf: ctx.now - 4000, exp: ctx.now - skew - 60 })));
  await add('not valid yet beyond the clock skew', (id) => genuine('current', claims(id, { nbf: ctx.now + skew + 600, exp: ctx.now + 3600 })));
  await add('no exp', (id) => genuine('current', claims(id, { exp: undefined })));
  await add('wrong issuer', (id) => genuine('current', claims(id, { iss: 'https://evil.example/oauth2' })));
  await add('issuer with a trailing slash', (id) => genuine('current', claims(id, { iss: `${ctx.issuer}/` })));
  await add('wrong audience', (id) => genuine('current', claims(id, { aud: 'https://evil.example' })));
  await add('audience of the upstream assertion (typ JWT)', (id) => genuine('current', claims(id, { aud: assertionAudience(ctx.audience) })));
  await add('the upstream assertion itself (typ and aud)', (id) => genuine('current', claims(id, { aud: assertionAudience(ctx.audience) }), { typ: ASSERTION_TOKEN_TYPE }));
  await add('assertion typ with the session audience', (id) => genuine('current', claims(id), { typ: ASSERTION_TOKEN_TYPE }));
  await add('typ missing', async (id) => {
    const key = await importJWK(current.privateJwk as JWK, ctx.keys.alg);
    return new SignJWT(claims(id) as JWTPayload).setProtectedHeader({ alg: ctx.keys.alg, kid: current.kid }).sign(key);
  });
  await add('typ at+jwt (an access token)', (id) => genuine('current', claims(id), { typ: 'at+jwt' }));
  await add('crit names an unknown extension', (id) => signRaw({ alg: 'ES256', kid: current.kid, typ: 'JWT', crit: ['exp-extension'], 'exp-extension': true }, claims(id), current.privateJwk));
  await add('no sid', (id) => genuine('current', claims(id, { sid: undefined })));
  return cases;
}
