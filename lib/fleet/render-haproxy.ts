/**
 * haproxy.cfg for the gateway, rendered from validated options. Pure: the same options
 * always give the same text. Read the output top to bottom: each section says why.
 */
import * as path from 'node:path';
import { LOOKER_BROKER_DISCOVERY_PATHS } from '../auth/looker-broker';
import {
  ASSERTION_COOKIE,
  ASSERTION_TOKEN_TYPE,
  AUTH_METHODS,
  AUTH_PATH_PREFIX,
  AUTH_PATHS,
  CLAIMS,
  GATEWAY_COOKIES,
  HEADERS,
  REFRESH_COOKIE,
  RETURN_TO_PARAM,
  SESSION_ALGORITHMS,
  SESSION_COOKIE,
  SESSION_TOKEN_TYPE,
  assertionAudience,
  attributeClaim,
  attributeHeader,
} from '../session-contract';
import { SIGNING_KEY_STATUSES } from '../key-material';
import { GATEWAY_FILES } from './layout';
import { LogDestination } from './gateway-options';
import { AMBIGUOUS_PATH_REASONS } from './paths';
import { MAX_REFRESH_SET_COOKIES, REFRESH_ACTION, REFRESH_JOINS_FETCH, REFRESH_RESULTS, REFRESH_VARS } from './render-lua';
import { ResolvedGatewayOptions } from './validate';

/** Files of this renderer that lib/fleet/layout.ts does not list (they never change at run time). */
export const RENDERED_FILES = {
  errorPage: (status: number): string => `errors/${status}.http`,
  /** Only when machine clients have a host name of their own: asks for client certificates on that SNI only. */
  frontendCrtList: 'tls/frontend.crt-list',
  /** Revoked session ids: empty on disk, filled in memory by the Lua revocation poll. */
  revokedSessionMap: 'maps/revoked-sessions.map',
} as const;

/** The revoked-session map file: HAProxy needs the file to exist; the Lua poll fills the map in memory. */
export function renderRevokedSessionMap(): string {
  return '# <sid> <until, epoch seconds>: filled in memory by the Lua revocation poll (core.set_map), never on disk.\n';
}

/**
 * Client certificates are asked for on a separate host name only (a crt-list line with its
 * own `verify optional`), so browsers on the main host never see a certificate picker. True
 * when machine clients have a host name and no path prefixes on the main host.
 */
export function usesMachineHostCrtList(o: ResolvedGatewayOptions): boolean {
  return o.machineRoutes.hostName !== undefined && o.machineRoutes.pathPrefixes.length === 0;
}

/** The crt-list: the frontend certificate for every name, with client-certificate options on the machine host. */
export function renderFrontendCrtList(o: ResolvedGatewayOptions): string {
  const file = (relative: string) => path.posix.join(o.configDir, relative);
  const certificate = file(GATEWAY_FILES.frontendCertificate);
  const options = words(`verify optional ca-file ${file(GATEWAY_FILES.clientCa)}`, o.clientCrl && `crl-file ${file(GATEWAY_FILES.clientCrl)}`);
  // The first line serves every name of the certificate except the machine host (names
  // taken from the certificate would otherwise win over the second line's filter).
  return `${certificate} !${o.machineRoutes.hostName}\n${certificate} [${options}] ${o.machineRoutes.hostName}\n`;
}

/** Statuses HAProxy itself may answer with; each gets a JSON body. */
export const ERROR_STATUSES = [400, 403, 405, 408, 500, 502, 503, 504] as const;

/** Request headers deleted from every client request before anything else (exact names). */
export const DEFAULT_STRIPPED_HEADERS: readonly string[] = [
  HEADERS.requestId,
  HEADERS.assertion,
  HEADERS.authMethod,
  'Forwarded',
  'X-Real-IP',
  'X-Remote-User',
  'Remote-User',
  'X-Original-URL',
  'X-Rewrite-URL',
];

/**
 * Header name prefixes deleted from every client request: all `X-Forwarded-*` (user,
 * email, groups, and the For/Proto/Host the gateway sets itself), all `X-Looker-*`
 * (roles and every `X-Looker-Attr-*`), all `X-Gateway-*`, and oauth2-proxy's `X-Auth-Request-*`.
 */
export const DEFAULT_STRIPPED_HEADER_PREFIXES: readonly string[] = ['X-Forwarded-', 'X-Looker-', 'X-Gateway-', 'X-Auth-Request-'];

/** Names of the config's proxies, for stats, metrics and the key-sync unit. */
export const PROXY_NAMES = {
  gateway: 'gateway',
  health: 'nlb_health',
  metrics: 'metrics',
  refreshRelay: 'refresh_relay',
  looker: 'looker',
  authService: 'auth_service',
  sessionCache: 'session_cache',
  authRateLimit: 'auth_rate_limit',
  refreshByAddress: 'inline_refresh_by_address',
  refreshBySession: 'inline_refresh_by_session',
  resolvers: 'gateway_dns',
  errors: 'gateway_errors',
} as const;

/** The `route` of health-check log lines (logged only while Looker is unavailable). */
export const HEALTH_ROUTE = 'health';

/** The reason the gateway gives (answer and access log) when no Looker node passes its health check. */
export const NO_LOOKER_SERVER_REASON = 'no Looker server is available';

/** Decisions written to the access log (field `decision`): machine-readable codes that metric filters match. */
export const DECISIONS = {
  sessionValid: 'session-valid',
  sessionRefreshed: 'session-refreshed',
  cacheHit: 'cache-hit',
  noSession: 'no-session',
  malformedSession: 'malformed-session',
  unknownKey: 'unknown-key',
  badSignature: 'bad-signature',
  expired: 'expired',
  notYetValid: 'not-yet-valid',
  badClaims: 'bad-claims',
  refreshRefused: 'refresh-refused',
  machineAllowed: 'machine-allowed',
  machineDenied: 'machine-denied',
  rateLimited: 'rate-limited',
  authRoute: 'auth-route',
  inlineRefresh: 'inline-refresh',
  /**
   * No Looker node passes its health check: on a user's request (503, also the `code` of
   * its body) and on every health check while it lasts, so the metric moves without traffic.
   */
  lookerUnavailable: 'looker-unavailable',
  /** The gateway's own polls of the revocation list (relay frontend). */
  revocationPoll: 'revocation-poll',
  /** The session id is on the revocation list (logout). */
  sessionRevoked: 'session-revoked',
  /** A request the gateway refuses to route: an ambiguous path, a Connection header naming a protected header. */
  badRequest: 'bad-request',
  notFound: 'not-found',
} as const;

/** The unix socket the Lua refresh action reaches the auth service through. */
export function refreshRelaySocket(runtimeDir: string): string {
  return path.posix.join(runtimeDir, 'refresh-relay.sock');
}

/** The admin socket (`expose-fd listeners`) that key-sync and seamless reloads use. */
export function adminSocket(runtimeDir: string): string {
  return path.posix.join(runtimeDir, 'admin.sock');
}

const BIND_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/** Renders an ACL/flag list the way HAProxy reads it: one space between words. */
function words(...parts: Array<string | false | undefined>): string {
  return parts.filter((part): part is string => typeof part === 'string' && part.length > 0).join(' ');
}

/** `^(?i)(?:name|name|prefix.*)$`: the header names (and prefixes) hygiene deletes, as one regex, `-` and `_` alike. */
export function strippedHeaderRegex(names: readonly string[], prefixes: readonly string[]): string {
  // "-" and "_" alike: a server that folds one into the other would take X_Looker_Roles for X-Looker-Roles.
  const pattern = (value: string) => escapeRegex(value.toLowerCase()).replace(/[-_]/g, '[-_]');
  const alternatives = [...names.map(pattern), ...prefixes.map((prefix) => `${pattern(prefix)}.*`)];
  return `^(?i)(?:${alternatives.join('|')})$`;
}

