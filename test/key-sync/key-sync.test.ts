/**
 * The key-sync unit for real: the rendered script runs inside the Debian 13 root (AWS
 * CLI v2, jq, openssl, haproxy 3.0 from Debian) against the fake Secrets Manager
 * endpoint, over secrets made by the real rotation handler, and reloads a real haproxy
 * that verifies session JWTs through the slot files and the kid map.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { importJWK, SignJWT } from 'jose';
import { parseGatewaySecret, SECRET_KIND_TAG, SECRET_KINDS, seedSecretValue, SigningKeyEntry, SigningKeySetSecret } from '../../core/key-material';
import { KeySyncUnit, renderKeySyncUnit } from '../../core/instance/key-sync';
import { renderSessionKeyFiles } from '../../core/haproxy/key-files';
import { GATEWAY_FILES } from '../../core/layout';
import { SESSION_COOKIE } from '../../core/session-contract';
import { handler } from '../../lambda/rotation/index';
import type { RunningHaproxy } from '../../dev/haproxy';
import { createCa, createIntermediateCa, issueCertificate } from '../../dev/pki';
import { freePorts } from '../../dev/ports';
import { startSecretsManagerEndpoint, SecretsManagerEndpoint } from '../../dev/aws/secrets-manager-endpoint';
import type { SecretsManagerModel } from '../../dev/aws/secrets-manager-model';
import { GatewaySecretArns, RotationWorld, startRotationWorld } from '../rotation/fixture';
import { getWithSession, reloadCount, rootScratchDir, runKeySync, SyncRun, sleep, startHaproxyInRoot, startLoad } from './harness';

jest.setTimeout(180_000);

let world: RotationWorld | undefined;
let model: SecretsManagerModel;
let arns: GatewaySecretArns;
let endpoint: SecretsManagerEndpoint;
let scratch: ReturnType<typeof rootScratchDir>;
let haproxy: RunningHaproxy | undefined;
let httpPort: number;
let httpsPort: number;
let configDirInside: string;
let configDirHost: string;
let scriptInside: string;
let configInside: string;
let masterSocketHost: string;

/** The rendered unit: the files it manages are the ones these tests read back. */
let unit: KeySyncUnit;

function awsEnv(url = endpoint.url): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
    AWS_ACCESS_KEY_ID: 'AKIDTESTKEYSYNC',
    AWS_SECRET_ACCESS_KEY: 'test-secret-not-real',
    HOME: `${scratch.inside}/home`,
  };
}

function sync(extraArgs: string[] = [], url?: string): Promise<SyncRun> {
  return runKeySync(scriptInside, configInside, awsEnv(url), extraArgs);
}

const rotate = (arn: string) => world!.rotate(arn);

function signingKeys(): SigningKeySetSecret {
  return parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 'signing');
}

async function signWith(key: SigningKeyEntry, sub: string): Promise<string> {
  return new SignJWT({ sub })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setExpirationTime('10m')
    .sign(await importJWK(key.privateJwk, 'ES256'));
}

function keyWithStatus(status: 'previous' | 'current' | 'next'): SigningKeyEntry {
  return signingKeys().keys.find((k) => k.status === status)!;
}

function managedFiles(): Record<string, string> {
  return Object.fromEntries(unit.managedFiles.map((rel) => [rel, readFileSync(path.join(configDirHost, rel), 'utf8')]));
}

