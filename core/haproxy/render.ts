/**
 * renderGatewayConfig(): options in, haproxy.cfg and every file it names out. Pure and
 * synchronous, so the CDK construct (user data), the local runner and the tests render
 * exactly the same text.
 */
import * as path from 'node:path';
import { GATEWAY_FILES } from '../layout';
import { GatewayConfigOptions } from './options';
import { renderSessionKeyFiles } from './key-files';
import { renderHaproxyConfig } from './config';
import { ERROR_STATUSES, renderErrorPage } from './logging';
import { renderFrontendCrtList, usesMachineHostCrtList } from './machine-clients';
import { adminSocket, refreshRelaySocket, RENDERED_FILES } from './names';
import { renderRevokedSessionMap } from './session';
import { renderGatewayLua } from './lua';
import { ResolvedGatewayOptions, validateGatewayOptions } from './validate';
import { SIGNING_KEY_STATUSES } from '../key-material';

export interface RenderedFile {
  /** Path relative to the config directory. */
  readonly path: string;
  readonly content: string;
  /** File mode, e.g. 0o644; private keys get 0o600. */
  readonly mode: number;
}

export interface RenderedGatewayConfig {
  /** The haproxy.cfg text (also in `files` as `haproxy.cfg`). */
  readonly haproxyCfg: string;
  /** Every file rendered: cfg, Lua, maps, error pages, and the key/certificate files the options carried material for. */
  readonly files: RenderedFile[];
  /** Absolute path of haproxy.cfg. */
  readonly configFile: string;
  /** Files (absolute) that must exist before haproxy starts, rendered here or written by key-sync. */
  readonly requiredFiles: string[];
  /** The admin socket (`expose-fd listeners`), for key-sync and seamless reloads. */
  readonly adminSocket: string;
  /** Directories (absolute) that must exist: the config directory's sub-folders and the runtime directory. */
  readonly directories: string[];
}

const PUBLIC = 0o644;
const PRIVATE = 0o600;

/** Relative paths of every file haproxy.cfg names, in a stable order. */
export function gatewayFileNames(options: GatewayConfigOptions): string[] {
  return fileNames(validateGatewayOptions(options));
}

function fileNames(o: ResolvedGatewayOptions): string[] {
  const machine = o.machineRoutes.pathPrefixes.length > 0 || o.machineRoutes.hostName !== undefined;
  return [
    GATEWAY_FILES.haproxyConfig,
    GATEWAY_FILES.refreshLua,
    ...SIGNING_KEY_STATUSES.map((slot) => GATEWAY_FILES.sessionKey(slot)),
    GATEWAY_FILES.sessionKidMap,
    RENDERED_FILES.revokedSessionMap,
    GATEWAY_FILES.frontendCertificate,
    ...(usesMachineHostCrtList(o) ? [RENDERED_FILES.frontendCrtList] : []),
    ...(machine ? [GATEWAY_FILES.clientCa, GATEWAY_FILES.machineClientMap] : []),
    ...(machine && o.clientCrl ? [GATEWAY_FILES.clientCrl] : []),
    GATEWAY_FILES.backendClientCertificate,
    GATEWAY_FILES.backendCa,
    GATEWAY_FILES.authServiceCa,
    ...ERROR_STATUSES.map((status) => RENDERED_FILES.errorPage(status)),
  ];
}

/** Absolute paths of the files that must exist before haproxy starts. */
export function requiredGatewayFiles(options: GatewayConfigOptions): string[] {
  const o = validateGatewayOptions(options);
  return fileNames(o).map((name) => path.posix.join(o.configDir, name));
}

/** The machine-client map: `<sha256 fingerprint> <identity name>` per client. */
export function renderMachineClientMap(o: ResolvedGatewayOptions): string {
  return o.machineClients.map((client) => `${client.fingerprint} ${client.name}\n`).join('');
}

/** Validates the options (GatewayConfigError on the first problem) and renders every file. */
export function renderGatewayConfig(options: GatewayConfigOptions): RenderedGatewayConfig {
  const o = validateGatewayOptions(options);
  const haproxyCfg = renderHaproxyConfig(o);
  const files: RenderedFile[] = [
    { path: GATEWAY_FILES.haproxyConfig, content: haproxyCfg, mode: PUBLIC },
    {
      path: GATEWAY_FILES.refreshLua,
      content: renderGatewayLua({
        relayAddress: `unix@${refreshRelaySocket(o.runtimeDir)}`,
        timeoutSeconds: o.refresh.timeoutSeconds,
        graceSeconds: o.refresh.graceSeconds,
        maxTrackedRefreshes: o.refresh.maxTrackedRefreshes,
        revokedSessionMap: path.posix.join(o.configDir, RENDERED_FILES.revokedSessionMap),
        revocationPollSeconds: o.revocation.pollSeconds,
      }),
      mode: PUBLIC,
    },
    { path: RENDERED_FILES.revokedSessionMap, content: renderRevokedSessionMap(), mode: PUBLIC },
    ...ERROR_STATUSES.map((status) => ({ path: RENDERED_FILES.errorPage(status), content: renderErrorPage(status), mode: PUBLIC })),
  ];
  const machine = o.machineRoutes.pathPrefixes.length > 0 || o.machineRoutes.hostName !== undefined;
  if (machine) files.push({ path: GATEWAY_FILES.machineClientMap, content: renderMachineClientMap(o), mode: PUBLIC });
  if (usesMachineHostCrtList(o)) files.push({ path: RENDERED_FILES.frontendCrtList, content: renderFrontendCrtList(o), mode: PUBLIC });
  const m = o.material;
  if (m.sessionKeys) for (const keyFile of renderSessionKeyFiles(m.sessionKeys, o.configDir).files) files.push({ ...keyFile, mode: PUBLIC });
  const pem = (name: string, content: string | undefined, mode: number) => {
    if (content !== undefined) files.push({ path: name, content: content.endsWith('\n') ? content : `${content}\n`, mode });
  };
  pem(GATEWAY_FILES.frontendCertificate, m.frontendCertificatePem, PRIVATE);
  if (machine) pem(GATEWAY_FILES.clientCa, m.clientCaPem, PUBLIC);
  if (machine && o.clientCrl) pem(GATEWAY_FILES.clientCrl, m.clientCrlPem, PUBLIC);
  pem(GATEWAY_FILES.backendClientCertificate, m.backendClientPem, PRIVATE);
  pem(GATEWAY_FILES.backendCa, m.backendCaPem, PUBLIC);
  pem(GATEWAY_FILES.authServiceCa, m.authServiceCaPem, PUBLIC);

  const names = fileNames(o);
  const directories = [...new Set(names.map((name) => path.posix.dirname(path.posix.join(o.configDir, name))))].concat(o.runtimeDir);
  return {
    haproxyCfg,
    files,
    configFile: path.posix.join(o.configDir, GATEWAY_FILES.haproxyConfig),
    requiredFiles: names.map((name) => path.posix.join(o.configDir, name)),
    adminSocket: adminSocket(o.runtimeDir),
    directories,
  };
}
