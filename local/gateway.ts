/**
 * The whole gateway on 127.0.0.1: the development IdP, the auth service through its
 * local adapter, HAProxy with the config core/haproxy renders, and the Looker stand-in.
 * `npm run local` (local/run.ts) and the end-to-end tests both start it from here.
 */
import { randomBytes } from 'node:crypto';
import { AUTH_PATHS } from '../core/session-contract';
import { checkLocalAuthSettings, LocalAuthSettings, startLocalAuth, RunningLocalAuth } from './auth-service';
import { DevIdpStats, devUserAccount, startDevIdp } from '../dev/stand-ins/idp/dev-idp';
import { DEV_ATTRIBUTE_NAMES, DEV_USERS } from '../dev/stand-ins/idp/dev-users';
import { createLocalFolder } from './files';
import { startLocalHaproxy } from './haproxy';
import { generateCookieKeySet, generateSigningKeySet } from '../dev/keys';
import { RunningLookerStandIn, SeenRequest, startLookerStandIn } from '../dev/stand-ins/looker/looker-stand-in';
import { configureLocalLooker, newLocalBrokerSecrets } from './looker-broker-setup';
import { createLocalPki, LOOKER_TLS_NAME, pemChain, spkiSha256Base64 } from './pki';
import { CleanupStack } from './processes';
import { assertPortFree, freePort, httpsRequest, waitUntilReady } from '../dev/readiness';

export interface LocalGatewayOptions {
  /** Port of the gateway on 127.0.0.1. @default 0 - a free port chosen by the kernel */
  readonly port?: number;
  /** Plain HTTP port on 127.0.0.1, which only redirects to the gateway's HTTPS URL. @default 0 - a free port */
  readonly httpPort?: number;
  /** Session lifetime, seconds. @default 600 (the session contract's default) */
  readonly sessionTtlSeconds?: number;
  /**
   * A session that expires within this many seconds is refreshed inline.
   * @default - 60, or a fifth of the session lifetime when that is shorter
   */
  readonly refreshWindowSeconds?: number;
  /** Folder under which the temporary folder is made. @default - the OS temporary folder */
  readonly tempParent?: string;
  /**
   * How the Looker stand-in learns who the user is: `broker`, Looker's own OpenID Connect
   * login at the gateway's broker (roles and attributes applied by Looker, as in a real
   * deployment), or `direct`, the identity headers only (for upstreams that read them).
   * @default 'broker'
   */
  readonly mode?: LocalGatewayMode;
  /** The dev IdP's test-only admin endpoints (change a user's claims while running): tests only. @default false */
  readonly idpTestAdmin?: boolean;
}

export type LocalGatewayMode = 'broker' | 'direct';

export interface LocalGateway {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** `http://127.0.0.1:<httpPort>`: redirects every request to the same path on `url`. */
  readonly httpUrl: string;
  /** The temporary folder; removed by stop(). */
  readonly folder: string;
  /** Folder with the files a user needs: ca.pem, agent.pem, agent-key.pem. */
  readonly clientFolder: string;
  /** The local CA, PEM file: trust it to reach the gateway without warnings. */
  readonly caFile: string;
  /** The machine client's ("agent") certificate and key, PEM files. */
  readonly agentCertFile: string;
  readonly agentKeyFile: string;
  /** The paths the agent certificate may use. */
  readonly agentPaths: readonly string[];
  /** base64 SHA-256 of the gateway certificate's and the CA's public keys (Chromium's --ignore-certificate-errors-spki-list). */
  readonly trustedSpkiHashes: readonly string[];
  readonly sessionTtlSeconds: number;
  readonly refreshWindowSeconds: number;
  /** Clock skew HAProxy and the auth service allow on expiry, seconds. */
  readonly clockSkewSeconds: number;
  readonly idp: {
    readonly issuer: string;
    stats(): Promise<DevIdpStats>;
    /** Merges claims into a user's at the IdP (needs `idpTestAdmin`), e.g. `{ groups: [...] }`. */
    setUser(username: string, claims: Record<string, unknown>): Promise<void>;
  };
  readonly mode: LocalGatewayMode;
  /** Requests the Looker stand-in received, newest last. */
  readonly lookerRequests: readonly SeenRequest[];
  /** The Looker stand-in (its users and OIDC configuration). */
  readonly looker: RunningLookerStandIn;
  /** HAProxy's access log lines so far (JSON, one per request). */
  haproxyLog(): string;
  /** The auth service's audit lines so far. */
  authLog(): string;
  /**
   * Resolves with a message if the dev IdP or HAProxy exits on its own (a crash, a kill
   * from outside); it never resolves when they stop through stop().
   */
  readonly unexpectedExit: Promise<string>;
  /** Stops every process and server it started and removes the temporary folder. */
  stop(): Promise<void>;
}

