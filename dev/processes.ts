/**
 * Child processes of the tests and of `npm run local`: started with their output kept,
 * waited for by a line they print or by the ports they listen on, and stopped (SIGTERM,
 * then SIGKILL after a grace period).
 */
import { spawn, ChildProcess, SpawnOptions } from 'node:child_process';
import { connect } from 'node:net';

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far (capped at the last 256 KiB). */
  output(): string;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<void>;
  /** True once stop() was called: an exit after that is expected. */
  readonly stopping: () => boolean;
  /** Resolves with the first stdout line that `matches` accepts; rejects if the process exits first or after `timeoutMs`. */
  waitForLine(matches: (line: string) => boolean, timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

const OUTPUT_CAP = 256 * 1024;
const STOP_GRACE_MS = 3000;

export function startProcess(name: string, file: string, args: readonly string[], options: SpawnOptions = {}): ManagedProcess {
  const child = spawn(file, [...args], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let pending = '';
  const lineListeners = new Set<(line: string) => void>();
  const append = (text: string) => {
    output = (output + text).slice(-OUTPUT_CAP);
  };
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    append(chunk);
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) for (const listener of lineListeners) listener(line);
  });
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));

  const waitForLine = (matches: (line: string) => boolean, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const done = (error?: Error, line?: string) => {
        clearTimeout(timer);
        lineListeners.delete(listener);
        child.off('exit', onExit);
        if (error) reject(error);
        else resolve(line!);
      };
      const listener = (line: string) => {
        if (matches(line)) done(undefined, line);
      };
      const onExit = () =>
        done(new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready${spawnError ? `: ${spawnError.message}` : ''}:\n${output}`));
      const timer = setTimeout(() => done(new Error(`${name} was not ready within ${timeoutMs} ms:\n${output}`)), timeoutMs);
      lineListeners.add(listener);
      child.once('exit', onExit);
      if (child.exitCode !== null || child.signalCode !== null || spawnError) onExit();
    });

  let stopRequested = false;
  const stop = async () => {
    stopRequested = true;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
  };
  return { name, child, exited, stopping: () => stopRequested, output: () => output, waitForLine, stop };
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until every port accepts TCP connections on 127.0.0.1; fails early, with its output, if `owner` exits. */
export async function waitForPorts(ports: readonly number[], owner: ManagedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await canConnect(port))) {
      if (owner.child.exitCode !== null || owner.child.signalCode !== null) {
        throw new Error(`${owner.name} exited (${owner.child.exitCode ?? owner.child.signalCode}) before it listened on ${port}:\n${owner.output()}`);
      }
      if (Date.now() > deadline) throw new Error(`${owner.name} did not listen on ${port} within ${timeoutMs / 1000} s:\n${owner.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
