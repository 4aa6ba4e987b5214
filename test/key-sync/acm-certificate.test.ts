/**
 * key-sync with the frontend certificate from ACM, for real: the rendered script runs inside
 * the Debian 13 root (AWS CLI v2, jq, openssl, haproxy 3.0 from Debian) against the ACM
 * model's JSON endpoint (dev/aws/acm-model.ts: exportable public certificates as the
 * ACM API reference and user guide describe them), the Secrets Manager model for the other
 * secrets, the instance metadata service and a CloudWatch PutMetricData endpoint, and
 * reloads a real haproxy that serves the certificate over TLS.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import * as path from 'node:path';
import { connect } from 'node:tls';
import { KeySyncUnit, renderKeySyncUnit } from '../../core/instance/key-sync';
import { CERTIFICATE_EXPIRY_METRIC } from '../../core/instance/certificate-expiry';
import { GATEWAY_FILES } from '../../core/layout';
import { handler } from '../../lambda/rotation/index';
import { AcmModel, ExportFault } from '../../dev/aws/acm-model';
import { startAcmEndpoint } from '../../dev/aws/acm-endpoint';
import { CloudWatchEndpoint, startCloudWatchEndpoint } from '../../dev/aws/cloudwatch-endpoint';
import { InstanceMetadataService, startInstanceMetadataService } from '../../dev/aws/instance-metadata';
import type { JsonProtocolEndpoint } from '../../dev/aws/json-protocol-endpoint';
import { freePorts } from '../../dev/ports';
import { startSecretsManagerEndpoint } from '../../dev/aws/secrets-manager-endpoint';
import type { RunningHaproxy } from '../../dev/haproxy';
import { waitFor } from '../../dev/wait';
import { RotationWorld, startRotationWorld } from '../rotation/fixture';
import { reloadCount, rootScratchDir, runKeySync, SyncRun, startHaproxyInRoot, TRIXIE_ROOT } from './harness';

jest.setTimeout(240_000);

const DOMAIN = 'looker.example.com';
const MACHINE_HOST = 'agents.looker.example.com';
const NAMESPACE = 'LookerGateway/AcmTest';
const INSTANCE_ID = 'i-0acm0000000000001';

let world: RotationWorld;
let acm: AcmModel;
let certificateArn: string;
let root: string;
let endpoints: { secrets: JsonProtocolEndpoint; acm: JsonProtocolEndpoint; cloudWatch: CloudWatchEndpoint; imds: InstanceMetadataService };
let scratch: ReturnType<typeof rootScratchDir>;
let unit: KeySyncUnit;
let configDirHost: string;
let haproxy: RunningHaproxy | undefined;
let httpsPort: number;

const inside = (name: string) => `${scratch.inside}/${name}`;
const frontendFile = () => path.join(configDirHost, GATEWAY_FILES.frontendCertificate);

function sync(extraArgs: string[] = [], acmUrl = endpoints.acm.url): Promise<SyncRun> {
  return runKeySync(
    inside('lg-key-sync'),
    inside('key-sync.conf'),
    {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secrets.url,
      AWS_ENDPOINT_URL_ACM: acmUrl,
      AWS_ENDPOINT_URL_CLOUDWATCH: endpoints.cloudWatch.url,
      LG_IMDS_ENDPOINT: endpoints.imds.url,
      AWS_ACCESS_KEY_ID: 'AKIDTESTKEYSYNC',
      AWS_SECRET_ACCESS_KEY: 'test-secret-not-real',
      HOME: inside('home'),
    },
    extraArgs,
  );
}

/** ACM's serial as key-sync compares it: lower-case hex, no colons, no leading zeros. */
const plainSerial = (serial: string) => serial.replace(/:/g, '').toLowerCase().replace(/^0+/, '');

/** The serial of the certificate haproxy serves to a new TLS connection for the gateway's name. */
function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: httpsPort, servername: DOMAIN, ca: root }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(plainSerial(serial));
    });
    socket.on('error', reject);
  });
}

function haproxyConfig(): string {
  const file = (relative: string) => `${inside('gateway')}/${relative}`;
  return `global
  stats socket ${inside('admin.sock')} mode 600 level admin expose-fd listeners
  hard-stop-after 30s

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
  # During a reload the old worker answers one more request on each idle keep-alive
  # connection (with "Connection: close") instead of dropping it.
  option idle-close-on-response

frontend gateway
  bind 127.0.0.1:${httpsPort} ssl crt ${file(GATEWAY_FILES.frontendCertificate)}
  http-request return status 200 content-type text/plain string "ok"

backend looker
  server looker 127.0.0.1:9 ssl verify none crt ${file(GATEWAY_FILES.backendClientCertificate)}
`;
}

