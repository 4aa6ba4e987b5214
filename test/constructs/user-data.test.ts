/**
 * What deploys is what is tested, the way it runs on EC2: the user data and the launch
 * template Metadata are taken from the synthesized template (CloudFormation functions
 * resolved with fake values) and run on a Debian 13 instance booted with systemd as PID 1
 * (dev/systemd-container.ts), in a transient service as cloud-init's final stage
 * runs user data. AWS answers come from fakes on 127.0.0.1 that follow AWS's documented
 * behaviour: Secrets Manager (the stateful model, its rotations done by the real rotation
 * handler), CloudFormation (DescribeStackResource, SignalResource) and the instance
 * metadata service (IMDSv2 with the instance role's credentials). Every AWS call is
 * signed with those credentials.
 *
 * Modelled on purpose:
 *   - a new stack: the first rotations (RotateImmediatelyOnUpdate, asynchronous) have not
 *     finished when the instance boots, so the secrets still hold their seeds;
 *   - health checks as the NLB sends them with proxy protocol v2 on the target group (a
 *     LOCAL PROXY v2 header, dev/proxy-protocol.ts), at the interval and
 *     thresholds of the synthesized target group;
 *   - the key-sync timer firing, a reboot, and Looker going away for longer than the
 *     load balancer's health-check window;
 *   - Secrets Manager refusing the instance role (AccessDeniedException, as AWS answers a
 *     call no policy allows: Secrets Manager API Reference, Common Errors): the failure reaches
 *     the journal, the file the CloudWatch agent ships and the metric the alarms watch
 *     (CloudWatch's PutMetricData endpoint, dev/aws/cloudwatch-endpoint.ts).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, Server } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { TLSSocket } from 'node:tls';
import { Stack } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { importJWK, SignJWT } from 'jose';
import { buildSessionClaims } from '../../core/auth/session-claims';
import { KEY_SYNC_UNITS } from '../../core/instance/key-sync';
import { DECISIONS } from '../../core/haproxy/logging';
import { ACCESS_LOG_PATH, HAPROXY_USER } from '../../core/instance/user-data';
import { parseGatewaySecret, SECRET_KINDS } from '../../core/key-material';
import { ClientCertificateAuthority } from '../../lib/fleet/machine-clients';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGateway } from '../../lib/looker-gateway';
import { HEADERS, SESSION_COOKIE } from '../../core/session-contract';
import { handler as rotationHandler } from '../../lambda/rotation/index';
import { startCloudFormationEndpoint, CloudFormationEndpoint } from '../../dev/aws/cloudformation-endpoint';
import { CloudWatchEndpoint, MetricDatum, startCloudWatchEndpoint } from '../../dev/aws/cloudwatch-endpoint';
import { startInstanceMetadataService, InstanceMetadataService } from '../../dev/aws/instance-metadata';
import { matchesJsonFilterPattern } from '../../dev/aws/metric-filter';
import { createCa, issueCertificate, Pem } from '../../dev/pki';
import { freePorts } from '../../dev/ports';
import { nlbHealthCheck, proxyV2Header, rawHttpExchange } from '../../dev/proxy-protocol';
import { startSecretsManagerEndpoint, SecretsManagerEndpoint } from '../../dev/aws/secrets-manager-endpoint';
import { installSecretsManagerFake, SecretsManagerModel } from '../../dev/aws/secrets-manager-model';
import { bootInstance, Instance, jsonLines } from '../../dev/systemd-container';
import { waitFor } from '../../dev/wait';
import { KEY_SYNC_METRICS } from '../../core/instance/run-metrics';
import { HAPROXY_MESSAGES_LOG_PATH, KEY_SYNC_LOG_PATH } from '../../core/instance/instance-logs';
import { breaches, singleMetricAlarm } from '../../dev/aws/alarm';
import { attachRotation, DOMAIN, GatewaySecretArns, rotateSecret, rotationSettings, seedGatewaySecrets, setRotationEnvironment } from '../rotation/fixture';
import { newTestApp } from './fixtures';
import { FakeDeployment, resolveIntrinsics } from './resolve';

jest.setTimeout(300_000);

const INSTANCE_ID = 'i-0123456789abcdef0';
const INSTANCE_ROLE = 'UserDataTest-GatewayFleetInstanceRole';
const STACK_NAME = 'UserDataTest';
const LOOKER_NAME = 'looker.internal.test';
/** Two Looker nodes on this machine: loopback addresses of their own, so HAProxy checks each apart. */
const LOOKER_ADDRESSES = ['127.0.0.1', '127.0.0.2'];
const MACHINE_ROUTE = '/api/4.0/queries/';
const USER_DATA_PATH = '/var/lib/cloud/instance/user-data.txt';

interface TemplateResource {
  Type: string;
  Properties: any;
  Metadata?: any;
}
interface Template {
  Resources: Record<string, TemplateResource>;
}

let model: SecretsManagerModel;
let fakeSdk: ReturnType<typeof installSecretsManagerFake>;
let restoreEnv: () => void;
let arns: GatewaySecretArns;
let secretsEndpoint: SecretsManagerEndpoint;
let cloudFormation: CloudFormationEndpoint;
let imds: InstanceMetadataService;
let cloudWatch: CloudWatchEndpoint;
let template: Template;
let instance: Instance | undefined;
/** The Looker stand-ins by address: two nodes, as lookerHosts lists them. */
const lookerNodes = new Map<string, Server>();
let lookerCa: Awaited<ReturnType<typeof createCa>>;
let lookerCert: Pem;
const lookerRequests: Array<{ path: string; headers: IncomingHttpHeaders; clientCertificate: string }> = [];
let ports: { https: number; http: number; health: number; readiness: number; metrics: number; looker: number };
let workDir: string;
let bootstrap: { code: number; stdout: string; stderr: string };
let keySyncBootLines: Array<Record<string, unknown>>;
let machineClient: Pem;

