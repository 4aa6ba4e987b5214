/**
 * The resilience suite's long version, with figures: the rig of test/resilience (two real
 * HAProxy 3.0 instances, the auth service's bundle in its own process, the dev IdP, two
 * Looker nodes) under a load of 20 keep-alive sessions that refresh inline plus a login a
 * second; each fault of dev/resilience/faults.ts in turn (a quiet spell, the fault for
 * --fault-seconds, then until every session is served again), a logout, then a soak at a
 * steady rate that samples HAProxy (stick tables, pools, worker memory and descriptors) and
 * the auth process (memory, descriptors). Writes bench/results/resilience.json: per fault the
 * requests, failures, p99 latency during the fault and the recovery time.
 *
 *   npm run bench:resilience                       (about 40 min: the soak is 30 min)
 *   npm run bench:resilience -- --soak-minutes 3   (a shorter soak)
 */
import { loadavg, cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { AUTH_PATHS, DEFAULT_REVOCATION_POLL_SECONDS, REFRESH_COOKIE, SESSION_COOKIE } from '../core/session-contract';
import { startResilienceRig, ResilienceRig } from '../dev/resilience/rig';
import { inPhase, recoveryMs, startLoad, summarize, RunningLoad, LoadRecord } from '../dev/resilience/load';
import { EVENTS, FAULTS, haproxyUsage, processUsage } from '../dev/resilience/faults';

const CONNECTIONS = 20;
const USERS = CONNECTIONS + 4;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface FaultFigures {
  readonly fault: string;
  readonly expectation: string;
  readonly requests: number;
  readonly failures: number;
  /** Requests whose session was still valid that failed (what the gateway promises not to do). */
  readonly failuresWhileSessionValid: number;
  readonly failureKinds: Record<string, number>;
  readonly retriedOnNewConnection: number;
  readonly p99DuringFaultMs: number;
  readonly maxDuringFaultMs: number;
  /** From the fault's end to the first request after which all succeeded. */
  readonly recoveryMs: number;
  readonly loginsDuringFault: { readonly attempts: number; readonly failed: number; readonly p99Ms: number };
  /** Users who got a 401 and signed in again (during the fault and until all were served). */
  readonly signedInAgain: number;
  /** What an operator sees: access-log lines during the fault by frontend, status, decision and refresh result, and the auth service's audit lines by event, outcome and reason. */
  readonly operatorSees: { readonly accessLog: Record<string, number>; readonly audit: Record<string, number> };
}

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
}

/** Log lines written between `start` and `end` (epoch ms), as an operator would query them. */
function operatorView(rig: ResilienceRig, start: number, end: number): FaultFigures['operatorSees'] {
  const within = (time: unknown) => {
    const at = Date.parse(String(time));
    return at >= start - 1000 && at <= end + 1000;
  };
  const access = rig.accessLog().filter((line) => within(line.time));
  const audit = rig.auth
    .lines()
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((line) => line.type === 'audit' && within(line.time));
  return {
    accessLog: countBy(access, (l) => [l.frontend, l.status, l.decision || '-', l.refresh ? `refresh=${String(l.refresh)}` : ''].join(' ').trim()),
    audit: countBy(audit, (l) => `${String(l.event)} ${String(l.outcome)} ${String(l.reason ?? '')}`.trim()),
  };
}

function figures(
  rig: ResilienceRig,
  name: string,
  expectation: string,
  load: RunningLoad,
  faultStart: number,
  faultEnd: number,
  recoveryPhase: string,
): FaultFigures {
  const during = inPhase(load.records, name);
  const summary = summarize(during);
  const logins = summarize(inPhase(load.records, name, 'login').filter((r) => r.connection < 0));
  const validFailed = during.filter((r) => r.status !== 200 && r.sessionExp !== undefined && r.at + r.latencyMs < r.sessionExp * 1000);
  return {
    fault: name,
    expectation,
    requests: summary.requests,
    failures: summary.failures,
    failuresWhileSessionValid: validFailed.length,
    failureKinds: summary.failureKinds,
    retriedOnNewConnection: summary.retried,
    p99DuringFaultMs: summary.p99Ms,
    maxDuringFaultMs: summary.maxMs,
    recoveryMs: recoveryMs([...during, ...inPhase(load.records, recoveryPhase)], faultEnd),
    loginsDuringFault: { attempts: logins.requests, failed: logins.failures, p99Ms: logins.p99Ms },
    signedInAgain: [...inPhase(load.records, name, 'login'), ...inPhase(load.records, recoveryPhase, 'login')].filter((r) => r.connection >= 0).length,
    operatorSees: operatorView(rig, faultStart, faultEnd),
  };
}