function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, (c) => `\\${c}`);
}

/** A JSON error body as an `lf-string` (reason and request id filled in at run time). */
function jsonError(error: string, reasonExpr: string): string {
  return `'{"error":"${error}","reason":"${reasonExpr}","requestId":"%[unique-id]"}'`;
}

class Section {
  private readonly lines: string[] = [];
  constructor(header: string, why?: string) {
    if (why) for (const line of why.split('\n')) this.lines.push(`# ${line}`);
    this.lines.push(header);
  }
  /** A directive line, indented. */
  add(...lines: string[]): this {
    for (const line of lines) this.lines.push(line === '' ? '' : `  ${line}`);
    return this;
  }
  /** A comment saying why the next lines exist. */
  note(text: string): this {
    this.lines.push('');
    for (const line of text.split('\n')) this.lines.push(`  # ${line}`);
    return this;
  }
  toString(): string {
    return this.lines.join('\n');
  }
}

export function renderHaproxyConfig(o: ResolvedGatewayOptions): string {
  const file = (relative: string) => path.posix.join(o.configDir, relative);
  const sections = [
    renderGlobal(o, file),
    renderDefaults(o),
    renderErrors(file),
    ...(o.usesDns ? [renderResolvers(o)] : []),
    renderGatewayFrontend(o, file),
    renderHealthFrontend(o),
    renderMetricsFrontend(o),
    renderRefreshRelay(o),
    renderLookerBackend(o, file),
    renderAuthBackend(o, file),
    renderTables(o),
  ];
  return `# haproxy.cfg of the Looker gateway, rendered by cdk-looker-gateway (lib/fleet).\n# Do not edit on an instance: change the options and render again.\n\n${sections.map(String).join('\n\n')}\n`;
}

function renderGlobal(o: ResolvedGatewayOptions, file: (relative: string) => string): Section {
  const log =
    o.logging.destination === LogDestination.STDOUT
      ? `log stdout len 16384 format raw ${o.logging.facility}`
      : `log ${o.logging.target} len 16384 format rfc5424 ${o.logging.facility}`;
  const section = new Section('global', 'Process-wide settings. Started as `haproxy -Ws` (master-worker); key-sync reloads it seamlessly.')
    .add(
      'master-worker',
      `nbthread ${o.process.nbthread}`,
      ...(o.process.maxconn === undefined ? [] : [`maxconn ${o.process.maxconn}`]),
      log,
      `stats socket ${adminSocket(o.runtimeDir)} mode 600 level admin expose-fd listeners`,
      'stats timeout 30s',
    );
  if (o.process.user || o.process.group) {
    section
      .note('Workers drop to an unprivileged user once the master has bound the listeners and read the\nkeys; the master keeps root, so reloads still bind, read the new files and pass the sockets on.')
      .add(...[o.process.user && `user ${o.process.user}`, o.process.group && `group ${o.process.group}`].filter((line): line is string => Boolean(line)));
  }
  return section
    .note('TLS 1.2+ with forward-secret AEAD ciphers only (Mozilla "intermediate"); EC keys need no DH parameters.')
    .add(
      `ssl-default-bind-ciphers ${BIND_CIPHERS}`,
      `ssl-default-bind-ciphersuites ${TLS13_SUITES}`,
      'ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets',
      `ssl-default-server-ciphers ${BIND_CIPHERS}`,
      `ssl-default-server-ciphersuites ${TLS13_SUITES}`,
      'ssl-default-server-options ssl-min-ver TLSv1.2 no-tls-tickets',
    )
    .note(
      'Inline refresh and revocation poll (Lua, one state shared by all threads). Its HTTP client only\ntalks to the local relay socket, so it needs no resolvers and no TLS settings of its own; no\nretries, so a slow auth service costs one timeout, not four.',
    )
    .add(`lua-load ${file(GATEWAY_FILES.refreshLua)}`, 'httpclient.resolvers.disabled on', 'httpclient.retries 0', `httpclient.timeout.connect ${o.refresh.timeoutSeconds}s`)
    .note(
      'HAProxy 3.0 still tags its `http-request normalize-uri` actions experimental; the gateway\nnormalizes every path with them before routing (see frontend gateway, section 2).',
    )
    .add('expose-experimental-directives');
}

function renderDefaults(o: ResolvedGatewayOptions): Section {
  const t = o.looker.timeoutSeconds;
  return new Section('defaults', 'Looker runs long queries and websockets: client, server and tunnel timeouts are at least an hour.')
    .add(
      'mode http',
      'log global',
      'option dontlognull',
      'option redispatch 1',
      'retries 2',
      'retry-on conn-failure',
      'timeout connect 5s',
      `timeout client ${t}s`,
      `timeout server ${t}s`,
      `timeout tunnel ${t}s`,
      'timeout http-request 30s',
      'timeout http-keep-alive 60s',
      'timeout queue 30s',
      'timeout client-fin 30s',
      'timeout server-fin 30s',
      `errorfiles ${PROXY_NAMES.errors}`,
      'unique-id-format %[uuid(4)]',
    )
    .note(
      'key-sync reloads seamlessly when keys or certificates change: the old worker keeps its idle\nkeep-alive connections until it has answered one more request (with Connection: close),\nrather than closing them under a client that is sending a request.',
    )
    .add('option idle-close-on-response')
    .note('One JSON line per request. Never a cookie, a token or a query string (OIDC callbacks carry codes).')
    .add(`log-format "${LOG_FORMAT}"`);
}

/** The access-log fields, in order: `name` -> HAProxy log-format expression. */
export const LOG_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['time', '%[date,utime(%Y-%m-%dT%H:%M:%SZ)]'],
  ['request_id', '%ID'],
  ['client_ip', '%ci'],
  ['client_port', '%cp'],
  ['frontend', '%f'],
  ['backend', '%b'],
  ['server', '%s'],
  ['method', '%HM'],
  ['path', '%HPO'],
  ['http_version', '%HV'],
  ['host', '%[var(txn.host)]'],
  ['status', '%ST'],
  ['route', '%[var(txn.route)]'],
  ['decision', '%[var(txn.decision)]'],
  ['reason', '%[var(txn.reason)]'],
  ['user', '%[var(txn.user)]'],
  ['auth', '%[var(txn.auth_method)]'],
  ['refresh', '%[var(txn.refresh_result)]'],
  ['bytes_in', '%U'],
  ['bytes_out', '%B'],
  ['time_handshake_ms', '%Th'],
  ['time_request_ms', '%TR'],
  ['time_queue_ms', '%Tw'],
  ['time_connect_ms', '%Tc'],
  ['time_response_ms', '%Tr'],
  ['time_active_ms', '%Ta'],
  ['time_total_ms', '%Tt'],
  ['termination', '%tsc'],
  ['retries', '%rc'],
  ['tls_version', '%sslv'],
  ['tls_cipher', '%sslc'],
  ['client_cert_subject', '%[var(txn.client_cert_subject)]'],
  ['client_cert_sha256', '%[var(txn.client_cert_sha256)]'],
];

const LOG_FORMAT = `%{+json}o ${LOG_FIELDS.map(([name, expr]) => `%(${name})${expr.startsWith('%') ? expr.slice(1) : expr}`).join(' ')}`;

function renderErrors(file: (relative: string) => string): Section {
  const section = new Section(`http-errors ${PROXY_NAMES.errors}`, 'Answers HAProxy gives on its own (bad request, no server, timeouts) are JSON too.');
  for (const status of ERROR_STATUSES) section.add(`errorfile ${status} ${file(RENDERED_FILES.errorPage(status))}`);
  return section;
}