function resourceOfType(type: string): [string, TemplateResource] {
  const found = Object.entries(template.Resources).filter(([, r]) => r.Type === type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0];
}

function resourceWithId(prefix: string): TemplateResource {
  const found = Object.entries(template.Resources).find(([id]) => id.startsWith(prefix));
  if (!found) throw new Error(`no resource ${prefix}* in the template`);
  return found[1];
}

async function journal(unit: string, sinceBoot = true): Promise<Array<Record<string, unknown>>> {
  const result = await instance!.exec(['journalctl', ...(sinceBoot ? ['-b'] : []), '-u', unit, '-o', 'cat', '--no-pager']);
  return jsonLines(result.stdout);
}

/** Starts the Looker nodes that are not running (each on its own loopback address, the same port). */
async function startLooker(): Promise<void> {
  const backendCa = parseGatewaySecret(model.valueAt(arns.backendCa), SECRET_KINDS.backendCa, 'backend CA');
  for (const address of LOOKER_ADDRESSES) {
    if (lookerNodes.has(address)) continue;
    const server = createHttpsServer(
      { key: lookerCert.key, cert: lookerCert.cert, ca: backendCa.certificatePem, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        if (req.url !== '/alive') lookerRequests.push({ path: req.url ?? '', headers: req.headers, clientCertificate: String(peer.subject?.CN ?? '') });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"looker":"stand-in"}');
      },
    );
    await new Promise<void>((resolve) => server.listen(ports.looker, address, resolve));
    lookerNodes.set(address, server);
  }
}

/** Stops the given Looker nodes (all by default). */
async function stopLooker(addresses: readonly string[] = LOOKER_ADDRESSES): Promise<void> {
  for (const address of addresses) {
    const server = lookerNodes.get(address);
    lookerNodes.delete(address);
    if (!server) continue;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** One rotation to its end: RotateSecret only starts it (the model, like AWS, runs the steps afterwards). */
async function rotate(arn: string): Promise<void> {
  await rotateSecret(model, arn);
}

beforeAll(async () => {
  // GIVEN a new stack's secrets, still holding their seed values: the first rotations
  // (started by the deploy, asynchronous) have not finished yet
  model = new SecretsManagerModel();
  fakeSdk = installSecretsManagerFake(model);
  arns = seedGatewaySecrets(model);
  restoreEnv = setRotationEnvironment(rotationSettings(arns));
  attachRotation(model, arns, rotationHandler);
  secretsEndpoint = await startSecretsManagerEndpoint(model);

  // Free ports for every listener: the instance shares this machine's network, where port 80 may be taken.
  const [https, http, health, readiness, metrics, lookerPort] = await freePorts(6);
  ports = { https, http, health, readiness, metrics, looker: lookerPort };
  lookerCa = await createCa('Looker Test CA');
  lookerCert = await issueCertificate(lookerCa, { commonName: LOOKER_NAME, usages: ['server'] });
  const machineCa = await createCa('Machine Clients CA');
  machineClient = await issueCertificate(machineCa, { commonName: 'reporting-bot', usages: ['client'] });

  // AND the template of a gateway whose Looker is a stand-in on this machine
  const app = newTestApp();
  const stack = new Stack(app, STACK_NAME);
  new LookerGateway(stack, 'Gateway', {
    domainName: DOMAIN,
    identityProvider: {
      issuer: 'https://login.example.com',
      clientId: 'gateway',
      clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'IdpSecret', 'idp'),
    },
    mappingRules: {
      rules: [{ name: 'analysts', match: { groups: ['analysts'] }, grant: { roles: ['Viewer'], groups: ['Analysts'], attributes: { region: 'eu' } } }],
    },
    looker: LookerBackend.fromHosts(LOOKER_ADDRESSES, { webPort: lookerPort, serverName: LOOKER_NAME, caCertificatePem: lookerCa.cert }),
    instancePort: https,
    httpRedirectPort: http,
    healthCheckPort: health,
    readinessPort: readiness,
    metricsPort: metrics,
    machineRoutes: { pathPrefixes: [MACHINE_ROUTE] },
    machineClients: [{ name: 'reporting-bot', certificateSha256: machineClient.fingerprint, allowedMethods: ['GET'], allowedPathPrefixes: [MACHINE_ROUTE] }],
    clientCertificateAuthority: ClientCertificateAuthority.fromPem(machineCa.cert),
  });
  template = app.synth().getStackByName(stack.stackName).template as Template;

  // WHEN CloudFormation has substituted the deploy-time values (the secret ARNs are the model's)
  const secretIds: Record<string, string> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    const kind =
      resource.Type === 'AWS::SecretsManager::Secret'
        ? resource.Properties.Tags?.find((t: { Key: string }) => t.Key === 'cdk-looker-gateway:kind')?.Value
        : undefined;
    const name = Object.entries(SECRET_KINDS).find(([, k]) => k === kind)?.[0] as keyof GatewaySecretArns | undefined;
    if (name) secretIds[id] = arns[name];
  }
  const fake: FakeDeployment = { region: model.region, accountId: model.accountId, stackName: STACK_NAME, refs: secretIds };
  const [launchTemplateId, launchTemplate] = resourceOfType('AWS::EC2::LaunchTemplate');
  const [groupId] = resourceOfType('AWS::AutoScaling::AutoScalingGroup');
  const userData = Buffer.from(resolveIntrinsics(launchTemplate.Properties.LaunchTemplateData.UserData, fake, template) as string, 'base64').toString('utf8');
  const metadata = resolveIntrinsics(launchTemplate.Metadata, fake, template);
  cloudFormation = await startCloudFormationEndpoint({
    stackName: STACK_NAME,
    metadataByLogicalId: { [launchTemplateId]: metadata },
    signalledResources: [groupId],
  });
  imds = await startInstanceMetadataService({ instanceId: INSTANCE_ID, roleName: INSTANCE_ROLE });
  cloudWatch = await startCloudWatchEndpoint();
  workDir = mkdtempSync(path.join(tmpdir(), 'lg-user-data-'));

  // AND an instance booted with systemd; the region's endpoints and the metadata service are
  // the fakes for every process (the manager's default environment, as DNS would make them).
  // The metadata fake answers from this busy test process, not in the milliseconds EC2's does:
  // the CLI gets 5 s and 3 attempts instead of its 1 s and 1 (a loaded machine failed the
  // bootstrap with "Unable to locate credentials").
  instance = await bootInstance({
    files: {
      '/etc/systemd/system.conf.d/lg-test-aws-endpoints.conf': {
        content: [
          '[Manager]',
          `DefaultEnvironment="AWS_ENDPOINT_URL_SECRETS_MANAGER=${secretsEndpoint.url}" "AWS_ENDPOINT_URL_CLOUDFORMATION=${cloudFormation.url}" "AWS_ENDPOINT_URL_CLOUDWATCH=${cloudWatch.url}" "AWS_EC2_METADATA_SERVICE_ENDPOINT=${imds.url}/" "LG_IMDS_ENDPOINT=${imds.url}" "AWS_METADATA_SERVICE_TIMEOUT=5" "AWS_METADATA_SERVICE_NUM_ATTEMPTS=3"`,
          '',
        ].join('\n'),
      },
      [USER_DATA_PATH]: { content: userData, mode: 0o700 },
    },
  });

  // AND cloud-init's final stage runs the user data (a oneshot service, KillMode=process as cloud-final.service)
  const bootstrapRun = instance.exec(
    [
      'systemd-run',
      '--unit=lg-cloud-final',
      '--wait',
      '--pipe',
      '--quiet',
      '--service-type=oneshot',
      '-p',
      'KillMode=process',
      '-E',
      'LG_SKIP_CLOUDWATCH_AGENT=1',
      '-E',
      'LG_SKIP_SSM_AGENT=1',
      '/bin/bash',
      USER_DATA_PATH,
    ],
    240_000,
  );
  // WHEN the first rotations finish while key-sync waits at boot
  let ended: { code: number; stdout: string; stderr: string } | undefined;
  void bootstrapRun.then((result) => (ended = result));
  await waitFor('lg-key-sync-boot to log that it waits for the first rotation', 120_000, async () => {
    if (ended) {
      const units = await instance!.exec(['journalctl', '-b', '-u', KEY_SYNC_UNITS.bootService, '--no-pager']);
      throw new Error(`the user data ended (${ended.code}) before key-sync waited:\n${ended.stdout}\n${ended.stderr}\n${units.stdout}`);
    }
    return (await journal(KEY_SYNC_UNITS.bootService)).find((line) => line.outcome === 'waiting') ? true : undefined;
  });
  for (const arn of [arns.signingKeys, arns.backendClientCertificate, arns.frontendCertificate]) await rotate(arn);
  await startLooker();
  bootstrap = await bootstrapRun;
  keySyncBootLines = await journal(KEY_SYNC_UNITS.bootService);
});

