/**
 * The package as a user installs it, which no test from source can stand in for: `npm pack`
 * (after `npm run build`, which `npm test` runs first), the tarball installed into a fresh
 * app outside this repository next to aws-cdk-lib, constructs and aws-cdk (from the npm
 * cache), and `npx cdk synth` of
 *   - the README's minimal example, taken from the README itself (it never calls the nag
 *     helper, and cdk-nag is not installed: the entry must not load it);
 *   - an app that brings its own VPC (made in the same stack; no lookups) and Looker's
 *     security group, with an internal load balancer;
 *   - an app with a wrong prop, which must fail with the same error (value and fix) as the
 *     constructs give from source.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../../dev/repo';

// npm install of aws-cdk-lib from the cache and three synths: a minute alone, several on a busy machine.
jest.setTimeout(900_000);

const PACKAGE = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const installed = (name: string) =>
  (JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
/** What a user's synth must not need: these never appear in an install of the tarball. */
const BUILD_ONLY = ['esbuild', 'jose', 'openid-client', '@peculiar/x509', 'typescript', 'cdk-nag'];

interface PackedFile {
  readonly path: string;
  readonly size: number;
}
interface Packed {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly files: PackedFile[];
}

function npm(args: string[], cwd: string): string {
  const result = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' }, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`npm ${args.join(' ')} failed (exit ${result.status}) in ${cwd}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** `npm pack --json` output: one entry per package. `--ignore-scripts`: npm test built dist/ already. */
function pack(extra: string[]): Packed {
  const [packed] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', ...extra], REPO_ROOT)) as Packed[];
  return packed;
}

/** The ```ts block under "## Minimal example" in the README. */
function readmeMinimalExample(): string {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const match = /^#{2,3} Minimal example\n[\s\S]*?```ts\n([\s\S]*?)```/m.exec(readme);
  if (!match) throw new Error('README.md has no ```ts block under "## Minimal example".');
  return match[1];
}

function toCommonJs(source: string): string {
  return ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
}

interface Synth {
  readonly status: number | null;
  readonly stderr: string;
  readonly outdir: string;
}

/** `npx cdk synth` as a user runs it, offline: no notices, no version check, no telemetry. */
function cdkSynth(appDir: string, script: string): Synth {
  const outdir = path.join(appDir, `cdk.out.${path.basename(script, '.js')}`);
  const result = spawnSync(
    'npx',
    ['--no-install', 'cdk', 'synth', '--app', `node ${script}`, '--output', outdir, '--quiet', '--no-notices', '--no-version-reporting'],
    {
      cwd: appDir,
      encoding: 'utf8',
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true', JSII_DEPRECATED: 'quiet', NODE_PATH: '' },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return { status: result.status, stderr: result.stderr, outdir };
}

type Resources = Record<string, { Type: string; Properties?: any }>;

function templateOf(outdir: string, stackName: string): Resources {
  return (JSON.parse(readFileSync(path.join(outdir, `${stackName}.template.json`), 'utf8')) as { Resources: Resources }).Resources;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** SHA-256 of each Lambda function's index.js in the cloud assembly (the asset directory its S3Key names). */
function lambdaCodeDigests(outdir: string, resources: Resources): string[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::Lambda::Function' && typeof r.Properties?.Code?.S3Key === 'string')
    .map((r) => path.join(outdir, `asset.${(r.Properties.Code.S3Key as string).replace(/\.zip$/, '')}`, 'index.js'))
    .filter((file) => existsSync(file))
    .map(sha256);
}

const countOf = (resources: Resources, type: string) => Object.values(resources).filter((r) => r.Type === type).length;

describe('npm pack --dry-run', () => {
  let listed: string[];
  beforeAll(() => {
    listed = pack(['--dry-run']).files.map((f) => f.path);
  });

  test('the tarball holds only the built library, its Lambda assets and the user docs: no test, bench, local or dev files', () => {
    const allowed = [
      /^dist\/(lib|core)\/.+\.(js|d\.ts)$/,
      /^dist\/assets\/[a-z-]+\/index\.js$/,
      /^docs\/[a-z0-9-]+\.md$/,
      /^(README\.md|LICENSE|API\.md|package\.json)$/,
    ];
    expect(listed.filter((file) => !allowed.some((pattern) => pattern.test(file)))).toEqual([]);
    expect(listed.filter((file) => /^(test|bench|local|dev|scripts|lambda|bin)\//.test(file) || /\.(snap|ts)$/.test(file.replace(/\.d\.ts$/, '')))).toEqual([]);
  });

  test('it holds the entry, the ./nag subpath, every prebuilt Lambda and the licence', () => {
    expect(listed).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'API.md',
        'dist/lib/index.js',
        'dist/lib/index.d.ts',
        'dist/lib/nag/index.js',
        'dist/lib/nag/index.d.ts',
        'dist/assets/auth/index.js',
        'dist/assets/rotation/index.js',
        'dist/assets/looker-oidc/index.js',
      ]),
    );
  });
});

describe('the tarball installed into a fresh app', () => {
  let workDir: string;
  let appDir: string;
  let packageDir: string;

  beforeAll(() => {
    workDir = mkdtempSync(path.join(tmpdir(), 'lg-consumer-'));
    appDir = path.join(workDir, 'app');
    mkdirSync(appDir);
    const packed = pack(['--pack-destination', workDir]);
    writeFileSync(path.join(appDir, 'package.json'), JSON.stringify({ name: 'consumer-app', version: '1.0.0', private: true }, null, 2));
    npm(
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        path.join(workDir, packed.filename),
        `aws-cdk-lib@${installed('aws-cdk-lib')}`,
        `constructs@${installed('constructs')}`,
        `aws-cdk@${installed('aws-cdk')}`,
      ],
      appDir,
    );
    packageDir = path.join(appDir, 'node_modules', PACKAGE.name);
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  test('the package resolves inside the app, with no path back into this repository', () => {
    const entry = execFileSync('node', ['-p', `require.resolve(${JSON.stringify(PACKAGE.name)})`], { cwd: appDir, encoding: 'utf8' }).trim();
    expect(realpathSync(entry)).toBe(path.join(realpathSync(packageDir), 'dist', 'lib', 'index.js'));
    expect(realpathSync(entry).startsWith(realpathSync(REPO_ROOT))).toBe(false);
    const nag = execFileSync('node', ['-p', `require.resolve(${JSON.stringify(`${PACKAGE.name}/nag`)})`], { cwd: appDir, encoding: 'utf8' }).trim();
    expect(realpathSync(nag)).toBe(path.join(realpathSync(packageDir), 'dist', 'lib', 'nag', 'index.js'));
    // A user's install brings none of the build's tools or the Lambdas' libraries.
    expect(BUILD_ONLY.filter((name) => existsSync(path.join(appDir, 'node_modules', name)))).toEqual([]);
  });

  test("the README's minimal example synthesizes without cdk-nag: the gateway's resources, Lambda code from the prebuilt assets", () => {
    writeFileSync(path.join(appDir, 'minimal.js'), toCommonJs(readmeMinimalExample()));
    const synth = cdkSynth(appDir, 'minimal.js');
    expect({ status: synth.status, stderr: synth.status === 0 ? '' : synth.stderr }).toEqual({ status: 0, stderr: '' });
    const stackName = readdirSync(synth.outdir)
      .find((f) => f.endsWith('.template.json'))!
      .replace(/\.template\.json$/, '');
    const resources = templateOf(synth.outdir, stackName);
    expect(countOf(resources, 'AWS::AutoScaling::AutoScalingGroup')).toBe(1);
    expect(countOf(resources, 'AWS::ElasticLoadBalancingV2::LoadBalancer')).toBe(1);
    expect(countOf(resources, 'AWS::ApiGateway::RestApi')).toBe(1);
    expect(countOf(resources, 'AWS::SecretsManager::RotationSchedule')).toBeGreaterThanOrEqual(4);
    expect(countOf(resources, 'AWS::CloudWatch::Alarm')).toBeGreaterThan(0);
    const digests = lambdaCodeDigests(synth.outdir, resources);
    for (const asset of ['auth', 'rotation']) {
      expect({ asset, shippedInTheFunctions: digests.includes(sha256(path.join(packageDir, 'dist', 'assets', asset, 'index.js'))) }).toEqual({
        asset,
        shippedInTheFunctions: true,
      });
    }
  });

  test('an app with its own VPC and Looker security group synthesizes: internal load balancer, Looker opened on its web port to the fleet', () => {
    writeFileSync(
      path.join(appDir, 'own-vpc.js'),
      `const { App, Stack } = require('aws-cdk-lib');
const ec2 = require('aws-cdk-lib/aws-ec2');
const secretsmanager = require('aws-cdk-lib/aws-secretsmanager');
const { LookerBackend, LookerGateway } = require(${JSON.stringify(PACKAGE.name)});
const app = new App();
const stack = new Stack(app, 'OwnVpc');
const vpc = new ec2.Vpc(stack, 'Network', { maxAzs: 2, natGateways: 1 });
const lookerNodes = new ec2.SecurityGroup(stack, 'LookerNodes', { vpc, description: 'Looker cluster nodes' });
new LookerGateway(stack, 'Gateway', {
  domainName: 'analytics.consumer.example',
  identityProvider: {
    issuer: 'https://consumer.okta.example/oauth2/default',
    clientId: '0oa-consumer',
    clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'IdpClientSecret', 'looker-gateway/idp-client-secret'),
  },
  mappingRules: { rules: [{ name: 'bi-team', match: { groups: ['bi-*'] }, grant: { roles: ['Developer'], attributes: { team: 'bi' } } }] },
  looker: LookerBackend.fromDnsName('looker.internal.consumer.example', { peer: lookerNodes }),
  vpc,
  internetFacing: false,
});
`,
    );
    const synth = cdkSynth(appDir, 'own-vpc.js');
    expect({ status: synth.status, stderr: synth.status === 0 ? '' : synth.stderr }).toEqual({ status: 0, stderr: '' });
    const resources = templateOf(synth.outdir, 'OwnVpc');
    expect(countOf(resources, 'AWS::EC2::VPC')).toBe(1);
    const loadBalancers = Object.values(resources).filter((r) => r.Type === 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(loadBalancers.map((r) => r.Properties.Scheme)).toEqual(['internal']);
    const lookerIngress = Object.values(resources).filter(
      (r) => r.Type === 'AWS::EC2::SecurityGroupIngress' && JSON.stringify(r.Properties.GroupId).includes('LookerNodes'),
    );
    expect(lookerIngress.map((r) => r.Properties.FromPort)).toEqual([9999]);
  });

  test('a wrong prop fails the synth with the same error, value and fix, as from source', () => {
    const wrongDomain = 'https://looker.example.com/';
    const props = `{
  domainName: ${JSON.stringify(wrongDomain)},
  identityProvider: { issuer: 'https://login.example.com', clientId: 'gateway', clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'IdpSecret', 'idp') },
  mappingRules: { rules: [{ name: 'all', match: { groups: ['staff'] }, grant: { roles: ['Viewer'] } }] },
  looker: LookerBackend.fromDnsName('looker.internal.example.com'),
}`;
    const app = (entry: string) => `const { App, Stack } = require('aws-cdk-lib');
const secretsmanager = require('aws-cdk-lib/aws-secretsmanager');
const { LookerBackend, LookerGateway } = require(${JSON.stringify(entry)});
const app = new App();
const stack = new Stack(app, 'Wrong');
new LookerGateway(stack, 'Gateway', ${props});
`;
    // From source: the same app, run in this process against lib/.
    let fromSource = '';
    try {
      new Function('require', app('../../lib'))((id: string) => (id === '../../lib' ? require('../../lib') : require(id)));
    } catch (error) {
      fromSource = (error as Error).message;
    }
    expect(fromSource).toContain(JSON.stringify(wrongDomain));
    writeFileSync(path.join(appDir, 'wrong.js'), app(PACKAGE.name));
    const synth = cdkSynth(appDir, 'wrong.js');
    expect(synth.status).not.toBe(0);
    expect(synth.stderr).toContain(fromSource);
  });
});
