/**
 * Secrets Manager's JSON 1.1 protocol on 127.0.0.1, answered by a SecretsManagerModel,
 * so the real AWS CLI (and anything else that speaks the protocol) can be pointed at it:
 *
 *   AWS_ENDPOINT_URL_SECRETS_MANAGER=<endpoint.url> AWS_ACCESS_KEY_ID=test \
 *   AWS_SECRET_ACCESS_KEY=test aws secretsmanager get-secret-value --secret-id ...
 *
 * Requests are POST / with `X-Amz-Target: secretsmanager.<Operation>` and a JSON body;
 * signatures are not checked. Errors are 400 with `{"__type": ..., "message": ...}`, as
 * AWS sends them; timestamps are epoch seconds. A network failure injected into the
 * model (an error without an AWS name) drops the connection instead of answering.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { SecretsManagerModel } from './secrets-manager-model';
import { accessKeyIdOf } from './sigv4';

export interface SecretsManagerEndpoint {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Operations answered so far, in order (for example `DescribeSecret`). */
  readonly requests: string[];
  /** Access key ids that signed those requests (SigV4 Authorization header), in the same order. */
  readonly accessKeyIds: string[];
  close(): Promise<void>;
}

type Operation = (model: SecretsManagerModel, input: Record<string, unknown>) => unknown | Promise<unknown>;

const OPERATIONS: Record<string, Operation> = {
  GetSecretValue: (m, i) => m.getSecretValue(i as Parameters<SecretsManagerModel['getSecretValue']>[0]),
  DescribeSecret: (m, i) => m.describeSecret(i as Parameters<SecretsManagerModel['describeSecret']>[0]),
  ListSecretVersionIds: (m, i) => m.listSecretVersionIds(i as Parameters<SecretsManagerModel['listSecretVersionIds']>[0]),
  PutSecretValue: (m, i) => m.putSecretValue(i as Parameters<SecretsManagerModel['putSecretValue']>[0]),
  UpdateSecret: (m, i) => m.updateSecret(i as Parameters<SecretsManagerModel['updateSecret']>[0]),
  UpdateSecretVersionStage: (m, i) => m.updateSecretVersionStage(i as Parameters<SecretsManagerModel['updateSecretVersionStage']>[0]),
  CreateSecret: (m, i) => m.createSecret(i as Parameters<SecretsManagerModel['createSecret']>[0]),
  RotateSecret: (m, i) => m.rotateSecret(i as Parameters<SecretsManagerModel['rotateSecret']>[0]),
};

const AWS_ERROR_NAMES = new Set([
  'ResourceNotFoundException',
  'ResourceExistsException',
  'InvalidRequestException',
  'InvalidParameterException',
  'AccessDeniedException',
  'DecryptionFailure',
  'InternalServiceError',
]);

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

export async function startSecretsManagerEndpoint(model: SecretsManagerModel): Promise<SecretsManagerEndpoint> {
  const requests: string[] = [];
  const accessKeyIds: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('secretsmanager.') ? target.slice('secretsmanager.'.length) : '';
    const body = await readBody(req);
    if (req.method !== 'POST' || !OPERATIONS[operation]) {
      answer(res, 400, {
        __type: 'UnknownOperationException',
        message: `Unknown operation ${JSON.stringify(target)}: this endpoint answers ${Object.keys(OPERATIONS).join(', ')}.`,
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
      answer(res, 200, toWire(await OPERATIONS[operation](model, input)));
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      if (AWS_ERROR_NAMES.has(name)) {
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
