/**
 * The esbuild bundle the construct deploys (lib/private/lambda-bundling.ts settings):
 * within its size budget, free of aws-cdk-lib, and working: a full login and inline
 * refresh run through the bundled handler, with its own Secrets Manager client (answered
 * by the model) and its own stdout audit log.
 */
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { decodeJwt } from 'jose';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { LAMBDA_BUNDLES, REPO_ROOT } from '../../lib/private/lambda-bundling';
import { REFRESH_COOKIE, SESSION_COOKIE } from '../../lib/session-contract';
import { fetchTrustingCa } from '../../lambda/auth/local-server';
import { bundleLambda, type BuiltBundle } from '../../scripts/bundle-lambdas';
import { CookieJar, Harness, login, request, startHarness } from './support/harness';

// Inside the repository, so the bundle's external `@aws-sdk/*` resolves as the Lambda runtime's would.
const OUT_DIR = path.join(REPO_ROOT, '.cache', 'test-bundles', `auth-${process.pid}`);
const savedEnv = { ...process.env };
const savedFetch = globalThis.fetch;
let built: BuiltBundle;
let h: Harness;
const stdout: string[] = [];

beforeAll(async () => {
  built = await bundleLambda('auth', OUT_DIR);
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(chunk.toString());
    return true;
  });
  h = await startHarness({
    handler: async (environment, caPem) => {
      Object.assign(process.env, environment, { AWS_REGION: 'eu-west-1' });
      // The bundle calls the IdP with the global fetch, as in Lambda; here it must trust the test CA.
      globalThis.fetch = (await fetchTrustingCa(caPem)) as unknown as typeof fetch;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const bundle = require(built.file) as { handler: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult> };
      return { handle: (event, context) => bundle.handler(event, (context ?? {}) as Context) };
    },
  });
});

afterAll(async () => {
  await h?.stop();
  globalThis.fetch = savedFetch;
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
  jest.restoreAllMocks();
  rmSync(OUT_DIR, { recursive: true, force: true });
});

test('the minified bundle stays within its budget and leaves the AWS SDK and aws-cdk-lib out', () => {
  expect(built.maxBytes).toBe(LAMBDA_BUNDLES.auth.maxBytes);
  expect(built.bytes).toBeGreaterThan(10_000);
  expect(built.bytes).toBeLessThanOrEqual(LAMBDA_BUNDLES.auth.maxBytes);
  const source = readFileSync(built.file, 'utf8');
  expect(source).toContain('require("@aws-sdk/client-secrets-manager")');
  expect(source).not.toContain('aws-cdk-lib');
});

test('a login and an inline refresh run through the bundled handler', async () => {
  const jar = new CookieJar();
  const { callback } = await login(h, jar, 'alice', '/dashboards/1');
  expect(callback.status).toBe(302);
  expect(callback.location).toBe(`${h.gatewayUrl}/dashboards/1`);
  expect(decodeJwt(jar.get(h.gatewayUrl, SESSION_COOKIE)!)).toMatchObject({ sub: 'alice', roles_csv: 'Viewer', attr_region: 'emea' });
  const firstRefresh = jar.get(h.gatewayUrl, REFRESH_COOKIE);

  const refreshed = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/session`, { method: 'POST', headers: { 'x-request-id': 'bundle-refresh-1' } });
  expect(refreshed.status).toBe(200);
  expect(jar.get(h.gatewayUrl, REFRESH_COOKIE)).not.toBe(firstRefresh);

  // The bundle's audit log goes to stdout, as in Lambda.
  const audits = stdout.join('').split('\n').filter((l) => l.startsWith('{"type":"audit"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(audits.find((e) => e.requestId === 'bundle-refresh-1')).toMatchObject({ event: 'refresh', outcome: 'success' });
  expect(audits.some((e) => e.event === 'login' && e.outcome === 'success')).toBe(true);
  // The handler read its secrets through Secrets Manager (the model).
  expect(h.model.calls.some((c) => c.operation === 'GetSecretValue' && c.input.SecretId === h.secretArns.signing)).toBe(true);
});
