/**
 * The load driver of the resilience suite and its benchmark: N keep-alive connections, each
 * a browser with a session of its own (logged in through the gateway at the dev IdP) that
 * sends XHRs at a steady pace and keeps the cookies the gateway sets (inline refreshes), plus
 * a trickle of new logins. Every request is recorded: status, the reason code of a refusal
 * (the JSON body's `reason`/`code`), latency, whether the gateway refreshed the session, and
 * the phase the test had marked. Stops on a deadline or when stopped.
 * (Size: one driver, its records and the browser-like retry rules, which read best together.)
 *
 * Clients behave as browsers and the NLB do: a request that fails on a connection before
 * any answer (the instance went away, or closed an idle keep-alive connection under it) is
 * sent once more on a new connection, which the "NLB" gives to an instance that accepts
 * connections. The retry is counted (`retries`), and only the retried outcome counts as
 * what the user saw.
 */
import type { GatewayClient } from '../proxy-client';
import { SESSION_COOKIE } from '../../core/session-contract';
import { reasonOf, type LoginOutcome } from './rig';

export interface LoadTarget {
  livePorts(): number[];
  client(port: number, sourceAddress: string, keepAlive?: boolean): GatewayClient;
  login(user: string, sourceAddress: string, port?: number): Promise<LoginOutcome>;
}

export interface LoadRecord {
  readonly kind: 'request' | 'login';
  /** Connection number (requests), -1 for logins. */
  readonly connection: number;
  /** The gateway instance's port that answered (or failed). */
  readonly port: number;
  /** Start, epoch ms. */
  readonly at: number;
  readonly latencyMs: number;
  /** HTTP status; 0 when no answer came (connection error, timeout). */
  readonly status: number;
  readonly error?: string;
  /** The reason code of a refusal: the JSON body's `reason` or `code`. */
  readonly reason?: string;
  /** The answer set a new session cookie (an inline refresh happened). */
  readonly refreshed: boolean;
  /** Tries on new connections after a failure without an answer. */
  readonly retries: number;
  /** The `exp` (epoch s) of the session cookie the request carried (requests only). */
  readonly sessionExp?: number;
  readonly phase: string;
}

export interface LoadOptions {
  readonly connections: number;
  /** IdP users; the first `connections` are the connections' own, the rest log in as the trickle. */
  readonly users: readonly string[];
  /** Pause between two requests of one connection, ms. @default 100 */
  readonly requestIntervalMs?: number;
  /** Pause between two logins of the trickle, ms (0: none). @default 1000 */
  readonly loginIntervalMs?: number;
  /** How long the load runs at most, ms. */
  readonly durationMs: number;
  /** Longest a login walk may take before it counts as failed, ms. @default 10000 */
  readonly loginTimeoutMs?: number;
  /**
   * After a 401, the connection's user signs in again before its next request (what Looker's
   * page does when its XHRs are refused: the user reloads and lands at the login). Recorded as
   * a `login` record of that connection.
   * @default true
   */
  readonly signInAgainAfter401?: boolean;
}

export interface RunningLoad {
  readonly records: LoadRecord[];
  /** Labels the records from now on. */
  phase(name: string): void;
  /** The cookies connection `i` holds now. */
  cookiesOf(connection: number): Record<string, string>;
  /** Resolves once every connection has logged in and sent its first request. */
  readonly started: Promise<void>;
  /** Stops (or waits for the deadline) and resolves with every record. */
  stop(): Promise<LoadRecord[]>;
}

