/**
 * Stand-ins for what sits behind the gateway, on 127.0.0.1 over TLS:
 * - a Looker node that REQUIRES the gateway's client certificate, echoes what it got as
 *   JSON, answers GET /alive, and accepts websocket upgrades (echoing frames back raw);
 * - an auth service that follows the session contract: the inline refresh (minting a session
 *   and its assertion for the session the refresh cookie stands for), logout, and the
 *   revocation list; it counts its calls and can be told to refuse (401), to answer slowly,
 *   or to fail the revocation list.
 * Reused by the local runner and the user-data tests: keep them free of jest.
 */
import { createHash } from 'node:crypto';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ASSERTION_COOKIE, AUTH_PATHS, REFRESH_COOKIE, RevocationList, SESSION_COOKIE } from '../../core/session-contract';

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
  const server = https.createServer(
    { cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: true },
    async (request, response) => {
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
      // A test can ask for the caching headers a real Looker page or asset would carry, and for
      // the X-Frame-Options Looker sends on its own pages (or none).
      const cacheControl = request.headers['x-test-cache-control'];
      const frameOptions = request.headers['x-test-frame-options'];
      response
        .writeHead(200, {
          'content-type': 'application/json',
          'set-cookie': 'looker_own=from-looker; Path=/; Secure',
          ...(cacheControl ? { 'cache-control': String(cacheControl), vary: 'Accept-Encoding' } : {}),
          ...(frameOptions ? { 'x-frame-options': String(frameOptions) } : {}),
        })
        .end(JSON.stringify(echoed));
    },
  );
  server.on('upgrade', (request: IncomingMessage, socket: Socket) => {
    const key = String(request.headers['sec-websocket-key'] ?? '');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Looker-Node: ${name}\r\n\r\n`,
    );
    socket.pipe(socket);
  });
  const sockets = trackSockets(server);
  const boundPort = await listen(server, port);
  return { name, port: boundPort, requests, healthChecks: () => healthChecks, close: () => closeServer(server, sockets) };
}

/**
 * What a refresh cookie stands for. The real auth service seals it (JWE with the refresh
 * token, sub and sid); the stand-in's cookie is `rt.<base64url JSON>` of the same facts, and
 * any other value is refused, as an unreadable cookie is by the real service.
 */
export interface RefreshState {
  readonly sub: string;
  readonly sid: string;
  /** Makes two cookies of one session differ. */
  readonly n?: string;
}

const REFRESH_COOKIE_PREFIX = 'rt.';

/** A refresh cookie value the stand-in accepts. */
export function standInRefreshCookie(state: RefreshState): string {
  return `${REFRESH_COOKIE_PREFIX}${Buffer.from(JSON.stringify({ n: Math.random().toString(36).slice(2), ...state })).toString('base64url')}`;
}

function readRefreshCookie(value: string): RefreshState | undefined {
  if (!value.startsWith(REFRESH_COOKIE_PREFIX)) return undefined;
  try {
    const state = JSON.parse(Buffer.from(value.slice(REFRESH_COOKIE_PREFIX.length), 'base64url').toString('utf8'));
    return typeof state.sub === 'string' && typeof state.sid === 'string' ? state : undefined;
  } catch {
    return undefined;
  }
}

/** What the stand-in answers a refresh with. */
export interface MintedPair {
  readonly token: string;
  readonly expiresAt: number;
  /** The upstream assertion minted with the session (set as a cookie; in the body when `assertionInBody`). */
  readonly assertion?: string;
}

export interface AuthStandInOptions {
  /** Mints the session (and its assertion) a refresh returns, for the session the refresh cookie stands for. */
  readonly mintSession: (state: RefreshState) => Promise<MintedPair>;
  /** Path prefix the gateway must prepend (API stage). @default '' */
  readonly pathPrefix?: string;
  /** Seconds added to a session's exp for its revocation entry's `until`. @default 30 */
  readonly clockSkewSeconds?: number;
}

export interface AuthCall {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  /** When the stand-in received it (Date.now()). */
  readonly at: number;
}

export interface AuthStandIn {
  readonly port: number;
  /** Every request, in order. */
  readonly calls: AuthCall[];
  /** Calls of the inline refresh endpoint. */
  sessionCalls(): AuthCall[];
  /** Calls of the revocation list (the gateway's polls). */
  revocationCalls(): AuthCall[];
  /** Answer the inline refresh with 401. */
  refuse: boolean;
  /** Delay before answering the inline refresh, ms. */
  delayMs: number;
  /** Put the assertion into the refresh answer's JSON body too (it is always set as a cookie). */
  assertionInBody: boolean;
  /** Answer the revocation list with this status (and no list) instead of 200. */
  revocationsFailWith: number | undefined;
  /** Answer the inline refresh with this status (a 5xx: API Gateway's 502/503/504, the IdP down) instead of refreshing. */
  sessionFailsWith: number | undefined;
  /** Delay before answering any path other than the session, the revocation list and logout (a login that hangs), ms. */
  otherRoutesDelayMs: number;
  /** Answer any path other than the session, the revocation list and logout with this (API Gateway's own throttling or failure answer, or the auth service's error page). */
  otherRoutesAnswer: { status: number; headers: Record<string, string>; body: string } | undefined;
  /** Revokes a session id until `until` (epoch seconds), as a logout or an administrator does. */
  revoke(sid: string, until: number): void;
  /** The revocation list as the stand-in serves it. */
  revocationList(): RevocationList;
  close(): Promise<void>;
}

function payloadOf(token: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The auth service, as far as the gateway's data plane sees it (core/session-contract.ts):
 * `POST <prefix>/oauth2/session` mints a session and its assertion for a readable refresh
 * cookie; `POST <prefix>/oauth2/logout` revokes the session cookie's sid until its exp plus
 * the skew; `GET <prefix>/oauth2/revocations` serves the complete list (RevocationList);
 * other paths answer identifiably.
 */
export async function startAuthStandIn(tls: ServerTls, options: AuthStandInOptions): Promise<AuthStandIn> {
  const prefix = options.pathPrefix ?? '';
  const skew = options.clockSkewSeconds ?? 30;
  const calls: AuthCall[] = [];
  const state = {
    refuse: false,
    delayMs: 0,
    assertionInBody: true,
    revocationsFailWith: undefined as number | undefined,
    sessionFailsWith: undefined as number | undefined,
    otherRoutesDelayMs: 0,
    otherRoutesAnswer: undefined as { status: number; headers: Record<string, string>; body: string } | undefined,
  };
  const revoked = new Map<string, number>();
  let refreshCounter = 0;
  const revocationList = (): RevocationList => {
    const now = Math.floor(Date.now() / 1000);
    return { revoked: [...revoked].filter(([, until]) => until > now).map(([sid, until]) => ({ sid, until })), asOf: now };
  };
  const server = https.createServer({ cert: tls.cert, key: tls.key }, async (request: IncomingMessage, response: ServerResponse) => {
    await readBody(request);
    calls.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, at: Date.now() });
    const cookies = String(request.headers.cookie ?? '');
    const cookie = (name: string) => new RegExp(`(?:^|;\\s*)${name}=([^;]*)`).exec(cookies)?.[1];
    if (request.url === `${prefix}${AUTH_PATHS.session}` && request.method === 'POST') {
      if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
      if (state.sessionFailsWith !== undefined) {
        response.writeHead(state.sessionFailsWith, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Service Unavailable' }));
        return;
      }
      const refreshState = readRefreshCookie(cookie(REFRESH_COOKIE) ?? '');
      if (state.refuse || !refreshState || revoked.has(refreshState.sid)) {
        response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'login_required' }));
        return;
      }
      const { token, expiresAt, assertion } = await options.mintSession(refreshState);
      refreshCounter += 1;
      response
        .writeHead(200, {
          'content-type': 'application/json',
          'set-cookie': [
            `${SESSION_COOKIE}=${token}; Path=/; Secure; HttpOnly; SameSite=Lax`,
            `${REFRESH_COOKIE}=${standInRefreshCookie(refreshState)}; Path=/; Secure; HttpOnly; SameSite=Lax`,
            ...(assertion ? [`${ASSERTION_COOKIE}=${assertion}; Path=/; Secure; HttpOnly; SameSite=Lax`] : []),
          ],
          'x-refresh-number': String(refreshCounter),
        })
        .end(JSON.stringify({ session: token, expiresAt, ...(assertion && state.assertionInBody ? { assertion } : {}) }));
      return;
    }
    if (request.url === `${prefix}${AUTH_PATHS.revocations}` && request.method === 'GET') {
      if (state.revocationsFailWith !== undefined) {
        response.writeHead(state.revocationsFailWith, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unavailable' }));
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(revocationList()));
      return;
    }
    if (request.url === `${prefix}${AUTH_PATHS.logout}` && request.method === 'POST') {
      const payload = payloadOf(cookie(SESSION_COOKIE) ?? '');
      if (payload && typeof payload.sid === 'string' && typeof payload.exp === 'number') revoked.set(payload.sid, payload.exp + skew);
      response
        .writeHead(200, {
          'content-type': 'application/json',
          'set-cookie': [SESSION_COOKIE, REFRESH_COOKIE, ASSERTION_COOKIE].map((name) => `${name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`),
        })
        .end(JSON.stringify({ loggedOut: true }));
      return;
    }
    // unref: a test that stops the stand-in while a slow answer is pending does not wait for it.
    if (state.otherRoutesDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.otherRoutesDelayMs).unref());
    if (response.destroyed) return;
    if (state.otherRoutesAnswer) {
      response.writeHead(state.otherRoutesAnswer.status, state.otherRoutesAnswer.headers).end(state.otherRoutesAnswer.body);
      return;
    }
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ authService: true, method: request.method, url: request.url, host: request.headers.host }));
  });
  const sockets = trackSockets(server);
  const port = await listen(server);
  return {
    port,
    calls,
    sessionCalls: () => calls.filter((call) => call.url === `${prefix}${AUTH_PATHS.session}`),
    revocationCalls: () => calls.filter((call) => call.url === `${prefix}${AUTH_PATHS.revocations}`),
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
    get assertionInBody() {
      return state.assertionInBody;
    },
    set assertionInBody(value: boolean) {
      state.assertionInBody = value;
    },
    get revocationsFailWith() {
      return state.revocationsFailWith;
    },
    set revocationsFailWith(value: number | undefined) {
      state.revocationsFailWith = value;
    },
    get sessionFailsWith() {
      return state.sessionFailsWith;
    },
    set sessionFailsWith(value: number | undefined) {
      state.sessionFailsWith = value;
    },
    get otherRoutesDelayMs() {
      return state.otherRoutesDelayMs;
    },
    set otherRoutesDelayMs(value: number) {
      state.otherRoutesDelayMs = value;
    },
    get otherRoutesAnswer() {
      return state.otherRoutesAnswer;
    },
    set otherRoutesAnswer(value: { status: number; headers: Record<string, string>; body: string } | undefined) {
      state.otherRoutesAnswer = value;
    },
    revoke: (sid, until) => {
      revoked.set(sid, until);
    },
    revocationList,
    close: () => closeServer(server, sockets),
  };
}
