/**
 * Revocation delay: from the moment a logout answer reaches the browser to the first 401
 * the gateway gives that session. The real haproxy 3.0 runs the rendered config (default
 * poll interval, DEFAULT_REVOCATION_POLL_SECONDS) against the auth stand-in of test/fleet,
 * which follows the contract: POST /oauth2/logout revokes the session's sid, GET
 * /oauth2/revocations lists it. Each trial logs in a new session (a fresh sid), checks it
 * is served, logs out through the gateway, then sends the session every 25 ms until the
 * gateway refuses it. The logout comes at a random point of the poll cycle. Writes
 * bench/results/revocation.json.
 *
 *   npx tsx bench/revocation.ts      (also run by `npm run bench`; about 2 min)
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AUTH_PATHS, DEFAULT_REVOCATION_POLL_SECONDS } from '../core/session-contract';
import { DEFAULT_CLAIMS, sessionCookies, startGatewayEnv } from '../dev/gateway-env';

const TRIALS = Number(process.env.BENCH_REVOCATION_TRIALS ?? 20);
const PROBE_INTERVAL_MS = 25;
const GIVE_UP_MS = (DEFAULT_REVOCATION_POLL_SECONDS + 10) * 1000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const env = await startGatewayEnv({ lookerNodes: 1 });
  const delays: number[] = [];
  try {
    for (let trial = 0; trial < TRIALS; trial += 1) {
      const token = await env.mint({ ...DEFAULT_CLAIMS, sid: `bench-${randomUUID()}` });
      const client = env.client({ keepAlive: true });
      const headers = { 'x-requested-with': 'XMLHttpRequest', cookie: sessionCookies(token) };
      if ((await client.request('/api/me', { headers })).status !== 200) throw new Error(`trial ${trial}: the new session was not served`);
      // Log out at a random point of the poll cycle, as a user would.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * DEFAULT_REVOCATION_POLL_SECONDS * 1000));
      const logout = await client.request(AUTH_PATHS.logout, { method: 'POST', headers: { cookie: sessionCookies(token) } });
      if (logout.status !== 200) throw new Error(`trial ${trial}: logout answered ${logout.status}`);
      const loggedOut = Date.now();
      for (;;) {
        const response = await client.request('/api/me', { headers });
        if (response.status === 401) {
          delays.push(Date.now() - loggedOut);
          break;
        }
        if (Date.now() - loggedOut > GIVE_UP_MS) throw new Error(`trial ${trial}: still ${response.status} ${GIVE_UP_MS} ms after the logout`);
        await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
      }
      client.close();
    }
  } finally {
    await env.stop();
  }
  const sorted = [...delays].sort((a, b) => a - b);
  const result = {
    what: 'logout answer received -> first 401 for that session (ms), one HAProxy process, auth stand-in on loopback',
    pollSeconds: DEFAULT_REVOCATION_POLL_SECONDS,
    probeIntervalMs: PROBE_INTERVAL_MS,
    trials: TRIALS,
    minMs: sorted[0],
    medianMs: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    maxMs: sorted[sorted.length - 1],
    delaysMs: delays,
    measuredAt: new Date().toISOString(),
  };
  writeFileSync(path.join(__dirname, 'results', 'revocation.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `revocation delay over ${TRIALS} logouts (poll every ${DEFAULT_REVOCATION_POLL_SECONDS} s): min ${result.minMs} ms, median ${result.medianMs} ms, p90 ${result.p90Ms} ms, max ${result.maxMs} ms`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
