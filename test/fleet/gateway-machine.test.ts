/**
 * Machine clients on the real haproxy 3.0: client certificates mapped by SHA-256 to an
 * identity and a policy, on the routes reserved for them; a CRL revokes certificates.
 */
import type { Pem } from '../../dev/pki';
import { createCrl, GatewayEnv, issueCertificate, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';

let env: GatewayEnv;
let revoked: Pem;

beforeAll(async () => {
  env = await startGatewayEnv({
    lookerNodes: 1,
    overrides: async (base, { pki }) => {
      revoked = await issueCertificate(pki.clientCa, { commonName: 'revoked-bot', usages: ['client'] });
      const crl = await createCrl(pki.clientCa, [revoked]);
      return {
        ...base,
        machineRoutes: { pathPrefixes: ['/api/4.0/'] },
        machineClients: [
          {
            name: 'reporting-bot',
            certificateSha256: pki.machineClient.fingerprint,
            allowedMethods: ['GET', 'POST'],
            allowedPathPrefixes: ['/api/4.0/queries/', '/api/4.0/looks/'],
          },
          { name: 'revoked-bot', certificateSha256: revoked.fingerprint, allowedPathPrefixes: ['/api/4.0/'] },
        ],
        clientCrl: true,
        material: { ...base.material, clientCrlPem: crl },
      };
    },
  });
});

afterAll(async () => {
  await env?.stop();
});

function machine(pem?: Pem) {
  return env.client({ clientCertificate: pem ? { cert: pem.cert, key: pem.key } : undefined });
}

test('a registered certificate inside its policy reaches Looker as its identity, without a session', async () => {
  const response = await machine(env.pki.machineClient).request('/api/4.0/queries/run/json', {
    method: 'POST',
    body: '{}',
    headers: { 'x-forwarded-user': 'admin', 'x-looker-roles': 'admin' },
  });
  expect(response.status).toBe(200);
  const echoed = response.json();
  expect(echoed.headers['x-forwarded-user']).toBe('reporting-bot');
  expect(echoed.headers['x-gateway-auth']).toBe('client-certificate');
  expect(echoed.headers['x-looker-roles']).toBeUndefined();
  expect(echoed.headers['x-gateway-assertion']).toBeUndefined();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const line = env.logLines().find((l) => l.request_id === response.headers['x-request-id']);
  expect(line).toMatchObject({
    route: 'machine',
    decision: 'machine-allowed',
    user: 'reporting-bot',
    auth: 'client-certificate',
    client_cert_sha256: env.pki.machineClient.fingerprint,
    client_cert_subject: '/CN=reporting-bot',
  });
});

test('outside its policy (method or path) it gets 403 JSON', async () => {
  const client = machine(env.pki.machineClient);
  for (const [method, path] of [
    ['DELETE', '/api/4.0/queries/1'],
    ['GET', '/api/4.0/users/1'],
  ]) {
    const response = await client.request(path, { method });
    expect(response.status).toBe(403);
    expect(response.json()).toEqual({
      error: 'forbidden',
      reason: 'the method or path is outside this client policy',
      requestId: response.headers['x-request-id'],
    });
  }
});

test('no certificate on a machine route gets 401 JSON, even with a valid session', async () => {
  const response = await machine().request('/api/4.0/queries/1', { headers: { cookie: sessionCookies(await env.mint()) } });
  expect(response.status).toBe(401);
  expect(response.json().reason).toBe('a client certificate is required on this route');
});

test('a certificate from another CA is not trusted: 403 JSON with the verify error', async () => {
  const response = await machine(env.pki.rogueClient).request('/api/4.0/queries/1');
  expect(response.status).toBe(403);
  expect(response.json().reason).toMatch(/^the client certificate is not trusted \(verify error \d+\)$/);
});

test('a revoked certificate is refused by the CRL', async () => {
  const response = await machine(revoked).request('/api/4.0/queries/1');
  expect(response.status).toBe(403);
  expect(response.json().reason).toBe('the client certificate is not trusted (verify error 23)');
});

test('a trusted but unregistered certificate gets 403', async () => {
  const response = await machine(env.pki.otherMachineClient).request('/api/4.0/queries/1');
  expect(response.status).toBe(403);
  expect(response.json().reason).toBe('the client certificate is not registered');
});

test('browsers still use sessions on the other routes, with or without a client certificate', async () => {
  const token = await env.mint();
  expect((await machine().request('/dashboards/1', { headers: { cookie: sessionCookies(token) } })).status).toBe(200);
  const withCertificate = await machine(env.pki.machineClient).request('/dashboards/1', { headers: { 'x-requested-with': 'XMLHttpRequest' } });
  expect(withCertificate.status).toBe(401);
});