const ERROR_TEXT: Record<number, [string, string]> = {
  400: ['Bad Request', 'the request could not be parsed'],
  403: ['Forbidden', 'the request is not allowed'],
  405: ['Method Not Allowed', 'the method is not allowed'],
  408: ['Request Timeout', 'the request was not received in time'],
  500: ['Internal Server Error', 'the gateway failed'],
  502: ['Bad Gateway', 'Looker sent an invalid response'],
  503: ['Service Unavailable', NO_LOOKER_SERVER_REASON],
  504: ['Gateway Timeout', 'Looker did not answer in time'],
};

/** The raw HTTP response HAProxy sends for `status` (errorfile format). */
export function renderErrorPage(status: number): string {
  const [text, reason] = ERROR_TEXT[status];
  // HAProxy's own 503 means the Looker backend had no server left: the same code as the gateway's 503.
  const code = status === 503 ? { code: DECISIONS.lookerUnavailable } : {};
  const body = `${JSON.stringify({ error: text.toLowerCase().replace(/ /g, '_'), ...code, reason, requestId: null })}\n`;
  return [
    `HTTP/1.1 ${status} ${text}`,
    'Content-Type: application/json',
    'Cache-Control: no-store',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

function renderResolvers(o: ResolvedGatewayOptions): Section {
  const section = new Section(`resolvers ${PROXY_NAMES.resolvers}`, 'DNS for servers found by name at run time (Looker nodes, the auth service endpoint).');
  if (o.resolvers.useResolvConf) section.add('parse-resolv-conf');
  o.resolvers.nameservers.forEach((server, index) => section.add(`nameserver dns${index + 1} ${server}`));
  return section.add('resolve_retries 3', 'timeout resolve 1s', 'timeout retry 1s', 'hold valid 10s', 'hold obsolete 30s', 'accepted_payload_size 8192');
}

function tlsBind(o: ResolvedGatewayOptions, file: (relative: string) => string): string {
  if (usesMachineHostCrtList(o)) {
    return words(
      `bind ${o.listener.bindAddress}:${o.listener.port}`,
      o.listener.acceptProxyProtocol && 'accept-proxy',
      `ssl crt-list ${file(RENDERED_FILES.frontendCrtList)}`,
      'alpn h2,http/1.1',
      'ca-ignore-err all crt-ignore-err all',
    );
  }
  const machine = o.machineRoutes.pathPrefixes.length > 0 || o.machineRoutes.hostName !== undefined;
  return words(
    `bind ${o.listener.bindAddress}:${o.listener.port}`,
    o.listener.acceptProxyProtocol && 'accept-proxy',
    `ssl crt ${file(GATEWAY_FILES.frontendCertificate)}`,
    'alpn h2,http/1.1',
    machine && `verify optional ca-file ${file(GATEWAY_FILES.clientCa)}`,
    machine && o.clientCrl && `crl-file ${file(GATEWAY_FILES.clientCrl)}`,
    machine && 'ca-ignore-err all crt-ignore-err all',
  );
}

/** ACL lines matching paths under each prefix on a segment boundary: `/a/b` covers `/a/b` and `/a/b/c`, never `/a/bc`. */
function pathPrefixAcl(name: string, prefixes: readonly string[]): string[] {
  const closed = prefixes.filter((prefix) => !prefix.endsWith('/'));
  const starts = prefixes.map((prefix) => (prefix.endsWith('/') ? prefix : `${prefix}/`));
  return [`acl ${name} path_beg ${starts.join(' ')}`, ...(closed.length > 0 ? [`acl ${name} path ${closed.join(' ')}`] : [])];
}

/**
 * The Cookie header Looker receives: the client's, without the gateway's cookies. HAProxy
 * reads a cookie after "," as well as ";" and skips spaces and tabs around its name and
 * before "=", so the strip takes out every spelling it could have read, and more (any case,
 * any whitespace): no cookie read as the session can reach Looker. Two Cookie lines were
 * refused earlier, so there is at most one here (none: no variable, no header).
 */
function upstreamCookieRules(condition: string): string[] {
  const gatewayCookies = `(${GATEWAY_COOKIES.map(escapeRegex).join('|')})`;
  return [
    `http-request set-var(txn.upstream_cookie) "req.fhdr(cookie),regsub('(^|[;,])[[:space:]]*${gatewayCookies}[[:space:]]*=[^;,]*','',ig),regsub('^[;,[:space:]]+','')" if ${condition}`,
    `http-request del-header Cookie if ${condition}`,
    `http-request add-header Cookie %[var(txn.upstream_cookie)] if ${condition} { var(txn.upstream_cookie) -m len 1:100000 }`,
  ];
}

/** Sets the decision and reason, then answers `status` with a JSON error body, all under `condition`. */
function refuse(f: Section, status: number, error: string, decision: string, reason: string, condition: string): void {
  f.add(
    `http-request set-var(txn.decision) str(${decision}) if ${condition}`,
    `http-request set-var-fmt(txn.reason) "${reason}" if ${condition}`,
    `http-request return status ${status} content-type application/json hdr Cache-Control no-store lf-string ${jsonError(error, '%[var(txn.reason)]')} if ${condition}`,
  );
}

function renderGatewayFrontend(o: ResolvedGatewayOptions, file: (relative: string) => string): Section {
  const s = o.session;
  const r = o.refresh;
  const kidMap = file(GATEWAY_FILES.sessionKidMap);
  const revokedMap = file(RENDERED_FILES.revokedSessionMap);
  const hasMachineRoutes = o.machineRoutes.pathPrefixes.length > 0 || o.machineRoutes.hostName !== undefined;
  const f = new Section(`frontend ${PROXY_NAMES.gateway}`, 'The public listener: every request is checked here before it reaches Looker.');
  f.add(tlsBind(o, file));
  if (usesMachineHostCrtList(o)) {
    f.note(`Client certificates are asked for only on ${o.machineRoutes.hostName} (crt-list), and optional at the\nhandshake there, so a bad one does not abort it: the machine-route rules below decide.`);
  } else if (hasMachineRoutes) {
    f.note('Client certificates are asked for but optional at the handshake, so a bad one does not\nabort it: the machine-route rules below decide (ssl_c_verify is 0 without a certificate,\nso it is always paired with ssl_c_used).');
  }

  f.note('Routes, on the normalized path (section 2) and on segment boundaries: /a/b covers /a/b and\n/a/b/c, never /a/bc.')
    .add(`acl is_auth_route path_beg ${AUTH_PATH_PREFIX}`)
    .note("Broker mode's discovery document sits at its issuer's well-known path (the gateway's origin).")
    .add(`acl is_auth_route path ${LOOKER_BROKER_DISCOVERY_PATHS[1]}`)
    .add(`acl is_revocation_list path -i ${AUTH_PATHS.revocations}`, `acl is_revocation_list path_beg -i ${AUTH_PATHS.revocations}/`)
    .add(...pathPrefixAcl('is_api_path', o.apiPathPrefixes));
  if (o.machineRoutes.pathPrefixes.length > 0) f.add(...pathPrefixAcl('is_machine_path', o.machineRoutes.pathPrefixes));
  if (o.machineRoutes.hostName) f.add(`acl is_machine_host req.hdr(host),lower,regsub(':[0-9]+$','') -m str ${o.machineRoutes.hostName.toLowerCase()}`);
  const machineCondition = [o.machineRoutes.pathPrefixes.length > 0 && 'is_machine_path', o.machineRoutes.hostName && 'is_machine_host']
    .filter(Boolean)
    .join(' || ');

  const strippedNames = [...DEFAULT_STRIPPED_HEADERS, ...o.strippedHeaders];
  const strippedPrefixes = [...DEFAULT_STRIPPED_HEADER_PREFIXES, ...o.strippedHeaderPrefixes];
  const protectedHeaders = strippedHeaderRegex(strippedNames, strippedPrefixes);
  f.note(
    `1. Header hygiene first: no identity header a client sends survives. One case-insensitive\nregex over the header names (one pass) deletes these names:\n  ${strippedNames.join(', ')}\nand every name starting with:\n  ${strippedPrefixes.join(', ')}\nwith "_" and "-" alike (X_Looker_Roles, x_forwarded_user): servers that fold "_" into "-"\n(Rack, CGI) would read them as the real header.`,
  );
  f.add(`http-request del-header ${protectedHeaders} -m reg`);
  f.note('A Connection header that names one of them would make the next hop drop the header the\ngateway sets (hop-by-hop): refused.').add(`acl connection_names_protected_header req.hdr(connection) -m reg ${protectedHeaders}`);
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, 'the Connection header names a protected header', 'connection_names_protected_header');
  // Every header the gateway sets on the request was deleted just above, so `add-header`
  // (no search for an old value) does what `set-header` would, for less.
  f.add(
    '',
    'http-request set-var(txn.host) req.hdr(host)',
    'http-request add-header X-Forwarded-For %[src]',
    'http-request add-header X-Forwarded-Proto https',
    'http-request add-header X-Forwarded-Host %[var(txn.host)] if { var(txn.host) -m found }',
    'http-request set-var(txn.request_id) unique-id',
    `http-request add-header ${HEADERS.requestId} %[var(txn.request_id)]`,
    'http-request set-var(txn.route) str(looker)',
  );
  if (hasMachineRoutes) {
    f.add(
      'http-request set-var(txn.client_cert_sha256) ssl_c_der,sha2(256),hex,lower if { ssl_c_used }',
      'http-request set-var(txn.client_cert_subject) ssl_c_s_dn if { ssl_c_used }',
    );
  }

  f.note(
    '2. The path, normalized before any routing decision, so that a route (machine policy, the\nauth service, API paths) is chosen on the path Looker receives: escapes of unreserved\ncharacters decoded (%2e, %71), the others upper case, "." and ".." segments removed, "//"\nmerged. What would still read differently behind the gateway is refused (400). A path\nwithout "%", "/.", "//", ";" or a backslash is already normal: the usual path skips all of it.',
  ).add(
    'http-request set-var(txn.path_unusual) bool(1) if { path -m sub % /. // ; \\\\ }',
    'acl path_is_unusual var(txn.path_unusual) -m bool',
    'acl path_has_bad_escape path -m reg %(?![0-9A-Fa-f]{2})',
    'acl path_has_encoded_separator path -m sub -i %2F %5C %25 %00 %C0 %C1',
    'acl path_has_parameters path -m sub ; \\\\',
  );
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, AMBIGUOUS_PATH_REASONS.badEscape, 'path_is_unusual path_has_bad_escape');
  // `strict` because HAProxy 3.0.11 ignores these two normalizers when they have a condition
  // but no `strict` (measured); bad escapes were refused just above, so strict never fires.
  f.add(
    'http-request normalize-uri percent-decode-unreserved strict if path_is_unusual',
    'http-request normalize-uri percent-to-uppercase strict if path_is_unusual',
    'http-request normalize-uri path-strip-dot if path_is_unusual',
    'http-request normalize-uri path-strip-dotdot full if path_is_unusual',
    'http-request normalize-uri path-merge-slashes if path_is_unusual',
  );
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, AMBIGUOUS_PATH_REASONS.encodedSeparator, 'path_is_unusual path_has_encoded_separator');
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, AMBIGUOUS_PATH_REASONS.parameters, 'path_is_unusual path_has_parameters');

  f.note('RFC 6265: one Cookie line per request. Two lines could hide a second session cookie. Lines,\nnot values: a comma inside a cookie value is not a second line.').add('acl has_two_cookie_lines req.fhdr_cnt(cookie) gt 1');
  refuse(f, 400, 'bad_request', DECISIONS.malformedSession, 'more than one Cookie header line', 'has_two_cookie_lines');

  f.note(
    `3. The auth service owns ${AUTH_PATH_PREFIX}*: rate-limited per client address, then passed with its cookies.\nThe revocation list is for the gateway's own poll (through the relay socket), not for clients.`,
  );
  refuse(f, 404, 'not_found', DECISIONS.notFound, 'the revocation list is only served to the gateway', 'is_revocation_list');
  f.add(
    `acl auth_rate_exceeded sc_http_req_rate(1,${PROXY_NAMES.authRateLimit}) gt ${o.authRateLimit.requestsPerPeriod}`,
    'http-request set-var(txn.route) str(auth) if is_auth_route',
    `http-request track-sc1 src table ${PROXY_NAMES.authRateLimit} if is_auth_route`,
    `http-request set-var(txn.decision) str(${DECISIONS.rateLimited}) if is_auth_route auth_rate_exceeded`,
    'http-request set-var-fmt(txn.reason) "too many requests to the auth service from this address" if is_auth_route auth_rate_exceeded',
    `http-request return status 429 content-type application/json hdr Retry-After ${o.authRateLimit.periodSeconds} hdr Cache-Control no-store lf-string ${jsonError('too_many_requests', '%[var(txn.reason)]')} if is_auth_route auth_rate_exceeded`,
    `http-request set-var(txn.decision) str(${DECISIONS.authRoute}) if is_auth_route`,
    'http-request allow if is_auth_route',
  );

  f.note(
    `4. The gateway's cookies: read into variables here, and taken out of the Cookie header that\nLooker receives just before a request is let through (below), while Looker's own cookies\npass untouched. The refresh cookie is only read when a refresh is due (each cookie read\nwalks the whole header).`,
  ).add(
    `http-request set-var(txn.session_cookie_count) req.cook_cnt(${SESSION_COOKIE})`,
    // Each req.cook walks the whole Cookie header: read each cookie once, then check the
    // variable's length (a token of the wrong length is dropped as if it was never sent).
    `http-request set-var(txn.session_token) req.cook(${SESSION_COOKIE}) if { var(txn.session_cookie_count) -m int eq 1 }`,
    `http-request unset-var(txn.session_token) if !{ var(txn.session_token) -m len 16:${s.maxTokenBytes} }`,
    `http-request set-var(${REFRESH_VARS.assertion}) req.cook(${ASSERTION_COOKIE})`,
    `http-request unset-var(${REFRESH_VARS.assertion}) if !{ var(${REFRESH_VARS.assertion}) -m len 16:${s.maxTokenBytes} }`,
    `acl refresh_cookie_present req.cook_cnt(${REFRESH_COOKIE}) -m int eq 1`,
  );

  if (hasMachineRoutes) renderMachineRules(f, o, file, machineCondition);

  const sessionSection = hasMachineRoutes ? '6' : '5';
  f.note(
    `${sessionSection}. The session. Its token sits in txn.session_token, which the cookie fills and the inline\nrefresh replaces, so both go through the same checks. jwt_verify checks only the\nsignature, with the algorithm pinned: one check per algorithm the gateway signs with\n(${SESSION_ALGORITHMS.join(', ')}), the token's header picking which runs; the key is picked by kid\nthrough the kid map, and a key verifies only signatures of its own algorithm. Both are\naccepted so that a change of algorithm needs no new configuration: the new keys arrive\nas 'next' through key-sync a whole rotation before they sign. Its upstream assertion\n(txn.assertion_token, a token of its own) must be signed by the same key and carry the\nsame sub and sid; it is forwarded only when it is valid.`,
  );
  f.add(
    'http-request set-var(txn.now) date',
    'acl has_session_token var(txn.session_token) -m found',
    `acl has_assertion_token var(${REFRESH_VARS.assertion}) -m found`,
    'acl session_key_known var(txn.session_key) -m found',
    'acl session_signature_valid var(txn.session_signature) -m int 1',
    ...SESSION_ALGORITHMS.map((alg) => `acl ${signedWith(alg)} var(txn.session_alg) -m str ${alg}`),
    'acl session_cache_hit var(txn.session_cached) -m int ge 1',
    'acl session_exp_present var(txn.session_exp) -m found',
    'acl session_nbf_present var(txn.session_nbf) -m found',
    'acl session_sid_present var(txn.session_sid) -m found',
    `acl session_expired var(txn.session_exp),add(${s.clockSkewSeconds}),sub(txn.now) -m int le 0`,
    `acl session_expiring var(txn.session_exp),sub(${s.refreshWindowSeconds}),sub(txn.now) -m int le 0`,
    `acl session_not_yet_valid var(txn.session_nbf),sub(${s.clockSkewSeconds}),sub(txn.now) -m int gt 0`,
    `acl session_issuer_valid var(txn.session_claims),json_query('$.${CLAIMS.issuer}') -m str ${s.issuer}`,
    `acl session_audience_valid var(txn.session_claims),json_query('$.${CLAIMS.audience}') -m str ${s.audience}`,
    `acl session_revoked var(txn.session_sid),map(${revokedMap}) -m found`,
    `acl assertion_valid var(txn.assertion_exp),add(${s.clockSkewSeconds}),sub(txn.now) -m int gt 0`,
    `acl session_refreshed var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.refreshed}`,
  );
  f.note("Keys are loaded when the config is parsed, so every slot file is named here literally\n(whatever kind of key it holds: loading does not depend on the algorithm named).");
  for (const slot of SIGNING_KEY_STATUSES) {
    f.add(`http-request set-var(txn.key_slot_loaded) str(x),jwt_verify("${SESSION_ALGORITHMS[0]}","${file(GATEWAY_FILES.sessionKey(slot))}") if FALSE`);
  }
  renderTokenChecks(f, o, kidMap, s.verificationCache, '');

  f.note(
    `Expired, or expiring within ${s.refreshWindowSeconds} s, with a good signature, not revoked, at most ${r.maxExpiredSeconds} s past its exp, and\na refresh cookie: refresh inline (Lua, single flight per refresh cookie), then check the new\ntoken exactly like a cookie. A refresh that starts a call to the auth service counts against\n${r.perClientAddressPerMinute} per client address and ${r.perSessionPerMinute} per sid per minute (joining a running one is free).`,
  );
  f.add(
    `acl session_refreshable_inline var(txn.session_exp),add(${r.maxExpiredSeconds}),sub(txn.now) -m int gt 0`,
    // The cheap, usually false, tests come first; the rest of the refresh rules only look at the result.
    'http-request set-var(txn.refresh_due) bool(1) if session_expiring refresh_cookie_present session_refreshable_inline has_session_token session_signature_valid session_exp_present session_nbf_present session_sid_present session_issuer_valid session_audience_valid !session_revoked',
    'acl refresh_due var(txn.refresh_due) -m bool',
    `http-request set-var(${REFRESH_VARS.cookie}) req.cook(${REFRESH_COOKIE}) if refresh_due`,
    `http-request unset-var(txn.refresh_due) if refresh_due !{ var(${REFRESH_VARS.cookie}) -m len 16:8192 }`,
    `http-request set-var(${REFRESH_VARS.key}) var(${REFRESH_VARS.cookie}),digest(sha256),hex if refresh_due`,
    `http-request set-var(txn.refresh_joins_flight) lua.${REFRESH_JOINS_FETCH} if refresh_due`,
    'acl refresh_joins_flight var(txn.refresh_joins_flight) -m bool',
    `http-request track-sc1 src table ${PROXY_NAMES.refreshByAddress} if refresh_due !refresh_joins_flight`,
    `http-request track-sc2 var(txn.session_sid) table ${PROXY_NAMES.refreshBySession} if refresh_due !refresh_joins_flight`,
    `http-request set-var(${REFRESH_VARS.result}) str(${REFRESH_RESULTS.rateLimited}) if refresh_due !refresh_joins_flight { sc_http_req_rate(1) gt ${r.perClientAddressPerMinute} } || refresh_due !refresh_joins_flight { sc_http_req_rate(2) gt ${r.perSessionPerMinute} }`,
    `http-request set-var(txn.refreshed_from_sub) var(txn.session_claims),json_query('$.${CLAIMS.subject}') if refresh_due`,
    'http-request set-var(txn.refreshed_from_sid) var(txn.session_sid) if refresh_due',
    `http-request lua.${REFRESH_ACTION} if refresh_due !{ var(${REFRESH_VARS.result}) -m found }`,
  );
  renderTokenChecks(f, o, kidMap, false, 'session_refreshed');
  f.note('A refresh must renew the same session: another sub or sid is refused, and its cookies are not set.').add(
    `http-request set-var(txn.session_sub) var(txn.session_claims),json_query('$.${CLAIMS.subject}') if session_refreshed`,
    `http-request set-var(${REFRESH_VARS.result}) str(${REFRESH_RESULTS.mismatch}) if session_refreshed !{ var(txn.session_sid),strcmp(txn.refreshed_from_sid) eq 0 } || session_refreshed !{ var(txn.session_sub),strcmp(txn.refreshed_from_sub) eq 0 }`,
    `acl refresh_mismatch var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.mismatch}`,
    'http-request unset-var(txn.session_signature) if refresh_mismatch',
  );

  f.note('The decision. A valid session takes the short path and leaves the rules with `allow`.').add(
    'acl decided var(txn.decision) -m found',
    'http-request set-var(txn.session_valid) bool(1) if session_signature_valid session_exp_present session_nbf_present session_sid_present !session_expired !session_not_yet_valid session_issuer_valid session_audience_valid !session_revoked',
    'acl session_valid var(txn.session_valid) -m bool',
  );
  const decide = (decision: string, reason: string, condition: string) =>
    f.add(`http-request set-var(txn.decision) str(${decision}) if !decided ${condition}`, `http-request set-var-fmt(txn.reason) "${reason}" if { var(txn.decision) -m str ${decision} } !{ var(txn.reason) -m found }`);
  // Allowed requests get a decision and no reason (as machine-allowed and auth-route): the
  // reason says why a request was refused, and three set-var-fmt rules cost 1% of a request.
  f.add(
    `http-request set-var(txn.decision) str(${DECISIONS.sessionRefreshed}) if session_valid session_refreshed`,
    `http-request set-var(txn.decision) str(${DECISIONS.cacheHit}) if session_valid session_cache_hit !decided`,
    `http-request set-var(txn.decision) str(${DECISIONS.sessionValid}) if session_valid !decided`,
  );

  f.note('Valid: identity headers from the verified claims.');
  const claim = (name: string) => `var(txn.session_claims),json_query('$.${name}')`;
  f.add(
    `http-request set-var(txn.user) ${claim(s.userClaim)} if session_valid`,
    `http-request set-var(txn.auth_method) str(${AUTH_METHODS.session}) if session_valid`,
    `http-request add-header ${HEADERS.user} %[var(txn.user)] if session_valid { var(txn.user) -m found }`,
  );
  const claimHeaders: Array<[string, string]> = [
    [HEADERS.email, CLAIMS.email],
    [HEADERS.groups, CLAIMS.groupsCsv],
    [HEADERS.roles, CLAIMS.rolesCsv],
    ...s.attributeNames.map((name): [string, string] => [attributeHeader(name), attributeClaim(name)]),
  ];
  for (const [header, name] of claimHeaders) {
    const variable = `txn.claim_${name}`;
    f.add(`http-request set-var(${variable}) ${claim(name)} if session_valid`, `http-request add-header ${header} %[var(${variable})] if session_valid { var(${variable}) -m found }`);
  }
  f.add(
    `http-request add-header ${HEADERS.assertion} %[var(${REFRESH_VARS.assertion})] if session_valid assertion_valid`,
    `http-request add-header ${HEADERS.authMethod} ${AUTH_METHODS.session} if session_valid`,
  );
  f.note(`No Looker node up: say so in JSON rather than queueing, with the code ${DECISIONS.lookerUnavailable} that the alarm counts.`).add(
    `http-request set-var(txn.decision) str(${DECISIONS.lookerUnavailable}) if session_valid { nbsrv(${PROXY_NAMES.looker}) lt 1 }`,
    `http-request set-var-fmt(txn.reason) "${NO_LOOKER_SERVER_REASON}" if session_valid { nbsrv(${PROXY_NAMES.looker}) lt 1 }`,
    `http-request return status 503 content-type application/json hdr Cache-Control no-store hdr Retry-After 5 lf-string '{"error":"service_unavailable","code":"${DECISIONS.lookerUnavailable}","reason":"%[var(txn.reason)]","requestId":"%[unique-id]"}' if session_valid { nbsrv(${PROXY_NAMES.looker}) lt 1 }`,
    ...upstreamCookieRules('session_valid'),
    'http-request allow if session_valid',
  );

  f.note('Not valid: say why (the first matching rule wins).');
  decide(DECISIONS.noSession, 'no session cookie', '{ var(txn.session_cookie_count) -m int eq 0 }');
  decide(DECISIONS.malformedSession, 'more than one session cookie', '{ var(txn.session_cookie_count) -m int gt 1 }');
  decide(DECISIONS.malformedSession, 'session cookie too short or too long', '!has_session_token');
  decide(DECISIONS.unknownKey, 'session signed by an unknown key', `{ var(txn.session_token),jwt_header_query('$.kid') -m found } !session_key_known`);
  decide(DECISIONS.refreshRefused, 'the refreshed session has another sub or sid', 'refresh_mismatch');
  decide(DECISIONS.badClaims, `the token is not a session token (typ is not ${SESSION_TOKEN_TYPE})`, '{ var(txn.session_type_wrong) -m bool }');
  decide(DECISIONS.badSignature, 'session signature is invalid', '!session_signature_valid');
  decide(DECISIONS.sessionRevoked, 'session revoked (logged out)', 'session_revoked');
  decide(DECISIONS.refreshRefused, 'too many inline refreshes for this session or client address', `{ var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.rateLimited} }`);
  decide(DECISIONS.refreshRefused, 'too many inline refreshes running on this gateway', `{ var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.busy} }`);
  decide(DECISIONS.refreshRefused, 'session expired and could not be refreshed', `session_expired { var(${REFRESH_VARS.result}) -m found }`);
  decide(DECISIONS.expired, `session expired more than ${r.maxExpiredSeconds} s ago: refreshed by a page load only`, 'session_expired refresh_cookie_present !session_refreshable_inline');
  decide(DECISIONS.expired, 'session expired', 'session_expired');
  decide(DECISIONS.badClaims, 'session has no exp, nbf or sid claim', '!session_exp_present || !decided !session_nbf_present || !decided !session_sid_present');
  decide(DECISIONS.notYetValid, 'session is not valid yet', 'session_not_yet_valid');
  decide(DECISIONS.badClaims, 'session issuer or audience is wrong', 'TRUE');

  f.note(
    'Denied: a browser navigation goes to the login, anything else (XHR, fetch, API, non-GET)\ngets 401 JSON. Sec-Fetch-* headers decide when present, else Accept: text/html on GET/HEAD.\nA navigation whose session is still good but could not be refreshed inline (too old, too\nmany refreshes) goes to the navigation refresh instead, which needs no login.',
  ).add(
    'acl is_get_or_head method GET HEAD',
    'acl is_xhr req.hdr(x-requested-with) -m found',
    'acl has_fetch_metadata req.hdr(sec-fetch-mode) -m found',
    'acl fetch_navigates req.hdr(sec-fetch-mode) -i navigate',
    'acl fetch_wants_document req.hdr(sec-fetch-dest) -i document',
    'acl accepts_html req.fhdr(accept) -m sub -i text/html',
    'http-request set-var(txn.navigation) bool(1) if is_get_or_head !is_xhr !is_api_path has_fetch_metadata fetch_navigates || is_get_or_head !is_xhr !is_api_path has_fetch_metadata fetch_wants_document || is_get_or_head !is_xhr !is_api_path !has_fetch_metadata accepts_html',
    'acl is_navigation var(txn.navigation) -m bool',
    `acl refresh_by_navigation var(txn.decision) -m str ${DECISIONS.expired} ${DECISIONS.refreshRefused}`,
    `http-request redirect location ${AUTH_PATHS.refresh}?${RETURN_TO_PARAM}=%[pathq,url_enc] code 302 if is_navigation refresh_cookie_present refresh_by_navigation !{ var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.refused} ${REFRESH_RESULTS.mismatch} }`,
    `http-request redirect location ${AUTH_PATHS.start}?${RETURN_TO_PARAM}=%[pathq,url_enc] code 302 if is_navigation`,
    `http-request return status 401 content-type application/json hdr Cache-Control no-store lf-string ${jsonError('unauthorized', '%[var(txn.reason)]')}`,
  );

  f.note(
    'Responses: security headers on every answer, and the refreshed cookies when a refresh happened;\nan answer that sets them is never stored by a cache (it would hand the new session to others).',
  );
  if (o.securityHeaders.hstsMaxAgeSeconds > 0) f.add(`http-after-response set-header Strict-Transport-Security "max-age=${o.securityHeaders.hstsMaxAgeSeconds}; includeSubDomains"`);
  f.add('http-after-response set-header X-Content-Type-Options nosniff', 'http-after-response set-header Referrer-Policy strict-origin-when-cross-origin');
  if (o.securityHeaders.frameAncestors.length === 0) {
    f.add('http-after-response set-header X-Frame-Options SAMEORIGIN');
  } else {
    f.add('http-after-response del-header X-Frame-Options', `http-after-response add-header Content-Security-Policy "frame-ancestors 'self' ${o.securityHeaders.frameAncestors.join(' ')}"`);
  }
  f.add(`http-after-response set-header ${HEADERS.requestId} %[unique-id]`);
  const setsCookies = `{ var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.refreshed} } { var(${REFRESH_VARS.setCookiePrefix}1) -m found }`;
  for (let n = 1; n <= MAX_REFRESH_SET_COOKIES; n += 1) {
    const variable = `${REFRESH_VARS.setCookiePrefix}${n}`;
    f.add(`http-after-response add-header Set-Cookie %[var(${variable})] if { var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.refreshed} } { var(${variable}) -m found }`);
  }
  f.add(`http-after-response set-header Cache-Control no-store if ${setsCookies}`, `http-after-response add-header Vary Cookie if ${setsCookies}`);

  f.add('', `use_backend ${PROXY_NAMES.authService} if is_auth_route`, `default_backend ${PROXY_NAMES.looker}`);
  return f;
}

