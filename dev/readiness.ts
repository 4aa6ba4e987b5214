/**
 * "Everything answers": the checks the runner makes before it prints `Gateway ready`.
 */
import * as https from 'node:https';
import { createServer } from 'node:net';
import { AUTH_PATHS } from '../core/session-contract';

export { freePort } from './ports';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTPS request trusting `ca`; never follows redirects. */
export function httpsRequest(url: string, ca: string, options: https.RequestOptions & { body?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const { body, ...requestOptions } = options;
    const request = https.request(url, { ca, timeout: 5000, ...requestOptions }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`${url} did not answer within 5 s`)));
    request.on('error', reject);
    if (body !== undefined) request.write(body);
    request.end();
  });
}

interface ReadinessCheck {
  readonly what: string;
  run(): Promise<string | undefined>;
}

export interface ReadinessTargets {
  readonly gatewayUrl: string;
  /** The local CA, PEM. */
  readonly ca: string;
  readonly idpIssuer: string;
  /** The auth service itself, not through HAProxy (whose rate limit on /oauth2/* a poll loop would use up). */
  readonly authServiceUrl: string;
}

const READY_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 100;

/** Resolves once the IdP, the auth service, HAProxy's route to it and the session check answer; throws with what did not. */
export async function waitUntilReady(targets: ReadinessTargets): Promise<void> {
  const { gatewayUrl, ca } = targets;
  const checks: ReadinessCheck[] = [
    {
      what: 'the dev IdP discovery document',
      run: async () => expectStatus(await httpsRequest(`${targets.idpIssuer}/.well-known/openid-configuration`, ca), 200),
    },
    {
      what: `the auth service (${AUTH_PATHS.health})`,
      run: async () => expectStatus(await httpsRequest(`${targets.authServiceUrl}${AUTH_PATHS.health}`, ca), 200),
    },
    {
      what: `the auth service's keys through HAProxy (${AUTH_PATHS.jwks})`,
      run: async () => expectStatus(await httpsRequest(`${gatewayUrl}${AUTH_PATHS.jwks}`, ca), 200),
    },
    {
      what: 'the session check (a browser without a session is sent to the login)',
      run: async () => {
        const answer = await httpsRequest(`${gatewayUrl}/`, ca, {
          headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' },
        });
        const location = String(answer.headers.location ?? '');
        return answer.status === 302 && location.includes(AUTH_PATHS.start) ? undefined : `answered ${answer.status} ${location}`;
      },
    },
  ];
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (const check of checks) {
    for (;;) {
      let problem: string | undefined;
      try {
        problem = await check.run();
      } catch (error) {
        problem = (error as Error).message;
      }
      if (problem === undefined) break;
      if (Date.now() > deadline) throw new Error(`The local gateway is not ready after ${READY_TIMEOUT_MS / 1000} s: ${check.what}: ${problem}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }
}

function expectStatus(answer: HttpAnswer, status: number): string | undefined {
  return answer.status === status ? undefined : `answered ${answer.status}: ${answer.body.slice(0, 200)}`;
}

/** Throws with the fix when `port` on 127.0.0.1 is taken (HAProxy's own message is harder to read). */
export function assertPortFree(port: number, flag = '--port'): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`Port ${port} on 127.0.0.1 is already in use: stop what uses it, or choose another port with ${flag} (0 picks a free one).`)
          : error,
      );
    });
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}
