/**
 * The JSON field names the metric filters and saved queries read: the access-log fields
 * come from the renderer's LOG_FIELDS (checked here, so a renamed field fails at synth
 * rather than silently breaking a metric filter).
 */
import { LOG_FIELDS, NO_LOOKER_SERVER_REASON } from '../fleet/render-haproxy';

function accessLogField<N extends string>(name: N): N {
  if (!LOG_FIELDS.some(([field]) => field === name)) {
    throw new Error(`Internal: the HAProxy access log has no field ${JSON.stringify(name)}; update lib/observability/log-fields.ts to the renderer's LOG_FIELDS.`);
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
  totalTime: accessLogField('time_total_ms'),
} as const;

/** The reason HAProxy logs with its 503 when no Looker node passes its health check (the renderer's own constant). */
export const NO_LOOKER_NODE_REASON = NO_LOOKER_SERVER_REASON;

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
} as const;
