/**
 * Every metric filter of the synthesized template against REAL log lines: the access log of
 * the real haproxy 3.0 running the rendered configuration (dev/gateway-env.ts,
 * with Looker and auth service stand-ins), and the audit events of the bundled auth handler
 * (test/auth/support/bundle.ts, logging in at a real OIDC provider). Filter patterns are
 * evaluated with CloudWatch Logs' documented semantics (dev/aws/metric-filter.ts). Each
 * filter must count at least one line that the situation it watches produced, and none of the
 * lines of a plain successful request; each alarm on one of these metrics, as synthesized,
 * fires on a burst of those lines and not on good requests (dev/aws/alarm.ts).
 *
 * Also checked on the same lines: every access-log line carries a decision code, and every
 * audit event a reason code (kebab-case words, not sentences), which is what the filters match.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { DECISIONS } from '../../core/haproxy/logging';
import { matchesJsonFilterPattern, publishedDataPoints, templateMetricFilters, TemplateMetricFilter } from '../../dev/aws/metric-filter';
import { waitFor } from '../../dev/wait';
import { breaches, singleMetricAlarm } from '../../dev/aws/alarm';
import { nlbHealthCheck } from '../../dev/proxy-protocol';
import { DEFAULT_CLAIMS, GatewayEnv, sessionCookies, startGatewayEnv } from '../../dev/gateway-env';
import { BundledHarness, startBundledHarness } from '../auth/support/bundle';
import { CookieJar, login, request } from '../auth/support/harness';
import { LOGIN_STATE_COOKIE } from '../../core/session-contract';
import { newGatewayStack } from './fixtures';

jest.setTimeout(240_000);

interface Filter extends TemplateMetricFilter {
  readonly group: string;
}

const { stack } = newGatewayStack();
const resources = (Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties: any; Metadata?: any }> }).Resources;
const groupPath = (logicalId: string) => String(resources[logicalId]?.Metadata?.['aws:cdk:path'] ?? '');
const filters: Filter[] = templateMetricFilters(resources).map((filter) => ({
  ...filter,
  group: /\/(\w+)\/Resource$/.exec(groupPath(filter.logGroupId!))![1],
}));

/** What real lines each filter is checked against, and what in those lines it must count. */
const EXPECTED: Record<string, string> = {
  Requests: 'every user request',
  ServerErrors: 'the 503 while no Looker node is up',
  Denied: 'the 401s',
  DeniedByDecision: 'the 401s',
  NoLookerNode: 'the 503 and the health checks while no Looker node is up',
  InlineRefreshFailures: 'the refused inline refresh',
  InlineRefreshFailuresByResult: 'the refused inline refresh',
  RequestTime: 'every user request',
  LoginFailures: 'the callback with a forged state',
  RefreshFailures: 'the refresh with a tampered refresh cookie',
  Logins: 'the successful login',
  AuthFailuresByReason: 'the refused callback and refresh',
  AuthApiThrottled: "API Gateway's access log line of a throttled call",
};
/** Filters whose lines no harness here writes, and why (each is checked against its writer's contract elsewhere). */
const NOT_PRODUCED_HERE: Record<string, string> = {
  AbandonedRotations: "the rotation function's hourly check (test/rotation/stack-updates.test.ts counts its event with this filter's field and value)",
  IdpClientAuthFailures: 'an IdP that refuses the client secret (test/auth/idp-defects.test.ts audits idp-client-auth-failed through the bundled handler)',
};

let env: GatewayEnv;
let auth: BundledHarness;
let successLines: string[] = [];
let accessLines: string[] = [];
let auditLines: string[] = [];
let apiLines: { throttled: string; ok: string };

/**
 * API Gateway cannot run here: its access log lines are made the way it documents it, from the
 * stage's AccessLogSetting.Format in the template with each $context variable replaced by the
 * request's value (API Gateway Developer Guide, "$context variables for data models,
 * authorizers, mapping templates, and CloudWatch access logging": $context.status is the
 * method response status; 429 when the stage's throttling refuses the call).
 */