/** The ACL that is true when the session token's header names `alg`. */
function signedWith(alg: string): string {
  return `session_signed_${alg.toLowerCase()}`;
}

/**
 * The session token's signature and claims, and its upstream assertion. With the cache, the
 * pair (session, assertion) is looked up by the SHA-256 of both: an entry means the session's
 * signature and type were good, and its value is 1 (no usable assertion) or the assertion's
 * exp (the assertion's signature, type, audience, issuer, sub and sid were good for this very
 * session). exp, nbf, iss, aud, the kid and the revocation list are still checked on every
 * request. `onlyIf` gates the whole block (the refreshed token: no cache).
 */
function renderTokenChecks(f: Section, o: ResolvedGatewayOptions, kidMap: string, cache: boolean, onlyIf: string): void {
  const s = o.session;
  const when = (condition: string) => ` if ${words(onlyIf, condition)}`;
  const checksNow = cache ? 'session_signature_valid !session_cache_hit' : 'session_signature_valid';
  if (onlyIf) {
    f.note('The refreshed token: the same checks (not cached).');
    for (const variable of ['session_key', 'session_alg', 'session_signature', 'session_cached', 'session_type_wrong', 'session_claims', 'session_exp', 'session_nbf', 'session_sid', 'assertion_signature', 'assertion_claims', 'assertion_exp']) {
      f.add(`http-request unset-var(txn.${variable})${when('')}`);
    }
  }
  f.add(`http-request set-var(txn.session_key) var(txn.session_token),jwt_header_query('$.kid'),map(${kidMap})${when('has_session_token')}`);
  if (cache) {
    f.add(
      // "|" is in neither token's alphabet, so the pair has one spelling.
      `http-request set-var(txn.session_digest) var(txn.session_token),concat(|,${REFRESH_VARS.assertion}),digest(sha256)${when('has_session_token session_key_known')}`,
      `http-request set-var(txn.session_cached) var(txn.session_digest),table_gpt0(${PROXY_NAMES.sessionCache})${when('has_session_token session_key_known')}`,
      `http-request set-var(txn.session_signature) int(1)${when('session_key_known session_cache_hit')}`,
    );
  }
  const verify = cache ? 'session_key_known !session_cache_hit' : 'session_key_known';
  f.add(`http-request set-var(txn.session_alg) var(txn.session_token),jwt_header_query('$.alg')${when(verify)}`);
  for (const alg of SESSION_ALGORITHMS) {
    f.add(`http-request set-var(txn.session_signature) var(txn.session_token),jwt_verify("${alg}",txn.session_key)${when(`${verify} ${signedWith(alg)}`)}`);
  }
  f.add(
    // An upstream assertion (or any other token type) is never a session, whatever its audience.
    `http-request set-var(txn.session_type_wrong) bool(1)${when(`${checksNow} !{ var(txn.session_token),jwt_header_query('$.typ') -m str ${SESSION_TOKEN_TYPE} }`)}`,
    `http-request unset-var(txn.session_signature)${when('{ var(txn.session_type_wrong) -m bool }')}`,
    // Claims are read only once the signature passed; the payload is decoded once here
    // rather than by one jwt_payload_query per claim (base64 decoding was a visible cost).
    // concat() turns the decoded bytes into a string once; json_query would otherwise cast
    // the binary payload to a string again on each call.
    `http-request set-var(txn.session_claims) var(txn.session_token),field(2,.),ub64dec,concat()${when('session_signature_valid')}`,
    `http-request set-var(txn.session_exp) var(txn.session_claims),json_query('$.${CLAIMS.expiresAt}','int')${when('session_signature_valid')}`,
    `http-request set-var(txn.session_nbf) var(txn.session_claims),json_query('$.${CLAIMS.notBefore}','int')${when('session_signature_valid')}`,
    `http-request set-var(txn.session_sid) var(txn.session_claims),json_query('$.${CLAIMS.sessionId}')${when('session_signature_valid')}`,
  );
  const assertionNow = `has_assertion_token ${checksNow}`;
  const assertion = (name: string) => `var(txn.assertion_claims),json_query('$.${name}')`;
  f.add(
    // The assertion is signed by the session's key, so with the session's (pinned) algorithm.
    ...SESSION_ALGORITHMS.map((alg) => `http-request set-var(txn.assertion_signature) var(${REFRESH_VARS.assertion}),jwt_verify("${alg}",txn.session_key)${when(`${assertionNow} ${signedWith(alg)}`)}`),
    `http-request set-var(txn.assertion_claims) var(${REFRESH_VARS.assertion}),field(2,.),ub64dec,concat()${when(`${assertionNow} { var(txn.assertion_signature) -m int 1 }`)}`,
    `http-request set-var(txn.session_sub) var(txn.session_claims),json_query('$.${CLAIMS.subject}')${when(`${assertionNow} { var(txn.assertion_claims) -m found }`)}`,
    `http-request set-var(txn.assertion_exp) var(txn.assertion_claims),json_query('$.${CLAIMS.expiresAt}','int')${when(
      [
        `${assertionNow} { var(txn.assertion_claims) -m found }`,
        `{ var(${REFRESH_VARS.assertion}),jwt_header_query('$.typ') -m str ${ASSERTION_TOKEN_TYPE} }`,
        `{ ${assertion(CLAIMS.audience)} -m str ${assertionAudience(s.audience)} }`,
        `{ ${assertion(CLAIMS.issuer)} -m str ${s.issuer} }`,
        `{ ${assertion(CLAIMS.subject)},strcmp(txn.session_sub) eq 0 }`,
        `{ ${assertion(CLAIMS.sessionId)},strcmp(txn.session_sid) eq 0 }`,
      ].join(' '),
    )}`,
  );
  if (cache) {
    f.add(
      `http-request track-sc0 var(txn.session_digest) table ${PROXY_NAMES.sessionCache}${when(checksNow)}`,
      `http-request sc-set-gpt0(0) 1${when(`${checksNow} !{ var(txn.assertion_exp) -m found }`)}`,
      `http-request sc-set-gpt0(0) var(txn.assertion_exp)${when(`${checksNow} { var(txn.assertion_exp) -m int gt 1 }`)}`,
      `http-request set-var(txn.assertion_exp) var(txn.session_cached)${when('session_cache_hit { var(txn.session_cached) -m int gt 1 }')}`,
    );
  }
}

