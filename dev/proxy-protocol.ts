/**
 * PROXY protocol version 2 headers (the binary format of
 * https://www.haproxy.org/download/3.0/doc/proxy-protocol.txt, section 2.2) and a health
 * checker that sends one the way a Network Load Balancer does.
 *
 * AWS documents (Elastic Load Balancing, "Target groups for your Network Load Balancers",
 * Proxy protocol): "After you enable proxy protocol, the proxy protocol header is also
 * included in health check connections from the load balancer. However, with health check
 * connections, the client connection information is not sent in the proxy protocol
 * header." That is a v2 header with the LOCAL command and no addresses, which is what
 * nlbHealthCheck() sends; data connections carry the PROXY command with the client's
 * address (proxyV2Header()).
 */
import { connect } from 'node:net';

/** The 12-byte signature that starts every v2 header. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const VERSION_2 = 0x20;
const COMMAND_LOCAL = 0x00;
const COMMAND_PROXY = 0x01;
const FAMILY_UNSPEC = 0x00;
const FAMILY_INET_STREAM = 0x11;

/** A PROXY protocol v2 header for a TCP/IPv4 connection from `source` to `destination` (command PROXY). */
export function proxyV2Header(source: { address: string; port: number }, destination: { address: string; port: number }): Buffer {
  const header = Buffer.alloc(16 + 12);
  PROXY_V2_SIGNATURE.copy(header, 0);
  header[12] = VERSION_2 | COMMAND_PROXY;
  header[13] = FAMILY_INET_STREAM;
  header.writeUInt16BE(12, 14);
  const octets = (address: string) => address.split('.').map(Number);
  Buffer.from(octets(source.address)).copy(header, 16);
  Buffer.from(octets(destination.address)).copy(header, 20);
  header.writeUInt16BE(source.port, 24);
  header.writeUInt16BE(destination.port, 26);
  return header;
}

/** The v2 header of a load balancer's own connection (health checks): command LOCAL, no addresses. */
export function proxyV2LocalHeader(): Buffer {
  const header = Buffer.alloc(16);
  PROXY_V2_SIGNATURE.copy(header, 0);
  header[12] = VERSION_2 | COMMAND_LOCAL;
  header[13] = FAMILY_UNSPEC;
  header.writeUInt16BE(0, 14);
  return header;
}

export interface HealthCheckResult {
  /** HTTP status, or 0 when the connection ended without an HTTP answer. */
  readonly status: number;
  readonly body: string;
}

export interface HealthCheckOptions {
  readonly port: number;
  /** @default '/' */
  readonly path?: string;
  /** Send the LOCAL v2 header first, as an NLB with proxy protocol v2 does. @default true */
  readonly proxyHeader?: boolean;
  /** The NLB's health check timeout for HTTP checks is 6 s by default. @default 6000 */
  readonly timeoutMs?: number;
}

/**
 * One HTTP health check on 127.0.0.1 as the NLB sends it: a fresh connection, the LOCAL
 * PROXY v2 header, `GET <path> HTTP/1.1`, then the status line is read. A connection closed
 * without an answer gives status 0; no answer within the timeout rejects.
 */
export async function nlbHealthCheck(options: HealthCheckOptions): Promise<HealthCheckResult> {
  const answer = await rawHttpExchange({
    port: options.port,
    proxyHeader: (options.proxyHeader ?? true) ? proxyV2LocalHeader() : undefined,
    request: `GET ${options.path ?? '/'} HTTP/1.1\r\nHost: 10.0.0.10:${options.port}\r\nUser-Agent: ELB-HealthChecker/2.0\r\nConnection: close\r\n\r\n`,
    timeoutMs: options.timeoutMs ?? 6000,
  });
  return { status: answer.status, body: answer.body };
}

export interface RawHttpAnswer extends HealthCheckResult {
  /** Response header lines as received (names lower-cased), in order. */
  readonly headers: Array<[string, string]>;
}

/**
 * Writes `proxyHeader` (if any) and `request` exactly as given on a fresh connection to
 * 127.0.0.1:`port`, then reads until the server closes (send `Connection: close`). A
 * connection closed without an HTTP answer gives status 0; no close within `timeoutMs` rejects.
 */
export function rawHttpExchange(options: { port: number; request: string; proxyHeader?: Buffer; timeoutMs?: number }): Promise<RawHttpAnswer> {
  const timeoutMs = options.timeoutMs ?? 6000;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: options.port });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer on port ${options.port} within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      const split = received.indexOf('\r\n\r\n');
      const head = split >= 0 ? received.slice(0, split) : received;
      const body = split >= 0 ? received.slice(split + 4) : '';
      const headers = head
        .split('\r\n')
        .slice(1)
        .filter((line) => line.includes(':'))
        .map((line): [string, string] => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]);
      resolve({ status: match ? Number(match[1]) : 0, body, headers });
    };
    socket.on('connect', () => {
      if (options.proxyHeader) socket.write(options.proxyHeader);
      socket.write(options.request);
    });
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('end', finish);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET') finish();
      else {
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}
