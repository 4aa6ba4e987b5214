/**
 * Machine clients on a host name of their own: client certificates are asked for only on
 * that name (crt-list), so browsers on the main host never get a certificate request.
 */
import { GatewayEnv, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';

const MACHINE_HOST = 'machines.gateway.test';
let env: GatewayEnv;

beforeAll(async () => {
  env = await startGatewayEnv({
    lookerNodes: 1,
    overrides: (base, { pki }) => ({
      ...base,
      machineRoutes: { hostName: MACHINE_HOST },
      machineClients: [{ name: 'reporting-bot', certificateSha256: pki.machineClient.fingerprint, allowedPathPrefixes: ['/api/4.0/'] }],
    }),
  });
});

afterAll(async () => {
  await env?.stop();
});

test('on the machine host a registered certificate is the identity, any path outside its policy is refused', async () => {
  const bot = env.client({ serverName: MACHINE_HOST, clientCertificate: { cert: env.pki.machineClient.cert, key: env.pki.machineClient.key } });
  const allowed = await bot.request('/api/4.0/looks/1');
  expect(allowed.status).toBe(200);
  expect(allowed.json().headers['x-forwarded-user']).toBe('reporting-bot');
  expect((await bot.request('/dashboards/1')).status).toBe(403);
  const rogue = env.client({ serverName: MACHINE_HOST, clientCertificate: { cert: env.pki.rogueClient.cert, key: env.pki.rogueClient.key } });
  const untrusted = await rogue.request('/api/4.0/looks/1');
  expect(untrusted.status).toBe(403);
  expect(untrusted.json().reason).toMatch(/^the client certificate is not trusted/);
  expect((await env.client({ serverName: MACHINE_HOST }).request('/api/4.0/looks/1')).status).toBe(401);
});

test('on the main host no certificate is asked for: a client holding one does not send it', async () => {
  const browser = env.client({ clientCertificate: { cert: env.pki.machineClient.cert, key: env.pki.machineClient.key } });
  const response = await browser.request('/api/4.0/looks/1', { headers: { cookie: sessionCookies(await env.mint()) } });
  expect(response.status).toBe(200);
  expect(response.json().headers['x-forwarded-user']).toBe('user-123');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const line = env.logLines().find((l) => l.request_id === response.headers['x-request-id']);
  expect(line).toMatchObject({ route: 'looker', client_cert_sha256: '' });
});
