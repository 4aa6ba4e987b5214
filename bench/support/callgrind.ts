/**
 * Instructions per request: a measure of the proxies' cost that does not depend on what
 * else runs on the machine (wall-clock figures on a shared 2-core box swing with other
 * people's test suites). Used by bench/proxy.ts.
 *
 * For each scenario of ./proxy-setup.ts (plain, gateway, gateway without the verification
 * cache) the proxy under test runs single-threaded (nbthread 1, in the foreground without
 * master-worker) under `valgrind --tool=callgrind --instr-atstart=no`. One keep-alive
 * HTTP/1.1-over-TLS connection sends WARMUP requests (TLS handshake, the backend
 * connection, the verification cache filled), then `callgrind_control -i on` starts
 * counting, MEASURED requests go through one after another, `callgrind_control -i off`
 * stops it, and the instructions counted (Ir) divided by MEASURED give instructions per
 * request. Start-up, handshakes and health checks (interval 300 s) fall outside the window.
 * The top of `callgrind_annotate` (instructions per function) goes to bench/results/callgrind/.
 *
 * Run it alone while trying changes: `npx tsx bench/support/callgrind.ts`, with
 * BENCH_SCENARIOS=gateway to count one scenario and BENCH_CONFIG_EDITS='[["regex","repl"]]'
 * to try an edit of the rendered config before it goes into the renderer.
 */
import 'reflect-metadata';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { haproxyCommand, RunningHaproxy, startHaproxy } from '../../dev/haproxy';
import { GATEWAY_HOST } from '../../dev/gateway-env';
import { ProxyBenchSetup, SCENARIOS, Scenario, ScenarioName, writeProxyBenchSetup } from './proxy-setup';

