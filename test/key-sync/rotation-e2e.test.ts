/**
 * Key rotation end to end, as it runs in AWS, with no request failing:
 *
 *   CloudFormation (dev/aws/cloudformation-model.ts) deploys the synthesized
 *   GatewayKeys template into the Secrets Manager model; the bundled rotation function
 *   rotates on the model's schedule; the auth service's own SessionSigner (the code that
 *   mints every session) signs with the current key it reads through its SDK client;
 *   key-sync runs inside the Debian 13 root with the real AWS CLI against the model's JSON
 *   endpoint and reloads the real haproxy 3.0, which runs the configuration lib/fleet
 *   renders; keep-alive clients send sessions through the PROXY-protocol TLS listener to
 *   a Looker stand-in that requires the fleet's client certificate, the whole time.
 *
 * The steps: a first deployment whose rotations are slow (the auth service waits for the
 * keys); a change of sessionAlgorithm from ES256 to RS256 (three scheduled rotations: the
 * RS256 key is published, then signs, then the ES256 keys are gone); a release that bumps
 * SECRET_FORMAT_VERSION (no secret rewritten).
 *
 * Time is compressed: a scheduled rotation is the model's clock moving a week, and the
 * key-sync timer is the test running key-sync once after each rotation (the deployment's
 * arithmetic guarantees one run between two rotations). The rotation function's minimum
 * key age is scaled to match (LG_SIGNING_KEY_MIN_AGE_SECONDS). A session lives 10 minutes
 * in the real world, far less than a rotation period, so a token leaves the clients'
 * pool before the rotation that drops its key is synced: what "expired" means here.
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import * as path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { decodeProtectedHeader } from 'jose';
import { parseGatewaySecret, SECRET_KIND_TAG, SECRET_KINDS, SigningKeySetSecret, VerificationKeySetSecret } from '../../core/key-material';
import { GatewayKeys, GatewayKeysProps } from '../../lib/keys/gateway-keys';
import { FrontendCertificate } from '../../lib/keys/frontend-certificate';
import { renderGatewayConfig } from '../../core/haproxy';
import { renderKeySyncUnit, KeySyncUnit } from '../../core/instance/key-sync';
import { SESSION_COOKIE } from '../../core/session-contract';
import { createAuthService } from '../../lambda/auth/service';
import { SessionSigner } from '../../lambda/auth/keys';
import { CachedSecret, SecretsManagerSource } from '../../lambda/shared/secrets';
import { builtAssetFile } from '../../scripts/bundle-lambdas';
import { CloudFormationModel, TemplateJson } from '../../dev/aws/cloudformation-model';
import { keyMaterialWithFormatVersion } from '../support/format-bump';
import type { RunningHaproxy } from '../../dev/haproxy';
import { freePorts } from '../../dev/ports';
import { startSecretsManagerEndpoint, SecretsManagerEndpoint } from '../../dev/aws/secrets-manager-endpoint';
import { installSecretsManagerFake, RotationFunction, SecretsManagerModel } from '../../dev/aws/secrets-manager-model';
import { newTestApp } from '../constructs/fixtures';
import { AUDIENCE, AUTH_HOST, AUTH_PATH_PREFIX, baseGatewayOptions, createTestPki, GATEWAY_HOST, ISSUER, TestPki } from '../../dev/gateway-env';
import { AuthStandIn, LookerStandIn, startAuthStandIn, startLookerStandIn } from '../../dev/stand-ins/gateway-backends';
import { GatewayClient } from '../../dev/proxy-client';
import { captureLogs } from '../rotation/fixture';
import { reloadCount, rootScratchDir, runKeySync, SyncRun, TRIXIE_ROOT, startHaproxyInRoot } from './harness';
import { apiGatewayGetEvent } from '../../dev/aws/api-gateway-event';

jest.setTimeout(600_000);

const DAY_MS = 24 * 3600_000;
/** The minimum key age, scaled: key-sync runs once between two rotations here, within seconds. */
const SCALED_MIN_KEY_AGE_SECONDS = 2;

