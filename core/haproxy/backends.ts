/**
 * Where requests go: Looker over mutual TLS, the auth service over TLS, and the stick
 * tables (rate limits, the verification cache) the frontend tracks into.
 */
import { GATEWAY_FILES } from '../layout';
import { AUTH_PATH_PREFIX } from '../session-contract';
import { API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS, AUTH_SERVICE_TIMEOUT_SECONDS } from '../timeouts';
import { PROXY_NAMES } from './names';
import { ConfigPath, Section, words } from './section';
import { ResolvedGatewayOptions } from './validate';

function serverTls(file: ConfigPath, ca: string, serverName: string, clientCert?: string): string {
  return words('ssl verify required', `ca-file ${file(ca)}`, clientCert && `crt ${file(clientCert)}`, `sni str(${serverName}) verifyhost ${serverName}`);
}

export function renderLookerBackend(o: ResolvedGatewayOptions, file: ConfigPath): Section {
  const l = o.looker;
  const b = new Section(
    `backend ${PROXY_NAMES.looker}`,
    "Looker over mutual TLS: the fleet's client certificate, Looker's CA, and its name checked. Looker\nruns long queries and websockets: server and tunnel timeouts of at least an hour.",
  ).add(
    `timeout server ${l.timeoutSeconds}s`,
    `timeout tunnel ${l.timeoutSeconds}s`,
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
    b.add(
      `server-template looker 1-${l.maxDnsServers} ${l.dnsName}:${l.dnsPort} resolvers ${PROXY_NAMES.resolvers} resolve-prefer ipv4 init-addr last,libc,none`,
    );
  } else {
    l.servers.forEach((server, index) => b.add(`server looker${index + 1} ${server.address}:${server.port}`));
  }
  return b;
}

export function renderAuthBackend(o: ResolvedGatewayOptions, file: ConfigPath): Section {
  const a = o.authService;
  const b = new Section(
    `backend ${PROXY_NAMES.authService}`,
    'The auth service (private API Gateway through its VPC endpoint): TLS with its CA and name checked.',
  )
    .note(
      `API Gateway answers within ${API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS} s (its integration limit) or gives up with a 504 of its own: waiting\nlonger is waiting on a dead connection. Its own value, tied to that limit (not Looker's hour).`,
    )
    .add(`timeout server ${AUTH_SERVICE_TIMEOUT_SECONDS}s`, `http-request set-header Host ${a.host}`);
  if (a.pathPrefix) b.add(`http-request set-path ${a.pathPrefix}%[path]`);
  b.add(words('default-server', serverTls(file, GATEWAY_FILES.authServiceCa, a.serverName)));
  if (a.addresses.length > 0) {
    a.addresses.forEach((address, index) => b.add(`server auth${index + 1} ${address.includes(':') ? `[${address}]` : address}:${a.port}`));
  } else {
    b.add(`server auth1 ${a.dnsName}:${a.port} resolvers ${PROXY_NAMES.resolvers} resolve-prefer ipv4 init-addr last,libc,none`);
  }
  return b;
}

export function renderTables(o: ResolvedGatewayOptions): string {
  const tables = [
    new Section(`backend ${PROXY_NAMES.authRateLimit}`, `Request rate per client address on ${AUTH_PATH_PREFIX}*.`).add(
      `stick-table type ipv6 size 100k expire ${Math.max(60, o.authRateLimit.periodSeconds * 2)}s store http_req_rate(${o.authRateLimit.periodSeconds}s)`,
    ),
    new Section(
      `backend ${PROXY_NAMES.refreshByAddress}`,
      'Inline refreshes per client address: calls started (gpc0) and calls that failed (gpc1); a refresh\nthat joins a running one, or is refused, is not counted.',
    ).add('stick-table type ipv6 size 100k expire 2m store gpc_rate(2,60s)'),
    new Section(`backend ${PROXY_NAMES.refreshBySession}`, 'Inline refreshes per session id (sid): calls started (gpc0) and calls that failed (gpc1).').add(
      'stick-table type string len 64 size 100k expire 2m store gpc_rate(2,60s)',
    ),
  ];
  if (o.session.verificationCache) {
    tables.push(
      new Section(
        `backend ${PROXY_NAMES.sessionCache}`,
        "Session tokens whose signature (and type) was verified, keyed by the SHA-256 of the token and\nits assertion. gpt0 is 1, or the assertion's exp when the assertion was good for this session.\nexp, nbf, iss, aud, the kid and the revocation list are checked on every request.",
      ).add(`stick-table type binary len 32 size ${o.session.verificationCacheSize} expire 15m store gpt0`),
    );
  }
  return tables.map(String).join('\n\n');
}
