/**
 * Test harness of the auth service: a test CA, the real OpenID provider (oidc-provider
 * in a child process, HTTPS), key sets in the Secrets Manager model, the service served
 * by its local adapter, a cookie-jar HTTP client and the captured log lines.
 */
import 'reflect-metadata'; // @peculiar/x509 (dev/pki.ts) needs it loaded first
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import type { CustomFetch } from 'openid-client';
import {
  SECRET_FORMAT_VERSION,
  SECRET_KINDS,
  type CookieKeySetSecret,
  type SigningKeySetSecret,
  type SigningKeyStatus,
  type StoredJwk,
} from '../../../core/key-material';
import type { AuthServiceEnvironment } from '../../../core/auth/environment';
import { fetchTrustingCa, startLocalAuthService, type ProxyHandler, type RunningLocalAuthService } from '../../../dev/auth-local-server';
import { SecretsManagerSource } from '../../../lambda/shared/secrets';
import { InMemorySessionRecordStore } from '../../../lambda/auth/session-store';
import { startDevIdp, type DevIdpQuirks, type DevIdpStats, type RunningDevIdp } from '../../../dev/stand-ins/idp/dev-idp';
import { DynamoDbModel, gatewayTableModel, installDynamoDbFake } from '../../../dev/aws/dynamodb-model';
import { createCa, issueCertificate, type TestCa } from '../../../dev/pki';
import { freePort } from '../../../dev/ports';
import { installSecretsManagerFake, SecretsManagerModel } from '../../../dev/aws/secrets-manager-model';
import { CookieJar, idpLogin, request, testPassword, type HttpAnswer } from '../../../dev/login-client';

export { CookieJar, idpLogin, request, testPassword, type HttpAnswer };

export type TestUsers = Record<string, Record<string, unknown>>;

export interface RunningIdp {
  readonly issuer: string;
  /** `https://127.0.0.1:<port>` (the issuer has a path for an Entra profile). */
  readonly origin: string;
  setUser(id: string, claims: Record<string, unknown>): Promise<void>;
  revoke(id: string): Promise<void>;
  delay(ms: number, paths?: string[]): Promise<void>;
  /** From now on the IdP accepts only this client secret (a rotation at the IdP); needs `quirks`. */
  rotateClientSecret(secret: string): Promise<void>;
  stats(): Promise<DevIdpStats>;
  stop(): Promise<void>;
}

