/**
 * A local adapter: serves the auth service handler over HTTP(S) on 127.0.0.1 by turning
 * each Node request into the API Gateway REST proxy event the Lambda receives, and the
 * result back. For tests and for running the gateway locally; not part of the Lambda.
 *
 * As a CLI:
 *   npx tsx dev/auth-local-server.ts --env env.json --secrets secrets.json \
 *     [--port 8443] [--host 127.0.0.1] [--tls-cert cert.pem --tls-key key.pem] [--idp-ca ca.pem] [--stage prod]
 * env.json holds the AuthServiceEnvironment variables; secrets.json maps secret ids to values.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { CustomFetch } from 'openid-client';
import type { AuthServiceEnvironment } from '../core/auth/environment';
import type { LogSink } from '../lambda/shared/audit';
import { JsonFileSecretSource, type SecretSource } from '../lambda/shared/secrets';
import type { SessionRevocationStore } from '../lambda/auth/revocations';
import type { SessionRecordStore } from '../lambda/auth/session-store';
import { createAuthService } from '../lambda/auth/service';

/** Anything with the Lambda handler's shape: the service, or a bundled handler. */
export interface ProxyHandler {
  handle(event: APIGatewayProxyEvent, context?: Partial<Context>): Promise<APIGatewayProxyResult>;
}

export interface LocalAuthServiceOptions {
  /** Port on `host`. @default 0 - a free port chosen by the kernel */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** Serve HTTPS with this certificate and key (PEM). @default - plain HTTP */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** The service's environment. Required unless `handler` is given. */
  readonly environment?: AuthServiceEnvironment | Readonly<Record<string, string | undefined>>;
  /** Where secrets come from. Required unless `handler` is given. */
  readonly secretsSource?: SecretSource;
  /** Fetch for IdP calls, e.g. one that trusts a local CA. @default global fetch */
  readonly idpFetch?: CustomFetch;
  /** Where log and audit lines go. @default stdout */
  readonly logSink?: LogSink;
  /** Where revoked sessions are kept. @default - as the environment says (LG_REVOCATION_TABLE_NAME, else memory) */
  readonly revocationStore?: SessionRevocationStore;
  /** Where session records are kept. @default - as the environment says (LG_REVOCATION_TABLE_NAME, else memory) */
  readonly sessionStore?: SessionRecordStore;
  /** Clock of the service, epoch milliseconds (tests). @default Date.now */
  readonly now?: () => number;
  /**
   * Serve this handler instead of building the service from `environment` (for example the
   * esbuild bundle's handler, wrapped).
   * @default - a service built from environment and secretsSource
   */
  readonly handler?: ProxyHandler;
  /** The API Gateway stage put in `requestContext.stage` and `requestContext.path`. @default 'local' */
  readonly stage?: string;
}

export interface RunningLocalAuthService {
  /** `http(s)://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** A Node request as the REST proxy event API Gateway would send (query decoded once, headers in both forms). */
export function toProxyEvent(request: http.IncomingMessage, body: Buffer, stage: string): APIGatewayProxyEvent {
  const url = new URL(request.url ?? '/', 'http://local');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i];
    const value = request.rawHeaders[i + 1];
    const existing = Object.keys(multiValueHeaders).find((key) => key.toLowerCase() === name.toLowerCase()) ?? name;
    (multiValueHeaders[existing] ??= []).push(value);
    headers[existing] = value;
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) {
    (multiQuery[name] ??= []).push(value);
    query[name] = value;
  }
  const hasQuery = Object.keys(query).length > 0;
  const requestId = randomUUID();
  const sourceIp = request.socket.remoteAddress ?? '127.0.0.1';
  return {
    resource: '/{proxy+}',
    path: url.pathname,
    httpMethod: request.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: { proxy: url.pathname.replace(/^\//, '') },
    stageVariables: null,
    body: body.length > 0 ? body.toString('base64') : null,
    isBase64Encoded: body.length > 0,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: undefined,
      protocol: `HTTP/${request.httpVersion}`,
      httpMethod: request.method ?? 'GET',
      identity: {
        sourceIp,
        userAgent: request.headers['user-agent'] ?? null,
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        user: null,
        userArn: null,
      },
      path: `/${stage}${url.pathname}`,
      stage,
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: '/{proxy+}',
    },
  };
}

/** Writes a REST proxy result to a Node response (headers, multiValueHeaders, base64 bodies). */
export function writeProxyResult(result: APIGatewayProxyResult, response: http.ServerResponse): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) headers[name] = values.map(String);
  response.writeHead(result.statusCode, headers);
  response.end(result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
}

export async function startLocalAuthService(options: LocalAuthServiceOptions): Promise<RunningLocalAuthService> {
  let service = options.handler;
  if (!service) {
    if (!options.environment || !options.secretsSource) {
      throw new Error('startLocalAuthService needs `environment` and `secretsSource` (or a ready `handler`).');
    }
    service = createAuthService(options.environment, {
      secretSource: options.secretsSource,
      idpFetch: options.idpFetch,
      logSink: options.logSink,
      revocationStore: options.revocationStore,
      sessionStore: options.sessionStore,
      now: options.now,
    });
  }
  const handler = service;
  const stage = options.stage ?? 'local';
  const listener: http.RequestListener = (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      handler
        .handle(toProxyEvent(request, Buffer.concat(chunks), stage), { awsRequestId: randomUUID() })
        .then((result) => writeProxyResult(result, response))
        .catch((error: unknown) => {
          response.writeHead(503, { 'Content-Type': 'application/json' });
          response.end(JSON.stringify({ error: 'local_adapter_error', message: (error as Error).message }));
        });
    });
  };
  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, listener) : http.createServer(listener);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${options.tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A fetch for IdP calls that trusts the given CA certificates (PEM) in addition to nothing else. */
export async function fetchTrustingCa(caPem: string): Promise<CustomFetch> {
  const undici = await import('undici');
  const dispatcher = new undici.Agent({ connect: { ca: caPem } });
  return ((url: string, init: Parameters<CustomFetch>[1]) =>
    undici.fetch(url, { ...(init as object), dispatcher } as Parameters<typeof undici.fetch>[1]) as unknown as Promise<Response>) as CustomFetch;
}

function argument(argv: string[], name: string): string | undefined {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? argv[index + 1] : undefined;
}

async function main(argv: string[]): Promise<void> {
  const envFile = argument(argv, 'env');
  const secretsFile = argument(argv, 'secrets');
  if (!envFile || !secretsFile) {
    process.stderr.write(
      'usage: local-server.ts --env env.json --secrets secrets.json [--port N] [--host H] [--tls-cert F --tls-key F] [--idp-ca F] [--stage S]\n',
    );
    process.exit(2);
  }
  const certFile = argument(argv, 'tls-cert');
  const keyFile = argument(argv, 'tls-key');
  const caFile = argument(argv, 'idp-ca');
  const running = await startLocalAuthService({
    port: Number(argument(argv, 'port') ?? 0),
    host: argument(argv, 'host'),
    tls: certFile && keyFile ? { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') } : undefined,
    environment: JSON.parse(readFileSync(envFile, 'utf8')) as Record<string, string>,
    secretsSource: new JsonFileSecretSource(secretsFile),
    idpFetch: caFile ? await fetchTrustingCa(readFileSync(caFile, 'utf8')) : undefined,
    stage: argument(argv, 'stage'),
  });
  process.stdout.write(`${JSON.stringify({ type: 'ready', url: running.url })}\n`);
  const stop = () => void running.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  });
}
