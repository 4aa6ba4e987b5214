/**
 * The auth service as a process of its own, so faults can act on it as on a real one
 * (SIGSTOP, SIGKILL): the esbuild bundle's handler (the file the construct deploys), loaded
 * as the Lambda runtime loads it, behind a small model of the private REST API in front of it.
 *
 *   node --import tsx dev/resilience/auth-process.ts <settings.json>
 *
 * The settings file holds the bundle path, the port, TLS and the Lambda environment. The
 * bundle reads its secrets through its own AWS SDK client from the Secrets Manager endpoint
 * the parent runs (AWS_ENDPOINT_URL_SECRETS_MANAGER), trusts the local CA through
 * NODE_EXTRA_CA_CERTS (set by the parent), and writes its audit lines to stdout, as in Lambda.
 *
 * The API Gateway model can be switched at run time through a control port on 127.0.0.1
 * (POST /mode with {"mode": "normal" | "slow" | "throttled", "delayMs": n}):
 * - throttled: every request is answered as API Gateway answers a throttled one, 429 with
 *   the body {"message":"Too Many Requests"} and `x-amzn-ErrorType: ThrottlingException`,
 *   without invoking the function (dev/aws/api-gateway-answers.ts cites AWS's documents);
 * - slow: the function answers after `delayMs` (a cold start, a slow dependency);
 * - unreachable: the listener is closed (connections refused), the function's memory kept,
 *   as when the endpoint cannot be reached; back to normal listens on the same port again.
 * Prints one line `{"ready":true,"port":n,"controlPort":n}` once both listen.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { startLocalAuthService } from '../auth-local-server';
import { API_GATEWAY_ANSWERS } from '../aws/api-gateway-answers';

export interface AuthProcessSettings {
  readonly bundleFile: string;
  readonly port: number;
  readonly cert: string;
  readonly key: string;
  readonly environment: Record<string, string>;
}

export type ApiGatewayMode = 'normal' | 'slow' | 'throttled' | 'unreachable';

interface ModeState {
  mode: ApiGatewayMode;
  delayMs: number;
}

/** API Gateway's answer to a throttled request (dev/aws/api-gateway-answers.ts). */
export function throttledAnswer(): APIGatewayProxyResult {
  const { status, headers, body } = API_GATEWAY_ANSWERS.throttled;
  return { statusCode: status, headers, body };
}

async function main(settingsFile: string): Promise<void> {
  const settings = JSON.parse(readFileSync(settingsFile, 'utf8')) as AuthProcessSettings;
  Object.assign(process.env, settings.environment);

  const bundle = require(settings.bundleFile) as { handler: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult> };
  const state: ModeState = { mode: 'normal', delayMs: 0 };
  const handler = {
    handle: async (event: APIGatewayProxyEvent, context?: Partial<Context>) => {
      if (state.mode === 'throttled') return throttledAnswer();
      if (state.mode === 'slow') await new Promise((resolve) => setTimeout(resolve, state.delayMs));
      return bundle.handler(event, (context ?? {}) as Context);
    },
  };
  const listen = (port: number) => startLocalAuthService({ port, tls: { cert: settings.cert, key: settings.key }, handler });
  let running: Awaited<ReturnType<typeof listen>> | undefined = await listen(settings.port);
  const port = running.port;
  const control = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      void (async () => {
        const asked = JSON.parse(body) as Partial<ModeState>;
        if (!['normal', 'slow', 'throttled', 'unreachable'].includes(String(asked.mode))) throw new Error(`unknown mode ${JSON.stringify(asked.mode)}`);
        state.mode = asked.mode!;
        state.delayMs = Number(asked.delayMs ?? 0);
        if (state.mode === 'unreachable' && running) {
          const closing = running;
          running = undefined;
          await closing.stop();
        } else if (state.mode !== 'unreachable' && !running) {
          running = await listen(port);
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(state));
      })().catch((error: unknown) => {
        response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (error as Error).message }));
      });
    });
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', () => resolve()));
  process.stdout.write(`${JSON.stringify({ ready: true, port, controlPort: (control.address() as AddressInfo).port })}\n`);
  const stop = () => void (running?.stop() ?? Promise.resolve()).then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main(process.argv[2]).catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