/** Waits until every connection has had a 200 in `phase`, at most `timeoutMs`; returns whether it happened. */
async function untilAllServed(load: RunningLoad, phase: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      new Set(
        inPhase(load.records, phase)
          .filter((r) => r.status === 200)
          .map((r) => r.connection),
      ).size >=
      CONNECTIONS - 1
    )
      return true;
    await sleep(200);
  }
  return false;
}

async function sample(rig: ResilienceRig): Promise<Record<string, unknown>> {
  const gateways = [];
  for (const gateway of rig.gateways) gateways.push({ name: gateway.name, ...(await haproxyUsage(gateway)) });
  return { at: new Date().toISOString(), gateways, auth: processUsage(rig.auth.current().child.pid!) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'soak-minutes': { type: 'string' }, 'fault-seconds': { type: 'string' }, 'quiet-seconds': { type: 'string' } } });
  const soakMinutes = Number(values['soak-minutes'] ?? 30);
  const faultSeconds = Number(values['fault-seconds'] ?? 30);
  const quietSeconds = Number(values['quiet-seconds'] ?? 10);
  const startedAt = new Date();
  const loadBefore = loadavg();
  const rig = await startResilienceRig({ users: USERS, sessionTtlSeconds: 20, refreshWindowSeconds: 8 });
  const results: FaultFigures[] = [];
  let soak: Record<string, unknown> | undefined;
  let revocation: Record<string, unknown> | undefined;
  const totalMs = (FAULTS.length * (quietSeconds + faultSeconds + 90) + EVENTS.length * (quietSeconds + 90) + 120 + soakMinutes * 60 + 60) * 1000;
  const load = startLoad(rig, {
    connections: CONNECTIONS,
    users: Array.from({ length: USERS }, (_, i) => `user-${i}`),
    durationMs: totalMs,
    requestIntervalMs: 100,
    loginIntervalMs: 1000,
  });
  /** The results so far, written after every fault (and on a failure), so a run that stops keeps what it measured. */
  const write = (complete: boolean) => {
    const result = {
      what: 'faults under load on 127.0.0.1: 20 keep-alive sessions (XHR every 100 ms, refreshed inline; 20 s sessions) plus a login a second, two HAProxy 3.0 instances, the auth bundle, the dev IdP, two Looker nodes',
      command: `npm run bench:resilience -- --soak-minutes ${soakMinutes} --fault-seconds ${faultSeconds} --quiet-seconds ${quietSeconds}`,
      complete,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        loadAverageBefore: loadBefore.map((l) => Number(l.toFixed(2))),
        loadAverageAfter: loadavg().map((l) => Number(l.toFixed(2))),
      },
      faultSeconds,
      faults: results,
      revocation,
      soak,
    };
    writeFileSync(path.join(__dirname, 'results', 'resilience.json'), `${JSON.stringify(result, null, 2)}\n`);
  };
  try {
    await load.started;
    for (const fault of FAULTS) {
      load.phase(`${fault.name}-before`);
      await sleep(quietSeconds * 1000);
      load.phase(fault.name);
      const start = Date.now();
      await fault.inject(rig);
      await sleep(faultSeconds * 1000);
      await fault.heal(rig);
      const end = Date.now();
      load.phase(`${fault.name}-after`);
      await untilAllServed(load, `${fault.name}-after`, 90_000);
      results.push(figures(rig, fault.name, fault.expectation, load, start, end, `${fault.name}-after`));
      console.log(JSON.stringify(results.at(-1)));
      write(false);
    }
    for (const event of EVENTS) {
      load.phase(`${event.name}-before`);
      await sleep(quietSeconds * 1000);
      load.phase(event.name);
      const start = Date.now();
      await event.run(rig);
      // An event "lasts" until the load has gone on for a while after it (sessions refresh across it).
      await sleep(Math.max(5, rig.sessionTtlSeconds) * 1000);
      const end = Date.now();
      load.phase(`${event.name}-after`);
      await untilAllServed(load, `${event.name}-after`, 90_000);
      results.push(figures(rig, event.name, event.expectation, load, start, end, `${event.name}-after`));
      console.log(JSON.stringify(results.at(-1)));
      write(false);
    }
    revocation = await logoutUnderLoad(rig, load);
    console.log(JSON.stringify(revocation));
    write(false);
    soak = await soakRun(rig, load, soakMinutes);
  } finally {
    await load.stop();
    await rig.stop();
  }
  write(true);
  console.log(`wrote bench/results/resilience.json (${results.length} faults, soak ${soakMinutes} min)`);
}

