/**
 * The whole gateway on 127.0.0.1 with every part a process a fault can act on, for the
 * resilience suite (test/resilience) and its benchmark (bench/resilience.ts):
 *
 *   dev IdP (oidc-provider, dev/stand-ins/idp/dev-idp-server.mjs) child process
 *   auth service: the esbuild bundle behind an API Gateway model  child process (auth-process.ts)
 *     reading its keys through the AWS SDK from a Secrets Manager endpoint (the model, here)
 *   two Looker stand-in nodes                                    child processes (looker-process.ts)
 *   two HAProxy 3.0 instances, master-worker with a master socket, running the config
 *     core/haproxy renders, behind an "NLB" that is the load driver's choice of instance
 *
 * (Size: one start-up sequence whose parts depend on each other's ports, keys and files, and
 * the handle the faults act on; the faults, the load and the processes are files of their own.)
 *
 * The sessions are the auth service's own: users log in through the gateway at the dev IdP
 * (authorization code flow, the IdP's login form), and their sessions are refreshed inline
 * by HAProxy through the auth service, which redeems the IdP refresh token. Time is the
 * real clock: sessions are short (20 s by default) so that refreshes happen within seconds.
 */
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CustomFetch } from 'openid-client';
import { AUTH_PATHS, REFRESH_COOKIE, SESSION_COOKIE, ASSERTION_COOKIE } from '../../core/session-contract';
import { GatewayConfigOptions, renderGatewayConfig, RenderedGatewayConfig } from '../../core/haproxy';
import { adminSocket, PROXY_NAMES } from '../../core/haproxy/names';
import type { CookieKeySetSecret, SigningKeySetSecret } from '../../core/key-material';
import { REPO_ROOT } from '../repo';
import { fetchTrustingCa } from '../auth-local-server';
import { builtAssetFile } from '../../scripts/bundle-lambdas';
import { startDevIdp, RunningDevIdp } from '../stand-ins/idp/dev-idp';
import { generateCookieKeySet, generateSigningKeySet, verificationKeysOf } from '../keys';
import { ManagedProcess, startProcess } from '../processes';
import { startHaproxy, RunningHaproxy } from '../haproxy';
import { freePorts } from '../ports';
import { issueCertificate, Pem } from '../pki';
import { startSecretsManagerEndpoint, SecretsManagerEndpoint } from '../aws/secrets-manager-endpoint';
import { SecretsManagerModel } from '../aws/secrets-manager-model';
import { AUDIENCE, AUTH_HOST, baseGatewayOptions, createTestPki, GATEWAY_HOST, ISSUER, TestPki, writeRenderedFiles } from '../gateway-env';
import { GatewayClient, GatewayResponse } from '../proxy-client';
import { CookieJar, idpLogin, testPassword } from '../login-client';
import type { ApiGatewayMode, AuthProcessSettings } from './auth-process';
import type { LookerProcessSettings } from './looker-process';
import { masterCli, showStat } from './master-cli';

export interface ResilienceRigOptions {
  /** IdP accounts `user-0` ... (one per load connection, plus the login trickle's). @default 40 */
  readonly users?: number;
  /** @default 20 */
  readonly sessionTtlSeconds?: number;
  /** @default 8 */
  readonly refreshWindowSeconds?: number;
  /** The auth service's timeout on IdP calls (LG_IDP_TIMEOUT_MS). @default 5000 (the service's default) */
  readonly idpTimeoutMs?: number;
  /** How long the auth service caches its keys (LG_SECRETS_CACHE_SECONDS; 10 is its minimum). @default 10 */
  readonly secretsCacheSeconds?: number;
  /** Where the rig's temporary folder goes. @default - the OS temporary folder */
  readonly tempParent?: string;
}

/** One HAProxy instance of the two. */
export interface GatewayInstance {
  readonly name: string;
  readonly port: number;
  readonly healthPort: number;
  readonly dir: string;
  readonly masterSocket: string;
  readonly adminSocket: string;
  running(): RunningHaproxy | undefined;
}

export interface ProcessHandle {
  readonly name: string;
  /** The process now (a restart replaces it). */
  current(): ManagedProcess;
  /** Starts it again on the same port (after a kill). */
  restart(): Promise<void>;
}