function apiAccessLogLine(status: number): string {
  const format = Object.values(resources).find((r) => r.Type === 'AWS::ApiGateway::Stage')!.Properties.AccessLogSetting.Format as string;
  const context: Record<string, string> = {
    requestId: 'c0ffee00-0000-4000-8000-000000000001',
    'identity.sourceIp': '10.0.1.25',
    requestTime: '02/Dec/2026:01:23:45 +0000',
    httpMethod: 'POST',
    resourcePath: '/{proxy+}',
    status: String(status),
    protocol: 'HTTP/1.1',
    responseLength: '80',
  };
  return format.replace(/\$context\.([A-Za-z.]+)/g, (variable, name: string) => {
    if (!(name in context)) throw new Error(`the access log format has ${variable}, which this model does not fill in`);
    return context[name];
  });
}

beforeAll(async () => {
  // The gateway: a good request, refusals, a refused inline refresh, then no Looker node at all.
  env = await startGatewayEnv();
  const client = env.client();
  const good = await client.request('/dashboards/1', { headers: { cookie: sessionCookies(await env.mint()) } });
  expect(good.status).toBe(200);
  await waitFor('the access-log line of the good request', 10_000, () =>
    env.logLines().some((l) => l.request_id === good.headers['x-request-id']) ? true : undefined,
  );
  successLines = env
    .logLines()
    .filter((l) => l.request_id === good.headers['x-request-id'])
    .map((l) => JSON.stringify(l));
  expect((await client.request('/api/4.0/user', { headers: { accept: 'application/json' } })).status).toBe(401);
  expect(
    (await client.request('/api/4.0/user', { headers: { accept: 'application/json', cookie: sessionCookies(await env.mint({}, { key: env.keys.unknown })) } }))
      .status,
  ).toBe(401);
  env.auth.refuse = true;
  const refused = await client.request('/api/4.0/user', {
    headers: { accept: 'application/json', cookie: sessionCookies(await env.mint({ ...DEFAULT_CLAIMS }, { expiresIn: -30 }), env.refreshCookie()) },
  });
  expect(refused.status).toBe(401);
  env.auth.refuse = false;
  for (const node of env.looker) await node.close();
  // Once HAProxy's checks have marked every node down (the load balancer's health check says so), as the alarm sees it.
  await waitFor('the health listener to report no Looker node', 30_000, async () =>
    JSON.parse((await nlbHealthCheck({ port: env.ports.health })).body).looker === 'unavailable' ? true : undefined,
  );
  const unavailable = await client.request('/dashboards/2', { headers: { cookie: sessionCookies(await env.mint()) } });
  expect(unavailable.status).toBe(503);
  await waitFor('the access-log line of the 503', 10_000, () =>
    env.logLines().some((l) => l.request_id === unavailable.headers['x-request-id']) ? true : undefined,
  );
  accessLines = env.logLines().map((l) => JSON.stringify(l));

  // The auth service as it deploys: a login, a forged callback, a refresh with a tampered cookie.
  auth = await startBundledHarness();
  const jar = new CookieJar();
  const { callback } = await login(auth.h, jar, 'alice');
  expect(callback.status).toBe(302);
  const forged = new CookieJar();
  const start = await request(auth.h.fetch, forged, `${auth.h.gatewayUrl}/oauth2/start?rd=%2F`);
  expect(forged.get(auth.h.gatewayUrl, LOGIN_STATE_COOKIE)).toBeDefined();
  expect(start.status).toBe(302);
  expect((await request(auth.h.fetch, forged, `${auth.h.gatewayUrl}/oauth2/callback?code=made-up&state=forged-state`)).status).toBe(400);
  const tampered = new CookieJar();
  const refreshAnswer = await request(auth.h.fetch, tampered, `${auth.h.gatewayUrl}/oauth2/session`, {
    method: 'POST',
    headers: { cookie: '__Host-lg_refresh=eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwia2lkIjoiayJ9..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA' },
  });
  expect(refreshAnswer.status).toBe(401);
  auditLines = auth.stdout().filter((line) => line.trim().startsWith('{'));
  apiLines = { throttled: apiAccessLogLine(429), ok: apiAccessLogLine(200) };
});

afterAll(async () => {
  await env?.stop();
  await auth?.stop();
});

