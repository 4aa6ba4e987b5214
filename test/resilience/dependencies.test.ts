/**
 * The gateway under load while what it depends on fails: the auth service (hung, throttled by
 * API Gateway, slower than the inline refresh's timeout), the IdP (hung), and a logout in the
 * middle of it all. One rig (dev/resilience/rig.ts: the real HAProxy 3.0 twice, the auth
 * service's bundle in its own process, the dev IdP, two Looker nodes) and one load of 20
 * sessions that refresh inline every few seconds, plus a login a second, for the whole file;
 * the tests run in order, each a phase of that load. The long version with figures is
 * `npm run bench:resilience` (bench/resilience.ts).
 */
import { AUTH_PATHS, DEFAULT_REVOCATION_POLL_SECONDS, REFRESH_COOKIE, SESSION_COOKIE } from '../../core/session-contract';
import { AUTH_SLOWER_THAN_REFRESH_MS } from '../../dev/resilience/faults';
import { inPhase, LoadRecord } from '../../dev/resilience/load';
import { DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS } from '../../core/timeouts';
import { CONNECTIONS, SHORT_SESSIONS, describeRecords, notOk, phase, sleep, startSuite, Suite, untilEveryConnectionServed, withValidSession } from './support';
import { Template } from 'aws-cdk-lib/assertions';
import { breaches, gatewayAlarms } from '../../dev/aws/alarm';
import { matchesJsonFilterPattern, publishedDataPoints, templateMetricFilters, TemplateMetricFilter } from '../../dev/aws/metric-filter';
import { newGatewayStack } from '../constructs/fixtures';

jest.setTimeout(240_000);

let suite: Suite;
/** The metric filters of the synthesized stack, by metric name (synthesized before anything starts: synthesis blocks the event loop). */
let filters: Record<string, TemplateMetricFilter>;
/** The synthesized alarms' properties, by the name their runbook row has (InlineRefreshFailures, DeniedRate, ...). */
let alarms: Record<string, Record<string, unknown>>;
/** When the first auth-service fault began (epoch ms): the alarm test takes the access log from there, within one alarm period. */
let authFaultsStart = 0;

beforeAll(async () => {
  const resources = (Template.fromStack(newGatewayStack().stack).toJSON() as { Resources: Record<string, { Type: string; Properties: any }> }).Resources;
  filters = Object.fromEntries(templateMetricFilters(resources).map((filter) => [filter.name, filter]));
  alarms = Object.fromEntries(gatewayAlarms(resources).map((alarm) => [alarm.name, alarm.props]));
  suite = await startSuite(230_000);
});

afterAll(async () => {
  await suite?.load.stop();
  await suite?.rig.stop();
});

/** What users saw in one fault phase of the auth service: sessions served while valid, no 5xx, no hang. */
function expectSoftFailure(records: LoadRecord[]): void {
  expect(records.length).toBeGreaterThan(CONNECTIONS);
  const valid = withValidSession(records);
  expect({ failedWhileValid: describeRecords(notOk(valid)) }).toEqual({ failedWhileValid: '' });
  // Past its exp a session that could not be refreshed gets one clear answer: 401 with the reason (an XHR).
  const expired = records.filter((r) => !valid.includes(r));
  expect({ otherThanRefreshRefused: describeRecords(expired.filter((r) => r.status !== 200 && !(r.status === 401 && r.reason))) }).toEqual({
    otherThanRefreshRefused: '',
  });
  expect(records.filter((r) => r.status >= 500 || r.status === 0)).toEqual([]);
}

/** Access-log lines of inline refreshes that failed since `since` (epoch ms). */
/** Every session of the load enters its refresh window within this long (it is refreshed that far before its exp). */
const UNTIL_EVERY_SESSION_REFRESHED_MS = (SHORT_SESSIONS.sessionTtlSeconds - SHORT_SESSIONS.refreshWindowSeconds + 1) * 1000;
/** A fault this long sees refreshes start and reach HAProxy's inline-refresh timeout (and their log lines written). */
const UNTIL_REFRESH_TIMED_OUT_MS = UNTIL_EVERY_SESSION_REFRESHED_MS + (DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS + 1) * 1000;

function failedRefreshLines(since: number): Record<string, unknown>[] {
  return suite.rig.accessLog().filter((line) => line.refresh === 'failed' && Date.parse(String(line.time)) >= since - 1000);
}

/** What a phase looked like, for failure messages: the load's answers and the access log's refresh outcomes, counted. */
function phaseSummary(name: string, since: number): string {
  const count = (values: string[]) => Object.entries(values.reduce<Record<string, number>>((n, v) => ({ ...n, [v]: (n[v] ?? 0) + 1 }), {}));
  const answers = count(inPhase(suite.load.records, name).map((r) => `${r.status} ${r.reason ?? r.error ?? ''}${r.refreshed ? ' (refreshed)' : ''}`));
  const lines = count(
    suite.rig
      .accessLog()
      .filter((line) => Date.parse(String(line.time)) >= since - 1000)
      .map((line) => `${String(line.frontend)} ${String(line.decision)} refresh=${String(line.refresh)} ${String(line.status)}`),
  );
  const left = inPhase(suite.load.records, name).map((r) => (r.sessionExp === undefined ? NaN : Math.round(r.sessionExp - r.at / 1000)));
  return `phase ${name}: answers ${JSON.stringify(answers)}; session seconds left from ${Math.min(...left)} to ${Math.max(...left)}; access log ${JSON.stringify(lines)}`;
}

