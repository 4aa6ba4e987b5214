/**
 * Golden haproxy.cfg files, one per option variant, in test/golden/haproxy/: the config a
 * reviewer signs off, readable as it lands on an instance. The stack variants are taken
 * from the synthesized template (the launch template's files), with every deploy-time
 * value as a named placeholder (`${LogicalId}`, `${LogicalId.Attribute}`, `${AWS::Region}`);
 * the renderer variants are rendered from the instance options with one thing changed.
 *
 * A change to the renderer shows here as a diff of plain text. After a deliberate change:
 *   LG_UPDATE_GOLDEN=1 npx jest test/golden
 * and review the diff of test/golden/haproxy/ like code.
 */
import 'reflect-metadata';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { GatewayConfigOptions, LogDestination, renderGatewayConfig, UserClaim } from '../../core/haproxy';
import { FILES_METADATA_KEY, gatewayConfigOptions, InstanceFilesInput } from '../../core/instance/user-data';
import { createCa, issueCertificate, TestCa } from '../../dev/pki';
import { newGatewayStack } from '../constructs/fixtures';
import { namedPlaceholders } from './placeholders';

const GOLDEN_DIR = path.join(__dirname, 'haproxy');
const UPDATE = process.env.LG_UPDATE_GOLDEN === '1';
const HAPROXY_CFG = '/etc/haproxy/gateway/haproxy.cfg';

/** The instance options of the default stack, with fixed values where the template has deploy-time ones. */
const INSTANCE: InstanceFilesInput = {
  region: 'eu-west-1',
  domainName: 'looker.example.com',
  session: { issuer: 'https://looker.example.com', audience: 'https://looker.example.com', algorithm: 'ES256', attributeNames: ['region'] },
  authService: { hostName: 'auth-service.execute-api.invalid', pathPrefix: '/gateway' },
  looker: { hosts: ['10.0.8.10', '10.0.12.10'], resolvesByDns: false, webPort: 9999, healthPath: '/alive', serverName: 'looker.internal.example.com' },
  instancePort: 443,
  healthCheckPort: 8080,
  readinessPort: 8081,
  metricsPort: 8405,
  accessLogGroupName: 'access-logs',
  secrets: { verificationKeys: 'verification-keys', backendClientCertificate: 'backend-client-certificate', frontendCertificate: 'frontend-certificate' },
};

const RENDERER_VARIANTS: Record<string, (base: GatewayConfigOptions) => GatewayConfigOptions> = {
  'instance-defaults': (b) => b,
  'verification-cache-off': (b) => ({ ...b, session: { ...b.session, verificationCache: false } }),
  'rs256-email-user': (b) => ({ ...b, session: { ...b.session, algorithm: 'RS256', userClaim: UserClaim.EMAIL, attributeNames: [] } }),
  'looker-and-auth-by-dns': (b) => ({
    ...b,
    looker: { dnsName: 'looker.internal.example.com', dnsPort: 9999, maxDnsServers: 5, tlsServerName: 'looker.internal.example.com' },
    authService: { host: 'abc123.execute-api.eu-west-1.amazonaws.com', dnsName: 'vpce-0abc-xyz.execute-api.eu-west-1.vpce.amazonaws.com', pathPrefix: '/prod' },
    resolvers: { nameservers: ['169.254.169.253:53'], useResolvConf: true },
  }),
  'machine-paths-with-crl': (b) => ({
    ...b,
    machineRoutes: { pathPrefixes: ['/api/4.0/', '/machine/'], hostName: 'machines.looker.example.com' },
    machineClients: [
      { name: 'reporting-bot', certificateSha256: 'a'.repeat(64), allowedPathPrefixes: ['/api/4.0/queries/'] },
      { name: 'agent@example.com', certificateSha256: 'b'.repeat(64), allowedMethods: ['GET', 'PATCH'], allowedPathPrefixes: ['/machine/x'] },
    ],
    clientCrl: true,
  }),
  'machine-host-only': (b) => ({
    ...b,
    machineRoutes: { hostName: 'machines.looker.example.com' },
    machineClients: [{ name: 'reporting-bot', certificateSha256: 'a'.repeat(64), allowedPathPrefixes: ['/api/'] }],
  }),
  'log-to-unix-socket': (b) => ({ ...b, logging: { destination: LogDestination.UNIX_SOCKET, target: '/dev/log', facility: 'local1' } }),
  'log-to-udp': (b) => ({ ...b, logging: { destination: LogDestination.UDP, target: '127.0.0.1:514' } }),
  'embedded-in-a-portal-no-hsts': (b) => ({
    ...b,
    securityHeaders: { hstsMaxAgeSeconds: 0, frameAncestors: ['https://portal.example.com'] },
    headerHygiene: { extraStrippedHeaders: ['X-Debug-User'], extraStrippedHeaderPrefixes: ['X-Internal-'] },
  }),
  'no-proxy-protocol-local': (b) => ({ ...b, listener: { ...b.listener, acceptProxyProtocol: false }, readiness: undefined, process: { nbthread: 1 } }),
};

