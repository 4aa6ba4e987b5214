/**
 * Stand-ins for what sits behind the gateway, on 127.0.0.1 over TLS:
 * - a Looker node that REQUIRES the gateway's client certificate, echoes what it got as
 *   JSON, answers GET /alive, and accepts websocket upgrades (echoing frames back raw);
 * - an auth service whose `POST <prefix>/oauth2/session` mints a fresh session with jose,
 *   counts its calls, and can be told to refuse (401) or to answer slowly.
 * Reused by the local runner and the user-data tests: keep them free of jest.
 */
import { createHash } from 'node:crypto';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { AUTH_PATHS, REFRESH_COOKIE, SESSION_COOKIE } from '../../../lib/session-contract';

export interface ServerTls {
  /** Server certificate, PEM. */
  readonly cert: string;
  readonly key: string;
  /** CA whose certificates the server accepts from clients (Looker: the gateway's client cert). */
  readonly clientCa?: string;
}

export interface EchoedRequest {
  readonly node: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly clientCertificateSubject: string | null;
  readonly body: string;
}

export interface LookerStandIn {
  readonly name: string;
  readonly port: number;
  /** Requests seen (not counting /alive). */
  readonly requests: EchoedRequest[];
  readonly healthChecks: () => number;
  close(): Promise<void>;
}

function listen(server: https.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: https.Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  });
}

function trackSockets(server: https.Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return sockets;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** A Looker node: mTLS required, echoes requests as JSON. */
export async function startLookerStandIn(name: string, tls: ServerTls, port = 0): Promise<LookerStandIn> {
  const requests: EchoedRequest[] = [];
  let healthChecks = 0;
  const server = https.createServer({ cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }, async (request, response) => {
    const body = await readBody(request);
    if (request.url === '/alive') {
      healthChecks += 1;
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    const peer = (request.socket as TLSSocket).getPeerCertificate();
    const echoed: EchoedRequest = {
      node: name,
      method: request.method ?? '',
      url: request.url ?? '',
      headers: request.headers,
      clientCertificateSubject: peer && peer.subject ? `CN=${peer.subject.CN}` : null,
      body,
    };
    requests.push(echoed);
    response.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'looker_own=from-looker; Path=/; Secure' }).end(JSON.stringify(echoed));
  });
  server.on('upgrade', (request: IncomingMessage, socket: Socket) => {
    const key = String(request.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Looker-Node: ${name}\r\n\r\n`);
    socket.pipe(socket);
  });
  const sockets = trackSockets(server);
  const boundPort = await listen(server, port);
  return { name, port: boundPort, requests, healthChecks: () => healthChecks, close: () => closeServer(server, sockets) };
}

export interface AuthStandInOptions {
  /** Mints the session a refresh returns, for the given refresh cookie value. */
  readonly mintSession: (refreshCookie: string) => Promise<{ token: string; expiresAt: number }>;
  /** Path prefix the gateway must prepend (API stage). @default '' */
  readonly pathPrefix?: string;
}

export interface AuthCall {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

export interface AuthStandIn {
  readonly port: number;
  /** Every request, in order. */
  readonly calls: AuthCall[];
  /** Calls of the inline refresh endpoint. */
  sessionCalls(): AuthCall[];
  /** Answer the inline refresh with 401. */
  refuse: boolean;
  /** Delay before answering the inline refresh, ms. */
  delayMs: number;
  close(): Promise<void>;
}

/** The auth service: `POST <prefix>/oauth2/session` mints a session; other paths answer identifiably. */
export async function startAuthStandIn(tls: ServerTls, options: AuthStandInOptions): Promise<AuthStandIn> {
  const prefix = options.pathPrefix ?? '';
  const calls: AuthCall[] = [];
  const state = { refuse: false, delayMs: 0 };
  let refreshCounter = 0;
  const server = https.createServer({ cert: tls.cert, key: tls.key }, async (request: IncomingMessage, response: ServerResponse) => {
    await readBody(request);
    calls.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    if (request.url === `${prefix}${AUTH_PATHS.session}` && request.method === 'POST') {
      if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
      const cookies = String(request.headers.cookie ?? '');
      const refreshCookie = /(?:^|;\s*)__Host-lg_refresh=([^;]*)/.exec(cookies)?.[1];
      if (state.refuse || !refreshCookie) {
        response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'login_required' }));
        return;
      }
      const { token, expiresAt } = await options.mintSession(refreshCookie);
      refreshCounter += 1;
      response
        .writeHead(200, {
          'content-type': 'application/json',
          'set-cookie': [
            `${SESSION_COOKIE}=${token}; Path=/; Secure; HttpOnly; SameSite=Lax`,
            `${REFRESH_COOKIE}=rotated-refresh-${refreshCounter}-aaaaaaaaaaaa; Path=/; Secure; HttpOnly; SameSite=Lax`,
          ],
        })
        .end(JSON.stringify({ session: token, expiresAt }));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ authService: true, method: request.method, url: request.url, host: request.headers.host }));
  });
  const sockets = trackSockets(server);
  const port = await listen(server);
  return {
    port,
    calls,
    sessionCalls: () => calls.filter((call) => call.url === `${prefix}${AUTH_PATHS.session}`),
    get refuse() {
      return state.refuse;
    },
    set refuse(value: boolean) {
      state.refuse = value;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(value: number) {
      state.delayMs = value;
    },
    close: () => closeServer(server, sockets),
  };
}
