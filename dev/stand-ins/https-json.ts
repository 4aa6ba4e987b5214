/**
 * What the API stand-ins share: an HTTPS server on 127.0.0.1 that stops cleanly, JSON
 * answers, bounded request bodies, bearer tokens, and failures a test can inject.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { AddressInfo } from 'node:net';

export interface RunningHttpsServer {
  readonly port: number;
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  stop(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void>;

export function startHttpsServer(options: { certPem: string; keyPem: string; port?: number }, handler: Handler): Promise<RunningHttpsServer> {
  const server = https.createServer({ cert: options.certPem, key: options.keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    handler(req, res, url).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'stand-in-error', message: String((error as Error)?.message ?? error) } });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        port,
        url: `https://127.0.0.1:${port}`,
        stop: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

const MAX_BODY_BYTES = 64 * 1024;

export function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new Error('request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The bearer token of the Authorization header, if there is one. */
export function bearerToken(req: http.IncomingMessage): string | undefined {
  const match = /^Bearer ([\x21-\x7e]+)$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

/** An injected failure: the next `times` API calls answer `status` (with Retry-After for 429 and 503). */
export interface InjectedFailure {
  readonly status: number;
  readonly times: number;
  readonly retryAfterSeconds?: number;
  /** Wait this long before answering (a slow API, for timeouts). @default 0 */
  readonly delayMs?: number;
}

export class FailureSwitch {
  private failure?: InjectedFailure;
  private left = 0;

  set(failure: InjectedFailure | undefined): void {
    this.failure = failure;
    this.left = failure?.times ?? 0;
  }

  /** The failure to answer with now, counting it down. */
  take(): InjectedFailure | undefined {
    if (!this.failure || this.left <= 0) return undefined;
    this.left -= 1;
    return this.failure;
  }
}
