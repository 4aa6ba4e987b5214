/**
 * What deploys is what is tested: the user data and the launch template Metadata are taken
 * from the synthesized template, their CloudFormation functions resolved with fake values,
 * and the script runs in the Debian 13 root (the AMI's release, with haproxy 3.0, the AWS
 * CLI and jq) as root, as cloud-init would run it. AWS answers come from fakes on
 * 127.0.0.1: the Secrets Manager endpoint over the stateful model (seeded by the real
 * rotation handler), a CloudFormation endpoint (DescribeStackResource, SignalResource)
 * and an instance metadata service. Then a request with a valid session goes through the
 * haproxy the script started and reaches a Looker stand-in over mutual TLS, and so does a
 * machine client's request with its client certificate on its machine route.
 *
 * Isolation: the root is mounted read-only under an overlay in a private mount namespace
 * (unshare -m), so every file the script writes lands in this test's own upper directory,
 * which is removed afterwards; the shared root is never modified.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, IncomingHttpHeaders, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { TLSSocket } from 'node:tls';
import { Stack } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { importJWK, SignJWT } from 'jose';
import { buildSessionClaims } from '../../lib/auth/session-claims';
import { FILES_METADATA_KEY } from '../../lib/fleet/user-data';
import { parseGatewaySecret, SECRET_KINDS } from '../../lib/key-material';
import { ClientCertificateAuthority } from '../../lib/fleet/gateway-fleet';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGateway } from '../../lib/looker-gateway';
import { HEADERS, SESSION_COOKIE } from '../../lib/session-contract';
import { handler as rotationHandler } from '../../lambda/rotation/index';
import { TRIXIE_ROOT } from '../support/haproxy';
import { createCa, issueCertificate, Pem } from '../support/pki';
import { freePorts } from '../support/ports';
import { startSecretsManagerEndpoint, SecretsManagerEndpoint } from '../support/secrets-manager-endpoint';
import { installSecretsManagerFake, SecretsManagerModel } from '../support/secrets-manager-model';
import { attachRotation, DOMAIN, GatewaySecretArns, rotateSecret, rotationSettings, seedGatewaySecrets, setRotationEnvironment } from '../rotation/fixture';
import { newTestApp } from './fixtures';
import { FakeDeployment, resolveIntrinsics } from './resolve';

jest.setTimeout(240_000);

const INSTANCE_ID = 'i-0123456789abcdef0';
const LOOKER_NAME = 'looker.internal.test';
const MACHINE_ROUTE = '/api/4.0/queries/';

interface Template {
  Resources: Record<string, { Type: string; Properties: any; Metadata?: any }>;
}

let model: SecretsManagerModel;
let fakeSdk: ReturnType<typeof installSecretsManagerFake>;
let restoreEnv: () => void;
let arns: GatewaySecretArns;
let secretsEndpoint: SecretsManagerEndpoint;
let cloudFormation: FakeCloudFormation;
let imds: Server;
let looker: Server;
const lookerRequests: Array<{ path: string; headers: IncomingHttpHeaders; clientCertificate: string }> = [];
let ports: { https: number; health: number; metrics: number; looker: number };
let workDir: string;
let bootstrap: { code: number; output: string };
let machineClient: Pem;

interface FakeCloudFormation {
  readonly url: string;
  readonly calls: Array<Record<string, string>>;
  close(): Promise<void>;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** CloudFormation's query protocol for the two calls the user data makes. */