function expectFailedRefreshes(name: string, since: number): void {
  if (failedRefreshLines(since).length === 0) throw new Error(`no inline refresh failed during the fault. ${phaseSummary(name, since)}`);
}

test('steady state: every request of every session is served', async () => {
  await phase(suite.load, 'steady', 3000);
  const records = inPhase(suite.load.records, 'steady');
  expect(records.length).toBeGreaterThan(CONNECTIONS);
  expect(describeRecords(notOk(records))).toBe('');
});

describe('the auth service fails', () => {
  test('hung (SIGSTOP): sessions are served while valid, the inline refresh gives up, no 5xx; all refresh again once it is back', async () => {
    const auth = suite.rig.auth.current().child;
    const fault = await phase(suite.load, 'auth-stopped', UNTIL_REFRESH_TIMED_OUT_MS, async () => {
      auth.kill('SIGSTOP');
    });
    authFaultsStart = fault.start;
    auth.kill('SIGCONT');
    suite.load.phase('auth-back');
    expectSoftFailure(inPhase(suite.load.records, 'auth-stopped'));
    expectFailedRefreshes('auth-stopped', fault.start);
    await untilEveryConnectionServed(suite.load, 'auth-back', CONNECTIONS, 30_000);
  });

  test('throttled by API Gateway (429 Too Many Requests): the same', async () => {
    const fault = await phase(suite.load, 'auth-throttled', 7000, () => suite.rig.auth.setMode('throttled'));
    await suite.rig.auth.setMode('normal');
    suite.load.phase('auth-unthrottled');
    expectSoftFailure(inPhase(suite.load.records, 'auth-throttled'));
    const relayed = suite.rig
      .accessLog()
      .filter((line) => line.frontend === 'refresh_relay' && line.status === 429 && Date.parse(String(line.time)) >= fault.start - 1000);
    expect(relayed.length).toBeGreaterThan(0);
    // Logins meanwhile get the gateway's answer (a code and a reason), not API Gateway's bare {"message"}.
    const logins = suite.rig
      .accessLog()
      .filter((line) => line.frontend === 'gateway' && line.status === 429 && Date.parse(String(line.time)) >= fault.start - 1000);
    expect(logins.filter((line) => line.decision === 'auth-throttled').length).toBeGreaterThan(0);
    expect(logins.filter((line) => line.decision === 'auth-route')).toEqual([]);
    await untilEveryConnectionServed(suite.load, 'auth-unthrottled', CONNECTIONS, 30_000);
  });

  test(`slower than the inline refresh timeout (${AUTH_SLOWER_THAN_REFRESH_MS / 1000} s against ${DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS} s): the same`, async () => {
    const fault = await phase(suite.load, 'auth-slow', UNTIL_REFRESH_TIMED_OUT_MS, () => suite.rig.auth.setMode('slow', AUTH_SLOWER_THAN_REFRESH_MS));
    await suite.rig.auth.setMode('normal');
    suite.load.phase('auth-fast-again');
    expectSoftFailure(inPhase(suite.load.records, 'auth-slow'));
    expectFailedRefreshes('auth-slow', fault.start);
    await untilEveryConnectionServed(suite.load, 'auth-fast-again', CONNECTIONS, 30_000);
  });

  test('answering in 2 s (within the inline refresh timeout): every refresh works, and its token is good at once (the clock is read again after the refresh)', async () => {
    const slow = await phase(suite.load, 'auth-2s', UNTIL_EVERY_SESSION_REFRESHED_MS + 2000, () => suite.rig.auth.setMode('slow', 2000));
    await suite.rig.auth.setMode('normal');
    const records = inPhase(suite.load.records, 'auth-2s');
    if (!records.some((r) => r.refreshed)) throw new Error(`no session was refreshed. ${phaseSummary('auth-2s', slow.start)}`);
    // The old rule refused the refreshed token as not yet valid (its nbf is 2 s after the clock read before the refresh).
    expect(describeRecords(records.filter((r) => r.reason === 'session is not valid yet'))).toBe('');
    expect(describeRecords(notOk(withValidSession(records)))).toBe('');
  });

  test('the alarms move: the synthesized InlineRefreshFailures alarm fires on the access log of these faults; the Denied filter (DeniedRate) counts the 401s of sessions that expired; refreshes that worked count in neither', () => {
    expect(authFaultsStart).toBeGreaterThan(0);
    // The faults above ran one after another within a minute: one period of the alarm (5 min).
    const period = Number(alarms.InlineRefreshFailures.Period);
    const lines = suite.rig
      .accessLog()
      .filter((line) => Date.parse(String(line.time)) >= authFaultsStart - 1000 && Date.parse(String(line.time)) < authFaultsStart + period * 1000)
      .map((line) => JSON.stringify(line));
    const inline = filters.InlineRefreshFailures;
    const countedInline = lines.filter((line) => matchesJsonFilterPattern(inline.pattern, line)).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(countedInline.filter((line) => line.refresh === 'failed').length).toBeGreaterThan(0);
    expect(countedInline.filter((line) => line.refresh === 'refreshed' || line.frontend !== 'gateway')).toEqual([]);
    expect(breaches(alarms.InlineRefreshFailures, publishedDataPoints(inline, lines))).toBe(true);

    const denied = filters.Denied;
    const countedDenied = lines.filter((line) => matchesJsonFilterPattern(denied.pattern, line)).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(countedDenied.filter((line) => line.decision === 'refresh-refused').length).toBeGreaterThan(0);
    expect(countedDenied.filter((line) => line.refresh === 'refreshed')).toEqual([]);
  });
});