afterAll(async () => {
  await instance?.destroy();
  await stopLooker();
  await imds?.close();
  await cloudWatch?.close();
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
  return new SignJWT(claims as Record<string, unknown>)
    .setProtectedHeader({ alg: 'ES256', kid: current.kid, typ: 'JWT' })
    .sign(await importJWK(current.privateJwk, 'ES256'));
}

function frontendCa(): string {
  const frontend = parseGatewaySecret(model.valueAt(arns.frontendCertificate), SECRET_KINDS.frontendCertificate, 'frontend');
  const file = path.join(workDir, 'frontend-ca.pem');
  writeFileSync(file, `${frontend.certificatePem}${frontend.chainPem}`);
  return file;
}

/** A request through the gateway's TLS listener, behind a PROXY header as the NLB sends data connections. */
async function sessionRequest(requestPath: string): Promise<{ status: string; body: string }> {
  const result = await curl([
    '--haproxy-protocol',
    '--resolve',
    `${DOMAIN}:${ports.https}:127.0.0.1`,
    '--cacert',
    frontendCa(),
    '-H',
    `Cookie: ${SESSION_COOKIE}=${await sessionToken()}`,
    '-H',
    `${HEADERS.user}: mallory`,
    '-w',
    '\n%{http_code}',
    `https://${DOMAIN}:${ports.https}${requestPath}`,
  ]);
  if (result.stderr) throw new Error(`curl: ${result.stderr}`);
  const lines = result.stdout.split('\n');
  return { status: lines.pop()!, body: lines.join('\n') };
}

async function haproxyProcesses(): Promise<Array<{ user: string; pid: number; ppid: number }>> {
  const ps = await instance!.exec(['ps', '-o', 'user=,pid=,ppid=', '-C', 'haproxy']);
  return ps.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.trim().split(/\s+/))
    .map(([user, pid, ppid]) => ({ user, pid: Number(pid), ppid: Number(ppid) }));
}

async function mainPid(unit: string): Promise<number> {
  return Number((await instance!.exec(['systemctl', 'show', unit, '-p', 'MainPID', '--value'])).stdout.trim());
}

