/**
 * npm run bench:proxy — what the session check costs, on loopback, in one run:
 *   plain:            HAProxy as a plain TLS reverse proxy (TLS in, mTLS out) to the stand-in;
 *   gateway:          the rendered gateway config, every request carrying a valid session;
 *   gateway-no-cache: the same with the verification cache off (jwt_verify on every request).
 * The stand-in Looker is a second haproxy (TLS, client certificate required, `http-request
 * return`) so the proxy under test is the bottleneck, not a Node server. Both proxies run
 * one thread (nbthread 1) and log one line per request to stdout, which is discarded.
 * wrk: 2 threads, 50 connections, keep-alive HTTP/1.1; each scenario gets a 2 s warm-up then
 * 10 s measured, and the three scenarios are interleaved over BENCH_ROUNDS rounds (default 3)
 * whose medians are reported, so a load change on a shared machine hits all three alike.
 * Writes bench/results/proxy.json (with the load average, to judge how quiet the machine was).
 */
import 'reflect-metadata';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { publicKeyPemFromJwk, renderGatewayConfig } from '../lib/fleet';
import { SESSION_COOKIE } from '../lib/session-contract';
import { haproxyCommand, RunningHaproxy } from '../test/support/haproxy';
import { freePorts } from '../test/support/ports';
import { startHaproxy } from '../test/support/haproxy';
import { baseGatewayOptions, createSigningKeys, createTestPki, DEFAULT_CLAIMS, ISSUER, AUDIENCE, LOOKER_TLS_NAME, writeRenderedFiles } from '../test/fleet/support/gateway-env';
import { SignJWT } from 'jose';

