/**
 * npm run bench:proxy — what the session check costs, on loopback, in one run, measured two ways.
 * The scenarios (bench/support/proxy-setup.ts):
 *   plain:            an operator's plain HAProxy TLS reverse proxy: same certificate, ciphers
 *                     and ALPN in, same mTLS out (client certificate, CA, SNI, name check,
 *                     health check), X-Forwarded-For/-Proto, an `option httplog` access line;
 *   gateway:          the rendered gateway config, every request carrying a valid session;
 *   gateway-no-cache: the same with the verification cache off (jwt_verify on every request).
 * The stand-in Looker is a second haproxy (TLS, client certificate required, `http-request
 * return`) so the proxy under test is the bottleneck, not a Node server. Every proxy under
 * test runs one thread (nbthread 1) and logs one line per request to stdout (a pipe this
 * script drains), the gateway's JSON line and plain's httplog line alike.
 *
 * 1. Wall clock (wrk): 2 threads, 50 connections, keep-alive HTTP/1.1; each scenario gets a
 *    2 s warm-up then 10 s measured, the three scenarios interleaved over BENCH_ROUNDS rounds
 *    (default 3) whose medians are reported, so a load change hits all three alike. Also the
 *    CPU time haproxy used per request. Noisy on a shared machine: the load average is kept.
 * 2. Instructions per request (callgrind, bench/support/callgrind.ts): load-independent.
 *    BENCH_PROXY_PARTS=wallclock or =instructions runs one part only.
 * Writes bench/results/proxy.json.
 */
import 'reflect-metadata';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { haproxyCommand, RunningHaproxy, startHaproxy } from '../dev/haproxy';
import { ProxyBenchSetup, writeProxyBenchSetup } from './support/proxy-setup';
import { CALLGRIND_SETTINGS, InstructionResult, countInstructions, valgrindVersion } from './support/callgrind';

const WRK = process.env.WRK ?? '/usr/bin/wrk';
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const DURATION_SECONDS = Number(process.env.BENCH_DURATION_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ONE_CONNECTION_SECONDS = Number(process.env.BENCH_ONE_CONNECTION_SECONDS ?? 5);
const RESULTS = path.join(__dirname, 'results', 'proxy.json');
const PARTS = (process.env.BENCH_PROXY_PARTS ?? 'wallclock,instructions').split(',');

interface WrkResult {
  readonly requestsPerSecond: number;
  /** CPU time (user + system) haproxy spent per request, microseconds: robust to a busy machine. */
  readonly cpuMicrosPerRequest?: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly requests: number;
  /** Non-2xx answers: the setup is broken when there are any. */
  readonly errors: number;
  /** wrk socket errors (connect, read, write, timeout): a sign of an overloaded machine. */
  readonly socketErrors: number;
}

function toMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!match) throw new Error(`Cannot read the wrk latency ${JSON.stringify(value)}`);
  const n = Number(match[1]);
  return { us: n / 1000, ms: n, s: n * 1000, m: n * 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
}