describe('first boot of a new stack', () => {
  test('the first rotation had not finished: key-sync waited with a clear log line, then installed the keys', () => {
    const waiting = keySyncBootLines.filter((line) => line.outcome === 'waiting');
    expect(waiting.length).toBeGreaterThanOrEqual(1);
    expect(waiting[0]).toMatchObject({ secret: 'verification-keys', waitedSeconds: 0, retryInSeconds: 2 });
    expect(String(waiting[0].message)).toMatch(
      /^waiting for the first rotation: the verification-keys secret \(arn:aws:secretsmanager:[^)]+\) has no current session key yet; next check in 2 s$/,
    );
    // Bounded backoff: each wait at most doubles.
    for (let i = 1; i < waiting.length; i += 1)
      expect(Number(waiting[i].retryInSeconds)).toBeLessThanOrEqual(Math.min(30, 2 * Number(waiting[i - 1].retryInSeconds)));
    expect(keySyncBootLines[keySyncBootLines.length - 1]).toMatchObject({ outcome: 'updated', reloaded: false });
  });

  test("the boot run, before the gateway's haproxy starts, cannot count Looker's servers: it says why and still succeeds", () => {
    // What answers on /run/haproxy/admin.sock then is the haproxy Debian's package started at boot
    // with its stock configuration (the user data has not replaced it yet): no Looker backend.
    const last = keySyncBootLines[keySyncBootLines.length - 1];
    expect(last).toMatchObject({ outcome: 'updated', lookerServersError: 'no backend looker in the show stat answer of /run/haproxy/admin.sock' });
    expect(last.lookerServersUp).toBeUndefined();
  });

  test('the user data from the template bootstraps the instance under systemd and signals SUCCESS once', async () => {
    expect({ code: bootstrap.code, output: bootstrap.code === 0 ? '' : `${bootstrap.stdout}\n${bootstrap.stderr}` }).toEqual({ code: 0, output: '' });
    expect(bootstrap.stdout).toContain('[lg-bootstrap] ready');
    expect(cloudFormation.signals).toEqual([{ logicalResourceId: expect.stringMatching(/^GatewayFleetGroupASG/), uniqueId: INSTANCE_ID, status: 'SUCCESS' }]);
    expect(cloudFormation.failed()).toBe(false);
    expect(cloudFormation.calls[0]).toMatchObject({ Action: 'DescribeStackResource', LogicalResourceId: expect.stringMatching(/^GatewayFleetLaunchTemplate/) });
    for (const file of [
      'etc/haproxy/gateway/haproxy.cfg',
      'etc/haproxy/gateway/keys/session-current.pem',
      'etc/haproxy/gateway/tls/frontend.pem',
      'etc/haproxy/gateway/tls/backend-client.pem',
      'usr/local/sbin/lg-key-sync',
    ]) {
      expect(instance!.readFile(file)).toBeDefined();
    }
  });

  test('every unit started: no failed unit, key-sync ran as a unit, haproxy and the timer are active and enabled', async () => {
    expect(await instance!.failedUnits()).toEqual([]);
    expect((await instance!.exec(['systemctl', 'is-system-running'])).stdout.trim()).toBe('running');
    const active = await instance!.exec(['systemctl', 'is-active', 'haproxy.service', KEY_SYNC_UNITS.bootService, KEY_SYNC_UNITS.timer]);
    expect(active.stdout.trim().split('\n')).toEqual(['active', 'active', 'active']);
    const enabled = await instance!.exec(['systemctl', 'is-enabled', 'haproxy.service', KEY_SYNC_UNITS.bootService, KEY_SYNC_UNITS.timer]);
    expect(enabled.stdout.trim().split('\n')).toEqual(['enabled', 'enabled', 'enabled']);
    const boot = await instance!.exec(['systemctl', 'show', KEY_SYNC_UNITS.bootService, '-p', 'Result', '-p', 'ExecMainStatus']);
    expect(boot.stdout).toContain('Result=success');
    expect(boot.stdout).toContain('ExecMainStatus=0');
  });

  test('every AWS call is signed with the instance role credentials from the metadata service', () => {
    expect(secretsEndpoint.accessKeyIds.length).toBeGreaterThan(0);
    expect(new Set(secretsEndpoint.accessKeyIds)).toEqual(new Set([imds.accessKeyId]));
    expect(new Set(cloudFormation.accessKeyIds)).toEqual(new Set([imds.accessKeyId]));
    expect(new Set(cloudWatch!.data.map((d) => d.accessKeyId))).toEqual(new Set([imds.accessKeyId]));
  });

  test('key-sync reports the days until the served certificate expires, fleet-wide and for this instance, into the namespace the alarm watches', () => {
    const alarm = resourceWithId('GatewayObservabilityFrontendCertificateExpiryAlarm').Properties;
    const watched = alarm.Metrics[0].MetricStat.Metric as { MetricName: string; Namespace: string; Dimensions?: unknown };
    expect(watched.Dimensions).toBeUndefined();
    const data = cloudWatch!.data.filter((d) => d.metricName === watched.MetricName);
    expect(data.length).toBeGreaterThanOrEqual(2);
    expect(new Set(data.map((d) => d.namespace))).toEqual(new Set([watched.Namespace]));
    expect(new Set(data.map((d) => JSON.stringify(d.dimensions)))).toEqual(new Set(['{}', JSON.stringify({ InstanceId: INSTANCE_ID })]));
    // The value is the certificate haproxy serves: the self-signed one of the first rotation.
    const notAfter = parseGatewaySecret(model.valueAt(arns.frontendCertificate), SECRET_KINDS.frontendCertificate, 'frontend').notAfter;
    const days = (Date.parse(notAfter) - Date.now()) / 86_400_000;
    expect(Math.abs(data[data.length - 1].value - days)).toBeLessThan(0.1);
    expect(keySyncBootLines[keySyncBootLines.length - 1]).toMatchObject({ metricPublished: true });
  });

  test('haproxy: the master keeps root for binds and reloads, the workers run as the haproxy user', async () => {
    const master = await mainPid('haproxy.service');
    const processes = await haproxyProcesses();
    expect(processes.find((p) => p.pid === master)?.user).toBe('root');
    const workers = processes.filter((p) => p.ppid === master);
    expect(workers.length).toBeGreaterThanOrEqual(1);
    expect(new Set(workers.map((w) => w.user))).toEqual(new Set([HAPROXY_USER]));
    // The inline refresh's Lua client runs in the workers: the relay socket must accept that user.
    const relay = await instance!.exec([
      'runuser',
      '-u',
      HAPROXY_USER,
      '--',
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '5',
      '--unix-socket',
      '/run/haproxy/refresh-relay.sock',
      '-X',
      'POST',
      'http://relay/oauth2/session',
    ]);
    expect(relay.stdout).toMatch(/^[1-5]\d\d$/);
  });
});