const WRK = process.env.WRK ?? '/usr/bin/wrk';
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const DURATION_SECONDS = Number(process.env.BENCH_DURATION_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RESULTS = path.join(__dirname, 'results', 'proxy.json');

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

function runWrk(url: string, seconds: number, headers: string[]): WrkResult {
  const args = ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
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
  if (result.errors > 0) throw new Error(`${name}: ${result.errors} non-2xx answers out of ${result.requests}: the setup is broken, the figures would mean nothing.`);
  if (result.socketErrors > 0) console.warn(`${name}: ${result.socketErrors} socket errors/timeouts: the machine is overloaded, latency figures are unreliable.`);
  console.log(`${name.padEnd(18)} ${result.requestsPerSecond.toFixed(0).padStart(8)} req/s   p50 ${result.latencyP50Ms.toFixed(3)} ms   p99 ${result.latencyP99Ms.toFixed(3)} ms   cpu ${result.cpuMicrosPerRequest} us/req   (load ${loadavg()[0].toFixed(2)})`);
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

async function main(): Promise<void> {
  if (spawnSync(WRK, ['--version']).error) throw new Error(`wrk not found at ${WRK}: install it (apt-get install wrk) or set WRK=/path/to/wrk.`);
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-bench-'));
  const running: RunningHaproxy[] = [];
  try {
    const pki = await createTestPki();
    const keys = await createSigningKeys('ES256');
    const [lookerPort, plainPort, authPort, gatewayPort, gatewayHealth, gatewayMetrics, noCachePort, noCacheHealth, noCacheMetrics] = await freePorts(9);

    // The stand-in Looker: a second haproxy that answers at once, mTLS required.
    const standIn = path.join(dir, 'stand-in');
    mkdirSync(standIn, { recursive: true });
    writeFileSync(path.join(standIn, 'looker.pem'), pki.looker.bundle);
    writeFileSync(path.join(standIn, 'ca.pem'), pki.ca.cert);
    writeFileSync(
      path.join(standIn, 'haproxy.cfg'),
      `global\n  nbthread 1\ndefaults\n  mode http\n  timeout client 30s\n  timeout server 30s\n  timeout connect 5s\nfrontend looker\n  bind 127.0.0.1:${lookerPort} ssl crt ${standIn}/looker.pem verify required ca-file ${standIn}/ca.pem alpn http/1.1\n  http-request return status 200 content-type application/json string '{"ok":true}'\n`,
    );
    running.push(await startHaproxy(path.join(standIn, 'haproxy.cfg'), [lookerPort]));

    // The plain reverse proxy: the same TLS in and mTLS out, no session check.
    const plain = path.join(dir, 'plain');
    mkdirSync(plain, { recursive: true });
    writeFileSync(path.join(plain, 'frontend.pem'), pki.gatewayServer.bundle);
    writeFileSync(path.join(plain, 'backend-client.pem'), pki.gatewayBackendClient.bundle);
    writeFileSync(path.join(plain, 'ca.pem'), pki.ca.cert);
    writeFileSync(
      path.join(plain, 'haproxy.cfg'),
      [
        'global',
        '  nbthread 1',
        '  log stdout len 16384 format raw local0',
        '  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets',
        'defaults',
        '  mode http',
        '  log global',
        '  option httplog',
        '  timeout client 3600s',
        '  timeout server 3600s',
        '  timeout connect 5s',
        'frontend plain',
        `  bind 127.0.0.1:${plainPort} ssl crt ${plain}/frontend.pem alpn h2,http/1.1`,
        '  http-request set-header X-Forwarded-For %[src]',
        '  default_backend looker',
        'backend looker',
        `  server looker1 127.0.0.1:${lookerPort} ssl verify required ca-file ${plain}/ca.pem crt ${plain}/backend-client.pem sni str(${LOOKER_TLS_NAME}) verifyhost ${LOOKER_TLS_NAME}`,
        '',
      ].join('\n'),
    );

    const sessionKeys = (['previous', 'current', 'next'] as const).map((slot) => ({
      kid: keys[slot].kid,
      status: slot,
      publicJwk: keys[slot].publicJwk,
      publicKeyPem: publicKeyPemFromJwk(keys[slot].publicJwk),
    }));
    const gatewayConfig = (verificationCache: boolean, port: number, health: number, metrics: number) => {
      const gatewayDir = path.join(dir, verificationCache ? 'gateway' : 'gateway-no-cache');
      mkdirSync(gatewayDir, { recursive: true });
      const base = baseGatewayOptions({ dir: gatewayDir, ports: { gateway: port, health, metrics }, lookerPorts: [lookerPort], authPort, pki, sessionKeys });
      const rendered = renderGatewayConfig({
        ...base,
        // wrk cannot send a PROXY header; the PROXY listener itself is tested in test/fleet.
        listener: { ...base.listener, acceptProxyProtocol: false },
        session: { ...base.session, verificationCache },
        looker: { ...base.looker, healthCheckIntervalSeconds: 5 },
        process: { nbthread: 1 },
      });
      writeRenderedFiles(gatewayDir, rendered);
      return { dir: gatewayDir, file: rendered.configFile };
    };

    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ ...DEFAULT_CLAIMS })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: keys.current.kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + 3600)
      .sign(keys.current.privateKey);
    const sessionHeader = [`Cookie: ${SESSION_COOKIE}=${token}; looker_own=1`, 'Accept: application/json'];

    const quiet = async (file: string, port: number) => {
      const haproxy = await startHaproxy(file, [port]);
      haproxy.process.stdout!.removeAllListeners('data');
      haproxy.process.stdout!.resume();
      running.push(haproxy);
      return haproxy;
    };

    const plainPid = (await quiet(path.join(plain, 'haproxy.cfg'), plainPort)).process.pid!;
    const cached = gatewayConfig(true, gatewayPort, gatewayHealth, gatewayMetrics);
    const gatewayPid = (await quiet(cached.file, gatewayPort)).process.pid!;
    const uncached = gatewayConfig(false, noCachePort, noCacheHealth, noCacheMetrics);
    const noCachePid = (await quiet(uncached.file, noCachePort)).process.pid!;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const loadBefore = loadavg();
    const runs = { plain: [] as WrkResult[], gateway: [] as WrkResult[], gatewayNoCache: [] as WrkResult[] };
    for (let round = 1; round <= ROUNDS; round += 1) {
      console.log(`round ${round} of ${ROUNDS}`);
      runs.plain.push(measure('plain', `https://127.0.0.1:${plainPort}/`, sessionHeader, plainPid));
      runs.gateway.push(measure('gateway', `https://127.0.0.1:${gatewayPort}/`, sessionHeader, gatewayPid));
      runs.gatewayNoCache.push(measure('gateway-no-cache', `https://127.0.0.1:${noCachePort}/`, sessionHeader, noCachePid));
    }
    const loadAfter = loadavg();
    const plainResult = medianResult(runs.plain);
    const gatewayResult = medianResult(runs.gateway);
    const noCacheResult = medianResult(runs.gatewayNoCache);

    const round = (n: number, digits = 3) => Number(n.toFixed(digits));
    const results = {
      command: 'npm run bench:proxy',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
      haproxy: execFileSync(haproxyCommand().file, [...haproxyCommand().prefixArgs, '-v'], { encoding: 'utf8' }).split('\n')[0],
      load: { before: loadBefore.map((n) => round(n, 2)), after: loadAfter.map((n) => round(n, 2)) },
      settings: { rounds: ROUNDS, statistic: 'median over rounds', tool: 'wrk', threads: THREADS, connections: CONNECTIONS, warmupSeconds: WARMUP_SECONDS, durationSeconds: DURATION_SECONDS, haproxyThreads: 1, http: 'HTTP/1.1 keep-alive over TLS' },
      scenarios: { plain: plainResult, gateway: gatewayResult, gatewayNoCache: noCacheResult },
      ratio: round(gatewayResult.requestsPerSecond / plainResult.requestsPerSecond),
      ratioNoCache: round(noCacheResult.requestsPerSecond / plainResult.requestsPerSecond),
      p99AddedMs: round(gatewayResult.latencyP99Ms - plainResult.latencyP99Ms),
      cpuRatio: round(plainResult.cpuMicrosPerRequest! / gatewayResult.cpuMicrosPerRequest!),
      cpuRatioNoCache: round(plainResult.cpuMicrosPerRequest! / noCacheResult.cpuMicrosPerRequest!),
      cpuMicrosAddedPerRequest: round(gatewayResult.cpuMicrosPerRequest! - plainResult.cpuMicrosPerRequest!, 1),
      cpuMicrosAddedPerRequestNoCache: round(noCacheResult.cpuMicrosPerRequest! - plainResult.cpuMicrosPerRequest!, 1),
      p99AddedMsNoCache: round(noCacheResult.latencyP99Ms - plainResult.latencyP99Ms),
      goal: { ratioAtLeast: 0.9, p99AddedMsBelow: 0.5 },
    };
    mkdirSync(path.dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`ratio ${results.ratio} (no cache ${results.ratioNoCache}), p99 added ${results.p99AddedMs} ms (no cache ${results.p99AddedMsNoCache} ms)`);
    console.log(`CPU per request: plain ${plainResult.cpuMicrosPerRequest} us, gateway +${results.cpuMicrosAddedPerRequest} us (capacity ratio ${results.cpuRatio}), no cache +${results.cpuMicrosAddedPerRequestNoCache} us (${results.cpuRatioNoCache})`);
    console.log(`written to ${path.relative(process.cwd(), RESULTS)}`);
  } finally {
    for (const haproxy of running) await haproxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