export interface ResilienceRig {
  readonly dir: string;
  readonly pki: TestPki;
  readonly gateways: readonly GatewayInstance[];
  readonly sessionTtlSeconds: number;
  readonly refreshWindowSeconds: number;
  readonly idpTimeoutMs: number;
  readonly secretsCacheSeconds: number;
  readonly idp: ProcessHandle & { readonly issuer: string };
  readonly auth: ProcessHandle & { readonly port: number; setMode(mode: ApiGatewayMode, delayMs?: number): Promise<void>; lines(): string[] };
  readonly looker: ReadonlyArray<ProcessHandle & { readonly port: number; kill(): Promise<void> }>;
  /** The model behind the auth service's Secrets Manager calls. */
  readonly secrets: SecretsManagerModel;
  readonly secretIds: { readonly signing: string; readonly cookie: string };
  /** The key material the gateways run with now. */
  material(): RigMaterial;
  /** Ports of the gateway instances that run now (what the NLB would route new connections to). */
  livePorts(): number[];
  /** A client of one gateway instance, as a browser behind `sourceAddress` reaches it through the NLB. */
  client(port: number, sourceAddress: string, keepAlive?: boolean): GatewayClient;
  /** Logs `user` in through the gateway (start, the IdP's form, callback); returns the cookies it set. */
  login(user: string, sourceAddress: string, port?: number): Promise<LoginOutcome>;
  /**
   * The first half of a login: start at the gateway and the IdP's pages, up to the redirect
   * back to the callback; `finish()` sends the callback through the gateway.
   */
  beginLogin(user: string, sourceAddress: string, port?: number): Promise<{ finish(): Promise<{ status: number; reason?: string }> }>;
  /**
   * A browser navigation with `cookies`, following the gateway's redirects (not the IdP's) up
   * to 5 hops: what a user sees, and how many pages it took.
   */
  followNavigation(
    path: string,
    cookies: Record<string, string>,
    sourceAddress: string,
    port?: number,
  ): Promise<{ hops: string[]; final: { status: number; reason?: string; location?: string } }>;
  /** Re-renders both configs with `material` and writes the files that changed atomically, as key-sync does; no reload. */
  install(material: RigMaterial): void;
  /** `reload` on the master socket of instance `index` (a seamless reload, `haproxy -sf` by the master). */
  reload(index: number): Promise<string>;
  /** Stops instance `index` (its connections drop) and starts it again on the same ports. */
  restart(index: number): Promise<void>;
  /** HAProxy's access-log lines (JSON), both instances. */
  accessLog(): Record<string, unknown>[];
  stop(): Promise<void>;
}

export interface RigMaterial {
  readonly signing: SigningKeySetSecret;
  readonly cookie: CookieKeySetSecret;
  readonly frontend: Pem;
  readonly backendClient: Pem;
}

export interface LoginOutcome {
  /** The status of the last answer of the walk (302 with cookies when it worked). */
  readonly status: number;
  readonly cookies: Record<string, string>;
  /** What went wrong, when it did. */
  readonly problem?: string;
  readonly answer?: GatewayResponse;
}

const USERS_DEFAULT = 40;
const MAPPING_RULES = { rules: [{ name: 'everyone', match: { groups: ['everyone'] }, grant: { roles: ['Viewer'], groups: ['Analysts'] } }] };
const READY_TIMEOUT_MS = 30_000;

/** Node with tsx, as `npm run local` runs TypeScript. */
function tsNode(): { file: string; args: string[] } {
  return { file: process.execPath, args: ['--import', 'tsx'] };
}

function writeAtomically(file: string, content: string, mode: number): boolean {
  try {
    if (readFileSync(file, 'utf8') === content) return false;
  } catch {
    // a new file
  }
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, file);
  return true;
}

