/**
 * A gateway instance as the tests model it: the Debian 13 root (the AMI's release, from
 * scripts/install-test-deps.sh) plus the systemd layer, booted with systemd as PID 1 in
 * systemd-nspawn, so units, ordering, sandboxing (ReadWritePaths, StateDirectory), timers,
 * users and reboots behave as on EC2. The root and the layer are read-only lower layers of
 * an overlay; everything the instance writes lands in this instance's own upper directory
 * (its "disk"), which survives a reboot and is removed by destroy().
 *
 * The container shares the host's network namespace, as the fakes of AWS live on the
 * host's 127.0.0.1; its listeners bind there too, so tests give it free ports.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, TRIXIE_ROOT } from './haproxy';
import { ManagedProcess, startProcess } from './processes';

export const TRIXIE_SYSTEMD_LAYER = process.env.LG_TRIXIE_SYSTEMD_LAYER ?? path.join(REPO_ROOT, '.cache', 'trixie-systemd-layer');

/** What `nsenter` runs commands with inside the instance (not the test runner's environment). */
const INSTANCE_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface InstanceFile {
  readonly content: string;
  /** @default 0o644 */
  readonly mode?: number;
}

export interface BootOptions {
  /** Files put on the instance's disk before the first boot, by absolute path inside it. */
  readonly files?: Record<string, InstanceFile>;
  /** How long the boot may take until systemd reports the system state. @default 60000 */
  readonly bootTimeoutMs?: number;
}

export interface Instance {
  /** Host path of the instance's upper directory: every file it wrote, at its path inside. */
  readonly disk: string;
  /** Runs a command inside the instance (all its namespaces), with a deadline. */
  exec(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** A file the instance wrote (from its disk), or undefined. */
  readFile(pathInside: string): string | undefined;
  /** `systemctl is-system-running --wait` after boot: "running" when every unit started. */
  readonly systemState: () => string;
  /** Units systemd reports as failed. */
  failedUnits(): Promise<string[]>;
  /** `systemctl reboot`, waits for the container to stop (exit 133, as nspawn reports a reboot) and boots it again from the same disk. */
  reboot(): Promise<void>;
  /** The console output of the current boot. */
  console(): string;
  /** Powers the instance off (or kills it after a grace period) and removes its disk. */
  destroy(): Promise<void>;
}

/** Throws with the fix when the host cannot boot instances. */
export function assertInstancesCanBoot(): void {
  const missing = [
    [spawnSync('systemd-nspawn', ['--version']).status === 0, 'systemd-nspawn (Debian package systemd-container)'],
    [existsSync(path.join(TRIXIE_ROOT, '.complete')), `the Debian 13 root ${TRIXIE_ROOT}`],
    [existsSync(path.join(TRIXIE_SYSTEMD_LAYER, '.complete')), `the systemd layer ${TRIXIE_SYSTEMD_LAYER}`],
  ].filter(([present]) => !present);
  if (missing.length > 0) {
    throw new Error(`Cannot boot a test instance: missing ${missing.map(([, what]) => what).join(', ')}. Run "bash scripts/install-test-deps.sh" as root.`);
  }
}

function run(file: string, args: readonly string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr: error && error.killed ? `${stderr}\n(killed after ${timeoutMs} ms)` : stderr });
    });
  });
}

