/**
 * Looker nodes failing and the RS256 variant (with an ES256 `next` key, as during a change
 * of algorithm), on the real haproxy 3.0, whose workers run as an unprivileged user as on
 * instances. Stops stand-ins, so it has a gateway of its own.
 */
import { chmodSync } from 'node:fs';
import * as path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { StoredJwk } from '../../lib/key-material';
import { publicKeyPemFromJwk } from '../../lib/fleet';
import { DECISIONS } from '../../lib/fleet/render-haproxy';
import { REFRESH_COOKIE } from '../../lib/session-contract';
import { nlbHealthCheck } from '../support/proxy-protocol';
import { DEFAULT_CLAIMS, GatewayEnv, ISSUER, AUDIENCE, sessionCookies, startGatewayEnv } from './support/gateway-env';

let env: GatewayEnv;
/** An ES256 key published as `next` next to RS256 keys: the set after a change of algorithm (lib/key-material.ts, keyAlgorithm). */
let esNext: { kid: string; privateKey: CryptoKey };

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = { ...(await exportJWK(pair.publicKey)), alg: 'ES256', use: 'sig' } as unknown as StoredJwk;
  esNext = { kid: await calculateJwkThumbprint(publicJwk as JWK), privateKey: pair.privateKey };
  // Workers drop to nobody (instances use Debian's haproxy user) once the master has bound
  // the listeners and read the files.
  env = await startGatewayEnv({
    algorithm: 'RS256',
    lookerNodes: 2,
    overrides: (base) => ({
      ...base,
      process: { ...base.process, user: 'nobody', group: 'nogroup' },
      material: {
        ...base.material!,
        sessionKeys: base.material!.sessionKeys!.map((key) =>
          key.status === 'next' ? { kid: esNext.kid, status: 'next' as const, publicJwk: { ...publicJwk, kid: esNext.kid }, publicKeyPem: publicKeyPemFromJwk(publicJwk) } : key,
        ),
      },
    }),
  });
  // Like /run/haproxy on an instance (RuntimeDirectory=, mode 0755), the workers may enter the runtime directory.
  for (const dir of [env.dir, path.join(env.dir, 'run')]) chmodSync(dir, 0o755);
});

afterAll(async () => {
  await env?.stop();
});

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('RS256 sessions are accepted; an ES256 token under the same kid is not (the algorithm is pinned)', async () => {
  const client = env.client();
  const response = await client.request('/', { headers: { cookie: sessionCookies(await env.mint()) } });
  expect(response.status).toBe(200);
  expect(response.json().headers['x-forwarded-user']).toBe('user-123');
  const { privateKey } = await generateKeyPair('ES256');
  const now = Math.floor(Date.now() / 1000);
  const es256 = await new SignJWT({ ...DEFAULT_CLAIMS })
    .setProtectedHeader({ alg: 'ES256', kid: env.keys.current.kid, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setNotBefore(now - 5)
    .setExpirationTime(now + 600)
    .sign(privateKey);
  const denied = await client.request('/', { headers: { accept: 'application/json', cookie: sessionCookies(es256) } });
  expect(denied.status).toBe(401);
  expect(denied.json().reason).toBe('session signature is invalid');
});

test('during a change of algorithm both kinds verify, each only with a key of its own kind: an ES256 next key next to RS256 keys', async () => {
  const client = env.client();
  const now = Math.floor(Date.now() / 1000);
  const sign = (alg: 'ES256' | 'RS256', kid: string, key: CryptoKey) =>
    new SignJWT({ ...DEFAULT_CLAIMS }).setProtectedHeader({ alg, kid, typ: 'JWT' }).setIssuer(ISSUER).setAudience(AUDIENCE).setNotBefore(now - 5).setExpirationTime(now + 600).sign(key);
  const byNewKey = await client.request('/', { headers: { cookie: sessionCookies(await sign('ES256', esNext.kid, esNext.privateKey)) } });
  expect(byNewKey.status).toBe(200);
  const byOldKey = await client.request('/', { headers: { cookie: sessionCookies(await env.mint()) } });
  expect(byOldKey.status).toBe(200);
  // The ES256 key's kid with an RS256 token made with the current RSA key: the kid decides the key, the key refuses.
  const mixed = await client.request('/', { headers: { accept: 'application/json', cookie: sessionCookies(await sign('RS256', esNext.kid, env.keys.current.privateKey)) } });
  expect(mixed.status).toBe(401);
  expect(mixed.json().reason).toBe('session signature is invalid');
});

test('with one Looker node down, every request goes to the other; with all down, 503 JSON', async () => {
  const token = await env.mint();
  const client = env.client();
  await env.looker[0].close();
  const nodes: string[] = [];
  for (let i = 0; i < 8; i += 1) {
    const response = await client.request(`/after-failure/${i}`, { headers: { cookie: sessionCookies(token) } });
    expect(response.status).toBe(200);
    nodes.push(response.json().node);
  }
  expect(new Set(nodes)).toEqual(new Set(['looker-2']));

  await env.looker[1].close();
  // Liveness is not availability: the load balancer's check stays 200 and says why Looker is not served.
  await waitFor(async () => JSON.parse((await nlbHealthCheck({ port: env.ports.health })).body).looker === 'unavailable', 'the health listener to report no Looker server');
  expect(await nlbHealthCheck({ port: env.ports.health })).toEqual({ status: 200, body: JSON.stringify({ status: 'ok', looker: 'unavailable', code: DECISIONS.lookerUnavailable }) });
  const response = await client.request('/dashboards/1', { headers: { cookie: sessionCookies(token) } });
  expect(response.status).toBe(503);
  expect(response.headers['retry-after']).toBe('5');
  expect(response.json()).toEqual({ error: 'service_unavailable', code: DECISIONS.lookerUnavailable, reason: 'no Looker server is available', requestId: response.headers['x-request-id'] });
  // Both are logged with the machine-readable decision the alarm's metric filter counts.
  await waitFor(async () => env.logLines().some((l) => l.request_id === response.headers['x-request-id']), 'the access log line of the 503');
  const lines = env.logLines();
  expect(lines.find((l) => l.request_id === response.headers['x-request-id'])).toMatchObject({ status: 503, decision: DECISIONS.lookerUnavailable });
  expect(lines.some((l) => l.frontend === 'nlb_health' && l.decision === DECISIONS.lookerUnavailable && l.route === 'health')).toBe(true);
});

test('workers run unprivileged and still refresh sessions inline through the relay socket', async () => {
  const sid = `sid-unprivileged-${Date.now()}`;
  const refresh = env.refreshCookie({ sid });
  const calls = env.auth.sessionCalls().length;
  const response = await env.client().request('/dashboards/2', {
    headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', accept: 'text/html', cookie: sessionCookies(await env.mint({ ...DEFAULT_CLAIMS, sid }, { expiresIn: -120 }), refresh) },
  });
  // All Looker nodes are down by now (previous test): the refresh itself is what is checked.
  expect(env.auth.sessionCalls().length).toBe(calls + 1);
  expect(env.auth.sessionCalls()[calls].headers.cookie).toBe(`${REFRESH_COOKIE}=${refresh}`);
  const gatewayLine = () => env.logLines().find((l) => l.request_id === response.headers['x-request-id'] && l.frontend === 'gateway');
  await waitFor(async () => gatewayLine() !== undefined, 'the access log line of the refreshed request');
  expect(gatewayLine()).toMatchObject({ refresh: 'refreshed', decision: DECISIONS.lookerUnavailable, user: DEFAULT_CLAIMS.sub });
});