async function startFakeCloudFormation(metadataByLogicalId: Record<string, unknown>): Promise<FakeCloudFormation> {
  const calls: Array<Record<string, string>> = [];
  const server = createHttpServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    calls.push(form);
    const reply = (status: number, body: string) => {
      res.writeHead(status, { 'Content-Type': 'text/xml' });
      res.end(`<?xml version="1.0"?>\n${body}`);
    };
    const ns = 'xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"';
    if (form.Action === 'DescribeStackResource' && metadataByLogicalId[form.LogicalResourceId] !== undefined) {
      reply(
        200,
        `<DescribeStackResourceResponse ${ns}><DescribeStackResourceResult><StackResourceDetail>` +
          `<StackName>${xmlEscape(form.StackName)}</StackName><LogicalResourceId>${xmlEscape(form.LogicalResourceId)}</LogicalResourceId>` +
          `<ResourceType>AWS::EC2::LaunchTemplate</ResourceType><ResourceStatus>CREATE_COMPLETE</ResourceStatus><LastUpdatedTimestamp>2026-01-01T00:00:00Z</LastUpdatedTimestamp>` +
          `<Metadata>${xmlEscape(JSON.stringify(metadataByLogicalId[form.LogicalResourceId]))}</Metadata>` +
          `</StackResourceDetail></DescribeStackResourceResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeStackResourceResponse>`,
      );
    } else if (form.Action === 'SignalResource') {
      reply(200, `<SignalResourceResponse ${ns}><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></SignalResourceResponse>`);
    } else {
      reply(400, `<ErrorResponse ${ns}><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Unexpected ${xmlEscape(form.Action ?? '?')} for ${xmlEscape(form.LogicalResourceId ?? '?')}</Message></Error></ErrorResponse>`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** IMDSv2: a token, then the instance id. */
async function startFakeImds(): Promise<Server> {
  const token = randomUUID();
  const server = createHttpServer((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') res.end(token);
    else if (req.method === 'GET' && req.url === '/latest/meta-data/instance-id' && req.headers['x-aws-ec2-metadata-token'] === token) res.end(INSTANCE_ID);
    else res.writeHead(401).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c.toString()));
    child.stderr.on('data', (c) => (output += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, output }));
  });
}

function resourceOfType(template: Template, type: string): [string, Template['Resources'][string]] {
  const found = Object.entries(template.Resources).filter(([, r]) => r.Type === type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0];
}

