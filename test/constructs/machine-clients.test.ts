/**
 * Machine clients (scripts and AI agents with client certificates) through the constructs:
 * the rendered files in the launch template Metadata, one test per validation error, and
 * the cdk.json settings. The request path through haproxy is in user-data.test.ts.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as x509 from '@peculiar/x509';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { ClientCertificateAuthority, MachineClient } from '../../lib/fleet/machine-clients';
import { FILES_METADATA_KEY } from '../../core/instance/user-data';
import { LookerGatewayProps } from '../../lib/looker-gateway';
import { LookerGatewayStack, settingsFromContext } from '../../lib/stack';
import { createCa, issueCertificate, Pem, TestCa } from '../../dev/pki';
import { createCrl } from '../../dev/gateway-env';
import { defaultContext, newEmptyStack, newTestGateway } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

const CONFIG_DIR = '/etc/haproxy/gateway';

let ca: TestCa;
let bot: Pem;
let crlPem: string;
let workDir: string;

beforeAll(async () => {
  ca = await createCa('Machine Clients Test CA');
  bot = await issueCertificate(ca, { commonName: 'reporting-bot', usages: ['client'] });
  crlPem = await createCrl(ca, [await issueCertificate(ca, { commonName: 'retired-bot', usages: ['client'] })]);
  workDir = mkdtempSync(path.join(tmpdir(), 'lg-machine-clients-'));
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function reportingBot(overrides: Partial<MachineClient> = {}): MachineClient {
  return {
    name: 'reporting-bot',
    certificateSha256: bot.fingerprint,
    allowedMethods: ['GET', 'POST'],
    allowedPathPrefixes: ['/api/4.0/queries/'],
    ...overrides,
  };
}

const gateway = newTestGateway;

/** The files of the launch template Metadata, with deploy-time values faked, by absolute path. */
function instanceFiles(stack: Stack): Map<string, { mode: string; content: string }> {
  const json = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Metadata?: Record<string, unknown> }> };
  const launchTemplates = Object.values(json.Resources).filter((r) => r.Type === 'AWS::EC2::LaunchTemplate');
  expect(launchTemplates).toHaveLength(1);
  const { files } = resolveIntrinsics(launchTemplates[0].Metadata![FILES_METADATA_KEY], FAKE_DEPLOYMENT, json as never) as {
    files: Array<{ path: string; mode: string; content: string }>;
  };
  return new Map(files.map((f) => [f.path, { mode: f.mode, content: f.content }]));
}

describe('rendered into the launch template Metadata', () => {
  test('a machine route on path prefixes: the client CA file, the identity map and the route in haproxy.cfg', () => {
    const stack = newEmptyStack();
    gateway(
      {
        machineClients: [reportingBot()],
        machineRoutes: { pathPrefixes: ['/api/4.0/'] },
        clientCertificateAuthority: ClientCertificateAuthority.fromPem(ca.cert),
      },
      stack,
    );
    const files = instanceFiles(stack);
    expect(files.get(`${CONFIG_DIR}/tls/client-ca.pem`)).toEqual({ mode: '0644', content: ca.cert.endsWith('\n') ? ca.cert : `${ca.cert}\n` });
    expect(files.get(`${CONFIG_DIR}/maps/machine-clients.map`)?.content).toBe(`${bot.fingerprint} reporting-bot\n`);
    expect(files.has(`${CONFIG_DIR}/tls/client-crl.pem`)).toBe(false);
    const cfg = files.get(`${CONFIG_DIR}/haproxy.cfg`)!.content;
    expect(cfg).toContain(`verify optional ca-file ${CONFIG_DIR}/tls/client-ca.pem`);
    expect(cfg).toContain('acl is_machine_path path_beg /api/4.0/');
    expect(cfg).not.toContain('crl-file');
  });

  test('without machine routes no certificate is asked for and no client CA is shipped (the default stack)', () => {
    const stack = newEmptyStack();
    gateway({}, stack);
    const files = instanceFiles(stack);
    expect([...files.keys()].filter((p) => /client-ca|client-crl|machine-clients/.test(p))).toEqual([]);
    expect(files.get(`${CONFIG_DIR}/haproxy.cfg`)!.content).not.toContain('verify optional');
  });

  test('a CRL from a file travels as tls/client-crl.pem and is named in the config', () => {
    const caFile = path.join(workDir, 'ca.pem');
    const crlFile = path.join(workDir, 'ca.crl.pem');
    writeFileSync(caFile, ca.cert);
    writeFileSync(crlFile, crlPem);
    const stack = newEmptyStack();
    gateway(
      {
        machineClients: [reportingBot()],
        machineRoutes: { pathPrefixes: ['/api/4.0/'] },
        clientCertificateAuthority: ClientCertificateAuthority.fromFile(caFile, { crlFile }),
      },
      stack,
    );
    const files = instanceFiles(stack);
    expect(files.get(`${CONFIG_DIR}/tls/client-crl.pem`)?.content.trim()).toBe(crlPem.trim());
    expect(files.get(`${CONFIG_DIR}/haproxy.cfg`)!.content).toContain(`crl-file ${CONFIG_DIR}/tls/client-crl.pem`);
  });

  test('a host name of their own: certificates asked for on that SNI only (crt-list), with a warning when the frontend certificate is self-signed', () => {
    const stack = newEmptyStack();
    gateway(
      {
        machineClients: [reportingBot()],
        machineRoutes: { hostName: 'agents.looker.example.com' },
        clientCertificateAuthority: ClientCertificateAuthority.fromPem(ca.cert),
      },
      stack,
    );
    const files = instanceFiles(stack);
    expect(files.get(`${CONFIG_DIR}/tls/frontend.crt-list`)?.content).toContain('agents.looker.example.com');
    Annotations.fromStack(stack).hasWarning(
      '*',
      Match.stringLikeRegexp('machineRoutes.hostName "agents.looker.example.com" is not in the self-signed frontend certificate.*Give a frontendCertificate'),
    );
  });

  test('a change of the client CA makes a new user data (files digest), so the fleet rolls', async () => {
    const other = await createCa('Another Machine CA');
    const userData = (pem: string) => {
      const stack = newEmptyStack();
      gateway(
        {
          machineClients: [reportingBot()],
          machineRoutes: { pathPrefixes: ['/api/4.0/'] },
          clientCertificateAuthority: ClientCertificateAuthority.fromPem(pem),
        },
        stack,
      );
      const json = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties: any }> };
      const lt = Object.values(json.Resources).find((r) => r.Type === 'AWS::EC2::LaunchTemplate')!;
      return JSON.stringify(lt.Properties.LaunchTemplateData.UserData).match(/files digest: ([0-9a-f]{64})/)![1];
    };
    expect(userData(ca.cert)).not.toBe(userData(other.cert));
  });
});