const SESSION_AUDIENCE = 'looker-gateway-local';
/** Every part runs on this machine's clock, so the allowed skew can be small (short sessions stay testable). */
export const LOCAL_CLOCK_SKEW_SECONDS = 1;
const DEV_CLIENT_ID = 'looker-gateway-local';

export async function startLocalGateway(options: LocalGatewayOptions = {}): Promise<LocalGateway> {
  const sessionTtlSeconds = options.sessionTtlSeconds ?? 600;
  const refreshWindowSeconds = options.refreshWindowSeconds ?? Math.min(60, Math.floor(sessionTtlSeconds / 5));
  const mode = options.mode ?? 'broker';
  validateOptions(options, sessionTtlSeconds, refreshWindowSeconds);

  if (options.port) await assertPortFree(options.port);
  if (options.httpPort) await assertPortFree(options.httpPort, '--http-port');
  const cleanup = new CleanupStack();
  const folder = createLocalFolder(options.tempParent);
  cleanup.add('remove the temporary folder', () => folder.remove());
  try {
    const port = options.port || (await freePort());
    const httpPort = options.httpPort || (await freePort());
    const url = `https://127.0.0.1:${port}`;
    const pki = await createLocalPki();

    const clientFolder = folder.folder('client');
    const caFile = folder.write('client/ca.pem', pki.ca.cert, 0o644);
    const agentCertFile = folder.write('client/agent.pem', pki.agent.cert, 0o644);
    const agentKeyFile = folder.write('client/agent-key.pem', pki.agent.key);

    const idpClientSecret = randomBytes(24).toString('base64url');
    const idp = await startDevIdp({
      workDir: folder.folder('idp'),
      certFile: folder.write('idp/cert.pem', pemChain(pki.idp.cert, pki.ca.cert)),
      keyFile: folder.write('idp/key.pem', pki.idp.key),
      caPem: pki.ca.cert,
      accounts: Object.values(DEV_USERS).map(devUserAccount),
      clientId: DEV_CLIENT_ID,
      clientSecret: idpClientSecret,
      redirectUris: [`${url}${AUTH_PATHS.callback}`],
      postLogoutRedirectUris: [`${url}${AUTH_PATHS.logout}?signed_out=1`, `${url}/`],
      testAdminEndpoints: options.idpTestAdmin ?? false,
    });
    cleanup.add('stop the dev IdP', () => idp.stop());

    // Users reach Looker at the gateway's URL: the base of Looker's OIDC redirect URI.
    // Broker mode: Looker's API on a port of its own (as the custom resource reaches it), and Looker's server-side calls to the broker trust the local CA.
    const broker = mode === 'broker' ? newLocalBrokerSecrets() : undefined;
    const looker = await startLookerStandIn({
      certPem: pemChain(pki.looker.cert, pki.ca.cert),
      keyPem: pki.looker.key,
      clientCaPem: pki.ca.cert,
      publicUrl: url,
      ...(broker ? { apiPort: 0, oidc: { apiCredentials: [broker.apiCredentials], trustedCaPem: pki.ca.cert } } : {}),
    });
    cleanup.add('stop the Looker stand-in', () => looker.stop());

    const signingKeys = await generateSigningKeySet('ES256');
    const auth: RunningLocalAuth = await startLocalAuth({
      folder,
      pki,
      settings: authSettings(url, idp.issuer, sessionTtlSeconds, refreshWindowSeconds, mode),
      idpClientSecret,
      lookerClientSecret: broker?.clientSecret,
      signingKeys,
      cookieKeys: generateCookieKeySet(),
    });
    cleanup.add('stop the auth service', () => auth.stop());

    const haproxy = await startLocalHaproxy({
      folder,
      pki,
      port,
      httpPort,
      sessionIssuer: url,
      sessionAudience: SESSION_AUDIENCE,
      refreshWindowSeconds,
      clockSkewSeconds: LOCAL_CLOCK_SKEW_SECONDS,
      attributeNames: DEV_ATTRIBUTE_NAMES,
      signingKeys,
      authPort: auth.port,
      lookerPort: looker.port,
    });
    cleanup.add('stop HAProxy', () => haproxy.stop());

    await waitUntilReady({ gatewayUrl: url, ca: pki.ca.cert, idpIssuer: idp.issuer, authServiceUrl: `https://127.0.0.1:${auth.port}` });
    if (broker)
      await configureLocalLooker({
        secrets: broker,
        gatewayOrigin: url,
        lookerApiPort: looker.apiPort!,
        lookerServerName: LOOKER_TLS_NAME,
        caPem: pki.ca.cert,
      });

    let stopped: Promise<void> | undefined;
    const unexpectedExit = new Promise<string>((resolve) => {
      for (const managed of [idp.process, haproxy.process]) {
        void managed.exited.then(() => {
          if (!managed.stopping()) resolve(`${managed.name} exited (${managed.child.exitCode ?? managed.child.signalCode}):\n${managed.output().slice(-2000)}`);
        });
      }
    });
    return {
      url,
      port,
      httpUrl: `http://127.0.0.1:${httpPort}`,
      folder: folder.root,
      clientFolder,
      caFile,
      agentCertFile,
      agentKeyFile,
      agentPaths: haproxy.agentPaths,
      trustedSpkiHashes: [spkiSha256Base64(pki.gateway.cert), spkiSha256Base64(pki.ca.cert)],
      sessionTtlSeconds,
      refreshWindowSeconds,
      clockSkewSeconds: LOCAL_CLOCK_SKEW_SECONDS,
      idp: {
        issuer: idp.issuer,
        stats: () => idp.stats(),
        setUser: async (username, claims) => {
          const answer = await httpsRequest(`${idp.origin}/test-admin/users/${encodeURIComponent(username)}`, pki.ca.cert, {
            method: 'POST',
            body: JSON.stringify(claims),
            headers: { 'content-type': 'application/json' },
          });
          if (answer.status !== 200)
            throw new Error(
              `The dev IdP refused to change ${username} (${answer.status}${options.idpTestAdmin ? '' : ': start the gateway with idpTestAdmin'}): ${answer.body}`,
            );
        },
      },
      mode,
      lookerRequests: looker.requests,
      looker,
      haproxyLog: () => haproxy.log(),
      authLog: () => auth.log(),
      unexpectedExit,
      stop: () => (stopped ??= cleanup.runAll()),
    };
  } catch (error) {
    await cleanup.runAll().catch(() => undefined);
    throw error;
  }
}

