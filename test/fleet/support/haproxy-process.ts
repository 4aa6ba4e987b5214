/**
 * Starts the haproxy under test in master-worker mode (`-Ws`, as on instances) and waits
 * for its ports. When the binary runs through the Debian 13 root's own loader, the
 * master's re-exec would start the bare binary without that loader and fail on missing
 * libraries, so a small wrapper becomes argv[0] (`ld.so --argv0`) and re-execs through it.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import * as path from 'node:path';
import { haproxyCommand, RunningHaproxy } from '../../support/haproxy';

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A program that runs the haproxy under test and survives the master's re-exec. */
export function haproxyProgram(dir: string): string {
  const command = haproxyCommand();
  if (command.prefixArgs.length === 0) return command.file;
  const binary = command.prefixArgs[command.prefixArgs.length - 1];
  const loaderOptions = command.prefixArgs.slice(0, -1).map(shellQuote).join(' ');
  const program = path.join(dir, 'haproxy-wrapper.sh');
  writeFileSync(program, `#!/bin/sh\nexec ${shellQuote(command.file)} ${loaderOptions} --argv0 "$0" ${shellQuote(binary)} "$@"\n`, { mode: 0o700 });
  return program;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startMasterWorker(dir: string, configFile: string, waitForPorts: number[]): Promise<RunningHaproxy> {
  const child = spawn(haproxyProgram(dir), ['-Ws', '-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    const deadline = Date.now() + 10_000;
    for (const port of waitForPorts) {
      while (!(await canConnect(port))) {
        if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`haproxy did not listen on ${port} within 10 s:\n${output}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { process: child, output: () => output, stop };
}