/** A user's address as the PROXY header carries it: one per connection, as real users have. */
export function sourceAddress(index: number): string {
  return `198.18.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

function applySetCookies(cookies: Record<string, string>, setCookie: string | string[] | undefined): boolean {
  let refreshed = false;
  for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
    const [pair, ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
    if (expired || value === '') delete cookies[name];
    else {
      if (name === SESSION_COOKIE && cookies[name] !== value) refreshed = true;
      cookies[name] = value;
    }
  }
  return refreshed;
}

/** The `exp` claim of a session token (read only: the gateway checks the signature). */
export function expOf(token: string | undefined): number | undefined {
  try {
    const exp = (JSON.parse(Buffer.from(String(token).split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    return undefined;
  }
}

function header(cookies: Record<string, string>): string {
  return Object.entries(cookies)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
}

const LOGIN_CONCURRENCY = 4;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function startLoad(target: LoadTarget, options: LoadOptions): RunningLoad {
  if (options.users.length < options.connections)
    throw new Error(`startLoad: ${options.connections} connections need as many users, got ${options.users.length}`);
  const records: LoadRecord[] = [];
  const deadline = Date.now() + options.durationMs;
  const interval = options.requestIntervalMs ?? 100;
  const loginInterval = options.loginIntervalMs ?? 1000;
  const loginTimeout = options.loginTimeoutMs ?? 10_000;
  let phase = 'start';
  let running = true;
  const jars: Array<Record<string, string>> = [];
  const goingOn = () => running && Date.now() < deadline;
  let nextPort = 0;
  const pickPort = (avoid?: number): number => {
    const live = target.livePorts();
    if (live.length === 0) return avoid ?? 0;
    const choices = live.length > 1 && avoid !== undefined ? live.filter((p) => p !== avoid) : live;
    return choices[nextPort++ % choices.length];
  };

  let startedCount = 0;
  let markStarted: () => void = () => undefined;
  let failStart: (error: Error) => void = () => undefined;
  const started = new Promise<void>((resolve, reject) => {
    markStarted = resolve;
    failStart = reject;
  });

  // Users arrive a few at a time, not all in the same millisecond.
  let loginSlots = LOGIN_CONCURRENCY;
  const waitingForSlot: Array<() => void> = [];
  const withLoginSlot = async <T>(work: () => Promise<T>): Promise<T> => {
    if (loginSlots === 0) await new Promise<void>((resolve) => waitingForSlot.push(resolve));
    else loginSlots -= 1;
    try {
      return await work();
    } finally {
      const next = waitingForSlot.shift();
      if (next) next();
      else loginSlots += 1;
    }
  };

  const connection = async (index: number) => {
    const user = options.users[index];
    const source = sourceAddress(index);
    let port = pickPort();
    // The first sign-in is set-up, not the thing measured: a user tries again (three times) when it fails.
    let login: LoginOutcome = { status: 0, cookies: {}, problem: 'not tried' };
    for (let attempt = 0; attempt < 3 && login.problem; attempt += 1) {
      if (attempt > 0) await sleep(1000);
      login = await withLoginSlot(() => target.login(user, source, port)).catch((error: unknown): LoginOutcome => ({
        status: 0,
        cookies: {},
        problem: (error as Error).message,
      }));
    }
    if (login.problem) {
      running = false;
      failStart(new Error(`connection ${index} (${user}) could not log in: ${login.problem}`));
      return;
    }
    const cookies = { ...login.cookies };
    jars[index] = cookies;
    let client = target.client(port, source, true);
    let first = true;
    let n = 0;
    try {
      while (goingOn()) {
        const at = Date.now();
        const sessionExp = expOf(cookies[SESSION_COOKIE]);
        let retries = 0;
        let record: Omit<LoadRecord, 'latencyMs'> | undefined;
        for (;;) {
          try {
            const answer = await client.request(`/api/4.0/dashboards/${index}-${n++}`, {
              headers: { cookie: header(cookies), accept: 'application/json', 'x-requested-with': 'XMLHttpRequest' },
            });
            const refreshed = applySetCookies(cookies, answer.headers['set-cookie']);
            record = {
              kind: 'request',
              connection: index,
              port,
              at,
              status: answer.status,
              reason: answer.status >= 300 ? reasonOf(answer.body) : undefined,
              refreshed,
              retries,
              phase,
              sessionExp,
            };
          } catch (error) {
            // No answer on this connection: a new one, through the NLB, and once more.
            client.close();
            port = pickPort(port);
            client = target.client(port, source, true);
            if (retries === 0) {
              retries += 1;
              continue;
            }
            record = {
              kind: 'request',
              connection: index,
              port,
              at,
              status: 0,
              error: (error as NodeJS.ErrnoException).code ?? (error as Error).message,
              refreshed: false,
              retries,
              phase,
              sessionExp,
            };
          }
          break;
        }
        records.push({ ...record, latencyMs: Date.now() - at });
        if (record.status === 401 && (options.signInAgainAfter401 ?? true) && goingOn()) {
          const loginAt = Date.now();
          const again = await withLoginSlot(() => target.login(user, source, pickPort())).catch((error: unknown): LoginOutcome => ({
            status: 0,
            cookies: {},
            problem: (error as Error).message,
          }));
          records.push({
            kind: 'login',
            connection: index,
            port,
            at: loginAt,
            latencyMs: Date.now() - loginAt,
            status: again.problem ? again.status : 200,
            error: again.problem?.slice(0, 200),
            refreshed: false,
            retries: 0,
            phase,
          });
          if (!again.problem) {
            for (const name of Object.keys(cookies)) delete cookies[name];
            Object.assign(cookies, again.cookies);
          }
        }
        if (first) {
          first = false;
          startedCount += 1;
          if (startedCount === options.connections) markStarted();
        }
        await sleep(interval);
      }
    } finally {
      client.close();
    }
  };

  const trickle = async () => {
    if (loginInterval <= 0) return;
    const trickleUsers = options.users.slice(options.connections);
    if (trickleUsers.length === 0) return;
    await started.catch(() => undefined);
    let i = 0;
    while (goingOn()) {
      const user = trickleUsers[i % trickleUsers.length];
      const source = sourceAddress(options.connections + (i % trickleUsers.length));
      const port = pickPort();
      const at = Date.now();
      i += 1;
      let outcome: LoginOutcome | Error;
      try {
        let timer: NodeJS.Timeout | undefined;
        outcome = await Promise.race([
          target.login(user, source, port),
          new Promise<Error>((resolve) => (timer = setTimeout(() => resolve(new Error(`no answer within ${loginTimeout} ms`)), loginTimeout))),
        ]).finally(() => clearTimeout(timer));
      } catch (error) {
        outcome = error as Error;
      }
      const latencyMs = Date.now() - at;
      if (outcome instanceof Error) {
        records.push({
          kind: 'login',
          connection: -1,
          port,
          at,
          latencyMs,
          status: 0,
          error: outcome.message.slice(0, 200),
          refreshed: false,
          retries: 0,
          phase,
        });
      } else {
        const answerStatus = outcome.problem ? outcome.status : 200;
        records.push({
          kind: 'login',
          connection: -1,
          port,
          at,
          latencyMs,
          status: answerStatus,
          error: outcome.problem?.slice(0, 200),
          reason: outcome.answer ? reasonOf(outcome.answer.body) : undefined,
          refreshed: false,
          retries: 0,
          phase,
        });
      }
      await sleep(loginInterval);
    }
  };

  const workers = [...Array.from({ length: options.connections }, (_, i) => connection(i)), trickle()];
  const all = Promise.all(workers);
  return {
    records,
    phase: (name) => {
      phase = name;
    },
    cookiesOf: (index) => ({ ...jars[index] }),
    started,
    stop: async () => {
      running = false;
      await all;
      return records;
    },
  };
}

/** What a set of records says: counts, failures (anything but 2xx), p99 latency. */
export interface LoadSummary {
  readonly requests: number;
  readonly failures: number;
  readonly retried: number;
  readonly refreshed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Failures by status and reason, e.g. `401 refresh-refused`. */
  readonly failureKinds: Record<string, number>;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function summarize(records: readonly LoadRecord[]): LoadSummary {
  const failures = records.filter((r) => r.status < 200 || r.status >= 300);
  const failureKinds: Record<string, number> = {};
  for (const r of failures) {
    const kind = `${r.status} ${r.reason ?? r.error ?? ''}`.trim();
    failureKinds[kind] = (failureKinds[kind] ?? 0) + 1;
  }
  const latencies = records.map((r) => r.latencyMs);
  return {
    requests: records.length,
    failures: failures.length,
    retried: records.filter((r) => r.retries > 0).length,
    refreshed: records.filter((r) => r.refreshed).length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    // Not Math.max(...latencies): a 30-minute soak has hundreds of thousands, past the call stack's argument limit.
    maxMs: latencies.reduce((max, ms) => Math.max(max, ms), 0),
    failureKinds,
  };
}

/** Records of one phase (requests only, unless `kind` says otherwise). */
export function inPhase(records: readonly LoadRecord[], phase: string | RegExp, kind: LoadRecord['kind'] = 'request'): LoadRecord[] {
  return records.filter((r) => r.kind === kind && (typeof phase === 'string' ? r.phase === phase : phase.test(r.phase)));
}

/**
 * Recovery time: from `faultEnd` (epoch ms) to the start of the first request after which
 * every request succeeded; 0 when none failed after the fault ended.
 */
export function recoveryMs(records: readonly LoadRecord[], faultEnd: number): number {
  const after = records.filter((r) => r.kind === 'request' && r.at >= faultEnd).sort((a, b) => a.at - b.at);
  let lastFailure = -1;
  after.forEach((r, i) => {
    if (r.status < 200 || r.status >= 300) lastFailure = i;
  });
  if (lastFailure < 0) return 0;
  const next = after[lastFailure + 1];
  return (next ? next.at : after[lastFailure].at + after[lastFailure].latencyMs) - faultEnd;
}
