/**
 * One Looker stand-in node (test/fleet/support/stand-ins.ts: mTLS required, GET /alive, echoes
 * requests) as a process of its own, so a fault can kill it and start it again on the same
 * port, as a Looker node is lost and comes back.
 *
 *   node --import tsx dev/resilience/looker-process.ts <settings.json>
 *
 * Prints `{"ready":true,"port":n}` once it listens.
 */
import { readFileSync } from 'node:fs';
import { startLookerStandIn } from '../stand-ins/gateway-backends';

export interface LookerProcessSettings {
  readonly name: string;
  readonly port: number;
  readonly cert: string;
  readonly key: string;
  readonly clientCa: string;
}

async function main(settingsFile: string): Promise<void> {
  const settings = JSON.parse(readFileSync(settingsFile, 'utf8')) as LookerProcessSettings;
  const node = await startLookerStandIn(settings.name, { cert: settings.cert, key: settings.key, clientCa: settings.clientCa }, settings.port);
  // The stand-in keeps every request it saw; a long run must not grow for that reason.
  setInterval(() => node.requests.splice(0, node.requests.length), 1000).unref();
  process.stdout.write(`${JSON.stringify({ ready: true, port: node.port })}\n`);
  const stop = () => void node.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main(process.argv[2]).catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
