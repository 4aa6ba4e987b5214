/**
 * Looker nodes failing and the RS256 variant, on the real haproxy 3.0. Stops stand-ins,
 * so it has a gateway of its own.
 */
import { generateKeyPair, SignJWT } from 'jose';
import { DEFAULT_CLAIMS, GatewayEnv, ISSUER, AUDIENCE, sessionCookies, startGatewayEnv } from './support/gateway-env';

let env: GatewayEnv;

beforeAll(async () => {
  env = await startGatewayEnv({ algorithm: 'RS256', lookerNodes: 2 });
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
  await waitFor(async () => (await fetch(`http://127.0.0.1:${env.ports.health}/`)).status === 503, 'the health listener to report no Looker server');
  const health = await fetch(`http://127.0.0.1:${env.ports.health}/`);
  expect(await health.json()).toEqual({ status: 'unavailable', reason: 'no Looker server is available' });
  const response = await client.request('/dashboards/1', { headers: { cookie: sessionCookies(token) } });
  expect(response.status).toBe(503);
  expect(response.headers['retry-after']).toBe('5');
  expect(response.json()).toEqual({ error: 'service_unavailable', reason: 'no Looker server is available', requestId: response.headers['x-request-id'] });
});
