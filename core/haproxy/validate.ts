/**
 * Validation of GatewayConfigOptions and the defaults: every error names the option, the
 * bad value and the fix. The renderer only ever sees a ResolvedGatewayOptions.
 *
 * Size: one validator for every option of options.ts, in the same order, with the resolved
 * type it returns; each check is a few lines and names the option, the value and the fix.
 */
import { isIP } from 'node:net';
import * as path from 'node:path';
import {
  ATTRIBUTE_NAME_PATTERN,
  AUTH_PATH_PREFIX,
  DEFAULT_CLOCK_SKEW_SECONDS,
  DEFAULT_REFRESH_WINDOW_SECONDS,
  DEFAULT_REVOCATION_POLL_SECONDS,
  DEFAULT_SESSION_ALGORITHM,
  MAX_SESSION_TOKEN_BYTES,
  SESSION_ALGORITHMS,
  SessionAlgorithm,
} from '../session-contract';
import { SIGNING_KEY_STATUSES } from '../key-material';
import { DEFAULT_CONFIG_DIR } from '../layout';
import { API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS, DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS, DEFAULT_REFRESH_GRACE_SECONDS } from '../timeouts';
import { GatewayConfigOptions, GatewayMaterial, LogDestination, UserClaim } from './options';
import { ambiguousPathReason, normalizePath, pathPrefixesOverlap, pathUnderPrefix } from './paths';

/** An option is invalid; the message says which, what was found and what to do. */
export class GatewayConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayConfigError';
  }
}

export interface ResolvedServer {
  readonly address: string;
  readonly port: number;
}

export interface ResolvedMachineClient {
  readonly name: string;
  readonly fingerprint: string;
  readonly allowedMethods: string[];
  readonly allowedPathPrefixes: string[];
}

export interface ResolvedGatewayOptions {
  readonly configDir: string;
  readonly runtimeDir: string;
  readonly listener: { bindAddress: string; port: number; acceptProxyProtocol: boolean; maxconn: number | undefined };
  readonly healthCheck: { bindAddress: string; port: number };
  readonly readiness: { bindAddress: string; port: number } | undefined;
  readonly metrics: { bindAddress: string; port: number };
  /** The plain HTTP listener that only redirects to HTTPS, when there is one. */
  readonly httpRedirect: { bindAddress: string; port: number; httpsPort: number } | undefined;
  readonly session: {
    issuer: string;
    audience: string;
    algorithm: SessionAlgorithm;
    clockSkewSeconds: number;
    refreshWindowSeconds: number;
    userClaim: UserClaim;
    attributeNames: string[];
    verificationCache: boolean;
    verificationCacheSize: number;
    maxTokenBytes: number;
  };
  readonly refresh: {
    timeoutSeconds: number;
    graceSeconds: number;
    maxExpiredSeconds: number;
    perClientAddressPerMinute: number;
    perSessionPerMinute: number;
    maxTrackedRefreshes: number;
  };
  readonly authService: { host: string; port: number; addresses: string[]; dnsName: string; serverName: string; pathPrefix: string };
  readonly looker: {
    servers: ResolvedServer[];
    dnsName: string | undefined;
    dnsPort: number;
    maxDnsServers: number;
    tlsServerName: string;
    healthCheckPath: string;
    healthCheckIntervalSeconds: number;
    timeoutSeconds: number;
  };
  readonly resolvers: { nameservers: string[]; useResolvConf: boolean };
  /** True when some server is found through DNS at run time (a resolvers section is rendered). */
  readonly usesDns: boolean;
  readonly machineClients: ResolvedMachineClient[];
  readonly machineRoutes: { pathPrefixes: string[]; hostName: string | undefined };
  readonly clientCrl: boolean;
  readonly securityHeaders: { hstsMaxAgeSeconds: number; frameAncestors: string[] };
  readonly strippedHeaders: string[];
  readonly strippedHeaderPrefixes: string[];
  readonly apiPathPrefixes: string[];
  readonly authRateLimit: { requestsPerPeriod: number; periodSeconds: number };
  readonly logging: { destination: LogDestination; target: string; facility: string };
  readonly process: { nbthread: number; maxconn: number | undefined; user: string | undefined; group: string | undefined };
  readonly material: GatewayMaterial;
  readonly revocation: { pollSeconds: number };
}