test('the template has the filters this test knows, and no other', () => {
  expect(filters.map((f) => f.name).sort()).toEqual([...Object.keys(EXPECTED), ...Object.keys(NOT_PRODUCED_HERE)].sort());
});

test('every filter on the access and audit logs counts the real lines of the situation it watches', () => {
  const linesOf: Record<string, string[]> = { AccessLogs: accessLines, AuditLogs: auditLines, ApiAccessLogs: [apiLines.throttled] };
  const counts = filters
    .filter((f) => EXPECTED[f.name])
    .map((f) => ({
      filter: f.name,
      group: f.group,
      watches: EXPECTED[f.name],
      matched: (linesOf[f.group] ?? []).filter((line) => matchesJsonFilterPattern(f.pattern, line)).length,
    }));
  expect(counts.filter((c) => c.matched === 0)).toEqual([]);
});

test("the auth API's throttling filter counts a 429 and not a 200", () => {
  const throttled = filters.find((f) => f.name === 'AuthApiThrottled')!;
  expect(throttled.group).toBe('ApiAccessLogs');
  expect([matchesJsonFilterPattern(throttled.pattern, apiLines.throttled), matchesJsonFilterPattern(throttled.pattern, apiLines.ok)]).toEqual([true, false]);
});

test('a plain good request counts as a request and its time, and in no failure filter', () => {
  const accessFilters = filters.filter((f) => f.group === 'AccessLogs');
  const matched = accessFilters.filter((f) => successLines.some((line) => matchesJsonFilterPattern(f.pattern, line))).map((f) => f.name);
  expect(matched.sort()).toEqual(['RequestTime', 'Requests']);
});

test('every access-log line carries a decision code, and every audit event a reason code', () => {
  const codes = new Set<string>(Object.values(DECISIONS));
  const decisions = accessLines.map((line) => JSON.parse(line).decision as string);
  expect(decisions.filter((decision) => !codes.has(decision))).toEqual([]);
  const audits = auditLines.map((line) => JSON.parse(line)).filter((event) => event.type === 'audit');
  expect(audits.length).toBeGreaterThanOrEqual(3);
  expect(audits.map((event) => event.reason).filter((reason) => typeof reason !== 'string' || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(reason))).toEqual([]);
});

test('every alarm on one log metric fires on a burst of the real lines it watches, and not on good requests alone', () => {
  const linesOf: Record<string, string[]> = { AccessLogs: accessLines, AuditLogs: auditLines, ApiAccessLogs: [apiLines.throttled] };
  const alarms = Object.values(resources)
    .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
    .map((r) => r.Properties)
    .filter((props) => !props.Metrics || props.Metrics.length === 1)
    .map((props) => ({ props, metric: singleMetricAlarm(props) }))
    .flatMap(({ props, metric }) => {
      const filter = filters.find((f) => f.name === metric.MetricName && f.namespace === metric.Namespace);
      return filter ? [{ props, filter }] : [];
    });
  expect(alarms.map((a) => a.filter.name).sort()).toEqual(
    ['AbandonedRotations', 'AuthApiThrottled', 'IdpClientAuthFailures', 'InlineRefreshFailures', 'LoginFailures', 'NoLookerNode', 'RefreshFailures'].sort(),
  );
  const outcomes = alarms
    .filter((a) => !NOT_PRODUCED_HERE[a.filter.name])
    .map(({ props, filter }) => {
      const situation = linesOf[filter.group].filter((line) => matchesJsonFilterPattern(filter.pattern, line));
      // The situation repeated until one period holds more matching lines than the threshold, among the good requests' lines.
      const copies = Math.floor(props.Threshold / Math.max(situation.length, 1)) + 1;
      const burst = [...Array.from({ length: copies }, () => situation).flat(), ...successLines];
      const quiet = Array.from({ length: 200 }, () => successLines).flat();
      return {
        alarm: filter.name,
        situationLines: situation.length > 0,
        firesOnBurst: breaches(props, publishedDataPoints(filter, burst)),
        firesOnGoodRequests: breaches(props, publishedDataPoints(filter, quiet)),
      };
    });
  expect(outcomes).toEqual(outcomes.map((o) => ({ alarm: o.alarm, situationLines: true, firesOnBurst: true, firesOnGoodRequests: false })));
});
