/**
 * `npm run local` as a user runs it: the runner as a child process (tsx local/run.ts),
 * its printed lines, the agent's client certificate against the machine route, and a
 * clean stop on SIGTERM (no process left, no temporary folder left).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { AddressInfo, createServer } from 'node:net';
import * as path from 'node:path';
import { DEFAULT_LOCAL_PORT, parseCommandLine } from '../../local/run';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/**
 * The runner in one node process with tsx as a loader (`node --import tsx`). The tsx CLI
 * (`tsx local/run.ts`) adds a parent process that relays signals and SIGKILLs the runner
 * when it does not acknowledge a signal within 30 ms, which under load cuts its clean-up short.
 */
const RUNNER_COMMAND = [process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'local', 'run.ts')] as const;

interface Answer {
  readonly status: number;
  readonly body: string;
}

function get(url: string, tls: https.RequestOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ...tls, headers: { accept: 'application/json' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Every process below `pid`, from /proc. */
function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

function isAlive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

interface StartedRunner {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

/** `ownProcessGroup`: like a terminal job, so Ctrl-C (SIGINT to the group) can be imitated. */
function startRunner(args: string[], ownProcessGroup = false): StartedRunner {
  const child = spawn(RUNNER_COMMAND[0], [...RUNNER_COMMAND.slice(1), ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: ownProcessGroup,
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitForOutput(runner: StartedRunner, pattern: RegExp, timeoutMs = 45_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(runner.output());
    if (match) return match;
    if (runner.child.exitCode !== null) throw new Error(`the runner exited with ${runner.child.exitCode}:\n${runner.output()}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${runner.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the command line', () => {
  test('defaults to port 8443 and the default session settings', () => {
    expect(parseCommandLine([])).toEqual({
      port: DEFAULT_LOCAL_PORT,
      httpPort: undefined,
      sessionTtlSeconds: undefined,
      refreshWindowSeconds: undefined,
      mode: 'broker',
    });
  });

  test('reads --port, --http-port, --session-ttl, --refresh-window and --mode', () => {
    expect(parseCommandLine(['--port', '0', '--http-port', '8080', '--session-ttl', '60', '--refresh-window', '50', '--mode', 'direct'])).toEqual({
      port: 0,
      httpPort: 8080,
      sessionTtlSeconds: 60,
      refreshWindowSeconds: 50,
      mode: 'direct',
    });
    expect(parseCommandLine(['--help'])).toBe('help');
  });

  test('names the bad value and the fix', () => {
    expect(() => parseCommandLine(['--session-ttl=1.5'])).toThrow('--session-ttl "1.5" is not a whole number: give for example --session-ttl 600.');
    expect(() => parseCommandLine(['--http-port', 'http'])).toThrow('--http-port "http" is not a whole number: give for example --http-port 8080.');
    expect(() => parseCommandLine(['--port'])).toThrow("Option '--port <value>' argument missing");
    expect(() => parseCommandLine(['--mode', 'headers'])).toThrow('--mode "headers" is not a mode: give --mode broker');
  });
});

describe('npm run local (local/run.ts as a child process)', () => {
  test('bad options fail at once with the bad value and the fix', () => {
    const badPort = spawnSync(RUNNER_COMMAND[0], [...RUNNER_COMMAND.slice(1), '--port', 'eighty'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(badPort.status).toBe(2);
    expect(badPort.stderr).toContain('--port "eighty" is not a whole number: give for example --port 8443');

    const unknown = spawnSync(RUNNER_COMMAND[0], [...RUNNER_COMMAND.slice(1), '--colour'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--colour'");
    expect(unknown.stderr).toContain('Usage: npm run local');
  });

  test('a port that is taken is named, with the fix, before anything starts', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as AddressInfo).port;
    try {
      const runner = startRunner(['--port', String(port)]);
      expect(await runner.exited).toBe(1);
      expect(runner.output()).toContain(
        `Port ${port} on 127.0.0.1 is already in use: stop what uses it, or choose another port with --port (0 picks a free one).`,
      );
    } finally {
      squatter.close();
    }
  });

  test('a plain HTTP port that is taken is named, with its own flag', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as AddressInfo).port;
    try {
      const runner = startRunner(['--port', '0', '--http-port', String(port)]);
      expect(await runner.exited).toBe(1);
      expect(runner.output()).toContain(
        `Port ${port} on 127.0.0.1 is already in use: stop what uses it, or choose another port with --http-port (0 picks a free one).`,
      );
    } finally {
      squatter.close();
    }
  });

  describe('a running gateway', () => {
    let runner: StartedRunner;
    let url: string;
    let folder: string;
    let ca: string;
    let agent: { cert: string; key: string };
    let agentPath: string;
    let httpUrl: string;

    beforeAll(async () => {
      runner = startRunner(['--port', '0']);
      url = (await waitForOutput(runner, /^Gateway ready: (https:\/\/127\.0\.0\.1:\d+)$/m))[1];
      folder = (await waitForOutput(runner, /^Local files \(removed on exit\): (.+)$/m))[1];
      ca = readFileSync((await waitForOutput(runner, /^ {2}CA certificate: +(.+)$/m))[1], 'utf8');
      agent = {
        cert: readFileSync((await waitForOutput(runner, /^ {2}agent certificate: +(.+)$/m))[1], 'utf8'),
        key: readFileSync((await waitForOutput(runner, /^ {2}agent key: +(.+)$/m))[1], 'utf8'),
      };
      agentPath = new URL((await waitForOutput(runner, /^Agent: curl .* (https:\/\/\S+)$/m))[1]).pathname;
      httpUrl = (await waitForOutput(runner, /^Plain HTTP: (http:\/\/127\.0\.0\.1:\d+) \(redirects every request to (\S+)\)$/m))[1];
    });

    afterAll(async () => {
      if (runner?.child.exitCode === null) {
        runner.child.kill('SIGKILL');
        await runner.exited;
      }
    });

    test('prints the ready line, the users and the client files', () => {
      expect(runner.output()).toMatch(/alice +password alice-dev-password +groups looker-analysts/);
      expect(existsSync(path.join(folder, 'client', 'ca.pem'))).toBe(true);
    });

    test('the printed plain HTTP address redirects to the same path on the gateway', async () => {
      const answer = await new Promise<{ status: number; location?: string }>((resolve, reject) => {
        http
          .get(`${httpUrl}/looks/3?x=1`, (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, location: res.headers.location });
          })
          .on('error', reject);
      });
      expect(answer).toEqual({ status: 301, location: `${url}/looks/3?x=1` });
    });

    test('prints that it runs in broker mode', () => {
      expect(runner.output()).toMatch(/^Mode: broker /m);
    });

    test("the agent's certificate reaches its API route and nothing else", async () => {
      const withCertificate = { ca, cert: agent.cert, key: agent.key };
      const allowed = await get(`${url}${agentPath}`, withCertificate);
      // Broker mode: the gateway lets the agent through to Looker, whose API wants its own
      // login (an API3 token), as Looker's does: the answer is Looker's, with the gateway's request id.
      expect(allowed.status).toBe(401);
      expect(JSON.parse(allowed.body)).toMatchObject({ message: 'Requires authentication.', request_id: expect.stringMatching(/\S/) });

      const otherMachinePath = await get(`${url}/api/4.0/queries/42`, withCertificate);
      expect(otherMachinePath.status).toBe(403);
      const browserPath = await get(`${url}/api/4.0/user`, withCertificate);
      expect(browserPath.status).toBe(401);

      const noCertificate = await get(`${url}${agentPath}`, { ca });
      expect([401, 403]).toContain(noCertificate.status);
    });

    test('SIGTERM stops every process it started and removes the temporary folder', async () => {
      const started = descendantsOf(runner.child.pid!);
      expect(started.length).toBeGreaterThanOrEqual(3);

      runner.child.kill('SIGTERM');
      const code = await runner.exited;

      expect(code).toBe(0);
      expect(runner.output()).toContain('Stopped; temporary files removed.');
      expect(started.filter(isAlive)).toEqual([]);
      expect(existsSync(folder)).toBe(false);
    });
  });

  test('Ctrl-C (SIGINT to the whole process group, as a terminal sends it) also stops everything and cleans up', async () => {
    const runner = startRunner(['--port', '0'], true);
    try {
      await waitForOutput(runner, /^Gateway ready: /m);
      const folder = (await waitForOutput(runner, /^Local files \(removed on exit\): (.+)$/m))[1];
      const started = descendantsOf(runner.child.pid!);

      process.kill(-runner.child.pid!, 'SIGINT');
      const code = await runner.exited;

      expect(code).toBe(0);
      expect(started.filter(isAlive)).toEqual([]);
      expect(existsSync(folder)).toBe(false);
    } finally {
      if (runner.child.exitCode === null) process.kill(-runner.child.pid!, 'SIGKILL');
    }
  });

  test('when HAProxy dies on its own, the runner says so, stops the rest, cleans up and exits 1', async () => {
    const runner = startRunner(['--port', '0']);
    try {
      await waitForOutput(runner, /^Gateway ready: /m);
      const folder = (await waitForOutput(runner, /^Local files \(removed on exit\): (.+)$/m))[1];
      const started = descendantsOf(runner.child.pid!);
      const haproxyMaster = started.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('haproxy.cfg') && descendantsOf(pid).length > 0);
      expect(haproxyMaster).toBeDefined();

      process.kill(haproxyMaster!, 'SIGKILL');
      const code = await runner.exited;

      expect(code).toBe(1);
      expect(runner.output()).toContain('A part of the local gateway stopped on its own: HAProxy exited (SIGKILL)');
      expect(started.filter(isAlive)).toEqual([]);
      expect(existsSync(folder)).toBe(false);
    } finally {
      if (runner.child.exitCode === null) runner.child.kill('SIGKILL');
    }
  });
});