interface TlsLoad {
  total(): number;
  stop(): Promise<{ total: number; failures: string[] }>;
}

/** Keep-alive HTTPS clients that check the gateway's name against ACM's root, until stopped. */
function startTlsLoad(concurrency = 6): TlsLoad {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca: root, servername: DOMAIN });
  let running = true;
  let total = 0;
  const failures: string[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port: httpsPort, path: '/', agent, headers: { host: DOMAIN } }, (res) => {
        res.resume();
        res.on('end', () => {
          total += 1;
          if (res.statusCode !== 200) failures.push(`status ${res.statusCode}`);
          resolve();
        });
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        total += 1;
        failures.push(`error ${error.code ?? error.message}`);
        resolve();
      });
      req.end();
    });
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) await one();
  });
  return {
    total: () => total,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return { total, failures };
    },
  };
}

/** What PutMetricData received for the expiry metric since `from` (index into the endpoint's data). */
function expiryData(from = 0) {
  return endpoints.cloudWatch.data.slice(from).filter((d) => d.metricName === CERTIFICATE_EXPIRY_METRIC);
}

const daysUntil = (date: Date) => (date.getTime() - Date.now()) / 86_400_000;

beforeAll(async () => {
  world = startRotationWorld(handler, { frontendDomainName: DOMAIN });
  for (const arn of [world.arns.signingKeys, world.arns.backendClientCertificate]) await world.rotate(arn);
  acm = new AcmModel({ region: world.model.region, accountId: world.model.accountId });
  // As CloudFormation leaves it: requested with export enabled, validated through the hosted zone, issued.
  certificateArn = await acm.requestCertificate({ domainName: DOMAIN, subjectAlternativeNames: [MACHINE_HOST], exportable: true });
  root = await acm.trustedRootPem();
  endpoints = {
    secrets: await startSecretsManagerEndpoint(world.model),
    acm: await startAcmEndpoint(acm),
    cloudWatch: await startCloudWatchEndpoint(),
    imds: await startInstanceMetadataService({ instanceId: INSTANCE_ID, roleName: 'AcmTestRole' }),
  };
  [httpsPort] = await freePorts(1);

  scratch = rootScratchDir();
  configDirHost = path.join(scratch.host, 'gateway');
  mkdirSync(configDirHost, { recursive: true });
  mkdirSync(path.join(scratch.host, 'home'), { recursive: true });
  writeFileSync(path.join(configDirHost, GATEWAY_FILES.haproxyConfig), haproxyConfig());
  unit = renderKeySyncUnit({
    region: world.model.region,
    verificationKeysSecretArn: world.arns.verificationKeys,
    backendClientCertificateSecretArn: world.arns.backendClientCertificate,
    frontendCertificateArn: certificateArn,
    metricNamespace: NAMESPACE,
    configDir: inside('gateway'),
    stateDir: inside('state'),
    scriptPath: inside('lg-key-sync'),
    configPath: inside('key-sync.conf'),
    reloadCommand: `kill -USR2 $(cat ${inside('haproxy.pid')})`,
  });
  for (const file of unit.files.filter((f) => f.path.startsWith(scratch.inside))) {
    writeFileSync(path.join(TRIXIE_ROOT, file.path), file.content, { mode: parseInt(file.mode, 8) });
  }
});

afterAll(async () => {
  await haproxy?.stop();
  for (const endpoint of Object.values(endpoints ?? {})) await endpoint.close();
  scratch?.remove();
  world?.stop();
});