beforeAll(async () => {
  // GIVEN the gateway's secrets, made by the real rotation handler
  model = new SecretsManagerModel();
  fakeSdk = installSecretsManagerFake(model);
  arns = seedGatewaySecrets(model);
  restoreEnv = setRotationEnvironment(rotationSettings(arns));
  attachRotation(model, arns, rotationHandler);
  for (const arn of [arns.signingKeys, arns.backendClientCertificate, arns.frontendCertificate]) await rotateSecret(model, arn);
  secretsEndpoint = await startSecretsManagerEndpoint(model);

  // AND a Looker stand-in that requires the fleet's client certificate
  const [https, health, metrics, lookerPort] = await freePorts(4);
  ports = { https, health, metrics, looker: lookerPort };
  const lookerCa = await createCa('Looker Test CA');
  const lookerCert = await issueCertificate(lookerCa, { commonName: LOOKER_NAME, usages: ['server'] });
  const backendCa = parseGatewaySecret(model.valueAt(arns.backendCa), SECRET_KINDS.backendCa, 'backend CA');
  looker = createHttpsServer({ key: lookerCert.key, cert: lookerCert.cert, ca: backendCa.certificatePem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    if (req.url !== '/alive') lookerRequests.push({ path: req.url ?? '', headers: req.headers, clientCertificate: String(peer.subject?.CN ?? '') });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"looker":"stand-in"}');
  });
  await new Promise<void>((resolve) => looker.listen(lookerPort, '127.0.0.1', resolve));

  // AND a machine client (a script) with a certificate from its own CA
  const machineCa = await createCa('Machine Clients CA');
  machineClient = await issueCertificate(machineCa, { commonName: 'reporting-bot', usages: ['client'] });

  // AND the template of a gateway whose Looker is that stand-in
  const app = newTestApp();
  const stack = new Stack(app, 'UserDataTest');
  new LookerGateway(stack, 'Gateway', {
    domainName: DOMAIN,
    identityProvider: { issuer: 'https://login.example.com', clientId: 'gateway', clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'IdpSecret', 'idp') },
    mappingRules: { rules: [{ name: 'analysts', match: { groups: ['analysts'] }, grant: { roles: ['Viewer'], groups: ['Analysts'], attributes: { region: 'eu' } } }] },
    looker: LookerBackend.fromHosts(['127.0.0.1'], { webPort: lookerPort, serverName: LOOKER_NAME, caCertificatePem: lookerCa.cert }),
    instancePort: https,
    healthCheckPort: health,
    metricsPort: metrics,
    machineRoutes: { pathPrefixes: [MACHINE_ROUTE] },
    machineClients: [{ name: 'reporting-bot', certificateSha256: machineClient.fingerprint, allowedMethods: ['GET'], allowedPathPrefixes: [MACHINE_ROUTE] }],
    clientCertificateAuthority: ClientCertificateAuthority.fromPem(machineCa.cert),
  });
  const template = app.synth().getStackByName(stack.stackName).template as Template;

  // WHEN CloudFormation would have substituted the deploy-time values (the secret ARNs are the model's)
  const secretIds: Record<string, string> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    const kind = resource.Type === 'AWS::SecretsManager::Secret' ? resource.Properties.Tags?.find((t: { Key: string }) => t.Key === 'cdk-looker-gateway:kind')?.Value : undefined;
    const name = Object.entries(SECRET_KINDS).find(([, k]) => k === kind)?.[0] as keyof GatewaySecretArns | undefined;
    if (name) secretIds[id] = arns[name];
  }
  const fake: FakeDeployment = { region: model.region, accountId: model.accountId, stackName: 'UserDataTest', refs: secretIds };
  const [launchTemplateId, launchTemplate] = resourceOfType(template, 'AWS::EC2::LaunchTemplate');
  const userData = Buffer.from(resolveIntrinsics(launchTemplate.Properties.LaunchTemplateData.UserData, fake, template) as string, 'base64').toString('utf8');
  const metadata = resolveIntrinsics(launchTemplate.Metadata, fake, template);
  cloudFormation = await startFakeCloudFormation({ [launchTemplateId]: metadata });
  imds = await startFakeImds();

  // AND the script runs as root in the Debian 13 root, as cloud-init would run it
  workDir = mkdtempSync(path.join(tmpdir(), 'lg-user-data-'));
  writeFileSync(path.join(workDir, 'user-data.sh'), userData, { mode: 0o755 });
  writeFileSync(path.join(workDir, 'metadata.json'), JSON.stringify(metadata));
  const env = [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'HOME=/root',
    'AWS_ACCESS_KEY_ID=AKIDUSERDATATEST',
    'AWS_SECRET_ACCESS_KEY=not-a-real-secret',
    `AWS_ENDPOINT_URL_SECRETS_MANAGER=${secretsEndpoint.url}`,
    `AWS_ENDPOINT_URL_CLOUDFORMATION=${cloudFormation.url}`,
    `LG_IMDS_ENDPOINT=http://127.0.0.1:${(imds.address() as AddressInfo).port}`,
    'LG_SKIP_CLOUDWATCH_AGENT=1',
    'LG_SKIP_SSM_AGENT=1',
    'LG_NO_SYSTEMD=1',
  ];
  const merged = path.join(workDir, 'merged');
  const script = [
    'set -e',
    `mkdir -p ${workDir}/upper ${workDir}/work ${merged}`,
    `mount -t overlay overlay -o lowerdir=${TRIXIE_ROOT},upperdir=${workDir}/upper,workdir=${workDir}/work ${merged}`,
    `mount -t proc proc ${merged}/proc`,
    `mount --rbind /dev ${merged}/dev`,
    `cp ${workDir}/user-data.sh ${merged}/var/lib/cloud-user-data.sh`,
    `exec chroot ${merged} env -i ${env.map((e) => `'${e}'`).join(' ')} /bin/bash /var/lib/cloud-user-data.sh`,
  ].join('\n');
  bootstrap = await run('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script]);
});