describe('health checks as the load balancer sends them', () => {
  test('the NLB health check (PROXY v2 LOCAL header) gets 200; the same request without the header gets no answer', async () => {
    expect(await nlbHealthCheck({ port: ports.health })).toEqual({ status: 200, body: '{"status":"ok","looker":"available"}' });
    expect((await nlbHealthCheck({ port: ports.health, proxyHeader: false })).status).toBe(0);
  });

  test('the loopback readiness bind answers plain probes, as the user data uses it', async () => {
    expect(await nlbHealthCheck({ port: ports.readiness, proxyHeader: false })).toEqual({ status: 200, body: '{"status":"ok","looker":"available"}' });
  });
});

describe('requests through the instance', () => {
  test('plain HTTP as the load balancer forwards port 80 (PROXY v2): a 301 to the same host and path on HTTPS, without HSTS', async () => {
    const httpTargets = Object.values(template.Resources).find(
      (r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup' && r.Properties.Port === ports.http,
    );
    expect(httpTargets?.Properties).toMatchObject({
      Protocol: 'TCP',
      TargetGroupAttributes: expect.arrayContaining([{ Key: 'proxy_protocol_v2.enabled', Value: 'true' }]),
    });
    const answer = await rawHttpExchange({
      port: ports.http,
      proxyHeader: proxyV2Header({ address: '198.51.100.7', port: 51000 }, { address: '10.0.0.1', port: 80 }),
      request: `GET /dashboards/8?tab=2 HTTP/1.1\r\nHost: ${DOMAIN}\r\nConnection: close\r\n\r\n`,
    });
    expect(answer.status).toBe(301);
    expect(answer.headers.filter(([name]) => name === 'location').map(([, value]) => value)).toEqual([`https://${DOMAIN}/dashboards/8?tab=2`]);
    expect(answer.headers.some(([name]) => name === 'strict-transport-security')).toBe(false);
  });

  test('a request with a valid session goes through haproxy to Looker, with identity headers, over mTLS', async () => {
    expect((await sessionRequest('/dashboards/7')).status).toBe('200');
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
    const result = await curl([
      '--haproxy-protocol',
      '--resolve',
      `${DOMAIN}:${ports.https}:127.0.0.1`,
      '--cacert',
      frontendCa(),
      '-H',
      'Accept: application/json',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://${DOMAIN}:${ports.https}/api/4.0/user`,
    ]);
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
      expect(seen!.headers[HEADERS.user.toLowerCase()]).toBe('reporting-bot');
    });

    test('outside its policy: 403; without a certificate: 401; neither is forwarded', async () => {
      const before = lookerRequests.length;
      expect((await machineRequest('DELETE', `${MACHINE_ROUTE}42`, true)).stdout.trim().split('\n').pop()).toBe('403');
      expect((await machineRequest('GET', `${MACHINE_ROUTE}42`, false)).stdout.trim().split('\n').pop()).toBe('401');
      expect(lookerRequests.length).toBe(before);
    });
  });

  test('the access log is JSON lines in the file the CloudWatch agent ships', () => {
    const lines = jsonLines(instance!.readFile(ACCESS_LOG_PATH));
    expect(lines.some((l) => l.path === '/dashboards/7' && String(l.status) === '200' && l.user === 'user-123')).toBe(true);
    const agent = JSON.parse(instance!.readFile('/opt/aws/amazon-cloudwatch-agent/etc/looker-gateway.json')!);
    expect(agent.logs.logs_collected.files.collect_list[0]).toMatchObject({ file_path: ACCESS_LOG_PATH });
  });
});

test('the key-sync timer fires: a new signing key reaches haproxy by a seamless reload, workers still unprivileged', async () => {
  // The shipped timer: every 5 minutes after boot and after each run, on lg-key-sync.service.
  const shipped = await instance!.exec(['systemctl', 'show', KEY_SYNC_UNITS.timer, '-p', 'TimersMonotonic', '-p', 'Unit']);
  expect(shipped.stdout).toMatch(/OnBootUSec.*5min/);
  expect(shipped.stdout).toMatch(/OnUnitActiveUSec.*5min/);
  expect(shipped.stdout).toContain(`Unit=${KEY_SYNC_UNITS.service}`);
  // GIVEN the next scheduled rotation published a new key
  await rotate(arns.signingKeys);
  const next = parseGatewaySecret(model.valueAt(arns.verificationKeys), SECRET_KINDS.verificationKeys, 'verification').keys.find((k) => k.status === 'next')!;
  const masterBefore = await mainPid('haproxy.service');
  // WHEN the timer elapses (the clock is the host's and cannot be sped up: a drop-in makes
  // the timer fire 1 s after it starts instead of 5 minutes after boot)
  const dropIn = '[Timer]\nOnBootSec=\nOnUnitActiveSec=\nRandomizedDelaySec=0\nOnActiveSec=1s\n';
  await instance!.exec([
    'sh',
    '-c',
    `mkdir -p /run/systemd/system/${KEY_SYNC_UNITS.timer}.d && printf '${dropIn.replace(/\n/g, '\\n')}' > /run/systemd/system/${KEY_SYNC_UNITS.timer}.d/test-now.conf && systemctl daemon-reload && systemctl restart ${KEY_SYNC_UNITS.timer}`,
  ]);
  // THEN lg-key-sync.service runs, installs the key and reloads haproxy
  // A run is several AWS CLI calls (now also the metadata token and PutMetricData): 51 s
  // alone on a loaded 2-core machine, over 60 s in a full parallel run.
  const updated = await waitFor('lg-key-sync.service to install the new key', 150_000, async () =>
    (await journal(KEY_SYNC_UNITS.service)).find((line) => line.outcome === 'updated'),
  );
  expect(updated).toMatchObject({ reloaded: true });
  expect(instance!.readFile('/etc/haproxy/gateway/maps/session-kids.map')).toContain(next.kid);
  expect(await mainPid('haproxy.service')).toBe(masterBefore);
  const workers = (await haproxyProcesses()).filter((p) => p.ppid === masterBefore);
  expect(workers.length).toBeGreaterThanOrEqual(1);
  expect(new Set(workers.map((w) => w.user))).toEqual(new Set([HAPROXY_USER]));
  expect((await sessionRequest('/after-reload')).status).toBe('200');
  expect(await instance!.failedUnits()).toEqual([]);
});

