/**
 * The fields the metric filters and saved queries read exist in what the services write:
 * the auth service's audit logger (lambda/shared/audit.ts) and HAProxy's access log format.
 */
import { LOG_FIELDS } from '../../core/haproxy/logging';
import { ACCESS_LOG_FIELDS, AUDIT_EVENT_FIELDS, AUDIT_EVENTS } from '../../core/log-fields';
import { Logger } from '../../lambda/shared/audit';

function at(record: Record<string, unknown>, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], record);
}

test('audit events carry every field the filters read, with the values they compare', () => {
  const lines: string[] = [];
  new Logger({ write: (line) => lines.push(line) }).audit({
    event: 'login',
    outcome: 'failure',
    reason: 'idp-timeout',
    requestId: 'r-1',
    route: '/oauth2/callback',
    status: 504,
    user: { sub: 'u-1' },
  });
  const record = JSON.parse(lines[0]) as Record<string, unknown>;
  for (const field of Object.values(AUDIT_EVENT_FIELDS)) expect(at(record, field)).toBeDefined();
  expect(record[AUDIT_EVENT_FIELDS.type]).toBe(AUDIT_EVENTS.audit);
  expect(record[AUDIT_EVENT_FIELDS.event]).toBe(AUDIT_EVENTS.login);
});

test('the access log format has every field the filters read', () => {
  const names = LOG_FIELDS.map(([name]) => name);
  for (const field of Object.values(ACCESS_LOG_FIELDS)) expect(names).toContain(field);
});