/** Logs one session out through the gateway and measures until its first 401 (session-revoked), and what else failed meanwhile. */
async function logoutUnderLoad(rig: ResilienceRig, load: RunningLoad): Promise<Record<string, unknown>> {
  const victim = 0;
  load.phase('logout');
  const cookies = load.cookiesOf(victim);
  const client = rig.client(rig.gateways[0].port, '198.18.9.4');
  const answer = await client.request(AUTH_PATHS.logout, {
    method: 'POST',
    headers: { cookie: `${SESSION_COOKIE}=${cookies[SESSION_COOKIE]}; ${REFRESH_COOKIE}=${cookies[REFRESH_COOKIE]}`, 'sec-fetch-site': 'same-origin' },
  });
  client.close();
  const loggedOut = Date.now();
  await sleep((DEFAULT_REVOCATION_POLL_SECONDS * 2 + 2) * 1000);
  const records = inPhase(load.records, 'logout');
  const first = records.find((r: LoadRecord) => r.connection === victim && r.status === 401);
  const others = summarize(records.filter((r) => r.connection !== victim));
  return {
    logoutStatus: answer.status,
    revokedAfterMs: first ? first.at - loggedOut : null,
    reason: first?.reason,
    pollSeconds: DEFAULT_REVOCATION_POLL_SECONDS,
    otherRequests: others.requests,
    otherFailures: others.failures,
  };
}

/** The steady soak: samples every 30 s; growth measured from the end of the warm-up (a fifth of the run, at least a minute). */
async function soakRun(rig: ResilienceRig, load: RunningLoad, minutes: number): Promise<Record<string, unknown>> {
  load.phase('soak');
  const samples: Array<Record<string, unknown>> = [];
  const end = Date.now() + minutes * 60_000;
  const warmUpEnd = Date.now() + Math.max(60_000, (minutes * 60_000) / 5);
  samples.push(await sample(rig));
  while (Date.now() < end) {
    await sleep(Math.min(30_000, Math.max(1000, end - Date.now())));
    samples.push(await sample(rig));
  }
  const afterWarmUp = samples.filter((s) => Date.parse(String(s.at)) >= warmUpEnd);
  const first = afterWarmUp[0] ?? samples[0];
  const last = samples[samples.length - 1];
  type Usage = {
    gateways: Array<{ name: string; rssKb: number; fds: number; tables: Record<string, number>; pools: { allocated: number } }>;
    auth: { rssKb: number; fds: number };
  };
  const a = first as unknown as Usage;
  const b = last as unknown as Usage;
  const summary = summarize(inPhase(load.records, 'soak'));
  return {
    minutes,
    requests: summary.requests,
    failures: summary.failures,
    failureKinds: summary.failureKinds,
    p99Ms: summary.p99Ms,
    afterWarmUp: {
      gateways: a.gateways.map((g, i) => ({
        name: g.name,
        rssKb: [g.rssKb, b.gateways[i].rssKb],
        fds: [g.fds, b.gateways[i].fds],
        poolBytesAllocated: [g.pools.allocated, b.gateways[i].pools.allocated],
        tables: Object.fromEntries(Object.keys(g.tables).map((t) => [t, [g.tables[t], b.gateways[i].tables[t]]])),
      })),
      auth: { rssKb: [a.auth.rssKb, b.auth.rssKb], fds: [a.auth.fds, b.auth.fds] },
    },
    samples,
  };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