export async function startResilienceRig(options: ResilienceRigOptions = {}): Promise<ResilienceRig> {
  const sessionTtlSeconds = options.sessionTtlSeconds ?? 20;
  const refreshWindowSeconds = options.refreshWindowSeconds ?? 8;
  const idpTimeoutMs = options.idpTimeoutMs ?? 5000;
  const secretsCacheSeconds = options.secretsCacheSeconds ?? 10;
  const dir = mkdtempSync(path.join(options.tempParent ?? tmpdir(), 'lg-resilience-'));
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const pki = await createTestPki();
    const idpCert = await issueCertificate(pki.ca, { commonName: '127.0.0.1', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usages: ['server'] });
    writeFileSync(path.join(dir, 'ca.pem'), pki.ca.cert);
    writeFileSync(path.join(dir, 'idp-cert.pem'), `${idpCert.cert}\n`);
    writeFileSync(path.join(dir, 'idp-key.pem'), idpCert.key, { mode: 0o600 });
    const [idpPort, authPort, looker1, looker2, gw1, health1, metrics1, gw2, health2, metrics2] = await freePorts(10);

    // The dev IdP, on a fixed port so that it can be started again where the auth service expects it.
    const clientId = 'looker-gateway';
    const clientSecret = randomBytes(24).toString('base64url');
    const users = Array.from({ length: options.users ?? USERS_DEFAULT }, (_, i) => `user-${i}`);
    const idpOptions = {
      workDir: dir,
      certFile: path.join(dir, 'idp-cert.pem'),
      keyFile: path.join(dir, 'idp-key.pem'),
      caPem: pki.ca.cert,
      accounts: users.map((username) => ({
        username,
        password: testPassword(username),
        claims: { email: `${username}@example.com`, email_verified: true, name: username, groups: ['everyone'] },
      })),
      clientId,
      clientSecret,
      redirectUris: [`https://${GATEWAY_HOST}${AUTH_PATHS.callback}`],
      postLogoutRedirectUris: [`https://${GATEWAY_HOST}${AUTH_PATHS.logout}?signed_out=1`],
      port: idpPort,
      idTokenClaims: true,
    };
    let idp: RunningDevIdp = await startDevIdp(idpOptions);
    stops.push(() => idp.stop());

    // Secrets, as the auth service reads them in AWS.
    const secrets = new SecretsManagerModel();
    const signing = await generateSigningKeySet('ES256');
    const cookie = generateCookieKeySet();
    const secretIds = {
      signing: secrets.createSecret({ Name: 'lg/session-signing-keys', SecretString: JSON.stringify(signing) }).ARN,
      cookie: secrets.createSecret({ Name: 'lg/cookie-keys', SecretString: JSON.stringify(cookie) }).ARN,
      clientSecret: secrets.createSecret({ Name: 'lg/idp-client-secret', SecretString: JSON.stringify({ clientSecret }) }).ARN,
    };
    const endpoint: SecretsManagerEndpoint = await startSecretsManagerEndpoint(secrets);
    stops.push(() => endpoint.close());

    // The auth service: the built asset the construct deploys (npm run build).
    const authSettings: AuthProcessSettings = {
      bundleFile: builtAssetFile('auth'),
      port: authPort,
      cert: `${pki.auth.cert}\n`,
      key: pki.auth.key,
      environment: {
        LG_IDP_ISSUER: idp.issuer,
        LG_IDP_CLIENT_ID: clientId,
        LG_IDP_CLIENT_SECRET_ARN: secretIds.clientSecret,
        LG_IDP_SCOPES: 'openid email profile offline_access',
        LG_IDP_TIMEOUT_MS: String(idpTimeoutMs),
        LG_PUBLIC_BASE_URL: `https://${GATEWAY_HOST}`,
        LG_SESSION_ISSUER: ISSUER,
        LG_SESSION_AUDIENCE: AUDIENCE,
        LG_SESSION_TTL_SECONDS: String(sessionTtlSeconds),
        LG_REFRESH_WINDOW_SECONDS: String(refreshWindowSeconds),
        LG_CLOCK_SKEW_SECONDS: '1',
        LG_MAPPING_RULES: JSON.stringify(MAPPING_RULES),
        LG_SIGNING_KEYS_SECRET_ARN: secretIds.signing,
        LG_COOKIE_KEYS_SECRET_ARN: secretIds.cookie,
        LG_SECRETS_CACHE_SECONDS: String(secretsCacheSeconds),
        AWS_REGION: secrets.region,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint.url,
        AWS_ACCESS_KEY_ID: 'AKIDRESILIENCE',
        AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
      },
    };
    writeFileSync(path.join(dir, 'auth.json'), JSON.stringify(authSettings), { mode: 0o600 });
    const authLines: string[] = [];
    const startAuth = async (): Promise<ManagedProcess> => {
      const node = tsNode();
      const child = startProcess('auth service', node.file, [...node.args, path.join(__dirname, 'auth-process.ts'), path.join(dir, 'auth.json')], {
        cwd: REPO_ROOT,
        // The Lambda runtime's way to trust a private CA (the dev IdP's).
        env: { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') },
      });
      let pending = '';
      child.child.stdout?.on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) if (line.startsWith('{')) authLines.push(line);
        // Keep the newest lines only: a soak writes many.
        if (authLines.length > 200_000) authLines.splice(0, 100_000);
      });
      const line = await child
        .waitForLine((l) => l.startsWith('{"ready":true'), READY_TIMEOUT_MS)
        .catch(async (error: unknown) => {
          await child.stop();
          throw error;
        });
      (child as ManagedProcess & { controlPort?: number }).controlPort = (JSON.parse(line) as { controlPort: number }).controlPort;
      return child;
    };
    let auth = await startAuth();
    stops.push(() => auth.stop());
    const caFetch: CustomFetch = await fetchTrustingCa(pki.ca.cert);

    // Two Looker nodes.
    const lookerNodes = [looker1, looker2].map((port, i) => {
      const name = `looker-${i + 1}`;
      const settings: LookerProcessSettings = { name, port, cert: `${pki.looker.cert}\n`, key: pki.looker.key, clientCa: pki.ca.cert };
      const file = path.join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(settings), { mode: 0o600 });
      let current: ManagedProcess | undefined;
      const start = async () => {
        const node = tsNode();
        const child = startProcess(name, node.file, [...node.args, path.join(__dirname, 'looker-process.ts'), file], { cwd: REPO_ROOT });
        await child
          .waitForLine((l) => l.startsWith('{"ready":true'), READY_TIMEOUT_MS)
          .catch(async (error: unknown) => {
            await child.stop();
            throw error;
          });
        current = child;
      };
      return {
        name,
        port,
        start,
        kill: async () => {
          const child = current;
          if (!child) return;
          child.child.kill('SIGKILL');
          await child.exited;
        },
        restart: start,
        current: () => current!,
        stop: async () => current?.stop(),
      };
    });
    for (const node of lookerNodes) {
      await node.start();
      stops.push(() => node.stop());
    }

    // Two HAProxy instances, same configuration but ports and folders.
    let material: RigMaterial = { signing, cookie, frontend: pki.gatewayServer, backendClient: pki.gatewayBackendClient };
    const instances = [
      { name: 'gateway-a', port: gw1, health: health1, metrics: metrics1 },
      { name: 'gateway-b', port: gw2, health: health2, metrics: metrics2 },
    ].map((instance) => {
      const instanceDir = path.join(dir, instance.name);
      mkdirSync(instanceDir, { recursive: true });
      return {
        ...instance,
        dir: instanceDir,
        masterSocket: path.join(instanceDir, 'master.sock'),
        running: undefined as RunningHaproxy | undefined,
        logs: [] as string[],
      };
    });
    const renderFor = (instance: (typeof instances)[number], m: RigMaterial): RenderedGatewayConfig => {
      const base = baseGatewayOptions({
        dir: instance.dir,
        ports: { gateway: instance.port, health: instance.health, metrics: instance.metrics },
        lookerPorts: lookerNodes.map((n) => n.port),
        authPort,
        pki: { ...pki, gatewayServer: m.frontend, gatewayBackendClient: m.backendClient },
        sessionKeys: [...verificationKeysOf(m.signing).keys],
      });
      const rigOptions: GatewayConfigOptions = {
        ...base,
        // Time is compressed: a 12-20 s session refreshes several times a minute, where a
        // 10-minute one refreshes once in ten; the per-session limit is scaled to match.
        refresh: { perSessionPerMinute: 60 },
        session: { ...base.session, algorithm: m.signing.alg, clockSkewSeconds: 1, refreshWindowSeconds, attributeNames: [] },
        // The private API's host name, no stage prefix: the local adapter serves the paths as they are.
        authService: { host: AUTH_HOST, addresses: ['127.0.0.1'], port: authPort },
      };
      return renderGatewayConfig(rigOptions);
    };
    const startInstance = async (instance: (typeof instances)[number]) => {
      const rendered = renderFor(instance, material);
      const running = await startHaproxy(rendered.configFile, [instance.port, instance.health], ['-S', instance.masterSocket]);
      instance.running = running;
      let pending = '';
      running.process.stdout?.on('data', (chunk: Buffer | string) => {
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) if (line.startsWith('{')) instance.logs.push(line);
        if (instance.logs.length > 200_000) instance.logs.splice(0, 100_000);
      });
    };
    for (const instance of instances) {
      writeRenderedFiles(instance.dir, renderFor(instance, material));
      await startInstance(instance);
      stops.push(async () => instance.running?.stop());
    }
    await waitForLookerServersUp(
      instances.map((i) => adminSocket(path.join(i.dir, 'run'))),
      lookerNodes.length,
    );

    const client = (port: number, sourceAddress: string, keepAlive = false) =>
      new GatewayClient({ port, ca: pki.ca.cert, serverName: GATEWAY_HOST, sourceAddress, keepAlive });

    const rig: ResilienceRig = {
      dir,
      pki,
      gateways: instances.map((instance) => ({
        name: instance.name,
        port: instance.port,
        healthPort: instance.health,
        dir: instance.dir,
        masterSocket: instance.masterSocket,
        adminSocket: adminSocket(path.join(instance.dir, 'run')),
        running: () => instance.running,
      })),
      sessionTtlSeconds,
      refreshWindowSeconds,
      idpTimeoutMs,
      secretsCacheSeconds,
      idp: {
        name: 'dev IdP',
        issuer: idp.issuer,
        current: () => idp.process,
        restart: async () => {
          idp = await startDevIdp(idpOptions);
        },
      },
      auth: {
        name: 'auth service',
        port: authPort,
        current: () => auth,
        restart: async () => {
          auth = await startAuth();
        },
        lines: () => authLines,
        setMode: async (mode, delayMs = 0) => {
          const controlPort = (auth as ManagedProcess & { controlPort?: number }).controlPort;
          const answer = await fetch(`http://127.0.0.1:${controlPort}/mode`, { method: 'POST', body: JSON.stringify({ mode, delayMs }) });
          if (answer.status !== 200) throw new Error(`the auth process refused mode ${mode}: ${await answer.text()}`);
        },
      },
      looker: lookerNodes,
      secrets,
      secretIds,
      material: () => material,
      livePorts: () => instances.filter((i) => i.running && i.running.process.exitCode === null && i.running.process.signalCode === null).map((i) => i.port),
      client,
      login: async (user, sourceAddress, port = gw1) => {
        const gateway = client(port, sourceAddress);
        try {
          return await loginThrough(gateway, caFetch, user);
        } finally {
          gateway.close();
        }
      },
      beginLogin: async (user, sourceAddress, port = gw1) => {
        const gateway = client(port, sourceAddress);
        const start = await gateway.request(`${AUTH_PATHS.start}?rd=%2F`, { headers: NAVIGATION });
        const location = String(start.headers.location ?? '');
        if (start.status !== 302) throw new Error(`start answered ${start.status}: ${start.body.slice(0, 200)}`);
        const callbackUrl = new URL(await idpLogin(caFetch, new CookieJar(), location, user));
        return {
          finish: async () => {
            try {
              const answer = await gateway.request(`${callbackUrl.pathname}${callbackUrl.search}`, {
                headers: { ...NAVIGATION, cookie: cookieHeader(cookiesOf(start)) },
              });
              return { status: answer.status, reason: reasonOf(answer.body) };
            } finally {
              gateway.close();
            }
          },
        };
      },
      followNavigation: async (startPath, cookies, sourceAddress, port = gw1) => {
        const gateway = client(port, sourceAddress);
        const jar = { ...cookies };
        const hops: string[] = [];
        try {
          let at = startPath;
          for (;;) {
            const answer = await gateway.request(at, { headers: { ...NAVIGATION, cookie: cookieHeader(jar) } });
            Object.assign(jar, cookiesOf(answer));
            const location = answer.headers.location;
            const final = { status: answer.status, reason: reasonOf(answer.body), location };
            // Only the gateway's own redirects are followed: one to the IdP ends the walk (the user is at the login).
            if (answer.status < 300 || answer.status >= 400 || !location || !location.startsWith('/') || hops.length >= 5) return { hops, final };
            hops.push(location);
            at = location;
          }
        } finally {
          gateway.close();
        }
      },
      install: (next) => {
        material = next;
        for (const instance of instances) {
          const rendered = renderFor(instance, material);
          for (const file of rendered.files) writeAtomically(path.join(instance.dir, file.path), file.content, file.mode);
        }
      },
      reload: async (index) => {
        const answer = await masterCli(instances[index].masterSocket, 'reload');
        if (!/Success=1/.test(answer)) throw new Error(`the reload of ${instances[index].name} failed:\n${answer}`);
        return answer;
      },
      restart: async (index) => {
        const instance = instances[index];
        await instance.running?.stop();
        instance.running = undefined;
        await startInstance(instance);
        await waitForLookerServersUp([adminSocket(path.join(instance.dir, 'run'))], lookerNodes.length);
      },
      accessLog: () =>
        instances.flatMap((instance) =>
          instance.logs.flatMap((line) => {
            try {
              return [JSON.parse(line) as Record<string, unknown>];
            } catch {
              return [];
            }
          }),
        ),
      stop: stopAll,
    };
    return rig;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Waits until every instance's `looker` backend has `nodes` servers UP (its health checks passed). */