function haproxyConfig(): string {
  const key = (slot: string) => `${configDirInside}/${GATEWAY_FILES.sessionKey(slot as 'current')}`;
  return `global
  stats socket ${scratch.inside}/admin.sock mode 600 level admin expose-fd listeners
  hard-stop-after 30s

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
  # During a reload the old worker keeps idle keep-alive connections open until it has
  # answered one more request (with "Connection: close"), so no client loses a request.
  option idle-close-on-response

frontend session_check
  bind 127.0.0.1:${httpPort}
  bind 127.0.0.1:${httpsPort} ssl crt ${configDirInside}/${GATEWAY_FILES.frontendCertificate}
  http-request set-var(txn.session) req.cook(${SESSION_COOKIE})
  http-request set-var(txn.session_key) var(txn.session),jwt_header_query('$.kid'),map(${configDirInside}/${GATEWAY_FILES.sessionKidMap})
  # Key files are loaded when the config is parsed: name every slot once.
  http-request deny if FALSE { var(txn.session),jwt_verify("ES256","${key('previous')}") -m int 1 }
  http-request deny if FALSE { var(txn.session),jwt_verify("ES256","${key('current')}") -m int 1 }
  http-request deny if FALSE { var(txn.session),jwt_verify("ES256","${key('next')}") -m int 1 }
  http-request return status 200 content-type text/plain string "valid" if { var(txn.session),jwt_verify("ES256",txn.session_key) -m int 1 }
  http-request return status 401 content-type text/plain string "invalid"

backend looker
  server looker 127.0.0.1:9 ssl verify none crt ${configDirInside}/${GATEWAY_FILES.backendClientCertificate}
`;
}

beforeAll(async () => {
  world = startRotationWorld(handler, { frontendDomainName: 'localhost' });
  ({ model, arns } = world);
  for (const arn of [arns.signingKeys, arns.backendClientCertificate, arns.frontendCertificate]) await rotate(arn);
  endpoint = await startSecretsManagerEndpoint(model);
  [httpPort, httpsPort] = await freePorts(2);

  scratch = rootScratchDir();
  configDirInside = `${scratch.inside}/gateway`;
  configDirHost = path.join(scratch.host, 'gateway');
  masterSocketHost = path.join(scratch.host, 'master.sock');
  mkdirSync(configDirHost, { recursive: true });
  mkdirSync(path.join(scratch.host, 'home'), { recursive: true });
  writeFileSync(path.join(configDirHost, GATEWAY_FILES.haproxyConfig), haproxyConfig());

  unit = renderKeySyncUnit({
    region: model.region,
    verificationKeysSecretArn: arns.verificationKeys,
    backendClientCertificateSecretArn: arns.backendClientCertificate,
    frontendCertificateSecretArn: arns.frontendCertificate,
    configDir: configDirInside,
    stateDir: `${scratch.inside}/state`,
    scriptPath: `${scratch.inside}/lg-key-sync`,
    configPath: `${scratch.inside}/key-sync.conf`,
    reloadCommand: `kill -USR2 $(cat ${scratch.inside}/haproxy.pid)`,
  });
  scriptInside = `${scratch.inside}/lg-key-sync`;
  configInside = `${scratch.inside}/key-sync.conf`;
  for (const file of unit.files.filter((f) => f.path.startsWith(scratch.inside))) {
    writeFileSync(path.join(TRIXIE(), file.path), file.content, { mode: parseInt(file.mode, 8) });
  }
});

function TRIXIE(): string {
  return scratch.host.slice(0, scratch.host.length - scratch.inside.length);
}

afterAll(async () => {
  await haproxy?.stop();
  await endpoint?.close();
  scratch?.remove();
  world?.stop();
});