describe('the IdP fails', () => {
  test('hung (SIGSTOP): sessions are served while valid; refreshes fail soft; a login under way gets a clear error within the IdP timeout; all recover', async () => {
    const idp = suite.rig.idp.current().child;
    // A session of its own that expires during the outage (the load's users sign in again after a 401, so their cookies move).
    const expiring = await suite.rig.login(`user-${CONNECTIONS + 1}`, '198.18.9.2');
    expect(expiring.problem).toBeUndefined();
    const expiresAt = sessionExpOf(expiring.cookies) * 1000;
    // A login that reached the IdP before it hung: its callback needs the IdP's token endpoint.
    const half = await suite.rig.beginLogin(`user-${CONNECTIONS + 3}`, '198.18.9.1');
    let callback: { status: number; reason?: string; ms: number } | undefined;
    let expiredNavigation: unknown;
    await phase(suite.load, 'idp-stopped', 9000, async () => {
      idp.kill('SIGSTOP');
      const started = Date.now();
      const answer = await half.finish();
      callback = { status: answer.status, reason: answer.reason, ms: Date.now() - started };
      // A navigation whose session expired during the outage: one clear page, not a loop.
      await sleep(Math.max(0, expiresAt + 1000 - Date.now()));
      expiredNavigation = await suite.rig.followNavigation('/dashboards/1', expiring.cookies, '198.18.9.2');
    });
    idp.kill('SIGCONT');
    suite.load.phase('idp-back');

    expectSoftFailure(inPhase(suite.load.records, 'idp-stopped'));
    expect(callback).toMatchObject({ status: 504, reason: 'idp-timeout' });
    expect(callback!.ms).toBeLessThan(suite.rig.idpTimeoutMs + 5000);
    // The navigation refresh asks the IdP, which does not answer: the "identity provider unavailable" page, after one hop.
    expect(expiredNavigation).toMatchObject({ hops: [expect.stringMatching(/^\/oauth2\/refresh\?/)], final: { status: 504, reason: 'idp-timeout' } });
    await untilEveryConnectionServed(suite.load, 'idp-back', CONNECTIONS, 30_000);
    // New logins work again.
    const after = await suite.rig.login(`user-${CONNECTIONS + 2}`, '198.18.9.3');
    expect(after.problem).toBeUndefined();
  });
});

/** The `exp` of the session cookie among `cookies` (epoch seconds). */
function sessionExpOf(cookies: Record<string, string>): number {
  const token = cookies[SESSION_COOKIE];
  if (!token) throw new Error(`no ${SESSION_COOKIE} cookie among ${Object.keys(cookies).join(', ') || 'none'}`);
  return (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp: number }).exp;
}

test('a logout under load stops that session within the revocation delay; no other request fails', async () => {
  const victim = 0;
  const cookies = suite.load.cookiesOf(victim);
  const client = suite.rig.client(suite.rig.gateways[0].port, '198.18.9.4');
  const logout = await client.request(AUTH_PATHS.logout, {
    method: 'POST',
    headers: {
      cookie: `${SESSION_COOKIE}=${cookies[SESSION_COOKIE]}; ${REFRESH_COOKIE}=${cookies[REFRESH_COOKIE]}`,
      accept: 'application/json',
      'sec-fetch-site': 'same-origin',
    },
  });
  client.close();
  // The signed-out page, or on to the IdP's end-session endpoint.
  expect([200, 302, 303]).toContain(logout.status);
  const loggedOut = Date.now();
  // Both instances poll the list every DEFAULT_REVOCATION_POLL_SECONDS; a poll that started just before the logout misses it.
  await phase(suite.load, 'logout', (DEFAULT_REVOCATION_POLL_SECONDS * 2 + 2) * 1000);
  const records = inPhase(suite.load.records, 'logout');
  const others = records.filter((r) => r.connection !== victim);
  expect(describeRecords(notOk(others))).toBe('');
  const victims = records.filter((r) => r.connection === victim);
  const firstRefused = victims.find((r) => r.status === 401);
  expect(firstRefused).toMatchObject({ reason: 'session revoked (logged out)' });
  expect(firstRefused!.at - loggedOut).toBeLessThan((DEFAULT_REVOCATION_POLL_SECONDS * 2 + 1) * 1000);
  void sleep;
});