/** The container's PID 1 as the host sees it: the child of systemd-nspawn. */
async function containerInit(nspawn: ManagedProcess, deadline: number): Promise<number> {
  const pid = nspawn.child.pid!;
  for (;;) {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    for (const child of children) {
      if (readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'systemd') return child;
    }
    if (nspawn.child.exitCode !== null) throw new Error(`systemd-nspawn exited (${nspawn.child.exitCode}) before the instance booted:\n${nspawn.output()}`);
    if (Date.now() > deadline) throw new Error(`systemd did not start as PID 1 of the instance in time:\n${nspawn.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function bootInstance(options: BootOptions = {}): Promise<Instance> {
  assertInstancesCanBoot();
  const bootTimeoutMs = options.bootTimeoutMs ?? 60_000;
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-instance-'));
  const disk = path.join(dir, 'upper');
  for (const sub of ['upper', 'work', 'merged']) mkdirSync(path.join(dir, sub));
  for (const [file, { content, mode }] of Object.entries(options.files ?? {})) {
    const target = path.join(disk, file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, content);
    chmodSync(target, mode ?? 0o644);
  }
  mkdirSync('/run/systemd/nspawn', { recursive: true });
  const machine = `lg-${randomBytes(5).toString('hex')}`;
  const lower = `${path.join(TRIXIE_SYSTEMD_LAYER, 'upper')}:${TRIXIE_ROOT}`;

  let nspawn: ManagedProcess;
  let init = 0;
  let state = '';
  const start = async () => {
    // A private mount namespace holds the overlay, so nothing is mounted on the host.
    const script = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=${lower},upperdir=${disk},workdir=${path.join(dir, 'work')} ${path.join(dir, 'merged')}`,
      `exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0 systemd-nspawn --register=no --keep-unit -q -M ${machine} -D ${path.join(dir, 'merged')} --boot`,
    ].join('\n');
    nspawn = startProcess(`instance ${machine}`, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]);
    const deadline = Date.now() + bootTimeoutMs;
    try {
      init = await containerInit(nspawn, deadline);
      // Until systemd has opened its private socket, systemctl cannot ask it anything: ask again.
      for (;;) {
        const running = await exec(['systemctl', 'is-system-running', '--wait'], Math.max(1000, deadline - Date.now()));
        state = running.stdout.trim();
        if (state) break;
        if (Date.now() > deadline)
          throw new Error(`the instance did not report its state within ${bootTimeoutMs} ms (systemctl: ${running.stderr.trim()}):\n${nspawn.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (error) {
      await kill();
      throw error;
    }
  };
  const kill = async () => {
    // Killing PID 1 of the container's PID namespace ends every process in it.
    try {
      if (init) process.kill(init, 'SIGKILL');
    } catch {
      // already gone
    }
    await nspawn.stop();
  };
  const exec = (args: readonly string[], timeoutMs = 60_000) =>
    run('nsenter', ['-t', String(init), '-a', 'env', '-i', INSTANCE_PATH, 'LANG=C.UTF-8', ...args], timeoutMs);
  const waitForExit = async (timeoutMs: number): Promise<number | null> => {
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs));
    const result = await Promise.race([nspawn.exited.then(() => 'exited' as const), timer]);
    return result === 'exited' ? nspawn.child.exitCode : null;
  };

  await start();
  return {
    disk,
    exec,
    readFile: (pathInside) => {
      const file = path.join(disk, pathInside);
      return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    },
    systemState: () => state,
    failedUnits: async () =>
      (await exec(['systemctl', 'list-units', '--failed', '--plain', '--no-legend'])).stdout
        .split('\n')
        .map((line) => line.split(/\s+/)[0])
        .filter(Boolean),
    reboot: async () => {
      await exec(['systemctl', 'reboot'], 10_000);
      const code = await waitForExit(60_000);
      // systemd-nspawn exits with 133 when the container asked for a reboot (systemd-nspawn(1)).
      if (code !== 133) throw new Error(`the instance did not reboot (systemd-nspawn exit ${code}):\n${nspawn.output()}`);
      await start();
    },
    console: () => nspawn.output(),
    destroy: async () => {
      if (nspawn.child.exitCode === null && nspawn.child.signalCode === null) {
        await exec(['systemctl', 'poweroff'], 10_000);
        if ((await waitForExit(30_000)) === null) await kill();
      }
      rmSync(dir, { recursive: true, force: true });
      for (const leftover of [`/run/systemd/nspawn/propagate/${machine}`, `/run/systemd/nspawn/unix-export/${machine}`])
        rmSync(leftover, { recursive: true, force: true });
    },
  };
}

/** Lines of a file the instance wrote that parse as JSON objects. */
export function jsonLines(text: string | undefined): Array<Record<string, unknown>> {
  return (text ?? '')
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Files under a directory of the instance's disk (for failure messages). */
export function listDisk(disk: string, dirInside: string): string[] {
  const dir = path.join(disk, dirInside);
  return existsSync(dir) ? readdirSync(dir) : [];
}