test('first install: the boot run exports the certificate, installs certificate, chain and decrypted key, and haproxy serves it', async () => {
  const run = await sync(['--no-reload']);
  expect(run.stderr).toBe('');
  // The lines say why, should it fail.
  expect(run.code === 0 ? 'exit 0' : run.stdout).toBe('exit 0');
  const issued = acm.current(certificateArn);
  expect(run.lines).toEqual([
    expect.objectContaining({
      outcome: 'updated',
      reloaded: false,
      fetched: ['verification-keys', 'backend-client-certificate', 'acm-certificate'],
      versions: expect.objectContaining({ 'acm-certificate': plainSerial(issued.serial) }),
      metricPublished: true,
    }),
  ]);
  expect(run.stdout).not.toMatch(/BEGIN|PRIVATE/);
  expect(endpoints.acm.requests).toEqual(['DescribeCertificate', 'ExportCertificate']);
  // A passphrase of its own for this export (64 hex characters), never kept: not in the config, not in the state.
  expect(acm.exports).toEqual([{ arn: certificateArn, passphraseBytes: 64, serial: issued.serial }]);

  const installed = readFileSync(frontendFile(), 'utf8');
  const blocks = installed.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----\n/g)!;
  expect(blocks.map((b) => b.split('\n')[0])).toEqual([
    '-----BEGIN CERTIFICATE-----',
    '-----BEGIN CERTIFICATE-----',
    '-----BEGIN CERTIFICATE-----',
    '-----BEGIN PRIVATE KEY-----',
  ]);
  expect(blocks.join('')).toBe(installed);
  expect(blocks[0]).toBe(issued.certificatePem.endsWith('\n') ? issued.certificatePem : `${issued.certificatePem}\n`);
  // The key is the certificate's, unencrypted: haproxy reads it at start and at each reload.
  expect(createPrivateKey(blocks[3]).asymmetricKeyType).toBe('rsa');
  expect(new X509Certificate(blocks[0]).checkPrivateKey(createPrivateKey(blocks[3]))).toBe(true);
  expect((statSync(frontendFile()).mode & 0o777).toString(8)).toBe('640');
  expect(statSync(frontendFile()).gid).toBe(statSync(path.join(configDirHost, 'tls')).gid);

  haproxy = await startHaproxyInRoot(`${inside('gateway')}/haproxy.cfg`, inside('haproxy.pid'), inside('master.sock'), httpsPort);
  expect(await servedSerial()).toBe(plainSerial(issued.serial));
});

test('the days until the installed certificate expires reach CloudWatch, for the fleet and for this instance', () => {
  const notAfter = acm.current(certificateArn).notAfter;
  const data = expiryData();
  expect(data.map((d) => ({ namespace: d.namespace, unit: d.unit, dimensions: d.dimensions }))).toEqual([
    { namespace: NAMESPACE, unit: 'None', dimensions: {} },
    { namespace: NAMESPACE, unit: 'None', dimensions: { InstanceId: INSTANCE_ID } },
  ]);
  for (const datum of data) expect(Math.abs(datum.value - daysUntil(notAfter))).toBeLessThan(0.05);
});

test('an unchanged run only asks ACM for the serial: no export, no file written, no reload', async () => {
  const before = readFileSync(frontendFile(), 'utf8');
  const mtime = statSync(frontendFile()).mtimeMs;
  const acmRequests = endpoints.acm.requests.length;
  const metricData = endpoints.cloudWatch.data.length;
  const run = await sync();
  expect(run.code).toBe(0);
  expect(run.lines[0]).toMatchObject({ outcome: 'unchanged', reloaded: false, fetched: [], changed: [], metricPublished: true });
  expect(endpoints.acm.requests.slice(acmRequests)).toEqual(['DescribeCertificate']);
  expect(acm.exports).toHaveLength(1);
  expect(readFileSync(frontendFile(), 'utf8')).toBe(before);
  expect(statSync(frontendFile()).mtimeMs).toBe(mtime);
  expect(await reloadCount(path.join(scratch.host, 'master.sock'))).toBe(0);
  expect(expiryData(metricData)).toHaveLength(2);
});

test('a renewal (new serial, new key) is picked up by the next run and served after a seamless reload, under load, with no failed request', async () => {
  const before = acm.current(certificateArn);
  await acm.renewCertificate({ CertificateArn: certificateArn });
  const renewed = acm.current(certificateArn);
  expect(renewed.serial).not.toBe(before.serial);

  const load = startTlsLoad();
  await waitFor('200 requests through the TLS listener', 30_000, () => (load.total() >= 200 ? true : undefined));
  const run = await sync();
  expect(run.code).toBe(0);
  expect(run.lines[0]).toMatchObject({ outcome: 'updated', reloaded: true, fetched: ['acm-certificate'], changed: [GATEWAY_FILES.frontendCertificate] });
  await waitFor('new TLS connections to get the renewed certificate', 30_000, async () =>
    (await servedSerial()) === plainSerial(renewed.serial) ? true : undefined,
  );
  const afterReload = load.total();
  await waitFor('200 more requests after the reload', 30_000, () => (load.total() >= afterReload + 200 ? true : undefined));
  const result = await load.stop();

  expect(result.failures).toEqual([]);
  expect(result.total).toBeGreaterThan(afterReload);
  expect(await reloadCount(path.join(scratch.host, 'master.sock'))).toBe(1);
});

