/**
 * The real haproxy the tests run: Debian 13's 3.0 build from the debootstrap root that
 * scripts/install-test-deps.sh caches in .cache/trixie-root, started through that
 * root's own loader, or the binary named by LG_HAPROXY_BIN (which must be >= 3.0).
 */
import { execFileSync, spawnSync, ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import * as path from 'node:path';
import { startProcess, waitForPorts } from './processes';

import { REPO_ROOT } from './repo';

export { REPO_ROOT };
export const TRIXIE_ROOT = process.env.LG_TRIXIE_ROOT ?? path.join(REPO_ROOT, '.cache', 'trixie-root');

export interface HaproxyCommand {
  /** Program to execute. */
  readonly file: string;
  /** Arguments that come before haproxy's own. */
  readonly prefixArgs: string[];
}

let cached: HaproxyCommand | undefined;

/** How to run the haproxy under test; throws with the fix when there is none. */
export function haproxyCommand(): HaproxyCommand {
  if (cached) return cached;
  const own = process.env.LG_HAPROXY_BIN;
  if (own) {
    cached = { file: own, prefixArgs: [] };
  } else {
    const binary = path.join(TRIXIE_ROOT, 'usr', 'sbin', 'haproxy');
    if (!existsSync(binary)) {
      throw new Error(
        `No haproxy to test with: ${binary} does not exist. Run "bash scripts/install-test-deps.sh" (root, makes the Debian 13 root), or set LG_HAPROXY_BIN to a haproxy >= 3.0.`,
      );
    }
    const libDir = readdirSync(path.join(TRIXIE_ROOT, 'usr', 'lib')).find((d) => d.endsWith('-linux-gnu'));
    if (!libDir) throw new Error(`${TRIXIE_ROOT} has no usr/lib/*-linux-gnu: remove it and run scripts/install-test-deps.sh again.`);
    const loader = [path.join(TRIXIE_ROOT, 'lib64', 'ld-linux-x86-64.so.2'), path.join(TRIXIE_ROOT, 'lib', 'ld-linux-aarch64.so.1')].find(existsSync);
    if (!loader) throw new Error(`${TRIXIE_ROOT} has no dynamic loader: remove it and run scripts/install-test-deps.sh again.`);
    const libraryPath = [path.join(TRIXIE_ROOT, 'usr', 'lib', libDir), path.join(TRIXIE_ROOT, 'lib', libDir)].join(':');
    cached = { file: loader, prefixArgs: ['--library-path', libraryPath, binary] };
  }
  const version = haproxyVersion(cached);
  const [major, minor] = version.split('.').map(Number);
  if (major < 3) throw new Error(`haproxy ${version} is too old: the gateway needs >= 3.0 (see docs/haproxy-facts.md on 2.6's jwt_verify bug).`);
  void minor;
  return cached;
}

function haproxyVersion(command: HaproxyCommand): string {
  const out = execFileSync(command.file, [...command.prefixArgs, '-v'], { encoding: 'utf8' });
  const match = /HAProxy version (\d+\.\d+(?:\.\d+)?)/.exec(out);
  if (!match) throw new Error(`Cannot read the haproxy version from: ${out.slice(0, 200)}`);
  return match[1];
}

/** Runs `haproxy -c -f <cfg>`; returns the output, throws with it on failure. */
export function checkConfig(configFile: string): string {
  const command = haproxyCommand();
  const result = spawnSync(command.file, [...command.prefixArgs, '-c', '-f', configFile], { encoding: 'utf8' });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.status !== 0) throw new Error(`haproxy -c rejected ${configFile}:\n${output}`);
  return output;
}

export interface RunningHaproxy {
  readonly process: ChildProcess;
  /** Everything haproxy wrote to stdout (its logs, when the config logs to stdout). */
  readonly output: () => string;
  stop(): Promise<void>;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A program that runs the haproxy under test and survives the master's re-exec: in
 * master-worker mode the master re-executes argv[0], which for the Debian 13 root's
 * binary would be the bare binary without the root's loader and libraries (liblua5.4
 * is not on the host). A small wrapper written into `dir` becomes argv[0]
 * (`ld.so --argv0`) and re-execs through the loader.
 */
export function haproxyProgram(dir: string): string {
  const command = haproxyCommand();
  if (command.prefixArgs.length === 0) return command.file;
  const binary = command.prefixArgs[command.prefixArgs.length - 1];
  const loaderOptions = command.prefixArgs.slice(0, -1).map(shellQuote).join(' ');
  const program = path.join(dir, 'haproxy-wrapper.sh');
  writeFileSync(program, `#!/bin/sh\nexec ${shellQuote(command.file)} ${loaderOptions} --argv0 "$0" ${shellQuote(binary)} "$@"\n`, { mode: 0o700 });
  return program;
}

/**
 * Starts haproxy in the foreground in master-worker mode (`-Ws`, as on instances) and
 * waits until every port in `ports` accepts connections on 127.0.0.1. The re-exec
 * wrapper is written next to the config file.
 */
export async function startHaproxy(configFile: string, ports: number[], extraArgs: string[] = []): Promise<RunningHaproxy> {
  const haproxy = startProcess('haproxy', haproxyProgram(path.dirname(configFile)), ['-Ws', '-db', '-f', configFile, ...extraArgs]);
  try {
    await waitForPorts(ports, haproxy, 10_000);
  } catch (error) {
    await haproxy.stop();
    throw error;
  }
  return { process: haproxy.child, output: haproxy.output, stop: haproxy.stop };
}

/** Sends one command to a worker's admin socket (`stats socket ... level admin`) and returns the whole answer; fails after 10 s without one. */
export function adminCommand(socketPath: string, command: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = createConnection(socketPath);
    let answer = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error(`${socketPath} gave no answer to "${command}" within 10 s`)));
    socket.on('data', (data) => (answer += data.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.end(`${command}\n`);
  });
}
