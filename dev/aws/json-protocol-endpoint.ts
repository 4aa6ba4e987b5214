/**
 * An AWS JSON 1.1 protocol endpoint on 127.0.0.1 (the protocol of Secrets Manager and ACM,
 * among others), answered by a stateful model, so the real AWS CLI can be pointed at it with
 * the service's AWS_ENDPOINT_URL_<SERVICE> variable.
 *
 * Requests are POST / with `X-Amz-Target: <prefix>.<Operation>` and a JSON body; signatures
 * are not checked (the access key id is recorded). Errors are 400 with
 * `{"__type": ..., "message": ...}`, as AWS sends them; timestamps go out as epoch seconds.
 * An error the model throws without one of the service's error names is a network failure:
 * the connection is dropped instead of answered.
 */
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { accessKeyIdOf } from './sigv4';

export interface JsonProtocolService {
  /** The X-Amz-Target prefix, for example `secretsmanager` or `CertificateManager`. */
  readonly targetPrefix: string;
  readonly operations: Record<string, (input: Record<string, unknown>) => unknown>;
  /** Error names (`error.name`) answered as AWS errors. */
  readonly errorNames: ReadonlySet<string>;
}

export interface JsonProtocolEndpoint {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Operations answered so far, in order (for example `DescribeSecret`). */
  readonly requests: string[];
  /** Access key ids that signed those requests (SigV4 Authorization header), in the same order. */
  readonly accessKeyIds: string[];
  close(): Promise<void>;
}

/** Dates become epoch seconds, as the JSON 1.1 protocol sends timestamps. */
function toWire(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toWire(v)]),
    );
  }
  return value;
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(text), 'x-amzn-RequestId': randomUUID() });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startJsonProtocolEndpoint(service: JsonProtocolService): Promise<JsonProtocolEndpoint> {
  const requests: string[] = [];
  const accessKeyIds: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith(`${service.targetPrefix}.`) ? target.slice(service.targetPrefix.length + 1) : '';
    const body = await readBody(req);
    if (req.method !== 'POST' || !Object.hasOwn(service.operations, operation)) {
      answer(res, 400, {
        __type: 'UnknownOperationException',
        message: `Unknown operation ${JSON.stringify(target)}: this endpoint answers ${Object.keys(service.operations).join(', ')}.`,
      });
      return;
    }
    let input: Record<string, unknown>;
    try {
      input = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      answer(res, 400, { __type: 'SerializationException', message: 'The request body is not JSON.' });
      return;
    }
    requests.push(operation);
    accessKeyIds.push(accessKeyIdOf(req.headers.authorization));
    try {
      answer(res, 200, toWire(await service.operations[operation](input)));
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      if (service.errorNames.has(name)) {
        answer(res, 400, { __type: name, message: (error as Error).message });
      } else {
        req.socket.destroy();
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    accessKeyIds,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