function renderMachineRules(f: Section, o: ResolvedGatewayOptions, file: (relative: string) => string, machineCondition: string): void {
  f.note('5. Machine clients: a verified client certificate, mapped by its SHA-256 to an identity and a policy.\nNo session cookie is needed or used here.')
    .add(
      `http-request set-var(txn.machine_route) bool(1) if ${machineCondition}`,
      'acl is_machine_route var(txn.machine_route) -m bool',
      'acl client_cert_used ssl_c_used',
      'acl client_cert_verified ssl_c_verify 0',
      'http-request set-var(txn.route) str(machine) if is_machine_route',
      `http-request set-var(txn.machine_identity) var(txn.client_cert_sha256),map(${file(GATEWAY_FILES.machineClientMap)}) if is_machine_route client_cert_used client_cert_verified`,
      'acl machine_identity_known var(txn.machine_identity) -m found',
    );
  o.machineClients.forEach((client, index) => {
    const id = `machine_client_${index}`;
    f.add(
      `acl ${id}_is var(txn.machine_identity) -m str ${client.name}`,
      `acl ${id}_method_allowed method ${client.allowedMethods.join(' ')}`,
      ...pathPrefixAcl(`${id}_path_allowed`, client.allowedPathPrefixes),
      `http-request set-var(txn.machine_allowed) bool(1) if is_machine_route machine_identity_known ${id}_is ${id}_method_allowed ${id}_path_allowed`,
    );
  });
  const deny = (status: number, error: string, reason: string, condition: string) =>
    f.add(
      `http-request set-var(txn.decision) str(${DECISIONS.machineDenied}) if is_machine_route ${condition}`,
      `http-request set-var-fmt(txn.reason) "${reason}" if is_machine_route ${condition}`,
      `http-request return status ${status} content-type application/json hdr Cache-Control no-store lf-string ${jsonError(error, '%[var(txn.reason)]')} if is_machine_route ${condition}`,
    );
  deny(401, 'unauthorized', 'a client certificate is required on this route', '!client_cert_used');
  deny(403, 'forbidden', 'the client certificate is not trusted (verify error %[ssl_c_verify])', '!client_cert_verified');
  deny(403, 'forbidden', 'the client certificate is not registered', '!machine_identity_known');
  deny(403, 'forbidden', 'the method or path is outside this client policy', `!{ var(txn.machine_allowed) -m bool }`);
  f.add(
    `http-request set-var(txn.decision) str(${DECISIONS.machineAllowed}) if is_machine_route`,
    'http-request set-var(txn.user) var(txn.machine_identity) if is_machine_route',
    `http-request set-var(txn.auth_method) str(${AUTH_METHODS.clientCertificate}) if is_machine_route`,
    `http-request add-header ${HEADERS.user} %[var(txn.machine_identity)] if is_machine_route`,
    `http-request add-header ${HEADERS.authMethod} ${AUTH_METHODS.clientCertificate} if is_machine_route`,
    ...upstreamCookieRules('is_machine_route'),
    'http-request allow if is_machine_route',
  );
}