afterAll(async () => {
  const pidFile = workDir ? path.join(workDir, 'upper', 'run', 'haproxy', 'haproxy.pid') : '';
  if (pidFile && existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    try {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100; i += 1) {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch {
      // gone
    }
  }
  await new Promise<void>((resolve) => (looker ? looker.close(() => resolve()) : resolve()));
  await new Promise<void>((resolve) => (imds ? imds.close(() => resolve()) : resolve()));
  await cloudFormation?.close();
  await secretsEndpoint?.close();
  fakeSdk?.restore?.();
  restoreEnv?.();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
}

async function sessionToken(): Promise<string> {
  const signing = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 'signing keys');
  const current = signing.keys.find((k) => k.status === 'current')!;
  const now = Math.floor(Date.now() / 1000);
  const claims = buildSessionClaims({
    issuer: `https://${DOMAIN}`,
    audience: `https://${DOMAIN}`,
    sessionId: randomUUID(),
    identity: { subject: 'user-123', email: 'ana@example.com', name: 'Ana' },
    grant: { allowed: true, matchedRules: ['analysts'], roles: ['Viewer'], groups: ['Analysts'], attributes: { region: 'eu' } },
    timing: { now, ttlSeconds: 600 },
  });
  return new SignJWT(claims as Record<string, unknown>).setProtectedHeader({ alg: 'ES256', kid: current.kid, typ: 'JWT' }).sign(await importJWK(current.privateJwk, 'ES256'));
}

function frontendCa(): string {
  const frontend = parseGatewaySecret(model.valueAt(arns.frontendCertificate), SECRET_KINDS.frontendCertificate, 'frontend');
  const file = path.join(workDir, 'frontend-ca.pem');
  writeFileSync(file, `${frontend.certificatePem}${frontend.chainPem}`);
  return file;
}

test('the user data from the template bootstraps the instance: files, keys, haproxy -c, start, CloudFormation signal', () => {
  expect({ code: bootstrap.code, output: bootstrap.code === 0 ? '' : bootstrap.output }).toEqual({ code: 0, output: '' });
  expect(bootstrap.output).toContain('[lg-bootstrap] ready');
  const upper = path.join(workDir, 'upper');
  for (const file of ['etc/haproxy/gateway/haproxy.cfg', 'etc/haproxy/gateway/tls/client-ca.pem', 'etc/haproxy/gateway/maps/machine-clients.map', 'etc/haproxy/gateway/keys/session-current.pem', 'etc/haproxy/gateway/tls/frontend.pem', 'etc/haproxy/gateway/tls/backend-client.pem', 'usr/local/sbin/lg-key-sync', 'etc/systemd/system/lg-key-sync.timer']) {
    expect(existsSync(path.join(upper, file))).toBe(true);
  }
  expect(cloudFormation.calls.map((c) => c.Action)).toEqual(['DescribeStackResource', 'SignalResource']);
  expect(cloudFormation.calls[1]).toMatchObject({ Status: 'SUCCESS', UniqueId: INSTANCE_ID, StackName: 'UserDataTest' });
  expect(cloudFormation.calls[1].LogicalResourceId).toMatch(/^GatewayFleetGroupASG/);
  expect(secretsEndpoint.requests).toEqual(expect.arrayContaining(['GetSecretValue']));
});

test('the launch template Metadata holds every file the script wrote', () => {
  const metadataCall = cloudFormation.calls[0];
  expect(metadataCall.LogicalResourceId).toMatch(/^GatewayFleetLaunchTemplate/);
  const written = readFileSync(path.join(workDir, 'upper', 'etc/haproxy/gateway/haproxy.cfg'), 'utf8');
  expect(written).toContain(`bind 0.0.0.0:${ports.https}`);
  expect(written).toContain(FILES_METADATA_KEY.length > 0 ? `127.0.0.1:${ports.looker}` : '');
});

test('a request with a valid session goes through that haproxy to Looker, with identity headers, over mTLS', async () => {
  const token = await sessionToken();
  const result = await curl([
    '--haproxy-protocol',
    '--resolve',
    `${DOMAIN}:${ports.https}:127.0.0.1`,
    '--cacert',
    frontendCa(),
    '-H',
    `Cookie: ${SESSION_COOKIE}=${token}`,
    '-H',
    `${HEADERS.user}: mallory`,
    '-w',
    '\n%{http_code}',
    `https://${DOMAIN}:${ports.https}/dashboards/7`,
  ]);
  expect(result.stderr).toBe('');
  expect(result.stdout.trim().split('\n').pop()).toBe('200');
  const seen = lookerRequests.find((r) => r.path === '/dashboards/7');
  expect(seen).toBeDefined();
  expect(seen!.clientCertificate).toBe('looker-gateway');
  expect(seen!.headers[HEADERS.user.toLowerCase()]).toBe('user-123');
  expect(seen!.headers[HEADERS.roles.toLowerCase()]).toBe('Viewer');
  expect(seen!.headers['x-looker-attr-region']).toBe('eu');
  expect(String(seen!.headers.cookie ?? '')).not.toContain(SESSION_COOKIE);
});

test('a request without a session is not forwarded', async () => {
  const before = lookerRequests.length;
  const result = await curl(['--haproxy-protocol', '--resolve', `${DOMAIN}:${ports.https}:127.0.0.1`, '--cacert', frontendCa(), '-H', 'Accept: application/json', '-o', '/dev/null', '-w', '%{http_code}', `https://${DOMAIN}:${ports.https}/api/4.0/user`]);
  expect(result.stdout).toBe('401');
  expect(lookerRequests.length).toBe(before);
});

describe('a machine client on its route', () => {
  function machineRequest(method: string, requestPath: string, withCertificate: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
    const certificate = path.join(workDir, 'machine-client.pem');
    const key = path.join(workDir, 'machine-client.key');
    writeFileSync(certificate, machineClient.cert);
    writeFileSync(key, machineClient.key, { mode: 0o600 });
    return curl([
      '--haproxy-protocol',
      '--resolve',
      `${DOMAIN}:${ports.https}:127.0.0.1`,
      '--cacert',
      frontendCa(),
      ...(withCertificate ? ['--cert', certificate, '--key', key] : []),
      '-H',
      `${HEADERS.user}: mallory`,
      '-X',
      method,
      '-w',
      '\n%{http_code}',
      `https://${DOMAIN}:${ports.https}${requestPath}`,
    ]);
  }

  test('with its certificate, inside its policy: reaches Looker as its identity', async () => {
    const result = await machineRequest('GET', `${MACHINE_ROUTE}42`, true);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split('\n').pop()).toBe('200');
    const seen = lookerRequests.find((r) => r.path === `${MACHINE_ROUTE}42`);
    expect(seen).toBeDefined();
    expect(seen!.headers[HEADERS.user.toLowerCase()]).toBe('reporting-bot');
    expect(seen!.clientCertificate).toBe('looker-gateway');
  });

  test('with its certificate, outside its policy (a method it may not use): 403, not forwarded', async () => {
    const before = lookerRequests.length;
    const result = await machineRequest('DELETE', `${MACHINE_ROUTE}42`, true);
    expect(result.stdout.trim().split('\n').pop()).toBe('403');
    expect(lookerRequests.length).toBe(before);
  });

  test('without a certificate on the machine route: 401, not forwarded', async () => {
    const before = lookerRequests.length;
    const result = await machineRequest('GET', `${MACHINE_ROUTE}42`, false);
    expect(result.stdout.trim().split('\n').pop()).toBe('401');
    expect(lookerRequests.length).toBe(before);
  });
});

test('the access log is JSON lines in the file the CloudWatch agent ships', () => {
  const log = readFileSync(path.join(workDir, 'upper', 'var/log/haproxy/access.log'), 'utf8');
  const lines = log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.some((l) => l.path === '/dashboards/7' && String(l.status) === '200' && l.user === 'user-123')).toBe(true);
  const agent = JSON.parse(readFileSync(path.join(workDir, 'upper', 'opt/aws/amazon-cloudwatch-agent/etc/looker-gateway.json'), 'utf8'));
  expect(agent.logs.logs_collected.files.collect_list[0]).toMatchObject({ file_path: '/var/log/haproxy/access.log' });
  expect(agent.logs.logs_collected.files.collect_list[0].log_group_name).toMatch(/-ref$/);
});