const VALGRIND = process.env.VALGRIND ?? '/usr/bin/valgrind';
const CALLGRIND_CONTROL = process.env.CALLGRIND_CONTROL ?? '/usr/bin/callgrind_control';
const CALLGRIND_ANNOTATE = process.env.CALLGRIND_ANNOTATE ?? '/usr/bin/callgrind_annotate';
const WARMUP = Number(process.env.BENCH_WARMUP_REQUESTS ?? 200);
const MEASURED = Number(process.env.BENCH_MEASURED_REQUESTS ?? 2000);
const ONLY = process.env.BENCH_SCENARIOS?.split(',') as ScenarioName[] | undefined;
const ANNOTATIONS = path.join(__dirname, '..', 'results', 'callgrind');

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitForPort(port: number, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`haproxy under valgrind exited (${child.exitCode}):\n${output().slice(-4000)}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(250);
  }
  throw new Error(`haproxy under valgrind did not listen on ${port} within ${timeoutMs} ms:\n${output().slice(-4000)}`);
}

/** One request on the agent's single keep-alive connection; throws unless 200. */
function get(agent: Agent, port: number, headers: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/dashboards/1?x=1',
        method: 'GET',
        servername: GATEWAY_HOST,
        headers: { Host: GATEWAY_HOST, ...headers },
        agent,
        rejectUnauthorized: false,
      },
      (res) => {
        res.resume();
        res.once('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`answer ${res.statusCode}: the setup is broken, the figures would mean nothing`)),
        );
      },
    );
    req.once('error', reject);
    req.end();
  });
}

export interface InstructionResult {
  readonly instructionsPerRequest: number;
  readonly measuredRequests: number;
  readonly warmupRequests: number;
  /** Total Ir counted in the window. */
  readonly instructions: number;
}

/**
 * The callgrind config: the scenario's own, without master-worker (one process to count).
 * BENCH_CONFIG_EDITS (JSON list of [regex, replacement], multiline) tries a change by hand
 * before it goes into the renderer; results are then not written.
 */
const EDITS = JSON.parse(process.env.BENCH_CONFIG_EDITS ?? '[]') as Array<[string, string]>;
function callgrindConfig(scenario: Scenario): string {
  const file = `${scenario.configFile}.callgrind`;
  let text = readFileSync(scenario.configFile, 'utf8').replace(/^\s*master-worker\s*$/m, '');
  for (const [pattern, replacement] of EDITS) text = text.replace(new RegExp(pattern, 'gm'), replacement);
  writeFileSync(file, text);
  return file;
}

function totalIr(outFile: string): number {
  const text = readFileSync(outFile, 'utf8');
  const totals = /^totals:\s+(\d+)/m.exec(text) ?? /^summary:\s+(\d+)/m.exec(text);
  if (!totals) throw new Error(`No totals in ${outFile}`);
  return Number(totals[1]);
}

export async function countScenario(setup: ProxyBenchSetup, scenario: Scenario, dir: string): Promise<InstructionResult> {
  const command = haproxyCommand();
  const outFile = path.join(dir, `callgrind.${scenario.name}.out`);
  const args = [
    '--tool=callgrind',
    '--instr-atstart=no',
    `--callgrind-out-file=${outFile}`,
    command.file,
    ...command.prefixArgs,
    '-db',
    '-f',
    callgrindConfig(scenario),
  ];
  const child = spawn(VALGRIND, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (output = (output + chunk).slice(-65536)));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await waitForPort(scenario.port, child, () => output, 180_000);
    for (let i = 0; i < WARMUP; i += 1) await get(agent, scenario.port, setup.headers);
    execFileSync(CALLGRIND_CONTROL, ['-i', 'on', String(child.pid)], { stdio: 'pipe' });
    for (let i = 0; i < MEASURED; i += 1) await get(agent, scenario.port, setup.headers);
    execFileSync(CALLGRIND_CONTROL, ['-i', 'off', String(child.pid)], { stdio: 'pipe' });
  } finally {
    agent.destroy();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  if (!existsSync(outFile)) throw new Error(`callgrind wrote no ${outFile}:\n${output.slice(-4000)}`);
  const instructions = totalIr(outFile);
  mkdirSync(ANNOTATIONS, { recursive: true });
  const annotation = execFileSync(CALLGRIND_ANNOTATE, ['--threshold=99', outFile], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  writeFileSync(path.join(ANNOTATIONS, `${scenario.name}.txt`), `${annotation.split('\n').slice(0, 80).join('\n')}\n`);
  return { instructionsPerRequest: Math.round(instructions / MEASURED), measuredRequests: MEASURED, warmupRequests: WARMUP, instructions };
}

export const CALLGRIND_SETTINGS = {
  warmupRequests: WARMUP,
  measuredRequests: MEASURED,
  connections: 1,
  haproxyThreads: 1,
  http: 'HTTP/1.1 keep-alive over TLS, one request at a time',
};

export function checkCallgrindTools(): void {
  for (const tool of [VALGRIND, CALLGRIND_CONTROL, CALLGRIND_ANNOTATE]) {
    if (!existsSync(tool))
      throw new Error(`${tool} not found: install valgrind (apt-get install valgrind) or set VALGRIND/CALLGRIND_CONTROL/CALLGRIND_ANNOTATE.`);
  }
}

export function valgrindVersion(): string {
  return execFileSync(VALGRIND, ['--version'], { encoding: 'utf8' }).trim();
}

/** Counts each scenario in turn (the scenario's ports must be free: nothing else may run its config). */
export async function countInstructions(
  setup: ProxyBenchSetup,
  dir: string,
  names: readonly ScenarioName[] = SCENARIOS,
): Promise<Partial<Record<ScenarioName, InstructionResult>>> {
  checkCallgrindTools();
  const results: Partial<Record<ScenarioName, InstructionResult>> = {};
  for (const name of names) {
    results[name] = await countScenario(setup, setup.scenarios[name], dir);
    console.log(`${name.padEnd(18)} ${results[name]!.instructionsPerRequest.toLocaleString('en').padStart(12)} instructions/request (callgrind)`);
  }
  return results;
}

/** Alone: counts the scenarios (or BENCH_SCENARIOS) and prints, writing nothing but the annotations. */
async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-bench-ir-'));
  let standIn: RunningHaproxy | undefined;
  try {
    const setup = await writeProxyBenchSetup(dir, 300);
    standIn = await startHaproxy(setup.standInConfig, [setup.standInPort]);
    await countInstructions(
      setup,
      dir,
      SCENARIOS.filter((n) => !ONLY || ONLY.includes(n)),
    );
    if (EDITS.length > 0) console.log('(with BENCH_CONFIG_EDITS applied)');
  } finally {
    await standIn?.stop();
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