function runWrk(url: string, seconds: number, headers: string[], threads = THREADS, connections = CONNECTIONS): WrkResult {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
  const out = execFileSync(WRK, args, { encoding: 'utf8' });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (!rps || !p50 || !p99 || !total) throw new Error(`Cannot read wrk's output:\n${out}`);
  return {
    requestsPerSecond: Number(rps[1]),
    latencyP50Ms: toMs(p50[1]),
    latencyP99Ms: toMs(p99[1]),
    requests: Number(total[1]),
    errors: Number(non2xx?.[1] ?? 0),
    socketErrors: socketErrors ? socketErrors.slice(1).reduce((n, v) => n + Number(v), 0) : 0,
  };
}

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds used so far by a process and its children (the haproxy master and its worker). */
function processTreeCpuSeconds(rootPid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(entry);
    const parent = Number(fields[1]);
    if (pid === rootPid || parent === rootPid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

function measure(name: string, url: string, headers: string[], pid: number): WrkResult {
  runWrk(url, WARMUP_SECONDS, headers);
  const cpuBefore = processTreeCpuSeconds(pid);
  const measured = runWrk(url, DURATION_SECONDS, headers);
  const result = { ...measured, cpuMicrosPerRequest: Number((((processTreeCpuSeconds(pid) - cpuBefore) * 1e6) / measured.requests).toFixed(1)) };
  if (result.errors > 0)
    throw new Error(`${name}: ${result.errors} non-2xx answers out of ${result.requests}: the setup is broken, the figures would mean nothing.`);
  if (result.socketErrors > 0)
    console.warn(`${name}: ${result.socketErrors} socket errors/timeouts: the machine is overloaded, latency figures are unreliable.`);
  console.log(
    `${name.padEnd(18)} ${result.requestsPerSecond.toFixed(0).padStart(8)} req/s   p50 ${result.latencyP50Ms.toFixed(3)} ms   p99 ${result.latencyP99Ms.toFixed(3)} ms   cpu ${result.cpuMicrosPerRequest} us/req   (load ${loadavg()[0].toFixed(2)})`,
  );
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function medianResult(results: WrkResult[]): WrkResult & { rounds: WrkResult[] } {
  return {
    requestsPerSecond: median(results.map((r) => r.requestsPerSecond)),
    latencyP50Ms: median(results.map((r) => r.latencyP50Ms)),
    latencyP99Ms: median(results.map((r) => r.latencyP99Ms)),
    cpuMicrosPerRequest: median(results.map((r) => r.cpuMicrosPerRequest ?? 0)),
    requests: results.reduce((n, r) => n + r.requests, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    socketErrors: results.reduce((n, r) => n + r.socketErrors, 0),
    rounds: results,
  };
}

interface WallClock {
  readonly loadBefore: number[];
  readonly loadAfter: number[];
  readonly plain: ReturnType<typeof medianResult>;
  readonly gateway: ReturnType<typeof medianResult>;
  readonly gatewayNoCache: ReturnType<typeof medianResult>;
  /** One connection, one request at a time: latency without queueing on a saturated machine. */
  readonly oneConnection: { plain: ReturnType<typeof medianResult>; gateway: ReturnType<typeof medianResult>; gatewayNoCache: ReturnType<typeof medianResult> };
}

/**
 * Latency added per request, without queueing: at 50 connections on 2 cores shared by wrk,
 * the proxy and the backend, p99 measures the queue, not the proxy. One connection sending
 * one request at a time (wrk -t1 -c1) shows what the session check adds to each request.
 */
function measureOneConnection(name: string, url: string, headers: string[]): WrkResult {
  runWrk(url, 1, headers, 1, 1);
  const result = runWrk(url, ONE_CONNECTION_SECONDS, headers, 1, 1);
  if (result.errors > 0) throw new Error(`${name}: ${result.errors} non-2xx answers out of ${result.requests}: the setup is broken.`);
  console.log(
    `${`${name} (1 conn)`.padEnd(27)} ${result.requestsPerSecond.toFixed(0).padStart(8)} req/s   p50 ${result.latencyP50Ms.toFixed(3)} ms   p99 ${result.latencyP99Ms.toFixed(3)} ms`,
  );
  return result;
}

async function wallClock(setup: ProxyBenchSetup): Promise<WallClock> {
  if (spawnSync(WRK, ['--version']).error) throw new Error(`wrk not found at ${WRK}: install it (apt-get install wrk) or set WRK=/path/to/wrk.`);
  const running: RunningHaproxy[] = [];
  try {
    const quiet = async (file: string, port: number) => {
      const haproxy = await startHaproxy(file, [port]);
      haproxy.process.stdout!.removeAllListeners('data');
      haproxy.process.stdout!.resume();
      running.push(haproxy);
      return haproxy.process.pid!;
    };
    const { plain, gateway, gatewayNoCache } = setup.scenarios;
    const plainPid = await quiet(plain.configFile, plain.port);
    const gatewayPid = await quiet(gateway.configFile, gateway.port);
    const noCachePid = await quiet(gatewayNoCache.configFile, gatewayNoCache.port);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const headers = Object.entries(setup.headers).map(([name, value]) => `${name}: ${value}`);
    const loadBefore = loadavg();
    const runs = { plain: [] as WrkResult[], gateway: [] as WrkResult[], gatewayNoCache: [] as WrkResult[] };
    const single = { plain: [] as WrkResult[], gateway: [] as WrkResult[], gatewayNoCache: [] as WrkResult[] };
    for (let round = 1; round <= ROUNDS; round += 1) {
      console.log(`round ${round} of ${ROUNDS}`);
      runs.plain.push(measure('plain', `https://127.0.0.1:${plain.port}/`, headers, plainPid));
      runs.gateway.push(measure('gateway', `https://127.0.0.1:${gateway.port}/`, headers, gatewayPid));
      runs.gatewayNoCache.push(measure('gateway-no-cache', `https://127.0.0.1:${gatewayNoCache.port}/`, headers, noCachePid));
      single.plain.push(measureOneConnection('plain', `https://127.0.0.1:${plain.port}/`, headers));
      single.gateway.push(measureOneConnection('gateway', `https://127.0.0.1:${gateway.port}/`, headers));
      single.gatewayNoCache.push(measureOneConnection('gateway-no-cache', `https://127.0.0.1:${gatewayNoCache.port}/`, headers));
    }
    return {
      loadBefore,
      loadAfter: loadavg(),
      plain: medianResult(runs.plain),
      gateway: medianResult(runs.gateway),
      gatewayNoCache: medianResult(runs.gatewayNoCache),
      oneConnection: { plain: medianResult(single.plain), gateway: medianResult(single.gateway), gatewayNoCache: medianResult(single.gatewayNoCache) },
    };
  } finally {
    for (const haproxy of running) await haproxy.stop();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-bench-'));
  let standIn: RunningHaproxy | undefined;
  try {
    // Health checks every 300 s: none falls inside a callgrind window (one every 5 s would
    // not change the wall-clock figures either: one handshake per 5 s).
    const setup = await writeProxyBenchSetup(dir, 300);
    standIn = await startHaproxy(setup.standInConfig, [setup.standInPort]);
    const wall = PARTS.includes('wallclock') ? await wallClock(setup) : undefined;
    const instructions = PARTS.includes('instructions') ? await countInstructions(setup, dir) : undefined;

    const round = (n: number, digits = 3) => Number(n.toFixed(digits));
    const ir = (name: 'plain' | 'gateway' | 'gatewayNoCache'): InstructionResult | undefined => instructions?.[name];
    const scenario = (name: 'plain' | 'gateway' | 'gatewayNoCache') => ({
      ...(wall ? wall[name] : {}),
      instructionsPerRequest: ir(name)?.instructionsPerRequest,
    });
    const results = {
      command: 'npm run bench:proxy',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
      haproxy: execFileSync(haproxyCommand().file, [...haproxyCommand().prefixArgs, '-v'], { encoding: 'utf8' }).split('\n')[0],
      load: wall ? { before: wall.loadBefore.map((n) => round(n, 2)), after: wall.loadAfter.map((n) => round(n, 2)) } : undefined,
      settings: {
        wallClock: {
          rounds: ROUNDS,
          statistic: 'median over rounds',
          tool: 'wrk',
          threads: THREADS,
          connections: CONNECTIONS,
          warmupSeconds: WARMUP_SECONDS,
          durationSeconds: DURATION_SECONDS,
          haproxyThreads: 1,
          http: 'HTTP/1.1 keep-alive over TLS',
        },
        instructions: instructions ? { tool: `${valgrindVersion()} --tool=callgrind`, ...CALLGRIND_SETTINGS } : undefined,
      },
      scenarios: { plain: scenario('plain'), gateway: scenario('gateway'), gatewayNoCache: scenario('gatewayNoCache') },
      instructionRatio: instructions ? round(ir('plain')!.instructionsPerRequest / ir('gateway')!.instructionsPerRequest) : undefined,
      instructionRatioNoCache: instructions ? round(ir('plain')!.instructionsPerRequest / ir('gatewayNoCache')!.instructionsPerRequest) : undefined,
      instructionsAddedPerRequest: instructions ? ir('gateway')!.instructionsPerRequest - ir('plain')!.instructionsPerRequest : undefined,
      ratio: wall ? round(wall.gateway.requestsPerSecond / wall.plain.requestsPerSecond) : undefined,
      // Each round runs the three scenarios back to back, so a round's ratio compares them
      // under about the same load; the median of those is steadier than a ratio of medians.
      ratioMedianOfRounds: wall ? round(median(wall.gateway.rounds.map((g, i) => g.requestsPerSecond / wall.plain.rounds[i].requestsPerSecond))) : undefined,
      ratioPerRound: wall ? wall.gateway.rounds.map((g, i) => round(g.requestsPerSecond / wall.plain.rounds[i].requestsPerSecond)) : undefined,
      ratioNoCache: wall ? round(wall.gatewayNoCache.requestsPerSecond / wall.plain.requestsPerSecond) : undefined,
      p99AddedMs: wall ? round(wall.gateway.latencyP99Ms - wall.plain.latencyP99Ms) : undefined,
      p99AddedMsNoCache: wall ? round(wall.gatewayNoCache.latencyP99Ms - wall.plain.latencyP99Ms) : undefined,
      oneConnection: wall
        ? {
            seconds: ONE_CONNECTION_SECONDS,
            plain: { p50Ms: wall.oneConnection.plain.latencyP50Ms, p99Ms: wall.oneConnection.plain.latencyP99Ms },
            gateway: { p50Ms: wall.oneConnection.gateway.latencyP50Ms, p99Ms: wall.oneConnection.gateway.latencyP99Ms },
            gatewayNoCache: { p50Ms: wall.oneConnection.gatewayNoCache.latencyP50Ms, p99Ms: wall.oneConnection.gatewayNoCache.latencyP99Ms },
            p50AddedMs: round(wall.oneConnection.gateway.latencyP50Ms - wall.oneConnection.plain.latencyP50Ms),
            p99AddedMs: round(wall.oneConnection.gateway.latencyP99Ms - wall.oneConnection.plain.latencyP99Ms),
            p99AddedMsNoCache: round(wall.oneConnection.gatewayNoCache.latencyP99Ms - wall.oneConnection.plain.latencyP99Ms),
          }
        : undefined,
      cpuRatio: wall ? round(wall.plain.cpuMicrosPerRequest! / wall.gateway.cpuMicrosPerRequest!) : undefined,
      cpuRatioNoCache: wall ? round(wall.plain.cpuMicrosPerRequest! / wall.gatewayNoCache.cpuMicrosPerRequest!) : undefined,
      cpuMicrosAddedPerRequest: wall ? round(wall.gateway.cpuMicrosPerRequest! - wall.plain.cpuMicrosPerRequest!, 1) : undefined,
      cpuMicrosAddedPerRequestNoCache: wall ? round(wall.gatewayNoCache.cpuMicrosPerRequest! - wall.plain.cpuMicrosPerRequest!, 1) : undefined,
      goal: { ratioAtLeast: 0.9, p99AddedMsBelow: 0.5 },
    };
    mkdirSync(path.dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    if (wall) {
      console.log(
        `wall clock: ratio ${results.ratio} (per round ${results.ratioPerRound!.join(', ')}; no cache ${results.ratioNoCache}), p99 added ${results.p99AddedMs} ms (no cache ${results.p99AddedMsNoCache} ms), load ${results.load!.before[0]} -> ${results.load!.after[0]}`,
      );
      console.log(
        `one connection: p99 plain ${results.oneConnection!.plain.p99Ms} ms, gateway ${results.oneConnection!.gateway.p99Ms} ms (added ${results.oneConnection!.p99AddedMs} ms; no cache ${results.oneConnection!.p99AddedMsNoCache} ms)`,
      );
      console.log(
        `CPU per request: plain ${wall.plain.cpuMicrosPerRequest} us, gateway +${results.cpuMicrosAddedPerRequest} us (capacity ratio ${results.cpuRatio}), no cache +${results.cpuMicrosAddedPerRequestNoCache} us (${results.cpuRatioNoCache})`,
      );
    }
    if (instructions)
      console.log(
        `instructions: plain/gateway ${results.instructionRatio}, plain/no-cache ${results.instructionRatioNoCache}, gateway adds ${results.instructionsAddedPerRequest} per request`,
      );
    console.log(`written to ${path.relative(process.cwd(), RESULTS)}`);
  } finally {
    await standIn?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
