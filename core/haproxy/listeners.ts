/**
 * The small listeners beside the public one: the load balancer's health check (liveness,
 * not Looker's availability), the local metrics and stats page, and the relay socket the
 * Lua code reaches the auth service through.
 */
import { AUTH_PATHS, HEADERS } from '../session-contract';
import { DECISIONS, NO_LOOKER_SERVER_REASON } from './logging';
import { HEALTH_ROUTE, PROXY_NAMES, refreshRelaySocket } from './names';
import { Section, words } from './section';
import { ResolvedGatewayOptions } from './validate';

/**
 * The small listeners' own limits: a probe or a scrape is one short request, so an idle
 * connection is closed in seconds, and a flood of them cannot take the connections the
 * public listener needs (a frontend without `maxconn` may use all of the process's).
 */
export const SMALL_LISTENER_LIMITS = {
  timeoutSeconds: 10,
  /** The load balancer's probes (a few per target group and zone) and the readiness bind. */
  healthMaxconn: 100,
  metricsMaxconn: 20,
  /** The plain HTTP redirect: browsers that typed the bare name, each answered at once. */
  redirectMaxconn: 1000,
} as const;

/**
 * The small listeners' timeouts and connection limit: inactivity, the wait for a request and
 * the idle time between requests all get the short value, so none of the defaults' longer
 * waits (30 s for a request, 60 s of keep-alive) applies here.
 */
export function smallListenerLimits(maxconn: number): string[] {
  const t = SMALL_LISTENER_LIMITS.timeoutSeconds;
  return [`timeout client ${t}s`, `timeout http-request ${t}s`, `timeout http-keep-alive ${t}s`, `maxconn ${maxconn}`];
}

const SMALL_LISTENER_NOTE = "One short request per connection: idle ones go in seconds, and a flood cannot take the public\nlistener's connections.";

export function renderHealthFrontend(o: ResolvedGatewayOptions): Section {
  const code = DECISIONS.lookerUnavailable;
  const f = new Section(
    `frontend ${PROXY_NAMES.health}`,
    "Liveness, not availability: 200 whenever this gateway works, so the load balancer never replaces\ngateways because Looker is down. Looker's state is a metric instead: while no Looker node passes\nits check, every probe is logged with decision " +
      code +
      ' (silent otherwise).',
  );
  if (o.listener.acceptProxyProtocol) {
    f.add(
      "# The load balancer's health checks carry the PROXY v2 header too (target group with proxy protocol v2).",
      `bind ${o.healthCheck.bindAddress}:${o.healthCheck.port} accept-proxy`,
    );
  } else {
    f.add(`bind ${o.healthCheck.bindAddress}:${o.healthCheck.port}`);
  }
  if (o.readiness) {
    f.add(
      "# Local readiness probes (the instance's own boot check) send no PROXY header: a bind of their own.",
      `bind ${o.readiness.bindAddress}:${o.readiness.port}`,
    );
  }
  f.note(SMALL_LISTENER_NOTE).add(...smallListenerLimits(SMALL_LISTENER_LIMITS.healthMaxconn));
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

export function renderMetricsFrontend(o: ResolvedGatewayOptions): Section {
  return new Section(`frontend ${PROXY_NAMES.metrics}`, 'Prometheus metrics (/metrics) and the stats page (/stats), on a private address only.')
    .add(`bind ${o.metrics.bindAddress}:${o.metrics.port}`)
    .note(SMALL_LISTENER_NOTE)
    .add(...smallListenerLimits(SMALL_LISTENER_LIMITS.metricsMaxconn))
    .add(
      'http-request set-log-level silent',
      'http-request use-service prometheus-exporter if { path /metrics }',
      'stats enable',
      'stats uri /stats',
      'stats refresh 10s',
      'stats show-legends',
    );
}

export function renderRefreshRelay(o: ResolvedGatewayOptions): Section {
  return new Section(
    `frontend ${PROXY_NAMES.refreshRelay}`,
    'The Lua code reaches the auth service through this local socket (the inline refresh, the\nrevocation poll), with the same TLS, CA, SNI, Host and path prefix as every other auth request.',
  ).add(
    // The Lua client runs in the workers: with an unprivileged user they must own the socket to connect.
    words(`bind unix@${refreshRelaySocket(o.runtimeDir)} mode 600`, o.process.user && `user ${o.process.user}`),
    // The defaults' 30 s: the Lua client waits at most refresh.timeoutSeconds (below 30 s) for an answer.
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