test('the boot run writes the slot files, kid map and certificates with the right modes; haproxy starts on them', async () => {
  const run = await sync(['--no-reload']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  expect(run.lines).toHaveLength(1);
  expect(run.lines[0]).toMatchObject({
    unit: 'lg-key-sync',
    outcome: 'updated',
    reloaded: false,
    fetched: ['verification-keys', 'backend-client-certificate', 'frontend-certificate'],
  });
  expect(run.stdout).not.toMatch(/BEGIN|PRIVATE/);

  const current = keyWithStatus('current');
  const next = keyWithStatus('next');
  const files = managedFiles();
  expect(files[GATEWAY_FILES.sessionKidMap]).toBe(
    `${current.kid} ${configDirInside}/keys/session-current.pem\n${next.kid} ${configDirInside}/keys/session-next.pem\n`,
  );
  // No previous key yet: its slot holds a copy of the current key and has no map line.
  expect(files[GATEWAY_FILES.sessionKey('previous')]).toBe(files[GATEWAY_FILES.sessionKey('current')]);
  const published = parseGatewaySecret(model.valueAt(arns.verificationKeys), SECRET_KINDS.verificationKeys, 'v');
  expect(files[GATEWAY_FILES.sessionKey('next')]).toBe(published.keys.find((k) => k.status === 'next')!.publicKeyPem);
  // Byte for byte what the config renderer writes for the same keys (tests and local runs use that one).
  for (const file of renderSessionKeyFiles(published.keys, configDirInside).files) expect(files[file.path]).toBe(file.content);
  expect(files[GATEWAY_FILES.backendClientCertificate]).toMatch(
    /^-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN PRIVATE KEY-----/,
  );
  expect(() => createPrivateKey(files[GATEWAY_FILES.frontendCertificate])).not.toThrow();
  const mode = (rel: string) => (statSync(path.join(configDirHost, rel)).mode & 0o777).toString(8);
  expect(mode(GATEWAY_FILES.frontendCertificate)).toBe('640');
  expect(mode(GATEWAY_FILES.backendClientCertificate)).toBe('640');
  expect(mode(GATEWAY_FILES.sessionKey('current'))).toBe('644');
  expect(statSync(path.join(configDirHost, GATEWAY_FILES.frontendCertificate)).gid).toBe(statSync(path.join(configDirHost, 'tls')).gid);

  haproxy = await startHaproxyInRoot(`${configDirInside}/haproxy.cfg`, `${scratch.inside}/haproxy.pid`, `${scratch.inside}/master.sock`, httpPort);
  expect(await getWithSession(httpPort, SESSION_COOKIE, await signWith(current, 'alice'))).toBe(200);
  expect(await getWithSession(httpPort, SESSION_COOKIE, await signWith(next, 'bob'))).toBe(200);
  expect(await getWithSession(httpPort, SESSION_COOKIE, 'not.a.token')).toBe(401);
  expect(await reloadCount(masterSocketHost)).toBe(0);
});

test('after a rotation, one sync reloads haproxy once, under load, with no failed request; the new next key starts verifying', async () => {
  const oldCurrent = keyWithStatus('current');
  const oldNext = keyWithStatus('next');
  const signedByOldCurrent = await signWith(oldCurrent, 'carol');
  const signedByOldNext = await signWith(oldNext, 'dave');
  await rotate(arns.signingKeys);
  const newNext = keyWithStatus('next');
  expect(keyWithStatus('current').kid).toBe(oldNext.kid);
  const signedByNewNext = await signWith(newNext, 'erin');
  expect(await getWithSession(httpPort, SESSION_COOKIE, signedByNewNext)).toBe(401);

  const load = startLoad(httpPort, SESSION_COOKIE, [signedByOldCurrent, signedByOldNext]);
  while (load.total() < 200) await sleep(10);
  const beforeSync = load.total();
  const run = await sync();
  expect(run.code).toBe(0);
  expect(run.lines[0]).toMatchObject({ outcome: 'updated', reloaded: true, fetched: ['verification-keys'] });
  // The previous slot held a copy of the old current key, which is now the previous key: unchanged.
  expect((run.lines[0].changed as string[]).sort()).toEqual(['keys/session-current.pem', 'keys/session-next.pem', 'maps/session-kids.map']);
  // Wait for the new worker: the new next key verifies once it serves.
  while ((await getWithSession(httpPort, SESSION_COOKIE, signedByNewNext)) !== 200) await sleep(20);
  const afterReload = load.total();
  while (load.total() < afterReload + 200) await sleep(10);
  const result = await load.stop();

  expect(beforeSync).toBeGreaterThan(0);
  expect(result.total).toBeGreaterThan(afterReload);
  expect(result.failures).toEqual([]);
  expect(result.ok).toBe(result.total);
  expect(await reloadCount(masterSocketHost)).toBe(1);
  expect(await getWithSession(httpPort, SESSION_COOKIE, signedByOldCurrent)).toBe(200); // now previous
});

test('a run with nothing changed reads versions only, writes nothing and does not reload', async () => {
  const before = managedFiles();
  const mtime = statSync(path.join(configDirHost, GATEWAY_FILES.sessionKidMap)).mtimeMs;
  const requestsBefore = endpoint.requests.length;
  const run = await sync();
  expect(run.code).toBe(0);
  expect(run.lines[0]).toMatchObject({ outcome: 'unchanged', reloaded: false, fetched: [], changed: [] });
  expect(endpoint.requests.slice(requestsBefore)).toEqual(['DescribeSecret', 'DescribeSecret', 'DescribeSecret']);
  expect(managedFiles()).toEqual(before);
  expect(statSync(path.join(configDirHost, GATEWAY_FILES.sessionKidMap)).mtimeMs).toBe(mtime);
  expect(await reloadCount(masterSocketHost)).toBe(1);
});

test('a broken key keeps the old files and the running config, and exits non-zero with a JSON error line', async () => {
  const before = managedFiles();
  const good = model.valueAt(arns.verificationKeys)!;
  const broken = JSON.parse(good);
  broken.keys.find((k: { status: string }) => k.status === 'next').publicKeyPem = '-----BEGIN PUBLIC KEY-----\nbroken\n-----END PUBLIC KEY-----\n';
  model.putSecretValue({ SecretId: arns.verificationKeys, SecretString: JSON.stringify(broken) });

  const run = await sync();
  expect(run.code).toBe(1);
  expect(run.lines).toHaveLength(1);
  expect(run.lines[0]).toMatchObject({
    outcome: 'error',
    reloaded: false,
    keptPreviousFiles: true,
    message: 'the next session key in the verification-keys secret is not a valid PEM public key',
  });
  expect(managedFiles()).toEqual(before);
  expect(await reloadCount(masterSocketHost)).toBe(1);
  expect(await getWithSession(httpPort, SESSION_COOKIE, await signWith(keyWithStatus('current'), 'frank'))).toBe(200);

  // A verification set that carries a private key member is refused too, so a wrong secret never lands on disk.
  const leaky = JSON.parse(good);
  leaky.keys[0].publicJwk.d = keyWithStatus(leaky.keys[0].status).privateJwk.d;
  model.putSecretValue({ SecretId: arns.verificationKeys, SecretString: JSON.stringify(leaky) });
  const refused = await sync();
  expect(refused.code).toBe(1);
  expect(refused.lines[0]).toMatchObject({ outcome: 'error', message: 'the verification-keys secret holds private key material: refusing to write it' });
  expect(refused.stdout).not.toContain(leaky.keys[0].publicJwk.d);
  expect(managedFiles()).toEqual(before);

  model.putSecretValue({ SecretId: arns.verificationKeys, SecretString: good });
  const repaired = await sync();
  expect(repaired.lines[0]).toMatchObject({ outcome: 'unchanged', fetched: ['verification-keys'] });
});

test('files that haproxy -c rejects are rolled back, and haproxy is not reloaded', async () => {
  const before = managedFiles();
  const good = parseGatewaySecret(model.valueAt(arns.frontendCertificate), SECRET_KINDS.frontendCertificate, 'f');
  const other = parseGatewaySecret(model.valueAt(arns.backendClientCertificate), SECRET_KINDS.backendClientCertificate, 'b');
  // A valid certificate with somebody else's key: openssl reads both, haproxy refuses the pair.
  model.putSecretValue({ SecretId: arns.frontendCertificate, SecretString: JSON.stringify({ ...good, privateKeyPem: other.privateKeyPem }) });

  const run = await sync();
  expect(run.code).toBe(1);
  expect(run.lines[0]).toMatchObject({ outcome: 'error', reloaded: false, keptPreviousFiles: true, changed: ['tls/frontend.pem'] });
  expect(run.lines[0].message).toMatch(/^haproxy -c rejected the configuration with the new files: .*(key|certificate)/i);
  expect(run.stdout).not.toMatch(/BEGIN|PRIVATE KEY-/);
  expect(managedFiles()).toEqual(before);
  expect(await reloadCount(masterSocketHost)).toBe(1);

  model.putSecretValue({ SecretId: arns.frontendCertificate, SecretString: JSON.stringify(good) });
});

test('an unreachable Secrets Manager keeps the last good files', async () => {
  await rotate(arns.signingKeys);
  const before = managedFiles();
  const [closedPort] = await freePorts(1);
  const run = await sync([], `http://127.0.0.1:${closedPort}`);
  expect(run.code).toBe(1);
  expect(run.lines[0]).toMatchObject({ outcome: 'error', reloaded: false });
  expect(run.lines[0].message).toMatch(/^cannot read the current version of the verification-keys secret/);
  expect(managedFiles()).toEqual(before);
  expect(await reloadCount(masterSocketHost)).toBe(1);

  // Once Secrets Manager answers again, the next run catches up.
  const recovered = await sync();
  expect(recovered.lines[0]).toMatchObject({ outcome: 'updated', reloaded: true, message: 'installed new key and certificate files' });
  const newNext = keyWithStatus('next');
  while ((await getWithSession(httpPort, SESSION_COOKIE, await signWith(newNext, 'grace'))) !== 200) await sleep(20);
  expect(await reloadCount(masterSocketHost)).toBe(2);
  expect(randomUUID()).toBeTruthy();
});

test('your own certificate: PEM files converted by the one line of docs/certificates.md are installed and served after a reload', async () => {
  // GIVEN a certificate from a CA with an intermediate, as PEM files
  const root = await createCa('Own Root CA');
  const intermediate = await createIntermediateCa(root, 'Own Intermediate CA');
  const own = await issueCertificate(intermediate, { commonName: 'looker.example.com', usages: ['server'], keyAlgorithm: 'RSA_2048' });
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-own-certificate-'));
  writeFileSync(path.join(dir, 'cert.pem'), own.cert);
  writeFileSync(path.join(dir, 'chain.pem'), intermediate.cert);
  writeFileSync(path.join(dir, 'key.pem'), own.key);
  // WHEN the documented line converts them
  const docs = readFileSync(path.join(__dirname, '..', '..', 'docs', 'certificates.md'), 'utf8');
  const line = docs.split('\n').find((l) => l.startsWith('jq -n --rawfile c cert.pem'));
  expect(line).toBeDefined();
  execFileSync('bash', ['-c', line!], { cwd: dir });
  const converted = readFileSync(path.join(dir, 'frontend-certificate.json'), 'utf8');
  rmSync(dir, { recursive: true, force: true });
  const secret = parseGatewaySecret(converted, SECRET_KINDS.frontendCertificate, 'converted');
  expect(secret).toMatchObject({ certificatePem: own.cert, chainPem: intermediate.cert, privateKeyPem: own.key, selfSigned: false });
  expect(Date.parse(secret.notAfter)).toBe(Date.parse(new X509Certificate(own.cert).validTo));
  // AND the result is put into the secret key-sync reads
  const previous = model.valueAt(arns.frontendCertificate);
  model.putSecretValue({ SecretId: arns.frontendCertificate, SecretString: converted });
  const reloads = await reloadCount(masterSocketHost);
  // THEN key-sync installs certificate, chain and key, and haproxy reloads onto them
  const run = await sync();
  expect(run.lines[0]).toMatchObject({ outcome: 'updated', reloaded: true, changed: ['tls/frontend.pem'] });
  const installed = readFileSync(path.join(configDirHost, GATEWAY_FILES.frontendCertificate), 'utf8');
  for (const part of [own.cert, intermediate.cert]) expect(installed).toContain(part.trim());
  expect(createPrivateKey(installed).asymmetricKeyType).toBe('rsa');
  expect(await reloadCount(masterSocketHost)).toBe(reloads + 1);
  const served = execFileSync(
    'bash',
    ['-c', `openssl s_client -connect 127.0.0.1:${httpsPort} -servername looker.example.com -showcerts </dev/null 2>/dev/null`],
    { encoding: 'utf8', timeout: 10_000 },
  );
  expect(new X509Certificate(served.slice(served.indexOf('-----BEGIN CERTIFICATE-----'))).fingerprint256).toBe(new X509Certificate(own.cert).fingerprint256);

  model.putSecretValue({ SecretId: arns.frontendCertificate, SecretString: previous! });
  expect((await sync()).lines[0]).toMatchObject({ outcome: 'updated', reloaded: true });
});

describe('a secret whose first rotation has not finished (a new stack)', () => {
  let seedConfigInside: string;

  beforeAll(() => {
    // The seed CloudFormation writes before the first rotation, in a secret of its own.
    const seeded = model.createSecret({
      Name: `lg/seed-${Date.now()}`,
      SecretString: seedSecretValue(SECRET_KINDS.verificationKeys),
      Tags: [{ Key: SECRET_KIND_TAG, Value: SECRET_KINDS.verificationKeys }],
    }).ARN;
    const config = unit.files
      .find((f) => f.path === configInside)!
      .content.replace(arns.verificationKeys, seeded)
      .replace(/^FIRST_ROTATION_WAIT_SECONDS=.*$/m, "FIRST_ROTATION_WAIT_SECONDS='5'");
    seedConfigInside = `${scratch.inside}/key-sync-seed.conf`;
    writeFileSync(path.join(TRIXIE(), seedConfigInside), config, { mode: 0o640 });
  });

  test('a timer run fails at once and keeps the files (the next run tries again)', async () => {
    const before = managedFiles();
    const run = await runKeySync(scriptInside, seedConfigInside, awsEnv());
    expect(run.code).toBe(1);
    expect(run.lines).toHaveLength(1);
    expect(run.lines[0]).toMatchObject({ outcome: 'error', keptPreviousFiles: true });
    expect(String(run.lines[0].message)).toMatch(/the verification-keys secret \(arn:[^)]+\) has no current session key yet \(has its first rotation run\?\)$/);
    expect(managedFiles()).toEqual(before);
  });

  test('the boot run waits with a bounded backoff, says what it waits for, and gives up at the limit', async () => {
    const started = Date.now();
    const run = await runKeySync(scriptInside, seedConfigInside, awsEnv(), ['--no-reload', '--wait-for-first-rotation']);
    expect(run.code).toBe(1);
    const waits = run.lines.filter((line) => line.outcome === 'waiting');
    // 2 s first; each later wait at most doubles and never passes the 5 s limit (how many
    // fit depends on how long the AWS CLI calls take on this machine).
    expect(waits.length).toBeGreaterThanOrEqual(1);
    expect(waits[0]).toMatchObject({ secret: 'verification-keys', waitedSeconds: 0, retryInSeconds: 2, waitLimitSeconds: 5 });
    for (let i = 1; i < waits.length; i += 1) {
      expect(Number(waits[i].retryInSeconds)).toBeLessThanOrEqual(2 * Number(waits[i - 1].retryInSeconds));
      expect(Number(waits[i].waitedSeconds) + Number(waits[i].retryInSeconds)).toBeLessThanOrEqual(5);
    }
    expect(String(waits[0].message)).toMatch(
      /^waiting for the first rotation: the verification-keys secret \(arn:[^)]+\) has no current session key yet; next check in 2 s$/,
    );
    const last = run.lines[run.lines.length - 1];
    expect(last).toMatchObject({ outcome: 'error' });
    expect(String(last.message)).toMatch(/^gave up after \d+ s waiting for the first rotation: the verification-keys secret/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(5000);
  });
});