function authSettings(url: string, idpIssuer: string, sessionTtlSeconds: number, refreshWindowSeconds: number, mode: LocalGatewayMode): LocalAuthSettings {
  return {
    publicUrl: url,
    idpIssuer,
    idpClientId: DEV_CLIENT_ID,
    sessionIssuer: url,
    sessionAudience: SESSION_AUDIENCE,
    sessionTtlSeconds,
    refreshWindowSeconds,
    clockSkewSeconds: LOCAL_CLOCK_SKEW_SECONDS,
    lookerBroker: mode === 'broker',
  };
}

function validateOptions(options: LocalGatewayOptions, ttl: number, window: number): void {
  for (const [value, flag, example] of [
    [options.port, '--port', 8443],
    [options.httpPort, '--http-port', 8080],
  ] as const) {
    const port = value ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`Invalid port ${JSON.stringify(value)}: give a whole number from 1 to 65535 (or 0 for a free port), e.g. ${flag} ${example}.`);
    }
  }
  if (options.port && options.port === options.httpPort) {
    throw new Error(`--port and --http-port are both ${options.port}: HTTPS and plain HTTP need ports of their own.`);
  }
  if (!Number.isInteger(ttl) || ttl < 1) {
    throw new Error(
      `Invalid session lifetime ${JSON.stringify(options.sessionTtlSeconds)}: give a whole number of seconds, at least 1, e.g. --session-ttl 600.`,
    );
  }
  if (!Number.isInteger(window) || window < 0 || window >= ttl) {
    throw new Error(
      `Invalid refresh window ${JSON.stringify(window)} s for a ${ttl} s session: it must be a whole number of seconds from 0 to ${ttl - 1}, e.g. --refresh-window ${Math.min(60, Math.floor(ttl / 5))}.`,
    );
  }
  if (options.mode !== undefined && options.mode !== 'broker' && options.mode !== 'direct') {
    throw new Error(
      `Invalid mode ${JSON.stringify(options.mode)}: give broker (Looker's own OpenID Connect login at the gateway) or direct (identity headers only), e.g. --mode broker.`,
    );
  }
  checkLocalAuthSettings(authSettings('https://127.0.0.1:8443', 'https://127.0.0.1:8444', ttl, window, options.mode ?? 'broker'));
}
