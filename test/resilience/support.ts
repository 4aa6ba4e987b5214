/**
 * Shared pieces of the resilience tests: one rig and one load per test file, phases that
 * label the load's records, and the questions the tests ask of those records.
 */
import { startLoad, LoadRecord, RunningLoad, inPhase } from '../../dev/resilience/load';
import { startResilienceRig, ResilienceRig, ResilienceRigOptions } from '../../dev/resilience/rig';

/** Short sessions, so that every connection refreshes inline within seconds. */
export const SHORT_SESSIONS = { sessionTtlSeconds: 12, refreshWindowSeconds: 5 } as const;
export const CONNECTIONS = 12;

export interface Suite {
  rig: ResilienceRig;
  load: RunningLoad;
}

export function users(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `user-${i}`);
}

/** Starts the rig and a load of CONNECTIONS sessions plus a login every second, running for `durationMs` at most. */
export async function startSuite(durationMs: number, options: ResilienceRigOptions = {}): Promise<Suite> {
  const rig = await startResilienceRig({ users: CONNECTIONS + 4, ...SHORT_SESSIONS, ...options });
  const load = startLoad(rig, { connections: CONNECTIONS, users: users(CONNECTIONS + 4), durationMs, requestIntervalMs: 150, loginIntervalMs: 1000 });
  try {
    await load.started;
    return { rig, load };
  } catch (error) {
    await load.stop();
    await rig.stop();
    throw error;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Marks the load's records with `name` for `ms`; returns when the phase began and ended (epoch ms). */
export async function phase(load: RunningLoad, name: string, ms: number, during?: () => Promise<void>): Promise<{ start: number; end: number }> {
  load.phase(name);
  const start = Date.now();
  await Promise.all([sleep(ms), during?.()]);
  return { start, end: Date.now() };
}

/** Requests of a phase whose session was still valid when they were sent (exp counted with the 1 s skew the rig allows). */
export function withValidSession(records: readonly LoadRecord[]): LoadRecord[] {
  return records.filter((r) => r.sessionExp !== undefined && r.at + r.latencyMs < r.sessionExp * 1000);
}

/** A readable line per record, for failure messages. */
export function describeRecords(records: readonly LoadRecord[], limit = 15): string {
  return records
    .slice(0, limit)
    .map(
      (r) =>
        `${r.phase} #${r.connection} :${r.port} ${r.status} ${r.reason ?? r.error ?? ''} ${r.latencyMs} ms exp-in ${r.sessionExp ? Math.round(r.sessionExp - r.at / 1000) : '?'} s`,
    )
    .join('\n');
}

export function notOk(records: readonly LoadRecord[]): LoadRecord[] {
  return records.filter((r) => r.status !== 200);
}

/** Waits (up to `timeoutMs`) until every connection has had a 200 in the current phase; says which did not. */
export async function untilEveryConnectionServed(load: RunningLoad, phaseName: string, connections: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const served = new Set(
      inPhase(load.records, phaseName)
        .filter((r) => r.status === 200)
        .map((r) => r.connection),
    );
    if (served.size >= connections) return;
    if (Date.now() > deadline) {
      const missing = Array.from({ length: connections }, (_, i) => i).filter((i) => !served.has(i));
      const last = missing.map((i) => load.records.filter((r) => r.connection === i).at(-1)).filter((r): r is LoadRecord => r !== undefined);
      throw new Error(`after ${timeoutMs / 1000} s of phase ${phaseName}, connections ${missing.join(', ')} were still not served:\n${describeRecords(last)}`);
    }
    await sleep(100);
  }
}