/** The development IdP (dev/stand-ins/idp/dev-idp-server.mjs) with the test users and its test-only admin endpoints. */
export async function startTestIdp(options: {
  ca: TestCa;
  users: TestUsers;
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  idTokenClaims?: boolean;
  fetch: CustomFetch;
  /** Answer as one IdP does (dev/stand-ins/idp/dev-idp-quirks.mjs). @default none */
  quirks?: DevIdpQuirks;
}): Promise<RunningIdp> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-idp-'));
  const cert = await issueCertificate(options.ca, { commonName: '127.0.0.1', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usages: ['server'] });
  writeFileSync(path.join(dir, 'cert.pem'), cert.cert);
  writeFileSync(path.join(dir, 'key.pem'), cert.key, { mode: 0o600 });
  let idp: RunningDevIdp;
  try {
    idp = await startDevIdp({
      workDir: dir,
      certFile: path.join(dir, 'cert.pem'),
      keyFile: path.join(dir, 'key.pem'),
      caPem: options.ca.cert,
      accounts: Object.entries(options.users).map(([username, claims]) => ({ username, password: testPassword(username), claims })),
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      redirectUris: options.redirectUris,
      postLogoutRedirectUris: options.postLogoutRedirectUris,
      // Unlike `npm run local`, the tests' IdP makes the gateway read userinfo unless told otherwise.
      idTokenClaims: options.idTokenClaims ?? false,
      testAdminEndpoints: true,
      quirks: options.quirks,
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const admin = async (adminPath: string, body: unknown) => {
    const answer = await options.fetch(`${idp.origin}/test-admin${adminPath}`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    } as unknown as Parameters<CustomFetch>[1]);
    if (answer.status !== 200) throw new Error(`IdP test-admin ${adminPath} answered ${answer.status}: ${await answer.text()}`);
  };
  return {
    issuer: idp.issuer,
    origin: idp.origin,
    setUser: (id, claims) => admin(`/users/${id}`, claims),
    revoke: (id) => admin(`/revoke/${id}`, {}),
    delay: (ms, paths = ['/']) => admin('/delay', { ms, paths }),
    rotateClientSecret: (secret) => admin('/quirks/client-secret', { clientSecret: secret }),
    stats: () => idp.stats(),
    stop: async () => {
      await idp.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function generateSigningKeySet(alg: 'ES256' | 'RS256' = 'ES256'): Promise<SigningKeySetSecret> {
  const statuses: SigningKeyStatus[] = ['previous', 'current', 'next'];
  const keys = [];
  for (const status of statuses) {
    const pair = await generateKeyPair(alg, { extractable: true });
    const kid = `${status}-${randomBytes(4).toString('hex')}`;
    keys.push({
      kid,
      status,
      createdAt: new Date().toISOString(),
      publicJwk: { ...(await exportJWK(pair.publicKey)), kid } as StoredJwk,
      privateJwk: { ...(await exportJWK(pair.privateKey)), kid } as StoredJwk,
    });
  }
  return { kind: SECRET_KINDS.signingKeys, version: SECRET_FORMAT_VERSION, alg, keys };
}

export function generateCookieKeySet(): CookieKeySetSecret {
  const key = (status: 'current' | 'previous') => ({
    kid: `cookie-${status}-${randomBytes(4).toString('hex')}`,
    status,
    createdAt: new Date().toISOString(),
    k: randomBytes(32).toString('base64url'),
  });
  return { kind: SECRET_KINDS.cookieKeys, version: SECRET_FORMAT_VERSION, keys: [key('current'), key('previous')] };
}

export interface CapturedLogs {
  readonly lines: string[];
  write(line: string): void;
  audits(): Record<string, unknown>[];
}

export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  return {
    lines,
    write: (line) => void lines.push(line),
    audits: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.type === 'audit'),
  };
}

export const CLIENT_ID = 'looker-gateway';
export const CLIENT_SECRET = `client-secret-${randomBytes(12).toString('hex')}`;

export const DEFAULT_RULES = {
  rules: [
    { name: 'analysts', match: { groups: ['looker-analysts'] }, grant: { roles: ['Viewer'], groups: ['Analysts'], attributes: { team: 'analytics' } } },
    { name: 'admins', match: { groups: ['looker-admin*'] }, grant: { roles: ['Admin'], groups: ['Admins'] } },
    { name: 'emea', match: { emailDomains: ['emea.example.com'] }, grant: { attributes: { region: 'emea' } } },
  ],
};

export const DEFAULT_USERS: TestUsers = {
  alice: { email: 'alice@emea.example.com', email_verified: true, name: 'Alice Analyst', groups: ['looker-analysts', 'everyone'] },
  bob: { email: 'bob@example.com', email_verified: true, name: 'Bob Admin', groups: ['looker-admins'] },
  mallory: { email: 'mallory@elsewhere.test', email_verified: true, name: 'Mallory', groups: ['everyone'] },
  greedy: { email: 'greedy@example.com', email_verified: true, name: 'Greedy', groups: ['looker-analysts', 'looker-admins'] },
};

export interface Harness {
  readonly ca: TestCa;
  readonly idp: RunningIdp;
  readonly gateway: RunningLocalAuthService;
  readonly gatewayUrl: string;
  readonly fetch: CustomFetch;
  readonly logs: CapturedLogs;
  readonly model: SecretsManagerModel;
  readonly secretArns: { signing: string; cookie: string; clientSecret: string };
  readonly signingKeys: SigningKeySetSecret;
  readonly cookieKeys: CookieKeySetSecret;
  readonly environment: AuthServiceEnvironment;
  /** The DynamoDB model holding the revocation table, when `revocationTable` was asked for. */
  readonly dynamo?: DynamoDbModel;
  /** Starts one more auth service on the same IdP and secrets with changed variables (or a given handler). */
  startAnother(
    overrides: Partial<Record<keyof AuthServiceEnvironment, string>>,
    handler?: ProxyHandler,
  ): Promise<RunningLocalAuthService & { logs: CapturedLogs }>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  readonly rules?: unknown;
  readonly users?: TestUsers;
  readonly environment?: Partial<Record<keyof AuthServiceEnvironment, string>>;
  readonly idTokenClaims?: boolean;
  /** Make the IdP answer as one IdP does (dev/stand-ins/idp/dev-idp-quirks.mjs). @default none */
  readonly quirks?: DevIdpQuirks;
  /** Serve this handler (e.g. the bundle's) instead of the service from source. */
  readonly handler?: (env: AuthServiceEnvironment, caPem: string) => Promise<ProxyHandler>;
  /**
   * Keep revocations in a DynamoDB table (the model, through the SDK fake) named by
   * LG_REVOCATION_TABLE_NAME, as the construct deploys it.
   * @default false - in the service's memory
   */
  readonly revocationTable?: boolean;
  /** Clock of the services from source (and of the DynamoDB model), epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /**
   * The fetch the services from source call the IdP (and group sources) with, given the
   * harness's fetch that trusts the test CA and the IdP (to map a public host name to the
   * emulation, as DNS would).
   * @default - that fetch
   */
  readonly wrapFetch?: (fetchTrustingTestCa: CustomFetch, idp: RunningIdp) => CustomFetch;
  /**
   * Runs once the IdP and the AWS models are up, before the service starts: start stand-ins,
   * store secrets in the Secrets Manager model; returns variables to add (or, undefined, to
   * remove) and what to stop at the end.
   */
  readonly prepare?: (context: PrepareContext) => Promise<{ environment?: Partial<Record<keyof AuthServiceEnvironment, string>>; stop?: () => Promise<void> }>;
}

export interface PrepareContext {
  readonly ca: TestCa;
  readonly idp: RunningIdp;
  readonly model: SecretsManagerModel;
  readonly fetch: CustomFetch;
  readonly gatewayUrl: string;
}

export const REVOCATION_TABLE_NAME = 'lg-test-session-revocations';

/** The variables with a value: `undefined` in an override removes a default (a Lambda environment has no undefined values). */
function withoutUnset(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const ca = await createCa();
  const fetchFn = await fetchTrustingCa(ca.cert);
  const port = await freePort();
  const gatewayUrl = `http://127.0.0.1:${port}`;
  const idp = await startTestIdp({
    ca,
    users: options.users ?? DEFAULT_USERS,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUris: [`${gatewayUrl}/oauth2/callback`],
    postLogoutRedirectUris: [`${gatewayUrl}/oauth2/logout?signed_out=1`],
    idTokenClaims: options.idTokenClaims,
    fetch: fetchFn,
    quirks: options.quirks,
  });
  const model = new SecretsManagerModel();
  const mock = installSecretsManagerFake(model);
  const dynamo = options.revocationTable ? gatewayTableModel(REVOCATION_TABLE_NAME, options.now ?? Date.now) : undefined;
  const dynamoMock = dynamo ? installDynamoDbFake(dynamo) : undefined;
  let prepared: Awaited<ReturnType<NonNullable<HarnessOptions['prepare']>>> = {};
  try {
    if (options.prepare) prepared = await options.prepare({ ca, idp, model, fetch: fetchFn, gatewayUrl });
  } catch (error) {
    mock.restore();
    await idp.stop();
    throw error;
  }
  const signingKeys = await generateSigningKeySet();
  const cookieKeys = generateCookieKeySet();
  const secretArns = {
    signing: model.createSecret({ Name: 'lg/session-signing-keys', SecretString: JSON.stringify(signingKeys) }).ARN,
    cookie: model.createSecret({ Name: 'lg/cookie-keys', SecretString: JSON.stringify(cookieKeys) }).ARN,
    clientSecret: model.createSecret({ Name: 'lg/idp-client-secret', SecretString: JSON.stringify({ clientSecret: CLIENT_SECRET }) }).ARN,
  };
  const environment: AuthServiceEnvironment = withoutUnset({
    LG_IDP_ISSUER: idp.issuer,
    LG_IDP_CLIENT_ID: CLIENT_ID,
    LG_IDP_CLIENT_SECRET_ARN: secretArns.clientSecret,
    LG_IDP_SCOPES: 'openid email profile groups org offline_access',
    LG_IDP_TIMEOUT_MS: '2000',
    LG_PUBLIC_BASE_URL: gatewayUrl,
    LG_SESSION_ISSUER: `${gatewayUrl}/oauth2`,
    LG_SESSION_AUDIENCE: 'looker-gateway',
    LG_MAPPING_RULES: JSON.stringify(options.rules ?? DEFAULT_RULES),
    LG_SIGNING_KEYS_SECRET_ARN: secretArns.signing,
    LG_COOKIE_KEYS_SECRET_ARN: secretArns.cookie,
    ...(dynamo ? { LG_REVOCATION_TABLE_NAME: REVOCATION_TABLE_NAME } : {}),
    ...(options.environment ?? {}),
    ...(prepared.environment ?? {}),
  }) as unknown as AuthServiceEnvironment;
  // Without the table, the services from source share one in-memory record store: a
  // session made at one instance refreshes at another, as the deployed table allows.
  const sessionStore = dynamo ? undefined : new InMemorySessionRecordStore();
  const serviceFetch = options.wrapFetch ? options.wrapFetch(fetchFn, idp) : fetchFn;
  const logs = captureLogs();
  const started: RunningLocalAuthService[] = [];
  const gateway = await startLocalAuthService({
    port,
    environment,
    secretsSource: new SecretsManagerSource(),
    idpFetch: serviceFetch,
    logSink: logs,
    now: options.now,
    sessionStore,
    handler: options.handler ? await options.handler(environment, ca.cert) : undefined,
  });
  started.push(gateway);
  return {
    ca,
    idp,
    gateway,
    gatewayUrl,
    fetch: fetchFn,
    logs,
    model,
    secretArns,
    signingKeys,
    cookieKeys,
    environment,
    dynamo,
    startAnother: async (overrides, handler) => {
      const anotherLogs = captureLogs();
      const another = await startLocalAuthService({
        environment: withoutUnset({ ...environment, ...overrides }),
        secretsSource: new SecretsManagerSource(),
        idpFetch: serviceFetch,
        logSink: anotherLogs,
        now: options.now,
        sessionStore,
        handler,
      });
      started.push(another);
      return { ...another, logs: anotherLogs };
    },
    stop: async () => {
      for (const server of started) await server.stop();
      await prepared.stop?.();
      await idp.stop();
      mock.restore();
      dynamoMock?.restore();
    },
  };
}

/** Drives a full login: start -> IdP authorize -> interaction form -> callback. Returns the callback answer. */
export async function login(
  h: Pick<Harness, 'gatewayUrl' | 'fetch'>,
  jar: CookieJar,
  user: string,
  rd = '/',
): Promise<{ callback: HttpAnswer; callbackUrl: string }> {
  const start = await request(h.fetch, jar, `${h.gatewayUrl}/oauth2/start?rd=${encodeURIComponent(rd)}`, { headers: { accept: 'text/html' } });
  if (start.status !== 302 || !start.location) throw new Error(`start answered ${start.status}: ${start.body}`);
  const callbackUrl = await idpLogin(h.fetch, jar, start.location, user);
  const callback = await request(h.fetch, jar, callbackUrl, { headers: { accept: 'text/html' } });
  return { callback, callbackUrl };
}

/**
 * A full login at another service of the harness (`startAnother`, on another port than
 * the redirect URI registered at the IdP): the IdP's redirect to the callback is replayed
 * at `base`. Returns the callback answer.
 */
export async function loginAt(h: Pick<Harness, 'fetch'>, base: string, jar: CookieJar, user: string): Promise<HttpAnswer> {
  const start = await request(h.fetch, jar, `${base}/oauth2/start`);
  if (start.status !== 302 || !start.location) throw new Error(`start at ${base} answered ${start.status}: ${start.body}`);
  const callbackUrl = new URL(await idpLogin(h.fetch, jar, start.location, user));
  return request(h.fetch, jar, `${base}${callbackUrl.pathname}${callbackUrl.search}`);
}

/** Posts the dev IdP's logout confirmation form (what its page's script, or the user, submits). */
export async function submitIdpLogoutForm(fetchFn: CustomFetch, jar: CookieJar, page: HttpAnswer, pageUrl: string): Promise<HttpAnswer> {
  const form =
    /<form[^>]*id="op\.logoutForm"[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(page.body) ??
    /<form[^>]*action="([^"]+)"[^>]*id="op\.logoutForm"[^>]*>([\s\S]*?)<\/form>/.exec(page.body);
  if (!form) throw new Error(`no logout form in the IdP page: ${page.body.slice(0, 300)}`);
  const fields = new URLSearchParams();
  for (const input of form[2].matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"[^>]*>/g)) fields.set(input[1], input[2]);
  fields.set('logout', 'yes');
  return request(fetchFn, jar, new URL(form[1], pageUrl).href, {
    method: 'POST',
    body: fields.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

export interface IdpLogoutWalk {
  /** Where the IdP sent the browser back to (the post-logout redirect), or where it stopped. */
  readonly endedAt: string;
  /** The IdP asked which account to sign out (no id_token_hint: Entra, Keycloak, Ping). */
  readonly askedWhichAccount: boolean;
  /** The IdP refused the logout request (Okta without id_token_hint: 400). */
  readonly refusedWith?: number;
}

/**
 * From the gateway's logout redirect through the IdP's pages, as a browser goes: the
 * dev IdP's sign-out page posts its form by script (submitted here), a confirmation page
 * that asks which account is recorded and then confirmed as the user would.
 */
export async function followIdpLogout(fetchFn: CustomFetch, jar: CookieJar, location: string, gatewayUrl: string): Promise<IdpLogoutWalk> {
  let at = location;
  let askedWhichAccount = false;
  for (let hops = 0; hops < 10; hops += 1) {
    if (at.startsWith(gatewayUrl)) return { endedAt: at, askedWhichAccount };
    let page = await request(fetchFn, jar, at);
    if (page.status >= 400) return { endedAt: at, askedWhichAccount, refusedWith: page.status };
    if (page.status === 200 && page.body.includes('op.logoutForm')) {
      if (page.body.includes('Pick an account to sign out')) askedWhichAccount = true;
      page = await submitIdpLogoutForm(fetchFn, jar, page, at);
    }
    if (!page.location) return { endedAt: at, askedWhichAccount, refusedWith: page.status >= 400 ? page.status : undefined };
    at = page.location;
  }
  throw new Error(`too many redirects in the IdP's logout (last at ${at})`);
}

/**
 * A silent authorization request (prompt=none, OpenID Connect Core 3.1.2.1) with the
 * browser's IdP cookies: whether the IdP session survived. `signed-in`: the IdP would sign
 * the user in without a password; otherwise the error it answered (`login_required`: its
 * session ended).
 */
export async function idpSessionState(fetchFn: CustomFetch, jar: CookieJar, issuer: string, clientId: string, redirectUri: string): Promise<string> {
  const discovery = JSON.parse((await request(fetchFn, new CookieJar(), `${issuer}/.well-known/openid-configuration`)).body) as {
    authorization_endpoint: string;
  };
  const url = new URL(discovery.authorization_endpoint);
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  for (const [name, value] of Object.entries({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid',
    prompt: 'none',
    state: 'silent',
    nonce: 'silent',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  })) {
    url.searchParams.set(name, value);
  }
  let at = url.href;
  for (let hops = 0; hops < 10; hops += 1) {
    const answer = await request(fetchFn, jar, at);
    if (!answer.location) return `no-redirect:${answer.status}`;
    if (answer.location.startsWith(redirectUri.split('?')[0])) {
      const back = new URL(answer.location);
      if (back.searchParams.get('code')) return 'signed-in';
      return back.searchParams.get('error') ?? 'no-code';
    }
    at = answer.location;
  }
  return 'too-many-redirects';
}