let model: SecretsManagerModel;
let fake: ReturnType<typeof installSecretsManagerFake>;
let cfn: CloudFormationModel;
let endpoint: SecretsManagerEndpoint;
let scratch: ReturnType<typeof rootScratchDir>;
let rotationBundle: RotationFunction;
let savedEnv: Record<string, string | undefined>;
let pki: TestPki;
let frontendSecretArn: string;
let unit: KeySyncUnit;
let haproxy: RunningHaproxy | undefined;
let looker: LookerStandIn | undefined;
let auth: AuthStandIn | undefined;
let ports: { gateway: number; health: number; metrics: number };
let load: ReturnType<typeof startLoad> | undefined;
const rotationLines: Record<string, unknown>[] = [];
const syncRuns: SyncRun[] = [];
/**
 * The templates, synthesized before any server starts: synthesis is synchronous and takes
 * seconds, and would stall the stand-ins that share this process (a stalled Looker stand-in
 * fails haproxy's health checks: 503s that no deployment would cause).
 */
const templates: { es256?: TemplateJson; rs256?: TemplateJson; formatBump?: TemplateJson } = {};
/** What the test is doing, for the failure messages of the load. */
let phase = 'start';

beforeAll(async () => {
  model = new SecretsManagerModel({ scheduledRotationAt: 'start' });
  fake = installSecretsManagerFake(model);
  savedEnv = { ...process.env };
  // The asset the construct deploys (dist/assets/rotation, made by npm run build), inside the
  // repository so its require('@aws-sdk/...') is the SDK the fake patches.
  const bundle = require(builtAssetFile('rotation')) as { handler: RotationFunction };
  rotationBundle = async (event) => {
    const logs = await captureLogs(() => bundle.handler(event));
    rotationLines.push(...logs.lines);
    if (logs.error) throw logs.error;
  };
  cfn = new CloudFormationModel(model, {
    rotationFunction: (event) => rotationBundle(event),
    setEnvironment: (variables) => Object.assign(process.env, variables, { LG_SIGNING_KEY_MIN_AGE_SECONDS: String(SCALED_MIN_KEY_AGE_SECONDS) }),
  });
  endpoint = await startSecretsManagerEndpoint(model);
  pki = await createTestPki();
  // The frontend certificate is the user's (never rotated): a secret they made, holding their certificate.
  frontendSecretArn = model.createSecret({
    Name: 'my/frontend-certificate',
    SecretString: JSON.stringify({
      kind: SECRET_KINDS.frontendCertificate,
      version: 1,
      certificatePem: pki.gatewayServer.cert,
      privateKeyPem: pki.gatewayServer.key,
      chainPem: pki.ca.cert,
      notAfter: '2030-01-01T00:00:00.000Z',
      selfSigned: false,
    }),
    Tags: [{ Key: SECRET_KIND_TAG, Value: SECRET_KINDS.frontendCertificate }],
  }).ARN;
  scratch = rootScratchDir();
  templates.es256 = synth({ sessionAlgorithm: 'ES256' });
  templates.rs256 = synth({ sessionAlgorithm: 'RS256' });
  jest.isolateModules(() => {
    // The same construct, loaded with the key-material.ts of a release that bumps SECRET_FORMAT_VERSION.
    jest.doMock('../../core/key-material', () => keyMaterialWithFormatVersion(2));

    const { GatewayKeys: BumpedKeys } = require('../../lib/keys/gateway-keys') as typeof import('../../lib/keys/gateway-keys');
    templates.formatBump = synth({ sessionAlgorithm: 'RS256' }, BumpedKeys);
  });
});

