/**
 * HAProxy's two command sockets: the master CLI (`-S <socket>`: reload, show proc) and a
 * worker's admin socket (`stats socket ... level admin`: show table, show pools, show stat).
 */
import { connect } from 'node:net';

const SOCKET_WAIT_MS = 10_000;

/** Sends one command and returns the whole answer; waits up to 10 s for the socket to accept (a restarting master). */
export async function socketCommand(socketPath: string, command: string): Promise<string> {
  const deadline = Date.now() + SOCKET_WAIT_MS;
  for (;;) {
    try {
      return await once(socketPath, command);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > deadline)
        throw new Error(`${socketPath} did not take "${command}": ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export const masterCli = socketCommand;

function once(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    socket.setTimeout(SOCKET_WAIT_MS, () => socket.destroy(new Error(`no answer within ${SOCKET_WAIT_MS} ms`)));
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.end(`${command}\n`);
  });
}

/** `show stat` as rows keyed by column name. */
export async function showStat(adminSocket: string): Promise<Array<Record<string, string>>> {
  const csv = await socketCommand(adminSocket, 'show stat');
  const [header, ...rows] = csv.split('\n').filter((line) => line.length > 0);
  const columns = header.replace(/^# /, '').split(',');
  return rows.map((row) => Object.fromEntries(row.split(',').map((value, i) => [columns[i], value])));
}

/** Number of entries of a stick table (`show table <name>` prints `size:` and `used:`). */
export async function stickTableUsed(adminSocket: string, table: string): Promise<number> {
  const answer = await socketCommand(adminSocket, `show table ${table}`);
  const match = /used:(\d+)/.exec(answer);
  if (!match) throw new Error(`show table ${table} answered without a used count:\n${answer.slice(0, 300)}`);
  return Number(match[1]);
}

/** Total bytes allocated in HAProxy's memory pools (`show pools`: "Total: n pools, x bytes allocated, y used"). */
export async function poolBytes(adminSocket: string): Promise<{ allocated: number; used: number }> {
  const answer = await socketCommand(adminSocket, 'show pools');
  const match = /Total:\s*\d+ pools?,\s*(\d+) bytes allocated,\s*(\d+) used/.exec(answer);
  if (!match) throw new Error(`show pools answered without a total:\n${answer.slice(-300)}`);
  return { allocated: Number(match[1]), used: Number(match[2]) };
}