let clientCa: TestCa;
const rendered = new Map<string, string>();
const workDir = mkdtempSync(path.join(tmpdir(), 'lg-golden-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

beforeAll(async () => {
  clientCa = await createCa('Golden Machine Clients CA');
  const bot = await issueCertificate(clientCa, { commonName: 'reporting-bot', usages: ['client'] });
  const caFile = path.join(workDir, 'client-ca.pem');
  writeFileSync(caFile, clientCa.cert);
  const stackVariants: Record<string, Record<string, unknown>> = {
    'stack-defaults': {},
    'stack-machine-clients': {
      machineClients: [{ name: 'reporting-bot', certificateSha256: bot.fingerprint, allowedMethods: ['GET', 'POST'], allowedPathPrefixes: ['/api/4.0/queries/'] }],
      machineRoutePathPrefixes: ['/api/4.0/'],
      machineClientCaFile: caFile,
    },
    'stack-looker-by-dns': { lookerHosts: undefined, lookerDnsName: 'looker.internal.example.com', lookerServerName: undefined },
  };
  for (const [name, settings] of Object.entries(stackVariants)) rendered.set(name, configFromStack(settings));
  const base = gatewayConfigOptions(INSTANCE);
  for (const [name, change] of Object.entries(RENDERER_VARIANTS)) rendered.set(name, renderGatewayConfig(change(base)).haproxyCfg);
});

/** haproxy.cfg as the launch template carries it, deploy-time values as named placeholders. */
function configFromStack(settings: Record<string, unknown>): string {
  const { stack } = newGatewayStack({ settings: settings as never });
  const template = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Metadata?: Record<string, { files: Array<{ path: string; content: unknown }> }> }> };
  const carrier = Object.values(template.Resources).find((resource) => resource.Metadata?.[FILES_METADATA_KEY]);
  const file = carrier?.Metadata?.[FILES_METADATA_KEY].files.find((f) => f.path === HAPROXY_CFG);
  if (!file) throw new Error(`No ${HAPROXY_CFG} in the launch template's ${FILES_METADATA_KEY} metadata.`);
  return namedPlaceholders(file.content);
}

const names = [...['stack-defaults', 'stack-machine-clients', 'stack-looker-by-dns'], ...Object.keys(RENDERER_VARIANTS)];

test.each(names)('%s.cfg is the rendered config', (name) => {
  const file = path.join(GOLDEN_DIR, `${name}.cfg`);
  const actual = rendered.get(name)!;
  if (UPDATE) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, actual);
  }
  if (!existsSync(file)) throw new Error(`${path.relative(process.cwd(), file)} does not exist: run LG_UPDATE_GOLDEN=1 npx jest test/golden and review it.`);
  expect(actual).toEqual(readFileSync(file, 'utf8'));
});

test('every golden file belongs to a variant (none left behind by a rename)', () => {
  expect(readdirSync(GOLDEN_DIR).sort()).toEqual(names.map((name) => `${name}.cfg`).sort());
});