test("ACM renews on its own only a certificate exported since its last renewal: key-sync's export keeps it eligible", async () => {
  // Exported by the previous run since it was renewed: eligible.
  expect(acm.describeCertificate({ CertificateArn: certificateArn }).Certificate.RenewalEligibility).toBe('ELIGIBLE');
  expect(await acm.managedRenewal(certificateArn)).toBe(true);
  // Not exported since: ACM would not renew it again.
  expect(acm.describeCertificate({ CertificateArn: certificateArn }).Certificate.RenewalEligibility).toBe('INELIGIBLE');
  expect(await acm.managedRenewal(certificateArn)).toBe(false);
  const run = await sync();
  expect(run.lines[0]).toMatchObject({ outcome: 'updated', fetched: ['acm-certificate'] });
  expect(acm.describeCertificate({ CertificateArn: certificateArn }).Certificate.RenewalEligibility).toBe('ELIGIBLE');
  expect(await servedSerial()).toBe(plainSerial(acm.current(certificateArn).serial));
});

describe('an export that must not be installed', () => {
  test.each<[ExportFault, RegExp]>([
    ['truncated-certificate', /^the exported ACM certificate \(arn:aws:acm:[^)]+\) is not a valid PEM certificate$/],
    ['mismatched-key', /^the exported private key does not belong to the exported ACM certificate \(arn:aws:acm:[^)]+\)$/],
    ['key-for-another-passphrase', /^the exported private key of the ACM certificate \(arn:aws:acm:[^)]+\) cannot be decrypted with this export's passphrase$/],
    ['foreign-chain', /^the exported chain of the ACM certificate \(arn:aws:acm:[^)]+\) does not sign the certificate for TLS servers$/],
    ['expired-certificate', /^the exported ACM certificate \(arn:aws:acm:[^)]+\) has expired$/],
  ])('%s: refused, the old files kept, no reload, and the next run tries again', async (fault, message) => {
    const files = readFileSync(frontendFile(), 'utf8');
    const served = await servedSerial();
    const reloads = await reloadCount(path.join(scratch.host, 'master.sock'));
    await acm.renewCertificate({ CertificateArn: certificateArn });
    acm.corruptNextExport(fault);

    const run = await sync();
    expect(run.code).toBe(1);
    expect(run.lines).toHaveLength(1);
    expect(run.lines[0]).toMatchObject({ outcome: 'error', reloaded: false, keptPreviousFiles: true, metricPublished: true });
    expect(String(run.lines[0].message)).toMatch(message);
    expect(run.stdout).not.toMatch(/BEGIN|PRIVATE/);
    expect(readFileSync(frontendFile(), 'utf8')).toBe(files);
    expect(await servedSerial()).toBe(served);
    expect(await reloadCount(path.join(scratch.host, 'master.sock'))).toBe(reloads);
  });

  test('after the faults, a good export is installed', async () => {
    const run = await sync();
    expect(run.lines[0]).toMatchObject({ outcome: 'updated', reloaded: true, fetched: ['acm-certificate'] });
    expect(await servedSerial()).toBe(plainSerial(acm.current(certificateArn).serial));
  });
});

test('ACM out of reach: the run fails, the files stay, and the installed certificate still reports its days', async () => {
  const files = readFileSync(frontendFile(), 'utf8');
  const [closedPort] = await freePorts(1);
  const metricData = endpoints.cloudWatch.data.length;
  const run = await sync([], `http://127.0.0.1:${closedPort}`);
  expect(run.code).toBe(1);
  expect(run.lines[0]).toMatchObject({ outcome: 'error', reloaded: false, metricPublished: true });
  expect(String(run.lines[0].message)).toMatch(/^cannot describe the ACM certificate \(arn:aws:acm:[^)]+\): /);
  expect(readFileSync(frontendFile(), 'utf8')).toBe(files);
  expect(expiryData(metricData).map((d) => d.dimensions)).toEqual([{}, { InstanceId: INSTANCE_ID }]);
});

test('a renewal that keeps failing counts down: the installed certificate reports fewer days until it expires', async () => {
  // GIVEN an installed certificate close to its end (issued with 10 days left)
  acm.setValidityDays(certificateArn, 10);
  await acm.renewCertificate({ CertificateArn: certificateArn });
  expect((await sync()).lines[0]).toMatchObject({ outcome: 'updated' });
  const shortLived = acm.current(certificateArn);
  // WHEN ACM renews it but every export is refused
  acm.setValidityDays(certificateArn, 198);
  await acm.renewCertificate({ CertificateArn: certificateArn });
  acm.corruptNextExport('mismatched-key');
  const metricData = endpoints.cloudWatch.data.length;
  const run = await sync();
  // THEN the metric reports the installed certificate's days, not the renewed one's
  expect(run.lines[0]).toMatchObject({ outcome: 'error', metricPublished: true });
  const reported = expiryData(metricData);
  expect(reported).toHaveLength(2);
  for (const datum of reported) expect(Math.abs(datum.value - daysUntil(shortLived.notAfter))).toBeLessThan(0.05);
  expect(Number(run.lines[0].certificateDaysToExpiry)).toBeLessThan(14);
});