afterAll(async () => {
  await load?.stop();
  await haproxy?.stop();
  await looker?.close();
  await auth?.close();
  await endpoint?.close();
  scratch?.remove();
  fake?.restore();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

function synth(props: GatewayKeysProps, keys: typeof GatewayKeys = GatewayKeys): TemplateJson {
  const stack = new Stack(newTestApp(), 'Gateway');
  new keys(stack, 'Keys', {
    domainName: GATEWAY_HOST,
    frontendCertificate: FrontendCertificate.fromSecret(secretsmanager.Secret.fromSecretCompleteArn(stack, 'Frontend', frontendSecretArn)),
    ...props,
  });
  return Template.fromStack(stack).toJSON() as TemplateJson;
}

function arnOf(name: string): string {
  return cfn.physicalId(cfn.logicalIds('AWS::SecretsManager::Secret', `Keys${name}`)[0]);
}

function signingSet(): SigningKeySetSecret {
  return parseGatewaySecret(model.valueAt(arnOf('SigningKeys')), SECRET_KINDS.signingKeys, 'signing');
}

function published(): VerificationKeySetSecret {
  return parseGatewaySecret(model.valueAt(arnOf('VerificationKeys')), SECRET_KINDS.verificationKeys, 'verification');
}

/** Mints a session exactly as the auth service does (its SessionSigner over its cached, SDK-read key set). */
let signer: SessionSigner | undefined;
async function mintSession(sub: string): Promise<string> {
  const arn = arnOf('SigningKeys');
  signer ??= new SessionSigner(
    new CachedSecret(new SecretsManagerSource(), arn, (s) => parseGatewaySecret(s, SECRET_KINDS.signingKeys, arn), { maxAgeMs: 0, rereadIntervalMs: 0 }),
  );
  const minted = await signer.mint(
    {
      issuer: ISSUER,
      audience: AUDIENCE,
      sessionId: `sid-${sub}`,
      identity: { subject: sub, email: `${sub}@example.com` },
      grant: { allowed: true, matchedRules: ['all'], roles: ['Viewer'], groups: ['Analysts'], attributes: { region: 'emea', cost_center: 'cc-1' } },
      timing: { now: Math.floor(Date.now() / 1000), ttlSeconds: 3600 },
    },
    4096,
  );
  if (!minted.ok) throw new Error('the session token is too large');
  return minted.token;
}

async function sync(extraArgs: string[] = []): Promise<SyncRun> {
  const run = await runKeySync(
    unit.files.find((f) => f.path.endsWith('lg-key-sync'))!.path,
    `${scratch.inside}/key-sync.conf`,
    {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint.url,
      AWS_ACCESS_KEY_ID: 'AKIDTESTE2E',
      AWS_SECRET_ACCESS_KEY: 'test-secret-not-real',
      HOME: `${scratch.inside}/home`,
    },
    extraArgs,
  );
  syncRuns.push(run);
  if (run.code !== 0) throw new Error(`key-sync failed: ${run.stdout} ${run.stderr}`);
  return run;
}

/** Keep-alive clients that send the pool's sessions through the gateway until stopped; every answer but 200 is a failure. */
function startLoad(pool: () => string[], clients = 4): { stop(): Promise<{ total: number; failures: string[] }>; total(): number } {
  let running = true;
  let total = 0;
  const failures: string[] = [];
  const workers = Array.from({ length: clients }, async (_, id) => {
    const client = new GatewayClient({ port: ports.gateway, ca: pki.ca.cert, keepAlive: true });
    let i = id;
    try {
      while (running) {
        const tokens = pool();
        const token = tokens[i++ % tokens.length];
        try {
          const answer = await client.request(`/dashboards/${i}`, { headers: { cookie: `${SESSION_COOKIE}=${token}`, accept: 'application/json' } });
          total += 1;
          if (answer.status !== 200)
            failures.push(`${phase}: status ${answer.status} (${answer.body.slice(0, 120)}) for ${JSON.stringify(decodeProtectedHeader(token))}`);
        } catch (error) {
          total += 1;
          failures.push(`${phase}: error ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        }
      }
    } finally {
      client.close();
    }
  });
  return {
    total: () => total,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return { total, failures };
    },
  };
}

async function requestsGoOn(count: number): Promise<void> {
  const target = load!.total() + count;
  const deadline = Date.now() + 60_000;
  while (load!.total() < target) {
    if (Date.now() > deadline) throw new Error(`the load stalled: waited 60 s for ${count} more requests`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function get(token: string): Promise<number> {
  const client = new GatewayClient({ port: ports.gateway, ca: pki.ca.cert });
  try {
    return (await client.request('/check', { headers: { cookie: `${SESSION_COOKIE}=${token}`, accept: 'application/json' } })).status;
  } finally {
    client.close();
  }
}

/** The tokens the clients send: sessions that are still "alive" (see the header). */
let pool: string[] = [];

test('a first deployment with slow rotations: the auth service waits for the first keys; key-sync and haproxy start on them', async () => {
  const release = model.holdRotations();
  const first = await cfn.deploy(templates.es256!);
  expect(first).toMatchObject({ ok: true });
  // The user's frontend certificate has no schedule: three rotations started, none has run.
  expect(first.actions.filter((a) => a.startsWith('create AWS::SecretsManager::RotationSchedule'))).toHaveLength(3);
  expect(signingSet().keys).toEqual([]);

  const authLogs: Record<string, unknown>[] = [];
  const service = createAuthService(
    {
      LG_IDP_ISSUER: 'https://idp.example.com',
      LG_IDP_CLIENT_ID: 'gateway',
      LG_IDP_CLIENT_SECRET_ARN: 'lg/idp',
      LG_PUBLIC_BASE_URL: `https://${GATEWAY_HOST}`,
      LG_SESSION_ISSUER: ISSUER,
      LG_SESSION_AUDIENCE: AUDIENCE,
      LG_MAPPING_RULES: JSON.stringify({ rules: [{ name: 'all', match: { groups: ['*'] }, grant: { roles: ['Viewer'] } }] }),
      LG_SIGNING_KEYS_SECRET_ARN: arnOf('SigningKeys'),
      LG_COOKIE_KEYS_SECRET_ARN: arnOf('CookieKeys'),
    },
    { secretSource: new SecretsManagerSource(), logSink: { write: (line) => void authLogs.push(JSON.parse(line) as Record<string, unknown>) } },
  );
  const answer = service.handle(apiGatewayGetEvent('/oauth2/jwks.json'));
  setTimeout(release, 2000);
  expect((await answer).statusCode).toBe(200);
  await model.settled();
  expect(authLogs.filter((l) => l.event === 'first-keys').map((l) => l.level)).toEqual(['info', 'info']);

  // The instance boots: key-sync's boot run, then haproxy on the rendered configuration.
  unit = renderKeySyncUnit({
    region: model.region,
    verificationKeysSecretArn: arnOf('VerificationKeys'),
    backendClientCertificateSecretArn: arnOf('BackendClientCertificate'),
    frontendCertificateSecretArn: frontendSecretArn,
    configDir: `${scratch.inside}/gateway`,
    stateDir: `${scratch.inside}/state`,
    scriptPath: `${scratch.inside}/lg-key-sync`,
    configPath: `${scratch.inside}/key-sync.conf`,
    reloadCommand: `kill -USR2 $(cat ${scratch.inside}/haproxy.pid)`,
  });
  mkdirSync(path.join(scratch.host, 'home'), { recursive: true });
  for (const file of unit.files.filter((f) => f.path.startsWith(scratch.inside)))
    writeFileSync(path.join(TRIXIE_ROOT, file.path), file.content, { mode: parseInt(file.mode, 8) });

  const backendCa = parseGatewaySecret(model.valueAt(arnOf('BackendCa')), SECRET_KINDS.backendCa, 'ca');
  looker = await startLookerStandIn('looker-1', { cert: pki.looker.cert, key: pki.looker.key, clientCa: backendCa.certificatePem });
  auth = await startAuthStandIn(
    { cert: pki.auth.cert, key: pki.auth.key },
    { pathPrefix: AUTH_PATH_PREFIX, mintSession: async () => ({ token: await mintSession('refreshed'), expiresAt: 0 }) },
  );
  const [gateway, health, metrics] = await freePorts(3);
  ports = { gateway, health, metrics };
  const options = baseGatewayOptions({
    dir: `${scratch.inside}/gateway`,
    ports,
    lookerPorts: [looker.port],
    authPort: auth.port,
    pki,
    sessionKeys: [...published().keys],
  });
  // Health checks every 5 s (the default) rather than the fleet tests' 1 s: rotations and key-sync share this process with the stand-in.
  const rendered = renderGatewayConfig({
    ...options,
    runtimeDir: `${scratch.inside}/run`,
    authService: { ...options.authService, host: AUTH_HOST },
    looker: { ...options.looker, healthCheckIntervalSeconds: 5 },
  });
  for (const directory of rendered.directories) mkdirSync(path.join(TRIXIE_ROOT, directory), { recursive: true });
  for (const file of rendered.files) {
    const target = path.join(scratch.host, 'gateway', file.path);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, file.content);
    chmodSync(target, file.mode);
  }
  const boot = await sync(['--no-reload']);
  expect(boot.lines[0]).toMatchObject({ outcome: 'updated', fetched: ['verification-keys', 'backend-client-certificate', 'frontend-certificate'] });
  haproxy = await startHaproxyInRoot(rendered.configFile, `${scratch.inside}/haproxy.pid`, `${scratch.inside}/master.sock`, ports.gateway);

  const session = await mintSession('alice');
  expect(await get(session)).toBe(200);
  expect(looker.requests.at(-1)).toMatchObject({
    clientCertificateSubject: 'CN=looker-gateway',
    headers: expect.objectContaining({ 'x-forwarded-user': 'alice' }),
  });
  pool = [session];
  load = startLoad(() => pool);
  await requestsGoOn(100);
});

test('a change of sessionAlgorithm to RS256 is carried out by three rotations, under load, with no failed request', async () => {
  const signingVersion = model.versionAt(arnOf('SigningKeys'));
  phase = 'deploying RS256';
  const deployed = await cfn.deploy(templates.rs256!);
  expect(deployed).toMatchObject({ ok: true, actions: [expect.stringMatching(/^update AWS::Lambda::Function KeysRotationFunction/)] });
  await model.settled();
  expect(model.versionAt(arnOf('SigningKeys'))).toBe(signingVersion);
  expect((await sync()).lines[0]).toMatchObject({ outcome: 'unchanged' });

  const algorithms: string[] = [];
  for (let rotation = 0; rotation < 3; rotation += 1) {
    // Let the newest next key reach the scaled minimum age, then a week passes: the scheduled rotations run.
    await new Promise((resolve) => setTimeout(resolve, SCALED_MIN_KEY_AGE_SECONDS * 1000 + 200));
    phase = `rotation ${rotation + 1}`;
    await model.advanceTime(7 * DAY_MS);
    expect(model.events.filter((e) => e.type === 'RotationFailed')).toEqual([]);
    const kids = new Set(published().keys.map((k) => k.kid));
    // Sessions of keys this rotation dropped have expired long ago (10-minute sessions, weekly rotations).
    pool = pool.filter((token) => kids.has(String(decodeProtectedHeader(token).kid)));
    // The auth service signs with the new current key at once; instances have known it since the last sync.
    const session = await mintSession(`user-${rotation}`);
    algorithms.push(String(decodeProtectedHeader(session).alg));
    expect(await get(session)).toBe(200);
    pool = [...pool, session];
    await requestsGoOn(100);
    phase = `key-sync after rotation ${rotation + 1}`;
    const run = await sync();
    expect(run.lines[0]).toMatchObject({ outcome: 'updated', reloaded: true });
    phase = `after the reload of rotation ${rotation + 1}`;
    await requestsGoOn(100);
  }
  expect(algorithms).toEqual(['ES256', 'RS256', 'RS256']);
  expect(signingSet().alg).toBe('RS256');
  expect(rotationLines).toContainEqual(expect.objectContaining({ event: 'algorithm-changed', from: 'ES256', to: 'RS256' }));
  // The user's certificate was never touched.
  expect(model.versions(frontendSecretArn)).toHaveLength(1);
});

test('a release that bumps SECRET_FORMAT_VERSION rewrites no secret, and nothing fails', async () => {
  const versions = ['SigningKeys', 'VerificationKeys', 'CookieKeys', 'BackendCa', 'BackendClientCertificate'].map((name) => model.versionAt(arnOf(name)));
  phase = 'deploying the format bump';
  const deployed = await cfn.deploy(templates.formatBump!);
  expect(deployed.ok).toBe(true);
  expect(deployed.actions.filter((a) => a.includes('AWS::SecretsManager::Secret'))).toEqual([]);
  await model.settled();
  expect(['SigningKeys', 'VerificationKeys', 'CookieKeys', 'BackendCa', 'BackendClientCertificate'].map((name) => model.versionAt(arnOf(name)))).toEqual(
    versions,
  );
  expect((await sync()).lines[0]).toMatchObject({ outcome: 'unchanged' });
  await requestsGoOn(100);

  const result = await load!.stop();
  load = undefined;
  expect(result.failures).toEqual([]);
  expect(result.total).toBeGreaterThan(1000);
  // One reload per sync that installed files (the boot run does not reload).
  expect(await reloadCount(path.join(scratch.host, 'master.sock'))).toBe(syncRuns.filter((r) => r.lines[0]?.reloaded === true).length);
});
