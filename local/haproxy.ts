/**
 * HAProxy of the local gateway: the config that core/haproxy renders (the same renderer the
 * CDK construct uses), for 127.0.0.1, started with the real haproxy 3.0 binary.
 */
import { createWriteStream, WriteStream } from 'node:fs';
import * as path from 'node:path';
import { GatewayConfigOptions, LogDestination, renderGatewayConfig } from '../core/haproxy';
import { SigningKeySetSecret } from '../core/key-material';
import { haproxyProgram } from '../dev/haproxy';
import { ManagedProcess, startProcess, waitForPorts } from '../dev/processes';
import { LocalFolder } from './files';
import { verificationKeysOf } from '../dev/keys';
import { AUTH_TLS_NAME, LocalPki, LOOKER_TLS_NAME, pemChain } from './pki';
import { freePort } from '../dev/readiness';

/** The machine client of the local setup and what it may call. */
export const LOCAL_AGENT = {
  name: 'local-agent',
  /** Reserved for machine clients: a browser session is not enough here. */
  machineRoutePrefixes: ['/api/4.0/queries/'],
  allowedPathPrefixes: ['/api/4.0/queries/run'],
  allowedMethods: ['GET', 'POST'],
} as const;

export interface LocalHaproxyOptions {
  readonly folder: LocalFolder;
  readonly pki: LocalPki;
  readonly port: number;
  /** Plain HTTP port: every request gets a redirect to the same path on `port` (HTTPS). */
  readonly httpPort: number;
  readonly sessionIssuer: string;
  readonly sessionAudience: string;
  readonly refreshWindowSeconds: number;
  readonly clockSkewSeconds: number;
  readonly attributeNames: readonly string[];
  readonly signingKeys: SigningKeySetSecret;
  readonly authPort: number;
  readonly lookerPort: number;
}

export interface RunningLocalHaproxy {
  /** Paths the agent's certificate may call. */
  readonly agentPaths: readonly string[];
  readonly configFile: string;
  readonly logFile: string;
  readonly process: ManagedProcess;
  /** Everything haproxy wrote so far (its JSON access log goes to stdout). */
  log(): string;
  stop(): Promise<void>;
}

export function localGatewayConfigOptions(options: LocalHaproxyOptions, ports: { health: number; metrics: number }): GatewayConfigOptions {
  const { folder, pki } = options;
  return {
    configDir: path.join(folder.root, 'haproxy'),
    runtimeDir: path.join(folder.root, 'run'),
    listener: { bindAddress: '127.0.0.1', port: options.port, acceptProxyProtocol: false },
    httpRedirect: { bindAddress: '127.0.0.1', port: options.httpPort, httpsPort: options.port },
    healthCheck: { bindAddress: '127.0.0.1', port: ports.health },
    metrics: { bindAddress: '127.0.0.1', port: ports.metrics },
    session: {
      issuer: options.sessionIssuer,
      audience: options.sessionAudience,
      algorithm: options.signingKeys.alg,
      clockSkewSeconds: options.clockSkewSeconds,
      refreshWindowSeconds: options.refreshWindowSeconds,
      attributeNames: [...options.attributeNames],
    },
    authService: { host: AUTH_TLS_NAME, port: options.authPort, addresses: ['127.0.0.1'] },
    looker: { servers: [{ address: '127.0.0.1', port: options.lookerPort }], tlsServerName: LOOKER_TLS_NAME, healthCheckIntervalSeconds: 2 },
    machineRoutes: { pathPrefixes: [...LOCAL_AGENT.machineRoutePrefixes] },
    machineClients: [
      {
        name: LOCAL_AGENT.name,
        certificateSha256: pki.agent.fingerprint,
        allowedMethods: [...LOCAL_AGENT.allowedMethods],
        allowedPathPrefixes: [...LOCAL_AGENT.allowedPathPrefixes],
      },
    ],
    // HSTS would pin 127.0.0.1 to https in the user's browser for a year.
    securityHeaders: { hstsMaxAgeSeconds: 0 },
    logging: { destination: LogDestination.STDOUT },
    process: { nbthread: 2, maxconn: 2000 },
    material: {
      sessionKeys: [...verificationKeysOf(options.signingKeys).keys],
      frontendCertificatePem: pemChain(pki.gateway.cert, pki.ca.cert, pki.gateway.key),
      clientCaPem: pki.ca.cert,
      backendClientPem: pemChain(pki.fleetClient.cert, pki.fleetClient.key),
      backendCaPem: pki.ca.cert,
      authServiceCaPem: pki.ca.cert,
    },
  };
}

export async function startLocalHaproxy(options: LocalHaproxyOptions): Promise<RunningLocalHaproxy> {
  const ports = { health: await freePort(), metrics: await freePort() };
  const rendered = renderGatewayConfig(localGatewayConfigOptions(options, ports));
  for (const directory of rendered.directories) options.folder.folder(path.relative(options.folder.root, directory));
  for (const file of rendered.files) options.folder.write(path.join('haproxy', file.path), file.content, file.mode);

  const logFile = path.join(options.folder.folder('logs'), 'haproxy.log');
  const logStream: WriteStream = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  const haproxy = startMasterWorker(options.folder, rendered.configFile);
  haproxy.child.stdout?.on('data', (chunk: Buffer) => logStream.write(chunk));
  haproxy.child.stderr?.on('data', (chunk: Buffer) => logStream.write(chunk));
  try {
    await waitForPorts([options.port, options.httpPort, ports.health], haproxy, HAPROXY_READY_TIMEOUT_MS);
  } catch (error) {
    await haproxy.stop();
    logStream.end();
    throw error;
  }
  return {
    agentPaths: LOCAL_AGENT.allowedPathPrefixes,
    configFile: rendered.configFile,
    logFile,
    process: haproxy,
    log: () => haproxy.output(),
    stop: async () => {
      await haproxy.stop();
      await new Promise<void>((resolve) => logStream.end(resolve));
    },
  };
}

const HAPROXY_READY_TIMEOUT_MS = 10_000;

/**
 * Starts haproxy in master-worker mode (`-Ws`, as on instances; the rendered config says
 * `master-worker`), through the test support's wrapper that survives the master's re-exec
 * when the binary runs through the Debian 13 root's own loader.
 */
function startMasterWorker(folder: LocalFolder, configFile: string): ManagedProcess {
  return startProcess('HAProxy', haproxyProgram(folder.folder('bin')), ['-Ws', '-db', '-f', configFile]);
}
