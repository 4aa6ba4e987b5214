/**
 * The local adapter: REST proxy events from Node requests (multi-value headers and
 * query, base64 bodies), HTTPS mode, and the CLI that the local runner starts.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { fetchTrustingCa, startLocalAuthService, type RunningLocalAuthService } from '../../dev/auth-local-server';
import { parseAuthServiceEnvironment } from '../../core/auth/environment';
import { parseClientSecret } from '../../lambda/auth/service';
import { REPO_ROOT } from '../../dev/repo';
import { createCa, issueCertificate } from '../../dev/pki';
import { DEFAULT_RULES, generateCookieKeySet, generateSigningKeySet } from './support/harness';

describe('toProxyEvent through a recording handler', () => {
  let running: RunningLocalAuthService;
  const seen: APIGatewayProxyEvent[] = [];

  beforeAll(async () => {
    running = await startLocalAuthService({
      stage: 'prod',
      handler: {
        handle: async (event) => {
          seen.push(event);
          return { statusCode: 200, body: 'ok', multiValueHeaders: { 'Set-Cookie': ['a=1; Path=/', 'b=2; Path=/'] } };
        },
      },
    });
  });
  afterAll(async () => {
    await running.stop();
  });

  test('headers, cookies, query and body arrive as API Gateway sends them; several Set-Cookie come back', async () => {
    const answer = await fetch(`${running.url}/oauth2/session?rd=%2Fa%2Fb&x=1&x=2`, {
      method: 'POST',
      headers: [
        ['Cookie', 'one=1'],
        ['X-Request-Id', 'abc'],
      ],
      body: 'hello',
    });
    expect(answer.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    const event = seen[0];
    expect(event.httpMethod).toBe('POST');
    expect(event.path).toBe('/oauth2/session');
    expect(event.requestContext.path).toBe('/prod/oauth2/session');
    expect(event.requestContext.stage).toBe('prod');
    expect(event.queryStringParameters?.rd).toBe('/a/b');
    expect(event.multiValueQueryStringParameters?.x).toEqual(['1', '2']);
    expect(event.multiValueHeaders.Cookie ?? event.multiValueHeaders.cookie).toEqual(['one=1']);
    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body!, 'base64').toString()).toBe('hello');
  });
});

describe('HTTPS and the CLI', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-auth-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('the CLI serves the service over HTTPS from an env file and a secrets file', async () => {
    const ca = await createCa();
    const cert = await issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usages: ['server'] });
    const signing = await generateSigningKeySet();
    writeFileSync(path.join(dir, 'cert.pem'), cert.cert);
    writeFileSync(path.join(dir, 'key.pem'), cert.key);
    writeFileSync(path.join(dir, 'secrets.json'), JSON.stringify({ signing, cookie: generateCookieKeySet(), client: 'plain-secret' }));
    writeFileSync(
      path.join(dir, 'env.json'),
      JSON.stringify({
        LG_IDP_ISSUER: 'https://127.0.0.1:1',
        LG_IDP_CLIENT_ID: 'c',
        LG_IDP_CLIENT_SECRET_ARN: 'client',
        LG_PUBLIC_BASE_URL: 'https://127.0.0.1:8443',
        LG_SESSION_ISSUER: 'https://127.0.0.1:8443/oauth2',
        LG_SESSION_AUDIENCE: 'looker-gateway',
        LG_MAPPING_RULES: JSON.stringify(DEFAULT_RULES),
        LG_SIGNING_KEYS_SECRET_ARN: 'signing',
        LG_COOKIE_KEYS_SECRET_ARN: 'cookie',
      }),
    );
    const child = spawn(
      path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx'),
      [
        'dev/auth-local-server.ts',
        '--env',
        path.join(dir, 'env.json'),
        '--secrets',
        path.join(dir, 'secrets.json'),
        '--tls-cert',
        path.join(dir, 'cert.pem'),
        '--tls-key',
        path.join(dir, 'key.pem'),
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`CLI did not start: ${output}`)), 30_000);
        child.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const ready = output.split('\n').find((l) => l.includes('"ready"'));
          if (ready) {
            clearTimeout(timer);
            resolve((JSON.parse(ready) as { url: string }).url);
          }
        });
        child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      });
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const trusting = await fetchTrustingCa(ca.cert);
      const jwks = await trusting(`${url}/oauth2/jwks.json`, {} as Parameters<typeof trusting>[1]);
      expect(jwks.status).toBe(200);
      expect(((await jwks.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid)).toEqual(signing.keys.map((k) => k.kid));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('configuration parsing', () => {
  const minimal = {
    LG_IDP_ISSUER: 'https://idp.example.com',
    LG_IDP_CLIENT_ID: 'c',
    LG_IDP_CLIENT_SECRET_ARN: 'arn:secret',
    LG_PUBLIC_BASE_URL: 'https://looker.example.com',
    LG_SESSION_ISSUER: 'https://looker.example.com',
    LG_SESSION_AUDIENCE: 'looker',
    LG_MAPPING_RULES: JSON.stringify(DEFAULT_RULES),
    LG_SIGNING_KEYS_SECRET_ARN: 'arn:signing',
    LG_COOKIE_KEYS_SECRET_ARN: 'arn:cookie',
  };

  test('defaults come from the session contract', () => {
    const config = parseAuthServiceEnvironment(minimal);
    expect(config.cookies).toEqual({ session: '__Host-lg_session', refresh: '__Host-lg_refresh', login: '__Host-lg_login', assertion: '__Host-lg_assert' });
    expect(config.session).toMatchObject({ ttlSeconds: 600, refreshWindowSeconds: 60, maxBytes: 4096 });
    expect(config.clockSkewSeconds).toBe(30);
    expect(config.redirectUri).toBe('https://looker.example.com/oauth2/callback');
    expect(config.postLogoutRedirectUrl).toBe('https://looker.example.com/oauth2/logout?signed_out=1');
    expect(config.idp.settings.scopes).toEqual(['openid', 'email', 'profile', 'offline_access']);
    expect(config.idp.settings.groupsClaim).toBe('/groups');
  });

  test.each([
    [{ LG_SESSION_MAX_BYTES: '5000' }, /LG_SESSION_MAX_BYTES="5000" is invalid: expected a whole number from 512 to 4096/],
    [{ LG_REFRESH_WINDOW_SECONDS: '600' }, /LG_REFRESH_WINDOW_SECONDS=600 must be less than the session lifetime/],
    [{ LG_IDP_SCOPES: 'email profile' }, /LG_IDP_SCOPES: scopes "email profile" lack "openid"/],
    [{ LG_IDP_ISSUER: 'http://idp.example.com' }, /LG_IDP_ISSUER="http:\/\/idp.example.com" must use https/],
    [{ LG_MAPPING_RULES: '{rules' }, /LG_MAPPING_RULES is not JSON/],
    [{ LG_SESSION_COOKIE_NAME: 'bad name' }, /LG_SESSION_COOKIE_NAME="bad name" is not a valid cookie name/],
    [{ LG_REFRESH_COOKIE_NAME: '__Host-lg_session' }, /The cookie names must differ/],
    [{ LG_IDP_AUTHORIZATION_PARAMS: '{"state": "x"}' }, /LG_IDP_AUTHORIZATION_PARAMS: authorizationParams set state, which the login flow sets itself/],
    // issue 16: the profile and its overrides, checked by validateIdpSettings at start-up as at synth.
    [
      { LG_IDP_PROVIDER: 'google', LG_IDP_ISSUER: 'https://accounts.google.com', LG_IDP_SCOPES: 'openid email offline_access' },
      /LG_IDP_SCOPES: scopes include "offline_access", which Google Workspace refuses/,
    ],
    [
      { LG_IDP_PROVIDER: 'entra', LG_IDP_ISSUER: 'https://login.microsoftonline.com/organizations/v2.0' },
      /LG_IDP_ISSUER: issuer .* lets users of any Entra ID tenant sign in/,
    ],
    [{ LG_IDP_PROVIDER: 'okta-ish' }, /LG_IDP_PROVIDER: provider "okta-ish" is not known/],
    [{ LG_IDP_GROUPS_CLAIM: '/a~2b' }, /LG_IDP_GROUPS_CLAIM: The claim path "\/a~2b" is not a JSON pointer/],
    [{ LG_IDP_TOKEN_AUTH_METHOD: 'private_key_jwt' }, /LG_IDP_CLIENT_KEY_SECRET_ARN is not set: private_key_jwt signs the client assertion/],
    [
      { LG_IDP_PROVIDER: 'google', LG_IDP_ISSUER: 'https://accounts.google.com', LG_IDP_GROUPS_SOURCE: 'google-directory' },
      /LG_GOOGLE_SERVICE_ACCOUNT_SECRET_ARN is not set/,
    ],
    [{ LG_IDP_END_SESSION: 'http://idp.example.com/logout' }, /LG_IDP_END_SESSION: endSession "http:\/\/idp.example.com\/logout" must be an https URL/],
    [{ LG_IDP_AUTHORIZATION_PARAMS: '{"prompt": 1}' }, /must be a JSON object of string values/],
    [{ LG_IDP_TIMEOUT_MS: '60000' }, /LG_IDP_TIMEOUT_MS="60000" is invalid: expected a whole number from 100 to 25000/],
  ])('%j is rejected with the fix', (override, message) => {
    expect(() => parseAuthServiceEnvironment({ ...minimal, ...override })).toThrow(message);
  });

  test('the profile gives the defaults and the overrides win (issue 16 item 1)', () => {
    const google = parseAuthServiceEnvironment({ ...minimal, LG_IDP_PROVIDER: 'google', LG_IDP_ISSUER: 'https://accounts.google.com' }).idp.settings;
    expect(google.scopes).toEqual(['openid', 'email', 'profile']);
    expect(google.authorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });
    expect(google.tokenEndpointAuthMethod).toBe('client_secret_post');
    const keycloak = parseAuthServiceEnvironment({
      ...minimal,
      LG_IDP_PROVIDER: 'keycloak',
      LG_IDP_GROUPS_CLAIM: 'groups',
      LG_IDP_AUTHORIZATION_PARAMS: '{"kc_idp_hint":"corp"}',
    }).idp.settings;
    expect(keycloak.groupsClaim).toBe('/groups');
    expect(keycloak.authorizationParams).toEqual({ kc_idp_hint: 'corp' });
    const withKey = parseAuthServiceEnvironment({
      ...minimal,
      LG_IDP_CLIENT_SECRET_ARN: undefined,
      LG_IDP_TOKEN_AUTH_METHOD: 'private_key_jwt',
      LG_IDP_CLIENT_KEY_SECRET_ARN: 'arn:key',
    }).idp;
    expect(withKey).toMatchObject({ clientKeySecretId: 'arn:key', clientSecretId: undefined });
  });

  test('the client secret is plain text or {"clientSecret": ...}', () => {
    expect(parseClientSecret('s3cret')).toBe('s3cret');
    expect(parseClientSecret('{"clientSecret":"abc"}')).toBe('abc');
    expect(parseClientSecret('{"client_secret":"abc"}')).toBe('abc');
    expect(() => parseClientSecret('{"other":1}')).toThrow(/no "clientSecret" string/);
    expect(() => parseClientSecret('  ')).toThrow(/empty/);
  });
});
