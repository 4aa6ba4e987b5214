/**
 * The built asset the construct deploys (dist/assets/auth/index.js, core/lambda-assets.ts settings):
 * within its size budget, free of aws-cdk-lib, and working: a full login and inline
 * refresh run through the bundled handler, with its own Secrets Manager client (answered
 * by the model) and its own stdout audit log.
 */
import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { LAMBDA_ASSETS } from '../../core/lambda-assets';
import { REFRESH_COOKIE, SESSION_COOKIE } from '../../core/session-contract';
import { startBundledHarness, type BundledHarness } from './support/bundle';
import { CookieJar, login, request } from './support/harness';

let b: BundledHarness;

beforeAll(async () => {
  b = await startBundledHarness();
});

afterAll(async () => {
  await b?.stop();
});

test('the minified bundle stays within its budget and leaves the AWS SDK and aws-cdk-lib out', () => {
  expect(b.built.maxBytes).toBe(LAMBDA_ASSETS.auth.maxBytes);
  expect(b.built.bytes).toBeGreaterThan(10_000);
  expect(b.built.bytes).toBeLessThanOrEqual(LAMBDA_ASSETS.auth.maxBytes);
  const source = readFileSync(b.built.file, 'utf8');
  expect(source).toContain('require("@aws-sdk/client-secrets-manager")');
  expect(source).toContain('require("@aws-sdk/client-dynamodb")');
  expect(source).not.toContain('aws-cdk-lib');
});

test('a login and an inline refresh run through the bundled handler', async () => {
  const { h } = b;
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
  const audits = b.audits();
  expect(audits.find((e) => e.requestId === 'bundle-refresh-1')).toMatchObject({ event: 'refresh', outcome: 'success' });
  expect(audits.some((e) => e.event === 'login' && e.outcome === 'success')).toBe(true);
  // The handler read its secrets through Secrets Manager (the model).
  expect(h.model.calls.some((c) => c.operation === 'GetSecretValue' && c.input.SecretId === h.secretArns.signing)).toBe(true);
});