function renderHealthFrontend(o: ResolvedGatewayOptions): Section {
  const code = DECISIONS.lookerUnavailable;
  const f = new Section(
    `frontend ${PROXY_NAMES.health}`,
    'Liveness, not availability: 200 whenever this gateway works, so the load balancer never replaces\ngateways because Looker is down. Looker\'s state is a metric instead: while no Looker node passes\nits check, every probe is logged with decision ' + code + ' (silent otherwise).',
  );
  if (o.listener.acceptProxyProtocol) {
    f.add(
      '# The load balancer\'s health checks carry the PROXY v2 header too (target group with proxy protocol v2).',
      `bind ${o.healthCheck.bindAddress}:${o.healthCheck.port} accept-proxy`,
    );
  } else {
    f.add(`bind ${o.healthCheck.bindAddress}:${o.healthCheck.port}`);
  }
  if (o.readiness) {
    f.add('# Local readiness probes (the instance\'s own boot check) send no PROXY header: a bind of their own.', `bind ${o.readiness.bindAddress}:${o.readiness.port}`);
  }
  return f.add(
    `acl looker_available nbsrv(${PROXY_NAMES.looker}) gt 0`,
    `http-request set-var(txn.route) str(${HEALTH_ROUTE})`,
    `http-request set-var(txn.decision) str(${code}) if !looker_available`,
    `http-request set-var-fmt(txn.reason) "${NO_LOOKER_SERVER_REASON}" if !looker_available`,
    'http-request set-log-level silent if looker_available',
    `http-request return status 200 content-type application/json string '{"status":"ok","looker":"available"}' if looker_available`,
    `http-request return status 200 content-type application/json string '{"status":"ok","looker":"unavailable","code":"${code}"}'`,
  );
}