describe('validation at synth', () => {
  const withMachines = (overrides: Partial<LookerGatewayProps>) => () =>
    gateway({
      machineClients: [reportingBot()],
      machineRoutes: { pathPrefixes: ['/api/4.0/'] },
      clientCertificateAuthority: ClientCertificateAuthority.fromPem(ca.cert),
      ...overrides,
    });

  test('the baseline with machine clients synthesizes', () => {
    expect(withMachines({})).not.toThrow();
  });

  test('a fingerprint that is not 64 hex digits', () => {
    expect(withMachines({ machineClients: [reportingBot({ certificateSha256: 'ab:cd' })] })).toThrow(
      /GatewayFleet .*: machineClients\[0\]\.certificateSha256 is "ab:cd": expected the SHA-256 of the certificate's DER as 64 hex digits \(openssl x509 -noout -fingerprint -sha256\)/,
    );
  });

  test('a machine route overlapping /oauth2/', () => {
    expect(withMachines({ machineRoutes: { pathPrefixes: ['/oauth2/'] }, machineClients: [reportingBot({ allowedPathPrefixes: ['/oauth2/'] })] })).toThrow(
      /machineRoutes\.pathPrefixes .*"\/oauth2\/".*the auth service prefix/,
    );
  });

  test('machine clients without a CA', () => {
    expect(withMachines({ clientCertificateAuthority: undefined })).toThrow(
      /machineRoutes are set but clientCertificateAuthority is not: .*ClientCertificateAuthority\.fromFile\("certs\/machine-ca\.pem"\)/,
    );
  });

  test('two clients with the same name', () => {
    expect(withMachines({ machineClients: [reportingBot(), reportingBot({ certificateSha256: 'a'.repeat(64) })] })).toThrow(
      /machineClients\[1\]\.name "reporting-bot" is used twice: give each machine client its own name/,
    );
  });

  test('two clients with the same certificate', () => {
    expect(withMachines({ machineClients: [reportingBot(), reportingBot({ name: 'other-bot', certificateSha256: bot.fingerprint.toUpperCase() })] })).toThrow(
      new RegExp(`machineClients\\[1\\]\\.certificateSha256 ${bot.fingerprint} is used twice: one certificate maps to one identity`),
    );
  });

  test('a client name HAProxy cannot carry', () => {
    expect(withMachines({ machineClients: [reportingBot({ name: 'reporting bot' })] })).toThrow(
      /machineClients\[0\]\.name is "reporting bot": use letters, digits/,
    );
  });

  test('a method in lower case', () => {
    expect(withMachines({ machineClients: [reportingBot({ allowedMethods: ['get'] })] })).toThrow(
      /machineClients\[0\]\.allowedMethods has "get": expected upper-case HTTP methods/,
    );
  });

  test('a client path outside every machine route', () => {
    expect(withMachines({ machineClients: [reportingBot({ allowedPathPrefixes: ['/dashboards/'] })] })).toThrow(
      /allowedPathPrefixes has "\/dashboards\/", which is not inside a machine route \(\/api\/4\.0\/\): add a matching machineRoutes\.pathPrefixes entry/,
    );
  });

  test('machine clients without machine routes', () => {
    expect(withMachines({ machineRoutes: undefined })).toThrow(
      /GatewayFleet .*: machineClients\[0\]\.allowedPathPrefixes has "\/api\/4\.0\/queries\/", which is not inside a machine route \(none\): add a matching machineRoutes\.pathPrefixes entry/,
    );
  });

  test('machine routes with neither prefixes nor a host name', () => {
    expect(withMachines({ machineRoutes: { pathPrefixes: [] } })).toThrow(/machineRoutes has neither pathPrefixes nor hostName: give one of them/);
  });

  test('a client CA without machine routes', () => {
    expect(withMachines({ machineRoutes: undefined, machineClients: undefined })).toThrow(/clientCertificateAuthority is set but there are no machineRoutes/);
  });

  test('a client CA PEM with no certificate', () => {
    expect(() => ClientCertificateAuthority.fromPem('not a pem')).toThrow(
      /ClientCertificateAuthority\.fromPem: the client CA PEM is not usable: it holds no "-----BEGIN CERTIFICATE-----" block/,
    );
  });

  test('a client CA PEM that carries the CA private key', () => {
    expect(() => ClientCertificateAuthority.fromPem(ca.bundle)).toThrow(/it contains a PRIVATE KEY block: give only the CA certificate\(s\)/);
  });

  test('a client certificate given as the CA', () => {
    expect(() => ClientCertificateAuthority.fromPem(bot.cert)).toThrow(
      /certificate 1 \(CN=reporting-bot\) is not a CA certificate \(basicConstraints CA:TRUE\): give the issuing CA/,
    );
  });

  test('an expired client CA', async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
    const expired = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: '01',
        name: 'CN=Expired CA',
        notBefore: new Date(Date.now() - 10 * 86_400_000),
        notAfter: new Date(Date.now() - 86_400_000),
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        keys,
        extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
      },
      webcrypto as unknown as Crypto,
    );
    expect(() => ClientCertificateAuthority.fromPem(expired.toString('pem'))).toThrow(
      /certificate 1 \(CN=Expired CA\) expired on .*: renew the CA and re-issue the client certificates/,
    );
  });

  test('a CRL that is not one', () => {
    expect(() => ClientCertificateAuthority.fromPem(ca.cert, { crlPem: ca.cert })).toThrow(
      /the client CRL PEM is not usable: it holds no "-----BEGIN X509 CRL-----" block/,
    );
  });

  test('a CA file that cannot be read', () => {
    expect(() => ClientCertificateAuthority.fromFile(path.join(workDir, 'missing.pem'))).toThrow(
      /ClientCertificateAuthority\.fromFile: caFile ".*missing\.pem" cannot be read \(ENOENT\): give the path of a PEM file/,
    );
  });
});