export async function waitForLookerServersUp(adminSockets: string[], nodes: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const socket of adminSockets) {
    for (;;) {
      const up = (await showStat(socket)).filter(
        (row) => row.pxname === PROXY_NAMES.looker && row.svname !== 'BACKEND' && row.svname !== 'FRONTEND' && row.status === 'UP',
      ).length;
      if (up >= nodes) break;
      if (Date.now() > deadline) throw new Error(`${socket}: ${up} of ${nodes} Looker servers UP after ${timeoutMs / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const NAVIGATION = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

function cookieHeader(cookies: Record<string, string>): string {
  return Object.entries(cookies)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
}

/** The reason code of an error answer: JSON `reason` (or `code`), or the error page's "Reason: <code>." line. */
export function reasonOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { reason?: unknown; code?: unknown };
    const reason = parsed.reason ?? parsed.code;
    if (typeof reason === 'string') return reason;
  } catch {
    // not JSON
  }
  return /Reason: ([\w-]+)/.exec(body)?.[1];
}

function cookiesOf(answer: GatewayResponse): Record<string, string> {
  const cookies: Record<string, string> = {};
  const lines = answer.headers['set-cookie'] ?? [];
  for (const line of Array.isArray(lines) ? lines : [lines]) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    cookies[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return cookies;
}

/** A browser's login through the gateway: start, the IdP's pages (form filled in), callback. */
export async function loginThrough(gateway: GatewayClient, idpFetch: CustomFetch, user: string): Promise<LoginOutcome> {
  const navigation = NAVIGATION;
  const start = await gateway.request(`${AUTH_PATHS.start}?rd=%2F`, { headers: navigation });
  const startCookies = cookiesOf(start);
  const location = String(start.headers.location ?? '');
  if (start.status !== 302 || !location.startsWith('https://127.0.0.1'))
    return { status: start.status, cookies: startCookies, problem: `start answered ${start.status}: ${start.body.slice(0, 200)}`, answer: start };
  const callbackUrl = new URL(await idpLogin(idpFetch, new CookieJar(), location, user));
  const callback = await gateway.request(`${callbackUrl.pathname}${callbackUrl.search}`, { headers: { ...navigation, cookie: cookieHeader(startCookies) } });
  const cookies = cookiesOf(callback);
  if (callback.status !== 302 || !cookies[SESSION_COOKIE] || !cookies[REFRESH_COOKIE]) {
    return { status: callback.status, cookies, problem: `callback answered ${callback.status}: ${callback.body.slice(0, 200)}`, answer: callback };
  }
  return {
    status: callback.status,
    cookies: {
      [SESSION_COOKIE]: cookies[SESSION_COOKIE],
      [REFRESH_COOKIE]: cookies[REFRESH_COOKIE],
      ...(cookies[ASSERTION_COOKIE] ? { [ASSERTION_COOKIE]: cookies[ASSERTION_COOKIE] } : {}),
    },
  };
}