describe('Secrets Manager refuses the instance role (AccessDeniedException)', () => {
  const denied = () =>
    Object.assign(
      new Error(
        `User: arn:aws:sts::${model.accountId}:assumed-role/${INSTANCE_ROLE}/${INSTANCE_ID} is not authorized to perform: secretsmanager:DescribeSecret because no identity-based policy allows the secretsmanager:DescribeSecret action`,
      ),
      {
        name: 'AccessDeniedException',
      },
    );
  let run: { code: number; line: Record<string, unknown>; data: MetricDatum[]; started: number };

  beforeAll(async () => {
    // GIVEN no key-sync run under way (a start would join a running one, not begin a new one)
    await waitFor('lg-key-sync.service to be idle', 300_000, async () => {
      const state = (await instance!.exec(['systemctl', 'is-active', KEY_SYNC_UNITS.service])).stdout.trim();
      return state === 'inactive' || state === 'failed' ? true : undefined;
    });
    // AND the instance's last good sync was 11 minutes ago (its clock cannot be moved: the
    // state file says so), and the role has since lost its Secrets Manager permissions
    const started = Math.floor(Date.now() / 1000);
    await instance!.exec(['sh', '-c', `echo ${started - 660} > /var/lib/lg-key-sync/last-success`]);
    model.injectFailure({ operation: 'DescribeSecret', times: 100, error: denied });
    const before = cloudWatch.data.length;
    const logBefore = (await journal(KEY_SYNC_UNITS.service)).length;
    // WHEN the timer's unit runs, as shipped (its sandbox, its environment)
    try {
      const result = await instance!.exec(['systemctl', 'start', KEY_SYNC_UNITS.service], 120_000);
      const lines = (await journal(KEY_SYNC_UNITS.service)).slice(logBefore);
      run = { code: result.code, line: lines[lines.length - 1], data: cloudWatch.data.slice(before), started };
    } finally {
      model.clearFailures();
    }
  });

  afterAll(async () => {
    await instance!.exec(['systemctl', 'reset-failed', KEY_SYNC_UNITS.service]);
  });

  test('the run fails, keeps the files, and the journal line says which call AWS refused and why', async () => {
    expect(run.code).not.toBe(0);
    expect((await instance!.exec(['systemctl', 'show', KEY_SYNC_UNITS.service, '-p', 'Result', '--value'])).stdout.trim()).toBe('exit-code');
    expect(run.line).toMatchObject({
      unit: 'lg-key-sync',
      outcome: 'error',
      reloaded: false,
      keptPreviousFiles: true,
      metricPublished: true,
      secondsSinceSuccess: expect.any(Number),
    });
    expect(String(run.line.message)).toMatch(
      /^cannot read the current version of the verification-keys secret \(arn:aws:secretsmanager:[^)]+\): .*AccessDeniedException.*not authorized to perform: secretsmanager:DescribeSecret/,
    );
  });

  test('the same line is in the file the CloudWatch agent ships to the key-sync log group', () => {
    const shipped = jsonLines(instance!.readFile(KEY_SYNC_LOG_PATH));
    expect(shipped[shipped.length - 1]).toEqual(run.line);
    const agent = JSON.parse(instance!.readFile('/opt/aws/amazon-cloudwatch-agent/etc/looker-gateway.json')!);
    const entry = agent.logs.logs_collected.files.collect_list.find((e: { file_path: string }) => e.file_path === KEY_SYNC_LOG_PATH);
    const keySyncGroup = resourceWithId('GatewayObservabilityKeySyncLogs');
    expect(keySyncGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(entry).toMatchObject({ log_group_name: expect.any(String), log_stream_name: '{instance_id}' });
    expect(entry.log_group_name).not.toBe(agent.logs.logs_collected.files.collect_list[0].log_group_name);
  });

  test('the metrics reach CloudWatch signed by the instance role, for the fleet and for this instance', () => {
    const names = [...new Set(run.data.map((d) => d.metricName))].sort();
    // A failed sync still reports what HAProxy sees of Looker.
    expect(names).toEqual(
      [
        KEY_SYNC_METRICS.runFailed,
        KEY_SYNC_METRICS.secondsSinceSuccess,
        KEY_SYNC_METRICS.lookerServersUp,
        KEY_SYNC_METRICS.lookerServersConfigured,
        'FrontendCertificateDaysToExpiry',
      ].sort(),
    );
    const failed = run.data.filter((d) => d.metricName === KEY_SYNC_METRICS.runFailed);
    expect(failed.map((d) => [d.value, d.dimensions])).toEqual([
      [1, {}],
      [1, { InstanceId: INSTANCE_ID }],
    ]);
    const age = run.data.find((d) => d.metricName === KEY_SYNC_METRICS.secondsSinceSuccess && !d.dimensions.InstanceId)!;
    expect(age.value).toBeGreaterThanOrEqual(660);
    expect(age.value).toBe(run.line.secondsSinceSuccess);
    // It could not read the secret's current version: whether the installed key matches is unknown, not "no".
    expect(run.line.currentKidMatches).toBeNull();
    expect(new Set(run.data.map((d) => d.accessKeyId))).toEqual(new Set([imds.accessKeyId]));
  });

  test('the alarms on those metrics, as synthesized, fire: a failed run, and an instance stale past one interval and margin', () => {
    const failedAlarm = resourceWithId('GatewayObservabilityKeySyncFailedAlarm').Properties;
    const staleAlarm = resourceWithId('GatewayObservabilityKeySyncStaleAlarm').Properties;
    for (const alarm of [failedAlarm, staleAlarm])
      expect(resolveIntrinsics(singleMetricAlarm(alarm).Namespace, { region: model.region, accountId: model.accountId, stackName: STACK_NAME }, template)).toBe(
        run.data[0].namespace,
      );
    const deployed = (alarm: Record<string, unknown>) =>
      resolveIntrinsics(alarm, { region: model.region, accountId: model.accountId, stackName: STACK_NAME }, template) as Record<string, unknown>;
    expect(breaches(deployed(failedAlarm), run.data)).toBe(true);
    expect(breaches(deployed(staleAlarm), run.data)).toBe(true);
    expect(staleAlarm.AlarmDescription).toEqual(expect.anything());
    // A good run right after clears both.
  });

  test("the next good run reports success: 0 seconds since success, the installed key is the secret's, no failure", async () => {
    const before = cloudWatch.data.length;
    const result = await instance!.exec(['systemctl', 'start', KEY_SYNC_UNITS.service], 120_000);
    expect(result.code).toBe(0);
    const data = cloudWatch.data.slice(before);
    const value = (name: string) => data.find((d) => d.metricName === name && !d.dimensions.InstanceId)?.value;
    expect([value(KEY_SYNC_METRICS.runFailed), value(KEY_SYNC_METRICS.secondsSinceSuccess), value(KEY_SYNC_METRICS.currentKidMatches)]).toEqual([0, 0, 1]);
    const deployed = (id: string) =>
      resolveIntrinsics(resourceWithId(id).Properties, { region: model.region, accountId: model.accountId, stackName: STACK_NAME }, template) as Record<
        string,
        unknown
      >;
    for (const id of ['GatewayObservabilityKeySyncFailedAlarm', 'GatewayObservabilityKeySyncStaleAlarm', 'GatewayObservabilityKeySyncKeyMismatchAlarm']) {
      expect([id, breaches(deployed(id), data)]).toEqual([id, false]);
    }
  });
});