function renderMetricsFrontend(o: ResolvedGatewayOptions): Section {
  return new Section(`frontend ${PROXY_NAMES.metrics}`, 'Prometheus metrics (/metrics) and the stats page (/stats), on a private address only.').add(
    `bind ${o.metrics.bindAddress}:${o.metrics.port}`,
    'http-request set-log-level silent',
    'http-request use-service prometheus-exporter if { path /metrics }',
    'stats enable',
    'stats uri /stats',
    'stats refresh 10s',
    'stats show-legends',
  );
}

function renderRefreshRelay(o: ResolvedGatewayOptions): Section {
  return new Section(
    `frontend ${PROXY_NAMES.refreshRelay}`,
    'The Lua code reaches the auth service through this local socket (the inline refresh, the\nrevocation poll), with the same TLS, CA, SNI, Host and path prefix as every other auth request.',
  ).add(
    // The Lua client runs in the workers: with an unprivileged user they must own the socket to connect.
    words(`bind unix@${refreshRelaySocket(o.runtimeDir)} mode 600`, o.process.user && `user ${o.process.user}`),
    `unique-id-format %[req.hdr(${HEADERS.requestId})]`,
    'http-request set-var(txn.route) str(auth)',
    `http-request set-var(txn.decision) str(${DECISIONS.inlineRefresh})`,
    'acl is_inline_refresh_call path ' + AUTH_PATHS.session,
    'acl is_revocation_poll path ' + AUTH_PATHS.revocations,
    `http-request set-var(txn.decision) str(${DECISIONS.revocationPoll}) if is_revocation_poll`,
    `http-request return status 404 content-type application/json string '{"error":"not_found","reason":"the relay only serves the inline refresh and the revocation list"}' unless is_inline_refresh_call METH_POST || is_revocation_poll METH_GET`,
    // A poll every few seconds on every instance: only the failures are worth a log line (the Lua logs them too).
    `http-response set-log-level silent if { var(txn.decision) -m str ${DECISIONS.revocationPoll} } { status 200 }`,
    `default_backend ${PROXY_NAMES.authService}`,
  );
}