/** RFC 7230 `token`: the characters a header name may hold. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HTTP_METHOD = /^[A-Z]+$/;
const MACHINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** Characters HAProxy's config tokenizer and ACL patterns take literally in a path prefix. */
const PATH_PREFIX = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;
const SYSLOG_FACILITIES = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'auth2',
  'ftp',
  'ntp',
  'audit',
  'alert',
  'cron2',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
];

function fail(message: string): never {
  throw new GatewayConfigError(message);
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function integerIn(name: string, value: number | undefined, fallback: number, min: number, max: number, unit = ''): number {
  const resolved = value ?? fallback;
  if (!Number.isInteger(resolved) || resolved < min || resolved > max) {
    fail(`${name} is ${show(value)}: expected a whole number${unit} from ${min} to ${max}.`);
  }
  return resolved;
}

function port(name: string, value: number | undefined, fallback: number): number {
  const resolved = value ?? fallback;
  if (!Number.isInteger(resolved) || resolved < 1 || resolved > 65535) {
    fail(`${name} is ${show(value)}: expected a TCP port from 1 to 65535.`);
  }
  return resolved;
}

function nonEmpty(name: string, value: string | undefined, example: string): string {
  if (typeof value !== 'string' || value.trim() === '') fail(`${name} is ${show(value)}: it must not be empty (for example ${show(example)}).`);
  if (/[\s"'\\#]/.test(value)) fail(`${name} is ${show(value)}: it must not contain spaces, quotes, backslashes or "#" (HAProxy would read them as syntax).`);
  return value;
}

function hostName(name: string, value: string | undefined): string {
  if (typeof value !== 'string' || !(HOST_NAME.test(value) || isIP(value))) {
    fail(`${name} is ${show(value)}: expected a DNS name such as "looker.internal.example.com" or an IP address.`);
  }
  return value;
}

function bindAddress(name: string, value: string | undefined, fallback: string): string {
  const resolved = value ?? fallback;
  if (!isIP(resolved)) fail(`${name} is ${show(value)}: expected an IP address to bind, such as "0.0.0.0" or "127.0.0.1".`);
  return resolved;
}

function absoluteDir(name: string, value: string | undefined, fallback: string): string {
  const resolved = value ?? fallback;
  if (!path.isAbsolute(resolved) || /[\s"'\\#]/.test(resolved)) {
    fail(`${name} is ${show(value)}: expected an absolute directory path without spaces or quotes, such as ${show(fallback)}.`);
  }
  return resolved.replace(/\/+$/, '') || '/';
}

function pathPrefix(name: string, value: string): string {
  if (typeof value !== 'string' || !PATH_PREFIX.test(value)) {
    fail(`${name} has ${show(value)}: expected a path prefix starting with "/" made of URL path characters, such as "/api/4.0/".`);
  }
  // Paths are matched after normalization, so a prefix in another form would never match.
  const normalized = normalizePath(value);
  if (normalized !== value) {
    fail(
      `${name} has ${show(value)}, which no request path can start with: the gateway normalizes paths first (no "." or ".." segments, no "//", unreserved characters not percent-encoded, escapes in upper case). Use ${show(normalized)}.`,
    );
  }
  const ambiguous = ambiguousPathReason(value);
  if (ambiguous) fail(`${name} has ${show(value)}: ${ambiguous}, and the gateway refuses such paths (400). Use a prefix without them.`);
  return value;
}

function headerName(name: string, value: string): string {
  if (typeof value !== 'string' || !HEADER_NAME.test(value)) {
    fail(`${name} has ${show(value)}: a header name is an RFC 7230 token (letters, digits and !#$%&'*+-.^_\`|~), such as "X-Debug-User".`);
  }
  return value;
}

function assertNoOverlap(name: string, prefixes: string[], others: Array<{ what: string; prefix: string }>): void {
  for (let i = 0; i < prefixes.length; i += 1) {
    for (let j = i + 1; j < prefixes.length; j += 1) {
      if (pathPrefixesOverlap(prefixes[i], prefixes[j]))
        fail(`${name} has overlapping prefixes ${show(prefixes[i])} and ${show(prefixes[j])}: keep only the shorter one.`);
    }
    for (const other of others) {
      if (pathPrefixesOverlap(prefixes[i], other.prefix)) {
        fail(`${name} has ${show(prefixes[i])}, which overlaps ${other.what} ${show(other.prefix)}: choose a prefix outside it.`);
      }
    }
  }
}

function ipAndPort(name: string, value: string, example: string): string {
  const match = /^(.+):(\d+)$/.exec(value ?? '');
  if (!match || !isIP(match[1].replace(/^\[|\]$/g, '')) || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    fail(`${name} has ${show(value)}: expected "ip:port", such as ${show(example)}.`);
  }
  return value;
}

/** A user or group name as Debian's adduser accepts it, or undefined. */
function systemName(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(value)) fail(`${name} is ${show(value)}: expected a system user or group name such as "haproxy".`);
  return value;
}

/** Checks every option and fills in the defaults; throws GatewayConfigError on the first problem. */
export function validateGatewayOptions(options: GatewayConfigOptions): ResolvedGatewayOptions {
  if (!options || typeof options !== 'object') fail(`The gateway options are ${show(options)}: pass an object with at least session, authService and looker.`);
  const configDir = absoluteDir('configDir', options.configDir, DEFAULT_CONFIG_DIR);
  const runtimeDir = absoluteDir('runtimeDir', options.runtimeDir, '/run/haproxy');
  if (runtimeDir.length > 80) fail(`runtimeDir is ${show(runtimeDir)}: unix socket paths must stay under 108 bytes, so keep it under 80 characters.`);

  const listener = {
    bindAddress: bindAddress('listener.bindAddress', options.listener?.bindAddress, '0.0.0.0'),
    port: port('listener.port', options.listener?.port, 443),
    acceptProxyProtocol: options.listener?.acceptProxyProtocol ?? true,
    maxconn: options.listener?.maxconn === undefined ? undefined : integerIn('listener.maxconn', options.listener.maxconn, 0, 100, 1_000_000),
  };
  const healthCheck = {
    bindAddress: bindAddress('healthCheck.bindAddress', options.healthCheck?.bindAddress, '0.0.0.0'),
    port: port('healthCheck.port', options.healthCheck?.port, 8080),
  };
  const readiness = options.readiness
    ? {
        bindAddress: bindAddress('readiness.bindAddress', options.readiness.bindAddress, '127.0.0.1'),
        port: port('readiness.port', options.readiness.port, 8081),
      }
    : undefined;
  const metrics = {
    bindAddress: bindAddress('metrics.bindAddress', options.metrics?.bindAddress, '127.0.0.1'),
    port: port('metrics.port', options.metrics?.port, 8405),
  };
  const httpRedirect = options.httpRedirect
    ? {
        bindAddress: bindAddress('httpRedirect.bindAddress', options.httpRedirect.bindAddress, '0.0.0.0'),
        port: port('httpRedirect.port', options.httpRedirect.port, 80),
        httpsPort: port('httpRedirect.httpsPort', options.httpRedirect.httpsPort, 443),
      }
    : undefined;
  const ports = [
    ['listener.port', listener.port],
    ['healthCheck.port', healthCheck.port],
    ...(readiness ? [['readiness.port', readiness.port] as const] : []),
    ['metrics.port', metrics.port],
    ...(httpRedirect ? [['httpRedirect.port', httpRedirect.port] as const] : []),
  ] as const;
  for (let i = 0; i < ports.length; i += 1) {
    for (let j = i + 1; j < ports.length; j += 1) {
      if (ports[i][1] === ports[j][1]) fail(`${ports[i][0]} and ${ports[j][0]} are both ${ports[i][1]}: give each listener its own port.`);
    }
  }

  const s = options.session;
  if (!s) fail('session is missing: set session.issuer and session.audience to what the auth service mints.');
  const algorithm = (s.algorithm ?? DEFAULT_SESSION_ALGORITHM) as SessionAlgorithm;
  if (!SESSION_ALGORITHMS.includes(algorithm)) fail(`session.algorithm is ${show(s.algorithm)}: expected one of ${SESSION_ALGORITHMS.join(', ')}.`);
  const userClaim = s.userClaim ?? UserClaim.SUBJECT;
  if (!Object.values(UserClaim).includes(userClaim))
    fail(`session.userClaim is ${show(s.userClaim)}: expected UserClaim.SUBJECT ("sub") or UserClaim.EMAIL ("email").`);
  const attributeNames = s.attributeNames ?? [];
  for (const attribute of attributeNames) {
    if (!ATTRIBUTE_NAME_PATTERN.test(attribute)) {
      fail(
        `session.attributeNames has ${show(attribute)}: use lower case letters, digits and "_", starting with a letter, at most 32 characters (for example "region").`,
      );
    }
  }
  if (new Set(attributeNames).size !== attributeNames.length)
    fail(`session.attributeNames lists a name twice (${attributeNames.join(', ')}): list each attribute once.`);
  const session = {
    issuer: nonEmpty('session.issuer', s.issuer, 'https://looker.example.com/oauth2'),
    audience: nonEmpty('session.audience', s.audience, 'looker-gateway'),
    algorithm,
    clockSkewSeconds: integerIn('session.clockSkewSeconds', s.clockSkewSeconds, DEFAULT_CLOCK_SKEW_SECONDS, 0, 300, ' of seconds'),
    refreshWindowSeconds: integerIn('session.refreshWindowSeconds', s.refreshWindowSeconds, DEFAULT_REFRESH_WINDOW_SECONDS, 0, 3600, ' of seconds'),
    userClaim,
    attributeNames: [...attributeNames],
    verificationCache: s.verificationCache ?? true,
    verificationCacheSize: integerIn('session.verificationCacheSize', s.verificationCacheSize, 100_000, 100, 10_000_000),
    maxTokenBytes: integerIn('session.maxTokenBytes', s.maxTokenBytes, MAX_SESSION_TOKEN_BYTES, 256, 8192, ' of bytes'),
  };

  const r = options.refresh;
  const refresh = {
    timeoutSeconds: integerIn(
      'refresh.timeoutSeconds',
      r?.timeoutSeconds,
      DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS,
      1,
      API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS,
      ' of seconds',
    ),
    graceSeconds: integerIn('refresh.graceSeconds', r?.graceSeconds, DEFAULT_REFRESH_GRACE_SECONDS, 0, 60, ' of seconds'),
    maxExpiredSeconds: integerIn('refresh.maxExpiredSeconds', r?.maxExpiredSeconds, 1800, 0, 86_400, ' of seconds'),
    perClientAddressPerMinute: integerIn('refresh.perClientAddressPerMinute', r?.perClientAddressPerMinute, 300, 1, 100_000),
    perSessionPerMinute: integerIn('refresh.perSessionPerMinute', r?.perSessionPerMinute, 3, 1, 1000),
    maxTrackedRefreshes: integerIn('refresh.maxTrackedRefreshes', r?.maxTrackedRefreshes, 10_000, 1, 1_000_000),
  };

  const a = options.authService;
  if (!a) fail('authService is missing: set authService.host to the auth service API host name (the private API Gateway execute-api host).');
  const authHost = hostName('authService.host', a.host);
  const authAddresses = (a.addresses ?? []).map((address) => {
    if (!isIP(address)) fail(`authService.addresses has ${show(address)}: expected IP addresses; use authService.dnsName for a DNS name.`);
    return address;
  });
  if (a.addresses !== undefined && authAddresses.length === 0)
    fail('authService.addresses is empty: list at least one IP address, or leave it out to connect by DNS name.');
  const authPrefix = a.pathPrefix ?? '';
  if (authPrefix !== '' && (!PATH_PREFIX.test(authPrefix) || authPrefix.endsWith('/'))) {
    fail(`authService.pathPrefix is ${show(authPrefix)}: expected a path such as "/prod" (starts with "/", no trailing "/").`);
  }
  const authService = {
    host: authHost,
    port: port('authService.port', a.port, 443),
    addresses: authAddresses,
    dnsName: a.dnsName === undefined ? authHost : hostName('authService.dnsName', a.dnsName),
    serverName: a.serverName === undefined ? authHost : hostName('authService.serverName', a.serverName),
    pathPrefix: authPrefix,
  };

  const l = options.looker;
  if (!l) fail('looker is missing: set looker.servers (or looker.dnsName) and looker.tlsServerName.');
  if (l.servers !== undefined && l.servers.length === 0) fail('looker.servers is empty: list at least one Looker node, or use looker.dnsName.');
  if (!l.servers && !l.dnsName) fail('looker has neither servers nor dnsName: list the Looker nodes in looker.servers or give a DNS name in looker.dnsName.');
  if (l.servers && l.dnsName) fail(`looker has both servers and dnsName (${show(l.dnsName)}): use one of them.`);
  const servers = (l.servers ?? []).map((server, index) => ({
    address: hostName(`looker.servers[${index}].address`, server.address),
    port: port(`looker.servers[${index}].port`, server.port, 9999),
  }));
  const healthCheckPath = l.healthCheckPath ?? '/alive';
  if (!PATH_PREFIX.test(healthCheckPath)) fail(`looker.healthCheckPath is ${show(healthCheckPath)}: expected a path such as "/alive".`);
  const looker = {
    servers,
    dnsName: l.dnsName === undefined ? undefined : hostName('looker.dnsName', l.dnsName),
    dnsPort: port('looker.dnsPort', l.dnsPort, 9999),
    maxDnsServers: integerIn('looker.maxDnsServers', l.maxDnsServers, 10, 1, 100),
    tlsServerName: hostName('looker.tlsServerName', l.tlsServerName),
    healthCheckPath,
    healthCheckIntervalSeconds: integerIn('looker.healthCheckIntervalSeconds', l.healthCheckIntervalSeconds, 5, 1, 300, ' of seconds'),
    timeoutSeconds: integerIn(
      'looker.timeoutSeconds',
      l.timeoutSeconds,
      3600,
      3600,
      86400,
      ' of seconds (Looker queries and websockets need at least an hour)',
    ),
  };

  const nameservers = (options.resolvers?.nameservers ?? []).map((value) => ipAndPort('resolvers.nameservers', value, '169.254.169.253:53'));
  const resolvers = { nameservers, useResolvConf: options.resolvers?.useResolvConf ?? nameservers.length === 0 };
  const usesDns = looker.dnsName !== undefined || (authService.addresses.length === 0 && !isIP(authService.dnsName));
  if (usesDns && !resolvers.useResolvConf && nameservers.length === 0) {
    fail(
      'resolvers has no name server and useResolvConf is false, but a server is found by DNS: add resolvers.nameservers (e.g. "169.254.169.253:53") or set useResolvConf to true.',
    );
  }

  const apiPathPrefixes = (options.apiPathPrefixes ?? ['/api/']).map((prefix) => pathPrefix('apiPathPrefixes', prefix));

  const routes = options.machineRoutes ?? {};
  const machinePrefixes = (routes.pathPrefixes ?? []).map((prefix) => pathPrefix('machineRoutes.pathPrefixes', prefix));
  assertNoOverlap('machineRoutes.pathPrefixes', machinePrefixes, [{ what: 'the auth service prefix', prefix: AUTH_PATH_PREFIX }]);
  const machineHost = routes.hostName === undefined ? undefined : hostName('machineRoutes.hostName', routes.hostName);
  const machineRoutes = { pathPrefixes: machinePrefixes, hostName: machineHost };
  const hasMachineRoutes = machinePrefixes.length > 0 || machineHost !== undefined;

  const seenNames = new Set<string>();
  const seenFingerprints = new Set<string>();
  const machineClients = (options.machineClients ?? []).map((client, index) => {
    const where = `machineClients[${index}]`;
    if (!MACHINE_NAME.test(client?.name ?? ''))
      fail(`${where}.name is ${show(client?.name)}: use letters, digits, ".", "_", "@" and "-" (at most 128), such as "reporting-bot".`);
    const fingerprint = (client.certificateSha256 ?? '').replace(/:/g, '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(fingerprint)) {
      fail(
        `${where}.certificateSha256 is ${show(client.certificateSha256)}: expected the SHA-256 of the certificate's DER as 64 hex digits (openssl x509 -noout -fingerprint -sha256).`,
      );
    }
    if (seenNames.has(client.name)) fail(`${where}.name ${show(client.name)} is used twice: give each machine client its own name.`);
    if (seenFingerprints.has(fingerprint)) fail(`${where}.certificateSha256 ${fingerprint} is used twice: one certificate maps to one identity.`);
    seenNames.add(client.name);
    seenFingerprints.add(fingerprint);
    const allowedMethods = client.allowedMethods ?? ['GET'];
    if (allowedMethods.length === 0) fail(`${where}.allowedMethods is empty: list at least one method, such as ["GET"].`);
    for (const method of allowedMethods)
      if (!HTTP_METHOD.test(method)) fail(`${where}.allowedMethods has ${show(method)}: expected upper-case HTTP methods such as "GET" or "POST".`);
    if (!client.allowedPathPrefixes || client.allowedPathPrefixes.length === 0)
      fail(`${where}.allowedPathPrefixes is empty: list the path prefixes this client may call, such as ["/api/4.0/"].`);
    const allowedPathPrefixes = client.allowedPathPrefixes.map((prefix) => pathPrefix(`${where}.allowedPathPrefixes`, prefix));
    if (machineHost === undefined) {
      for (const prefix of allowedPathPrefixes) {
        if (!machinePrefixes.some((route) => pathUnderPrefix(prefix, route))) {
          fail(
            `${where}.allowedPathPrefixes has ${show(prefix)}, which is not inside a machine route (${machinePrefixes.join(', ') || 'none'}): add a matching machineRoutes.pathPrefixes entry.`,
          );
        }
      }
    }
    return { name: client.name, fingerprint, allowedMethods: [...allowedMethods], allowedPathPrefixes };
  });
  if (machineClients.length > 0 && !hasMachineRoutes)
    fail('machineClients are set but machineRoutes has no pathPrefixes or hostName: say where machine clients may call.');

  const hstsMaxAgeSeconds = integerIn(
    'securityHeaders.hstsMaxAgeSeconds',
    options.securityHeaders?.hstsMaxAgeSeconds,
    31_536_000,
    0,
    63_072_000,
    ' of seconds',
  );
  const frameAncestors = (options.securityHeaders?.frameAncestors ?? []).map((origin) => {
    if (!/^https:\/\/[A-Za-z0-9.*-]+(:\d{1,5})?$/.test(origin))
      fail(`securityHeaders.frameAncestors has ${show(origin)}: expected an https origin such as "https://portal.example.com".`);
    return origin;
  });

  const extraHeaders = (options.headerHygiene?.extraStrippedHeaders ?? []).map((name) => headerName('headerHygiene.extraStrippedHeaders', name));
  const extraPrefixes = (options.headerHygiene?.extraStrippedHeaderPrefixes ?? []).map((name) => headerName('headerHygiene.extraStrippedHeaderPrefixes', name));

  const authRateLimit = {
    requestsPerPeriod: integerIn('authRateLimit.requestsPerPeriod', options.authRateLimit?.requestsPerPeriod, 60, 1, 100_000),
    periodSeconds: integerIn('authRateLimit.periodSeconds', options.authRateLimit?.periodSeconds, 10, 1, 3600, ' of seconds'),
  };

  const destination = options.logging?.destination ?? LogDestination.STDOUT;
  if (!Object.values(LogDestination).includes(destination))
    fail(`logging.destination is ${show(destination)}: expected LogDestination.STDOUT, UNIX_SOCKET or UDP.`);
  let target =
    options.logging?.target ?? (destination === LogDestination.UNIX_SOCKET ? '/dev/log' : destination === LogDestination.UDP ? '127.0.0.1:514' : 'stdout');
  if (destination === LogDestination.UNIX_SOCKET && (!path.isAbsolute(target) || /\s/.test(target)))
    fail(`logging.target is ${show(target)}: a unix socket target is an absolute path such as "/dev/log".`);
  if (destination === LogDestination.UDP) target = ipAndPort('logging.target', target, '127.0.0.1:514');
  if (destination === LogDestination.STDOUT) target = 'stdout';
  const facility = options.logging?.facility ?? 'local0';
  if (!SYSLOG_FACILITIES.includes(facility)) fail(`logging.facility is ${show(facility)}: expected a syslog facility such as "local0".`);

  const processOptions = {
    nbthread: integerIn('process.nbthread', options.process?.nbthread, 2, 1, 64),
    maxconn: options.process?.maxconn === undefined ? undefined : integerIn('process.maxconn', options.process.maxconn, 0, 100, 1_000_000),
    user: systemName('process.user', options.process?.user),
    group: systemName('process.group', options.process?.group),
  };
  if (listener.maxconn !== undefined && processOptions.maxconn !== undefined && listener.maxconn > processOptions.maxconn)
    fail(
      `listener.maxconn is ${listener.maxconn}, above process.maxconn ${processOptions.maxconn}: the process never accepts more than its own limit; lower listener.maxconn or raise process.maxconn.`,
    );

  const material = options.material ?? {};
  for (const key of material.sessionKeys ?? []) {
    if (!SIGNING_KEY_STATUSES.includes(key.status))
      fail(`material.sessionKeys has kid ${show(key.kid)} with status ${show(key.status)}: expected previous, current or next.`);
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(key.kid ?? '')) fail(`material.sessionKeys has kid ${show(key.kid)}: a kid is 1-128 letters, digits, ".", "_" or "-".`);
  }
  if (material.sessionKeys && !material.sessionKeys.some((key) => key.status === 'current')) {
    fail('material.sessionKeys has no "current" key: the auth service signs with the current key, so HAProxy must know it.');
  }

  return {
    configDir,
    runtimeDir,
    listener,
    healthCheck,
    readiness,
    metrics,
    httpRedirect,
    session,
    refresh,
    authService,
    looker,
    resolvers,
    usesDns,
    machineClients,
    machineRoutes,
    clientCrl: options.clientCrl ?? false,
    securityHeaders: { hstsMaxAgeSeconds, frameAncestors },
    strippedHeaders: extraHeaders,
    strippedHeaderPrefixes: extraPrefixes,
    apiPathPrefixes,
    authRateLimit,
    logging: { destination, target, facility },
    process: processOptions,
    material,
    revocation: {
      pollSeconds: integerIn('revocation.pollSeconds', options.revocation?.pollSeconds, DEFAULT_REVOCATION_POLL_SECONDS, 1, 300, ' of seconds'),
    },
  };
}