describe('cdk.json settings', () => {
  function stackWith(context: Record<string, unknown>): LookerGatewayStack {
    const app = new App({ context: { ...defaultContext(), 'aws:cdk:bundling-stacks': [], ...context } });
    return new LookerGatewayStack(app, 'S', { settings: settingsFromContext(app.node) });
  }

  test('machine clients, routes and the CA file from context (strings, as -c gives them) reach the instance files', () => {
    const caFile = path.join(workDir, 'context-ca.pem');
    writeFileSync(caFile, ca.cert);
    const stack = stackWith({
      machineClients: JSON.stringify([reportingBot()]),
      machineRoutePathPrefixes: '/api/4.0/',
      machineClientCaFile: caFile,
    });
    const files = instanceFiles(stack);
    expect(files.get(`${CONFIG_DIR}/maps/machine-clients.map`)?.content).toBe(`${bot.fingerprint} reporting-bot\n`);
    expect(files.get(`${CONFIG_DIR}/tls/client-ca.pem`)?.content.trim()).toBe(ca.cert.trim());
  });

  test('machineClients that is not a list of objects', () => {
    expect(() => stackWith({ machineClients: '{"name":"reporting-bot"}' })).toThrow(
      /"machineClients" is \{"name":"reporting-bot"\}; give a JSON list of objects/,
    );
  });

  test('a CRL file without a CA file', () => {
    expect(() => stackWith({ machineClientCrlFile: 'crl.pem' })).toThrow(/machineClientCrlFile is set but machineClientCaFile is not/);
  });
});
