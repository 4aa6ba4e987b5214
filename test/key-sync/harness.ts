/**
 * Helpers for the key-sync tests: a directory inside the Debian 13 root, the script run
 * there with chroot against the fake Secrets Manager endpoint, haproxy started in the
 * same root, its master CLI, and a keep-alive load generator on loopback.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import * as path from 'node:path';
import { RunningHaproxy, TRIXIE_ROOT } from '../support/haproxy';
import { startProcess, waitForPorts } from '../support/processes';

export { TRIXIE_ROOT };

/** A fresh directory inside the root: `inside` is its path for chrooted programs, `host` for the test. */
export function rootScratchDir(): { inside: string; host: string; remove(): void } {
  const inside = `/run/lg-test-${randomBytes(6).toString('hex')}`;
  const host = path.join(TRIXIE_ROOT, inside);
  mkdirSync(host, { recursive: true });
  return { inside, host, remove: () => rmSync(host, { recursive: true, force: true }) };
}

export interface SyncRun {
  readonly code: number;
  /** The JSON lines the script printed on stdout. */
  readonly lines: Record<string, unknown>[];
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program inside the root, asynchronously (the fake endpoint lives in this process). */
export function runInRoot(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // A deadline for a stuck program; on two loaded cores one key-sync run (several AWS CLI calls) has taken minutes.
    const timeoutMs = 300_000;
    execFile('chroot', [TRIXIE_ROOT, ...args], { env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...env }, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      const killed = error?.killed ? `\n[harness] ${args.join(' ')} was killed (${error.signal}) after the ${timeoutMs / 1000} s deadline` : '';
      resolve({ code, stdout, stderr: stderr + killed });
    });
  });
}

export async function runKeySync(script: string, config: string, env: Record<string, string>, extraArgs: string[] = []): Promise<SyncRun> {
  const result = await runInRoot(['/bin/bash', script, config, ...extraArgs], env);
  const lines = result.stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...result, lines };
}

/** Starts `haproxy -Ws` inside the root (master-worker, master CLI on a socket) and waits for `port`. */
export async function startHaproxyInRoot(configFile: string, pidFile: string, masterSocket: string, port: number): Promise<RunningHaproxy> {
  const haproxy = startProcess('haproxy', 'chroot', [TRIXIE_ROOT, '/usr/sbin/haproxy', '-Ws', '-db', '-f', configFile, '-p', pidFile, '-S', `${masterSocket},mode,600`]);
  try {
    await waitForPorts([port], haproxy, 15_000);
  } catch (error) {
    await haproxy.stop();
    throw error;
  }
  return { process: haproxy.child, output: haproxy.output, stop: haproxy.stop };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Sends one command to haproxy's master CLI and returns the answer (waits for the socket to accept). */
export async function masterCli(socketPath: string, command: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await masterCliOnce(socketPath, command);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

function masterCliOnce(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    socket.on('data', (c) => (answer += c.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.end(`${command}\n`);
  });
}

/** The master's reload counter from `show proc`. */
export async function reloadCount(socketPath: string): Promise<number> {
  const out = await masterCli(socketPath, 'show proc');
  const match = /^\d+\s+master\s+(\d+)/m.exec(out);
  if (!match) throw new Error(`Cannot read the reload count from show proc:\n${out}`);
  return Number(match[1]);
}

/** One GET with the session cookie; resolves with the status. */
export function getWithSession(port: number, cookieName: string, token: string, agent?: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { cookie: `${cookieName}=${token}` }, agent: agent ?? false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface LoadResult {
  readonly total: number;
  readonly ok: number;
  /** Anything but 200, and connection errors, with what happened. */
  readonly failures: string[];
}

/** Keep-alive clients sending the given tokens round robin until stopped. */
export function startLoad(port: number, cookieName: string, tokens: string[], concurrency = 8): { stop(): Promise<LoadResult>; total(): number } {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let running = true;
  let total = 0;
  let ok = 0;
  const failures: string[] = [];
  const worker = async (id: number) => {
    let i = id;
    while (running) {
      const token = tokens[i++ % tokens.length];
      try {
        const status = await getWithSession(port, cookieName, token, agent);
        total += 1;
        if (status === 200) ok += 1;
        else failures.push(`status ${status}`);
      } catch (error) {
        total += 1;
        failures.push(`error ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, (_, id) => worker(id));
  return {
    total: () => total,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      return { total, ok, failures };
    },
  };
}