describe("one of two Looker nodes stops: key-sync counts HAProxy's servers UP, and LookerNodesLow fires", () => {
  const fake = () => ({ region: model.region, accountId: model.accountId, stackName: STACK_NAME });
  const lookerNodesLow = () => resolveIntrinsics(resourceWithId('GatewayObservabilityLookerNodesLowAlarm').Properties, fake(), template) as Record<string, any>;

  /** One run of the timer's unit, as shipped (its sandbox: the admin socket must be readable from it): its JSON line and its data. */
  async function keySyncRun(): Promise<{ line: Record<string, unknown>; data: MetricDatum[] }> {
    await waitFor('lg-key-sync.service to be idle', 300_000, async () => {
      const state = (await instance!.exec(['systemctl', 'is-active', KEY_SYNC_UNITS.service])).stdout.trim();
      return state === 'inactive' || state === 'failed' ? true : undefined;
    });
    const before = cloudWatch.data.length;
    const logBefore = (await journal(KEY_SYNC_UNITS.service)).length;
    const result = await instance!.exec(['systemctl', 'start', KEY_SYNC_UNITS.service], 120_000);
    const lines = (await journal(KEY_SYNC_UNITS.service)).slice(logBefore);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    return { line: lines[lines.length - 1], data: cloudWatch.data.slice(before) };
  }

  const values = (data: MetricDatum[], metricName: string) => data.filter((d) => d.metricName === metricName).map((d) => [d.value, d.dimensions]);

  afterAll(async () => {
    await startLooker();
  });

  test('both nodes up: the run publishes LookerServersUp = 2 of 2, for the fleet and this instance; the alarm does not fire', async () => {
    await startLooker();
    const run = await keySyncRun();
    expect(run.line).toMatchObject({ outcome: 'unchanged', lookerServersUp: 2, lookerServersConfigured: 2 });
    expect(values(run.data, KEY_SYNC_METRICS.lookerServersUp)).toEqual([
      [2, {}],
      [2, { InstanceId: INSTANCE_ID }],
    ]);
    expect(values(run.data, KEY_SYNC_METRICS.lookerServersConfigured)).toEqual([
      [2, {}],
      [2, { InstanceId: INSTANCE_ID }],
    ]);
    // The alarm as synthesized: two static hosts, so fewer than 2 up breaches.
    expect(singleMetricAlarm(lookerNodesLow())).toMatchObject({
      Namespace: run.data[0].namespace,
      MetricName: KEY_SYNC_METRICS.lookerServersUp,
      Statistic: 'Minimum',
      Threshold: 2,
      ComparisonOperator: 'LessThanThreshold',
    });
    expect(breaches(lookerNodesLow(), run.data)).toBe(false);
  });

  test("the second node stops: once HAProxy's check marks it DOWN, the next run publishes 1 and the alarm fires", async () => {
    const messagesBefore = (instance!.readFile(HAPROXY_MESSAGES_LOG_PATH) ?? '').length;
    await stopLooker([LOOKER_ADDRESSES[1]]);
    // HAProxy's check (fall 2) marks the server DOWN and says so in its messages file.
    await waitFor('HAProxy to mark looker2 DOWN', 60_000, async () =>
      /Server looker\/looker2 is DOWN/.test((instance!.readFile(HAPROXY_MESSAGES_LOG_PATH) ?? '').slice(messagesBefore)) ? true : undefined,
    );
    const run = await keySyncRun();
    expect(run.line).toMatchObject({ outcome: 'unchanged', lookerServersUp: 1, lookerServersConfigured: 2 });
    expect(values(run.data, KEY_SYNC_METRICS.lookerServersUp)).toEqual([
      [1, {}],
      [1, { InstanceId: INSTANCE_ID }],
    ]);
    expect(breaches(lookerNodesLow(), run.data)).toBe(true);
    expect(lookerNodesLow().AlarmDescription).toMatch(/fewer Looker servers UP than configured/);
    // Users do not feel it: the other node answers.
    expect((await sessionRequest('/one-node-left')).status).toBe('200');
  });
});

