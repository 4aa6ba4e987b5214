/**
 * The JSON field names the metric filters and saved queries read: the access-log fields
 * come from the renderer's LOG_FIELDS (checked here, so a renamed field fails at synth
 * rather than silently breaking a metric filter).
 */
import { DECISIONS, LOG_FIELDS } from './haproxy/logging';
import { REFRESH_RESULTS } from './haproxy/lua';
import { PROXY_NAMES } from './haproxy/names';

function accessLogField<N extends string>(name: N): N {
  if (!LOG_FIELDS.some(([field]) => field === name)) {
    throw new Error(`Internal: the HAProxy access log has no field ${JSON.stringify(name)}; update core/log-fields.ts to the renderer's LOG_FIELDS.`);
  }
  return name;
}

export const ACCESS_LOG_FIELDS = {
  requestId: accessLogField('request_id'),
  user: accessLogField('user'),
  method: accessLogField('method'),
  path: accessLogField('path'),
  status: accessLogField('status'),
  reason: accessLogField('reason'),
  decision: accessLogField('decision'),
  route: accessLogField('route'),
  frontend: accessLogField('frontend'),
  totalTime: accessLogField('time_total_ms'),
  refresh: accessLogField('refresh'),
} as const;

/**
 * The decision (a code, not a sentence) HAProxy logs while no Looker node passes its health
 * check: on users' 503s and on every load balancer health check (the renderer's own constant).
 */
export const LOOKER_UNAVAILABLE_DECISION = DECISIONS.lookerUnavailable;

/**
 * The listener of users' requests. The access log also holds the health listener's lines
 * (while Looker is down), the relay's (inline refreshes, revocation polls) and the Lua
 * code's own events: none of them is a user request.
 */
export const PUBLIC_FRONTEND = PROXY_NAMES.gateway;

/**
 * Fields of the auth service's audit events (lambda/auth writes them through
 * lambda/shared/audit.ts, one raw JSON line each; lib/ may not import lambda/, so
 * test/constructs/log-fields.test.ts checks these names against that logger).
 */
export const AUDIT_EVENT_FIELDS = {
  type: 'type',
  event: 'event',
  outcome: 'outcome',
  requestId: 'requestId',
  subject: 'user.sub',
  reason: 'reason',
} as const;

export const AUDIT_EVENTS = {
  audit: 'audit',
  login: 'login',
  refresh: 'refresh',
  success: 'success',
  /** The reason audited when the IdP refuses the auth service's client credential (`invalid_client`). */
  idpClientAuthFailed: 'idp-client-auth-failed',
} as const;

/**
 * The access log's `refresh` results that are failures (core/haproxy/lua.ts REFRESH_RESULTS
 * but `refreshed`): the auth service unreachable or slow (failed), its refusal (refused), too
 * many refreshes (busy, rate-limited), a refreshed session for someone else (mismatch).
 */
export const INLINE_REFRESH_FAILURES = [
  REFRESH_RESULTS.failed,
  REFRESH_RESULTS.refused,
  REFRESH_RESULTS.busy,
  REFRESH_RESULTS.rateLimited,
  REFRESH_RESULTS.mismatch,
] as const;
