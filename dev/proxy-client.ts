/**
 * An HTTPS client that speaks through the gateway's PROXY-protocol listener the way the
 * NLB does: a PROXY v2 header with the (claimed) client address, then TLS on the same
 * socket. Built on Node's https module so tests can present client certificates and
 * choose the SNI name.
 */
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { proxyV2Header } from './proxy-protocol';

export { proxyV2Header };

export interface ClientIdentity {
  /** Client certificate, PEM. */
  readonly cert: string;
  /** Its private key, PEM. */
  readonly key: string;
}

export interface GatewayClientOptions {
  /** Port of the gateway's TLS listener on 127.0.0.1. */
  readonly port: number;
  /** CA that signed the gateway's certificate. */
  readonly ca: string;
  /** SNI and Host. @default 'gateway.test' */
  readonly serverName?: string;
  /** Send a PROXY v2 header first. @default true */
  readonly proxyProtocol?: boolean;
  /** Client address claimed in the PROXY header. @default '192.0.2.10' */
  readonly sourceAddress?: string;
  readonly clientCertificate?: ClientIdentity;
  /** Reuse one connection for every request (keep-alive, one socket). @default false */
  readonly keepAlive?: boolean;
}

export interface GatewayResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  json<T = any>(): T;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string;
  /** Header lines sent exactly as given (name, value, name, value...), e.g. two Cookie lines. */
  readonly rawHeaders?: string[];
  /** How long to wait for the answer before failing, ms. @default 15000 */
  readonly timeoutMs?: number;
}

export class GatewayClient {
  private readonly agent: https.Agent;

  constructor(private readonly options: GatewayClientOptions) {
    const connect = (connectOptions: https.RequestOptions) => this.connect(connectOptions);
    this.agent = new (class extends https.Agent {
      createConnection(connectOptions: https.RequestOptions): net.Socket {
        return connect(connectOptions);
      }
    })({ keepAlive: options.keepAlive ?? false, maxSockets: options.keepAlive ? 1 : Infinity });
  }

  private connect(_connectOptions: https.RequestOptions, alpn: string[] = ['http/1.1']): tls.TLSSocket {
    const raw = net.connect({ host: '127.0.0.1', port: this.options.port });
    if (this.options.proxyProtocol ?? true) {
      raw.write(
        proxyV2Header(
          { address: this.options.sourceAddress ?? '192.0.2.10', port: 40000 + Math.floor(Math.random() * 20000) },
          { address: '10.0.0.1', port: 443 },
        ),
      );
    }
    return tls.connect({
      socket: raw,
      servername: this.options.serverName ?? 'gateway.test',
      ca: this.options.ca,
      cert: this.options.clientCertificate?.cert,
      key: this.options.clientCertificate?.key,
      ALPNProtocols: alpn,
    });
  }

  request(path: string, options: RequestOptions = {}): Promise<GatewayResponse> {
    return new Promise((resolve, reject) => {
      const request = https.request(
        {
          host: '127.0.0.1',
          port: this.options.port,
          path,
          method: options.method ?? 'GET',
          headers: options.rawHeaders
            ? (['host', this.options.serverName ?? 'gateway.test', ...options.rawHeaders] as unknown as Record<string, string>)
            : { host: this.options.serverName ?? 'gateway.test', ...options.headers },
          agent: this.agent,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body,
              json: () => JSON.parse(body),
            });
          });
          response.on('error', reject);
        },
      );
      const timeoutMs = options.timeoutMs ?? 15_000;
      request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer to ${options.method ?? 'GET'} ${path} within ${timeoutMs} ms`)));
      request.on('error', reject);
      request.end(options.body);
    });
  }

  /** One request over HTTP/2 (ALPN h2) on a fresh connection. */
  http2Request(path: string, headers: Record<string, string | string[]> = {}, method = 'GET'): Promise<GatewayResponse & { alpn: string }> {
    return new Promise((resolve, reject) => {
      let socket: tls.TLSSocket | undefined;
      const session = http2.connect(`https://${this.options.serverName ?? 'gateway.test'}`, {
        createConnection: () => (socket = this.connect({}, ['h2'])),
      });
      session.on('error', reject);
      const stream = session.request({ ':method': method, ':path': path, ...headers });
      const chunks: Buffer[] = [];
      let responseHeaders: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader = {};
      stream.on('response', (h) => (responseHeaders = h));
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        session.close();
        resolve({
          status: Number(responseHeaders[':status']),
          headers: responseHeaders as IncomingHttpHeaders,
          body,
          json: () => JSON.parse(body),
          alpn: String(socket?.alpnProtocol),
        });
      });
      stream.end();
    });
  }

  /**
   * One HTTP/1.1 request written byte for byte (no client-side validation, so header values
   * may hold bytes Node refuses, such as a vertical tab); `Connection: close` is added.
   * Resolves with the status and the raw answer once the gateway closes the connection.
   */
  rawRequest(method: string, path: string, headerLines: string[]): Promise<{ status: number; raw: string; body: string }> {
    return new Promise((resolve, reject) => {
      const socket = this.connect({});
      const head = [`${method} ${path} HTTP/1.1`, `Host: ${this.options.serverName ?? 'gateway.test'}`, ...headerLines, 'Connection: close', '', ''].join(
        '\r\n',
      );
      socket.once('secureConnect', () => socket.write(Buffer.from(head, 'latin1')));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.setTimeout(15_000, () => socket.destroy(new Error(`no answer to the raw ${method} ${path} within 15 s`)));
      socket.on('error', reject);
      socket.on('close', () => {
        const raw = Buffer.concat(chunks).toString('latin1');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
        resolve({ status, raw, body: raw.slice(raw.indexOf('\r\n\r\n') + 4) });
      });
    });
  }

  /** Sends an Upgrade request; resolves with the upgraded socket and the 101 headers. */
  upgrade(path: string, headers: Record<string, string>): Promise<{ socket: net.Socket; headers: IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      const request = https.request({
        host: '127.0.0.1',
        port: this.options.port,
        path,
        headers: { host: this.options.serverName ?? 'gateway.test', connection: 'Upgrade', ...headers },
        agent: this.agent,
      });
      request.on('upgrade', (response, socket) => resolve({ socket, headers: response.headers }));
      request.on('response', (response) => reject(new Error(`expected 101, got ${response.statusCode}`)));
      request.on('error', reject);
      request.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** `name=value; name2=value2` from a record. */
export function cookieHeader(cookies: Record<string, string>): string {
  return Object.entries(cookies)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
}