test("haproxy's own messages (reload notices) go to their own file, and the access log stays JSON for its group", () => {
  const messages = instance!.readFile(HAPROXY_MESSAGES_LOG_PATH) ?? '';
  // The key-sync timer test reloaded haproxy: the master says so on stderr.
  expect(messages).toMatch(/\[NOTICE\].*Loading success/);
  const agent = JSON.parse(instance!.readFile('/opt/aws/amazon-cloudwatch-agent/etc/looker-gateway.json')!);
  const access = agent.logs.logs_collected.files.collect_list.find((e: { file_path: string }) => e.file_path === ACCESS_LOG_PATH);
  const include = new RegExp(access.filters[0].expression);
  const accessLines = (instance!.readFile(ACCESS_LOG_PATH) ?? '').split('\n').filter(Boolean);
  expect(accessLines.filter((line) => include.test(line)).every((line) => jsonLines(line).length === 1)).toBe(true);
});

test('Looker gone for longer than the health-check window: the gateway stays healthy, answers 503 with the code, and the alarm fires', async () => {
  // The load balancer's schedule, from the synthesized target group.
  const targetGroup = Object.values(template.Resources).find(
    (r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup' && r.Properties.Port === ports.https,
  )!.Properties;
  const intervalMs = Number(targetGroup.HealthCheckIntervalSeconds) * 1000;
  const checksToFail = Number(targetGroup.UnhealthyThresholdCount);
  const logBefore = (instance!.readFile(ACCESS_LOG_PATH) ?? '').split('\n').length - 1;
  await stopLooker();
  const answers: Array<{ status: number; body: string }> = [];
  // One more check than the threshold: the load balancer would have marked the target unhealthy by then.
  for (let check = 0; check <= checksToFail; check += 1) {
    if (check > 0) await new Promise((r) => setTimeout(r, intervalMs));
    answers.push(await nlbHealthCheck({ port: ports.health }));
  }
  expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
  expect(JSON.parse(answers[answers.length - 1].body)).toEqual({ status: 'ok', looker: 'unavailable', code: DECISIONS.lookerUnavailable });

  const answer = await sessionRequest('/dashboards/8');
  expect(answer.status).toBe('503');
  expect(JSON.parse(answer.body)).toMatchObject({ error: 'service_unavailable', code: DECISIONS.lookerUnavailable });

  // The alarm's metric filter, as synthesized, counts the real log lines.
  const lines = (instance!.readFile(ACCESS_LOG_PATH) ?? '').split('\n').slice(logBefore).filter(Boolean);
  const filter = resourceWithId('GatewayObservabilityNoLookerNodeFilter').Properties;
  const alarm = resourceWithId('GatewayObservabilityNoHealthyLookerNodeAlarm').Properties;
  const requestsFilter = resourceWithId('GatewayObservabilityRequestsFilter').Properties;
  const matched = lines.filter((line) => matchesJsonFilterPattern(filter.FilterPattern, line));
  expect(matched.length).toBeGreaterThanOrEqual(2);
  expect(matched.some((line) => JSON.parse(line).status === 503)).toBe(true);
  const metric = matched.length * Number(filter.MetricTransformations[0].MetricValue);
  expect(alarm.ComparisonOperator).toBe('GreaterThanOrEqualToThreshold');
  expect(metric).toBeGreaterThanOrEqual(Number(alarm.Threshold));
  // HAProxy says why the server went down, in its messages file (shipped to the HAProxy log group), not in the access log's group.
  expect(instance!.readFile(HAPROXY_MESSAGES_LOG_PATH) ?? '').toMatch(/Server \S+ is DOWN, reason: /);
  // Health-check lines are not user requests: only the one 503 counts in the request rate.
  expect(lines.filter((line) => matchesJsonFilterPattern(requestsFilter.FilterPattern, line)).map((line) => JSON.parse(line).path)).toEqual(['/dashboards/8']);
});

test('a reboot comes back healthy: units start again, key-sync runs at boot, the NLB health check and a request pass', async () => {
  await startLooker();
  await instance!.reboot();
  expect(instance!.systemState()).toBe('running');
  expect(await instance!.failedUnits()).toEqual([]);
  const bootRun = await journal(KEY_SYNC_UNITS.bootService);
  expect(bootRun[bootRun.length - 1]).toMatchObject({ outcome: 'unchanged' });
  expect((await instance!.exec(['systemctl', 'is-active', 'haproxy.service', KEY_SYNC_UNITS.timer])).stdout.trim().split('\n')).toEqual(['active', 'active']);
  await waitFor('the NLB health check to report Looker available again', 30_000, async () => {
    const check = await nlbHealthCheck({ port: ports.health });
    return check.status === 200 && JSON.parse(check.body).looker === 'available' ? true : undefined;
  });
  expect((await sessionRequest('/after-reboot')).status).toBe('200');
});
