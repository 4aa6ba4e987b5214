/**
 * The process-wide sections of haproxy.cfg: global (master-worker, TLS defaults, the Lua
 * action's HTTP client), defaults (timeouts, the JSON log line) and the DNS resolvers.
 */
import { GATEWAY_FILES } from '../layout';
import { LOG_FORMAT } from './logging';
import { adminSocket, PROXY_NAMES } from './names';
import { LogDestination } from './options';
import { ConfigPath, Section } from './section';
import { ResolvedGatewayOptions } from './validate';

const BIND_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
/** Inactivity timeout of everything but Looker's traffic (client, server, tunnel), seconds. */
export const SHORT_TIMEOUT_SECONDS = 30;

const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

export function renderGlobal(o: ResolvedGatewayOptions, file: ConfigPath): Section {
  const log =
    o.logging.destination === LogDestination.STDOUT
      ? `log stdout len 16384 format raw ${o.logging.facility}`
      : `log ${o.logging.target} len 16384 format rfc5424 ${o.logging.facility}`;
  const section = new Section('global', 'Process-wide settings. Started as `haproxy -Ws` (master-worker); key-sync reloads it seamlessly.').add(
    'master-worker',
    `nbthread ${o.process.nbthread}`,
    ...(o.process.maxconn === undefined ? [] : [`maxconn ${o.process.maxconn}`]),
    log,
    `stats socket ${adminSocket(o.runtimeDir)} mode 600 level admin expose-fd listeners`,
    'stats timeout 30s',
  );
  if (o.process.user || o.process.group) {
    section
      .note(
        'Workers drop to an unprivileged user once the master has bound the listeners and read the\nkeys; the master keeps root, so reloads still bind, read the new files and pass the sockets on.',
      )
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
    .add(
      `lua-load ${file(GATEWAY_FILES.refreshLua)}`,
      'httpclient.resolvers.disabled on',
      'httpclient.retries 0',
      `httpclient.timeout.connect ${o.refresh.timeoutSeconds}s`,
    )
    .note(
      'HAProxy 3.0 still tags its `http-request normalize-uri` actions experimental; the gateway\nnormalizes every path with them before routing (see frontend gateway, section 2).',
    )
    .add('expose-experimental-directives');
}

export function renderDefaults(): Section {
  return new Section(
    'defaults',
    "Short timeouts for every listener and backend: Looker's hour-long ones are set where Looker is\n(the public listener and Looker's backend), so health, metrics, relay and redirect connections\nthat go quiet are closed in seconds.",
  )
    .add(
      'mode http',
      'log global',
      'option dontlognull',
      'option redispatch 1',
      'retries 2',
      'retry-on conn-failure',
      'timeout connect 5s',
      `timeout client ${SHORT_TIMEOUT_SECONDS}s`,
      `timeout server ${SHORT_TIMEOUT_SECONDS}s`,
      `timeout tunnel ${SHORT_TIMEOUT_SECONDS}s`,
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

export function renderResolvers(o: ResolvedGatewayOptions): Section {
  const section = new Section(`resolvers ${PROXY_NAMES.resolvers}`, 'DNS for servers found by name at run time (Looker nodes, the auth service endpoint).');
  if (o.resolvers.useResolvConf) section.add('parse-resolv-conf');
  o.resolvers.nameservers.forEach((server, index) => section.add(`nameserver dns${index + 1} ${server}`));
  return section.add('resolve_retries 3', 'timeout resolve 1s', 'timeout retry 1s', 'hold valid 10s', 'hold obsolete 30s', 'accepted_payload_size 8192');
}