function serverTls(file: (relative: string) => string, ca: string, serverName: string, clientCert?: string): string {
  return words('ssl verify required', `ca-file ${file(ca)}`, clientCert && `crt ${file(clientCert)}`, `sni str(${serverName}) verifyhost ${serverName}`);
}

function renderLookerBackend(o: ResolvedGatewayOptions, file: (relative: string) => string): Section {
  const l = o.looker;
  const b = new Section(`backend ${PROXY_NAMES.looker}`, 'Looker over mutual TLS: the fleet\'s client certificate, Looker\'s CA, and its name checked.').add(
    'balance leastconn',
    'option httpchk',
    `http-check send meth GET uri ${l.healthCheckPath} ver HTTP/1.1 hdr Host ${l.tlsServerName}`,
    'http-check expect status 200',
    words(
      'default-server',
      serverTls(file, GATEWAY_FILES.backendCa, l.tlsServerName, GATEWAY_FILES.backendClientCertificate),
      `check check-sni ${l.tlsServerName} inter ${l.healthCheckIntervalSeconds}s fastinter 1s downinter ${l.healthCheckIntervalSeconds}s fall 2 rise 2`,
    ),
  );
  if (l.dnsName) {
    b.add(`server-template looker 1-${l.maxDnsServers} ${l.dnsName}:${l.dnsPort} resolvers ${PROXY_NAMES.resolvers} resolve-prefer ipv4 init-addr last,libc,none`);
  } else {
    l.servers.forEach((server, index) => b.add(`server looker${index + 1} ${server.address}:${server.port}`));
  }
  return b;
}

function renderAuthBackend(o: ResolvedGatewayOptions, file: (relative: string) => string): Section {
  const a = o.authService;
  const b = new Section(
    `backend ${PROXY_NAMES.authService}`,
    'The auth service (private API Gateway through its VPC endpoint): TLS with its CA and name checked.',
  ).add(`http-request set-header Host ${a.host}`);
  if (a.pathPrefix) b.add(`http-request set-path ${a.pathPrefix}%[path]`);
  b.add(words('default-server', serverTls(file, GATEWAY_FILES.authServiceCa, a.serverName)));
  if (a.addresses.length > 0) {
    a.addresses.forEach((address, index) => b.add(`server auth${index + 1} ${address.includes(':') ? `[${address}]` : address}:${a.port}`));
  } else {
    b.add(`server auth1 ${a.dnsName}:${a.port} resolvers ${PROXY_NAMES.resolvers} resolve-prefer ipv4 init-addr last,libc,none`);
  }
  return b;
}

function renderTables(o: ResolvedGatewayOptions): string {
  const tables = [
    new Section(`backend ${PROXY_NAMES.authRateLimit}`, `Request rate per client address on ${AUTH_PATH_PREFIX}*.`).add(
      `stick-table type ipv6 size 100k expire ${Math.max(60, o.authRateLimit.periodSeconds * 2)}s store http_req_rate(${o.authRateLimit.periodSeconds}s)`,
    ),
    new Section(`backend ${PROXY_NAMES.refreshByAddress}`, 'Inline refreshes started per client address (a refresh that joins a running one is not counted).').add(
      'stick-table type ipv6 size 100k expire 2m store http_req_rate(60s)',
    ),
    new Section(`backend ${PROXY_NAMES.refreshBySession}`, 'Inline refreshes started per session id (sid).').add('stick-table type string len 64 size 100k expire 2m store http_req_rate(60s)'),
  ];
  if (o.session.verificationCache) {
    tables.push(
      new Section(
        `backend ${PROXY_NAMES.sessionCache}`,
        'Session tokens whose signature (and type) was verified, keyed by the SHA-256 of the token and\nits assertion. gpt0 is 1, or the assertion\'s exp when the assertion was good for this session.\nexp, nbf, iss, aud, the kid and the revocation list are checked on every request.',
      ).add(`stick-table type binary len 32 size ${o.session.verificationCacheSize} expire 15m store gpt0`),
    );
  }
  return tables.map(String).join('\n\n');
}
