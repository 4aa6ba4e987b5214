/**
 * `npm run local [-- --port 8443 --session-ttl 600]`: the whole gateway on 127.0.0.1.
 * Prints `Gateway ready: https://127.0.0.1:<port>` once everything answers; Ctrl-C or
 * SIGTERM stops every process it started and removes its temporary folder.
 */
import { parseArgs } from 'node:util';
import { DEV_USERS } from '../dev/stand-ins/idp/dev-users';
import type { LocalGateway, LocalGatewayMode, LocalGatewayOptions } from './gateway';

export const DEFAULT_LOCAL_PORT = 8443;

const USAGE = `Usage: npm run local -- [--port <port>] [--http-port <port>] [--session-ttl <seconds>] [--refresh-window <seconds>] [--mode broker|direct]

  --port <port>               gateway port on 127.0.0.1 (default ${DEFAULT_LOCAL_PORT}; 0 picks a free one)
  --http-port <port>          plain HTTP port that redirects to the gateway (default: a free one)
  --session-ttl <seconds>     session lifetime (default 600)
  --refresh-window <seconds>  refresh a session that expires within this many seconds
                              (default 60, or a fifth of the session lifetime when shorter)
  --mode broker|direct        broker (default): the Looker stand-in logs users in with Looker's own
                              OpenID Connect login at the gateway and applies the mapped roles;
                              direct: it only shows the identity headers the gateway sends
  --help                      show this help`;

/** Parses the command line; throws an Error whose message names the bad value and the fix. */
export function parseCommandLine(argv: readonly string[]): LocalGatewayOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        'http-port': { type: 'string' },
        'session-ttl': { type: 'string' },
        'refresh-window': { type: 'string' },
        mode: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (parsed.values.help) return 'help';
  const whole = (flag: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    const example = { port: DEFAULT_LOCAL_PORT, 'http-port': 8080 }[flag] ?? 600;
    if (!/^\d+$/.test(raw)) throw new Error(`--${flag} ${JSON.stringify(raw)} is not a whole number: give for example --${flag} ${example}.`);
    return Number(raw);
  };
  return {
    port: whole('port', parsed.values.port) ?? DEFAULT_LOCAL_PORT,
    httpPort: whole('http-port', parsed.values['http-port']),
    sessionTtlSeconds: whole('session-ttl', parsed.values['session-ttl']),
    refreshWindowSeconds: whole('refresh-window', parsed.values['refresh-window']),
    mode: modeOf(parsed.values.mode),
  };
}

function modeOf(raw: string | undefined): LocalGatewayMode {
  if (raw === undefined || raw === 'broker' || raw === 'direct') return raw ?? 'broker';
  throw new Error(
    `--mode ${JSON.stringify(raw)} is not a mode: give --mode broker (Looker's own OpenID Connect login at the gateway, the default) or --mode direct (identity headers only).`,
  );
}

function describe(gateway: LocalGateway): string {
  const users = Object.values(DEV_USERS)
    .map((user) => `    ${user.username.padEnd(6)} password ${user.password.padEnd(20)} groups ${user.groups.join(', ')}`)
    .join('\n');
  return [
    `Local files (removed on exit): ${gateway.folder}`,
    `  CA certificate:    ${gateway.caFile}`,
    `  agent certificate: ${gateway.agentCertFile}`,
    `  agent key:         ${gateway.agentKeyFile}`,
    `Dev IdP: ${gateway.idp.issuer}; users:`,
    users,
    `Plain HTTP: ${gateway.httpUrl} (redirects every request to ${gateway.url})`,
    `Session lifetime ${gateway.sessionTtlSeconds} s, refreshed inline within ${gateway.refreshWindowSeconds} s of expiry.`,
    gateway.mode === 'broker'
      ? "Mode: broker (the Looker stand-in signs users in with Looker's own OpenID Connect login at the gateway; --mode direct for headers only)."
      : 'Mode: direct (the Looker stand-in shows the identity headers the gateway sends; Looker itself would not read them).',
    `Agent: curl --cacert ${gateway.caFile} --cert ${gateway.agentCertFile} --key ${gateway.agentKeyFile} ${gateway.url}${gateway.agentPaths[0] ?? '/'}`,
    `Press Ctrl-C to stop.`,
  ].join('\n');
}

async function main(): Promise<void> {
  let options;
  try {
    options = parseCommandLine(process.argv.slice(2));
  } catch (error) {
    console.error((error as Error).message);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    console.log(USAGE);
    return;
  }
  let stopping = false;
  // Loaded only now, so that --help and bad options answer at once.
  const { startLocalGateway } = await import('./gateway.js');
  const starting = startLocalGateway(options);
  const stop = async (reason: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    console.log(`Stopping (${reason})...`);
    try {
      // A signal that arrives while starting waits for the start to finish (or fail and clean up).
      const gateway = await starting.catch(() => undefined);
      await gateway?.stop();
      console.log('Stopped; temporary files removed.');
    } catch (error) {
      console.error((error as Error).message);
      exitCode = 1;
    }
    process.exit(exitCode);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  let gateway: LocalGateway;
  try {
    gateway = await starting;
  } catch (error) {
    if (stopping) return;
    console.error(`The local gateway did not start: ${(error as Error).message}`);
    process.exit(1);
  }
  if (stopping) return;
  void gateway.unexpectedExit.then((message) => {
    // Ctrl-C reaches every process of the terminal's group at once: give the runner's own
    // SIGINT handler the moment it needs, so a child that merely exited first is not an error.
    setTimeout(() => {
      if (stopping) return;
      console.error(`A part of the local gateway stopped on its own: ${message}`);
      void stop('a part exited', 1);
    }, 500);
  });
  console.log(describe(gateway));
  console.log(`Gateway ready: ${gateway.url}`);
}

if (require.main === module) void main();
