/**
 * What the gateway says about each request: the decision codes and the JSON access-log
 * fields (metric filters and saved queries read them), and the JSON error answers HAProxy
 * gives on its own.
 */
import { PROXY_NAMES, RENDERED_FILES } from './names';
import { ConfigPath, Section } from './section';

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
  /** API Gateway throttled a request to the auth service (its own 429, not the auth service's). */
  authThrottled: 'auth-throttled',
  /** API Gateway answered a request to the auth service with its own 5xx: the function failed, timed out or could not be invoked. */
  authUnavailable: 'auth-unavailable',
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

/** Statuses HAProxy itself may answer with; each gets a JSON body. */
export const ERROR_STATUSES = [400, 403, 405, 408, 500, 502, 503, 504] as const;

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

export const LOG_FORMAT = `%{+json}o ${LOG_FIELDS.map(([name, expr]) => `%(${name})${expr.startsWith('%') ? expr.slice(1) : expr}`).join(' ')}`;

export function renderErrors(file: ConfigPath): Section {
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
