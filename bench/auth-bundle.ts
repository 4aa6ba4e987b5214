/**
 * Auth-service bundle benchmark: the built asset the package ships (dist/assets/auth, made
 * by `npm run build`, refused when stale) and measures its size (minified and gzipped) and module init time (require of the bundle,
 * which parses the configuration and creates the Secrets Manager and DynamoDB clients) in
 * fresh Node processes. Writes bench/results/auth-bundle.json.
 *
 *   npx tsx bench/auth-bundle.ts      (also run by `npm run bench`)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { LAMBDA_ASSETS } from '../core/lambda-assets';
import { REPO_ROOT } from '../dev/repo';
import type { AuthServiceEnvironment } from '../core/auth/environment';
import { builtAssetFile } from '../scripts/bundle-lambdas';

const RUNS = 21;
const INIT_BUDGET_MS = 100;

const environment: AuthServiceEnvironment = {
  LG_IDP_ISSUER: 'https://idp.example.com',
  LG_IDP_CLIENT_ID: 'looker-gateway',
  LG_IDP_CLIENT_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:client-AbCdEf',
  LG_PUBLIC_BASE_URL: 'https://looker.example.com',
  LG_SESSION_ISSUER: 'https://looker.example.com/oauth2',
  LG_SESSION_AUDIENCE: 'looker-gateway',
  LG_MAPPING_RULES: JSON.stringify({ rules: [{ name: 'analysts', match: { groups: ['looker-analysts'] }, grant: { roles: ['Viewer'] } }] }),
  LG_SIGNING_KEYS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:signing-AbCdEf',
  LG_COOKIE_KEYS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:cookie-AbCdEf',
  LG_REVOCATION_TABLE_NAME: 'LookerGateway-RevocationTable-ABC123',
};

/** The AWS SDK clients the bundle requires: the Lambda runtime provides them, so their load time is not the bundle's. */
const RUNTIME_SDK_CLIENTS = ['@aws-sdk/client-secrets-manager', '@aws-sdk/client-dynamodb'];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  // In this checkout's dist/, so the bundle's external @aws-sdk/* resolve from this checkout.
  const file = builtAssetFile('auth');
  const built = { file, bytes: statSync(file).size };
  const source = readFileSync(built.file);
  // One fresh process per run: loads the AWS SDK clients (the Lambda runtime ships them, so
  // their load time is not the bundle's), then times require() of the bundle itself.
  const probe = [
    `let t=process.hrtime.bigint();${RUNTIME_SDK_CLIENTS.map((name) => `require(${JSON.stringify(name)});`).join('')}const sdk=Number(process.hrtime.bigint()-t)/1e6;`,
    `t=process.hrtime.bigint();require(${JSON.stringify(built.file)});const own=Number(process.hrtime.bigint()-t)/1e6;`,
    `process.stdout.write(JSON.stringify({sdk,own}));`,
  ].join('');
  const ownMs: number[] = [];
  const totalMs: number[] = [];
  for (let i = 0; i < RUNS; i += 1) {
    const out = execFileSync(process.execPath, ['--no-warnings', '-e', probe], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...environment, AWS_REGION: 'eu-west-1' },
      encoding: 'utf8',
    });
    const { sdk, own } = JSON.parse(out) as { sdk: number; own: number };
    ownMs.push(own);
    totalMs.push(sdk + own);
  }
  ownMs.sort((a, b) => a - b);
  totalMs.sort((a, b) => a - b);
  const stats = (values: number[]) => ({
    medianMs: Number(percentile(values, 50).toFixed(2)),
    p90Ms: Number(percentile(values, 90).toFixed(2)),
    maxMs: Number(values[values.length - 1].toFixed(2)),
  });
  const result = {
    bundle: path.relative(REPO_ROOT, built.file),
    node: process.version,
    minifiedBytes: built.bytes,
    gzippedBytes: gzipSync(source).length,
    budgetBytes: LAMBDA_ASSETS.auth.maxBytes,
    withinBudget: built.bytes <= LAMBDA_ASSETS.auth.maxBytes,
    moduleInit: {
      runs: RUNS,
      goalMs: INIT_BUDGET_MS,
      /** require() of the bundle once the SDK is loaded: parses the configuration, creates the clients. */
      bundle: stats(ownMs),
      /** The same plus loading the SDK clients from node_modules (the runtime's copy in Lambda). */
      includingAwsSdk: stats(totalMs),
      cpus: os.cpus().length,
      loadAverage1m: Number(os.loadavg()[0].toFixed(2)),
    },
    measuredAt: new Date().toISOString(),
  };
  mkdirSync(path.join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(REPO_ROOT, 'bench', 'results', 'auth-bundle.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

void main();
