/**
 * Every rendered variant passes `haproxy -c` on the real 3.0 binary, and every file the
 * config names is listed, rendered and parseable.
 */
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GatewayConfigOptions, LogDestination, UserClaim, publicKeyPemFromJwk, renderGatewayConfig } from '../../core/haproxy';
import { checkConfig } from '../../dev/haproxy';
import { baseGatewayOptions, createCrl, createSigningKeys, createTestPki, SigningKey, TestPki, writeRenderedFiles } from '../../dev/gateway-env';

let pki: TestPki;
let keys: Record<string, SigningKey>;
let crl: string;
const dirs: string[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  keys = await createSigningKeys('ES256');
  crl = await createCrl(pki.clientCa, [pki.otherMachineClient]);
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function baseOptions(dir: string): GatewayConfigOptions {
  return baseGatewayOptions({
    dir,
    ports: { gateway: 18443, health: 18080, metrics: 18405 },
    lookerPorts: [19999, 19998],
    authPort: 18444,
    pki,
    sessionKeys: (['previous', 'current', 'next'] as const).map((slot) => ({
      kid: keys[slot].kid,
      status: slot,
      publicJwk: keys[slot].publicJwk,
      publicKeyPem: publicKeyPemFromJwk(keys[slot].publicJwk),
    })),
  });
}

function renderAndCheck(change: (base: GatewayConfigOptions) => GatewayConfigOptions) {
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-variant-'));
  dirs.push(dir);
  const rendered = renderGatewayConfig(change(baseOptions(dir)));
  writeRenderedFiles(dir, rendered);
  expect(() => checkConfig(rendered.configFile)).not.toThrow();
  return { dir, rendered };
}

const machine = (base: GatewayConfigOptions): GatewayConfigOptions => ({
  ...base,
  machineRoutes: { pathPrefixes: ['/api/4.0/', '/machine/'], hostName: 'machines.gateway.test' },
  machineClients: [
    { name: 'a', certificateSha256: pki.machineClient.fingerprint, allowedPathPrefixes: ['/api/4.0/queries/'] },
    { name: 'b@example.com', certificateSha256: pki.otherMachineClient.fingerprint, allowedMethods: ['GET', 'PATCH'], allowedPathPrefixes: ['/machine/x'] },
  ],
});

const variants: Array<[string, (base: GatewayConfigOptions) => GatewayConfigOptions]> = [
  ['static servers, cache on, ES256, stdout log (the defaults)', (b) => b],
  [
    'Looker and the auth service found by DNS through the VPC resolver and resolv.conf',
    (b) => ({
      ...b,
      looker: { dnsName: 'looker.internal.test', dnsPort: 9999, maxDnsServers: 5, tlsServerName: 'looker.test' },
      authService: {
        host: 'abc123.execute-api.eu-west-1.amazonaws.com',
        dnsName: 'vpce-0abc-xyz.execute-api.eu-west-1.vpce.amazonaws.com',
        pathPrefix: '/prod',
      },
      resolvers: { nameservers: ['169.254.169.253:53'], useResolvConf: true },
    }),
  ],
  ['verification cache off', (b) => ({ ...b, session: { ...b.session, verificationCache: false } })],
  ['RS256, email as the user, no attributes', (b) => ({ ...b, session: { ...b.session, algorithm: 'RS256', userClaim: UserClaim.EMAIL, attributeNames: [] } })],
  ['machine routes with a CRL', (b) => ({ ...machine(b), clientCrl: true, material: { ...b.material, clientCrlPem: crl } })],
  [
    'machine clients on a host name of their own (crt-list), with a CRL',
    (b) => ({
      ...b,
      machineRoutes: { hostName: 'machines.gateway.test' },
      machineClients: [{ name: 'a', certificateSha256: pki.machineClient.fingerprint, allowedPathPrefixes: ['/api/'] }],
      clientCrl: true,
      material: { ...b.material, clientCrlPem: crl },
    }),
  ],
  ['log to a unix socket', (b) => ({ ...b, logging: { destination: LogDestination.UNIX_SOCKET, target: '/dev/log', facility: 'local1' } })],
  ['log to a syslog receiver over UDP', (b) => ({ ...b, logging: { destination: LogDestination.UDP, target: '127.0.0.1:514' } })],
  [
    'no PROXY protocol, framing by an embedding portal, no HSTS, extra stripped headers',
    (b) => ({
      ...b,
      listener: { ...b.listener, acceptProxyProtocol: false },
      securityHeaders: { hstsMaxAgeSeconds: 0, frameAncestors: ['https://portal.example.com', 'https://*.example.org'] },
      headerHygiene: { extraStrippedHeaders: ['X-Debug-User'], extraStrippedHeaderPrefixes: ['X-Corp-'] },
      apiPathPrefixes: ['/api/', '/internal-api/'],
      process: { nbthread: 4, maxconn: 4096 },
    }),
  ],
];

test.each(variants)('haproxy -c accepts: %s', (_name, change) => {
  const { rendered } = renderAndCheck(change);
  for (const file of rendered.requiredFiles) expect(existsSync(file)).toBe(true);
  expect(rendered.haproxyCfg.startsWith('# haproxy.cfg of the Looker gateway')).toBe(true);
});

test('the variants differ where they should', () => {
  const dir = '/etc/haproxy/gateway';
  const render = (change: (b: GatewayConfigOptions) => GatewayConfigOptions) => renderGatewayConfig(change(baseOptions(dir))).haproxyCfg;
  const defaults = render((b) => b);
  expect(defaults).toContain('accept-proxy ssl crt /etc/haproxy/gateway/tls/frontend.pem alpn h2,http/1.1');
  expect(defaults).not.toContain('verify optional');
  expect(defaults).toContain('jwt_verify("ES256",txn.session_key)');
  expect(defaults).toContain('table_gpt0(session_cache)');
  const uncached = render((b) => ({ ...b, session: { ...b.session, verificationCache: false } }));
  expect(uncached).not.toContain('backend session_cache');
  expect(uncached).not.toContain('table_gpt0');
  expect(render((b) => ({ ...b, session: { ...b.session, algorithm: 'RS256' } }))).toContain('jwt_verify("RS256",txn.session_key)');
  const machineCfg = render(machine);
  expect(machineCfg).toContain('verify optional ca-file /etc/haproxy/gateway/tls/client-ca.pem ca-ignore-err all crt-ignore-err all');
  expect(render((b) => ({ ...machine(b), clientCrl: true }))).toContain('crl-file /etc/haproxy/gateway/tls/client-crl.pem');
  const dns = render((b) => ({
    ...b,
    looker: { dnsName: 'looker.internal.test', tlsServerName: 'looker.test' },
    resolvers: { nameservers: ['169.254.169.253:53'] },
  }));
  expect(dns).toContain('server-template looker 1-10 looker.internal.test:9999 resolvers gateway_dns');
  expect(dns).toContain('nameserver dns1 169.254.169.253:53');
  expect(dns).not.toContain('parse-resolv-conf');
  expect(render((b) => ({ ...b, logging: { destination: LogDestination.UNIX_SOCKET } }))).toContain('log /dev/log len 16384 format rfc5424 local0');
  expect(defaults).toContain('log stdout len 16384 format raw local0');
});

test('every file the config names is required, rendered and parseable', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-files-'));
  dirs.push(dir);
  const rendered = renderGatewayConfig(machine(baseOptions(dir)));
  writeRenderedFiles(dir, rendered);
  const named = new Set(
    [...rendered.haproxyCfg.matchAll(new RegExp(`${dir}/[A-Za-z0-9_./-]+`, 'g'))].map((m) => m[0]).filter((file) => !file.startsWith(`${dir}/run/`)),
  );
  expect(named.size).toBeGreaterThan(10);
  for (const file of named) expect(rendered.requiredFiles).toContain(file);
  for (const file of rendered.requiredFiles) {
    expect(existsSync(file)).toBe(true);
    const content = readFileSync(file, 'utf8');
    if (file.includes('/keys/')) expect(createPublicKey(content).asymmetricKeyType).toBe('ec');
    if (file.endsWith('frontend.pem') || file.endsWith('backend-client.pem')) {
      expect(new X509Certificate(content).subject).toMatch(/CN=/);
      expect(createPrivateKey(content).asymmetricKeyType).toBe('ec');
    }
    if (file.endsWith('-ca.pem')) expect(new X509Certificate(content).ca).toBe(true);
    if (file.endsWith('session-kids.map')) {
      const lines = content.trim().split('\n');
      expect(lines).toHaveLength(3);
      for (const line of lines) {
        const [kid, keyFile] = line.split(' ');
        expect(kid).toMatch(/^(previous|current|next)-/);
        expect(rendered.requiredFiles).toContain(keyFile);
      }
    }
    if (file.endsWith('machine-clients.map')) expect(content).toBe(`${pki.machineClient.fingerprint} a\n${pki.otherMachineClient.fingerprint} b@example.com\n`);
    if (file.includes('/errors/')) {
      const [head, body] = content.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 \d{3} /);
      expect(JSON.parse(body)).toHaveProperty('reason');
      expect(head).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    }
  }
  expect(rendered.files.find((f) => f.path === 'tls/frontend.pem')?.mode).toBe(0o600);
  expect(rendered.adminSocket).toBe(path.join(dir, 'run', 'admin.sock'));
});

test('without material the config still names every file, and only generated files are rendered', () => {
  const rendered = renderGatewayConfig({ ...baseOptions('/etc/haproxy/gateway'), material: undefined });
  expect(rendered.files.map((f) => f.path).sort()).toEqual(
    ['haproxy.cfg', 'lua/gateway-refresh.lua', 'maps/revoked-sessions.map', ...[400, 403, 405, 408, 500, 502, 503, 504].map((s) => `errors/${s}.http`)].sort(),
  );
  expect(rendered.requiredFiles).toEqual(
    expect.arrayContaining([
      '/etc/haproxy/gateway/keys/session-previous.pem',
      '/etc/haproxy/gateway/keys/session-next.pem',
      '/etc/haproxy/gateway/maps/session-kids.map',
      '/etc/haproxy/gateway/tls/backend-client.pem',
    ]),
  );
});
