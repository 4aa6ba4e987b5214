/**
 * A small client of Looker's API 4.0 for the custom resource: `POST /login` with API3
 * credentials, then JSON calls with `Authorization: token <access_token>` (the form the
 * login method's documentation prescribes). HTTPS with an optional CA and TLS name, a
 * deadline on every call, and errors that say what to fix without quoting a secret.
 */
import * as https from 'node:https';
import { LOOKER_API_PATHS, LookerAccessToken, LookerApiCredentials, LookerValidationError } from '../../lib/looker/oidc-config';

export interface LookerApiOptions {
  /** Base URL of the API, without /api/4.0. */
  readonly apiUrl: string;
  readonly serverName?: string;
  readonly caCertificatePem?: string;
  readonly timeoutMs: number;
}

/** Looker answered, but not with success. `message` is written for the operator. */
export class LookerApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'LookerApiError';
  }
}

/** Looker did not answer (network, TLS, or the deadline). */
export class LookerUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LookerUnreachableError';
  }
}

interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export class LookerApi {
  private token?: string;

  constructor(private readonly options: LookerApiOptions) {}

  /** Logs in with API3 credentials; the token is kept for the calls that follow. */
  async login(credentials: LookerApiCredentials): Promise<void> {
    const form = new URLSearchParams({ client_id: credentials.client_id, client_secret: credentials.client_secret }).toString();
    const answer = await this.call('POST', LOOKER_API_PATHS.login, { 'content-type': 'application/x-www-form-urlencoded' }, form);
    if (answer.status !== 200) {
      const hint =
        answer.status === 404 || answer.status === 401 || answer.status === 403
          ? 'Looker refused the API3 credentials: store the client_id and client_secret of an API key of a Looker admin (Admin > Users > Edit API keys) in the credentials secret.'
          : 'Looker did not accept the login request.';
      throw new LookerApiError(`${hint} (HTTP ${answer.status} at POST ${LOOKER_API_PATHS.login}${messageOf(answer)})`, answer.status);
    }
    const token = parseJson<LookerAccessToken>(answer.body);
    if (!token || typeof token.access_token !== 'string') throw new LookerApiError(`Looker's login answer has no access_token (POST ${LOOKER_API_PATHS.login}).`, answer.status);
    this.token = token.access_token;
  }

  get<T>(path: string): Promise<T> {
    return this.json<T>('GET', path);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>('PATCH', path, body);
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!this.token) throw new Error('LookerApi: login() first.');
    const answer = await this.call(method, path, { authorization: `token ${this.token}`, 'content-type': 'application/json', accept: 'application/json' }, body === undefined ? undefined : JSON.stringify(body));
    if (answer.status === 200 || answer.status === 204) {
      const parsed = answer.body ? parseJson<T>(answer.body) : undefined;
      if (answer.body && parsed === undefined) throw new LookerApiError(`Looker's answer to ${method} ${path} is not JSON.`, answer.status);
      return parsed as T;
    }
    throw new LookerApiError(describeFailure(method, path, answer), answer.status);
  }

  private call(method: string, path: string, headers: Record<string, string>, body?: string): Promise<HttpAnswer> {
    const url = new URL(path, this.options.apiUrl);
    const timeoutMs = this.options.timeoutMs;
    return new Promise((resolve, reject) => {
      const request = https.request(
        url,
        {
          method,
          headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
          ...(this.options.caCertificatePem ? { ca: this.options.caCertificatePem } : {}),
          ...(this.options.serverName ? { servername: this.options.serverName } : {}),
          timeout: timeoutMs,
          // A connection of its own per call: a kept-alive socket that Looker (or the frozen
          // Lambda's pause) closed in between fails the next call with ECONNRESET. Four calls per deploy.
          agent: false,
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
          response.on('error', (error) => reject(unreachable(method, url, error, timeoutMs)));
        },
      );
      // A deadline for the whole call, not only for idle sockets.
      const deadline = setTimeout(() => request.destroy(Object.assign(new Error('deadline'), { code: 'ETIMEDOUT' })), timeoutMs);
      request.on('timeout', () => request.destroy(Object.assign(new Error('deadline'), { code: 'ETIMEDOUT' })));
      request.on('error', (error) => reject(unreachable(method, url, error, timeoutMs)));
      request.on('close', () => clearTimeout(deadline));
      if (body !== undefined) request.write(body);
      request.end();
    });
  }
}

function unreachable(method: string, url: URL, error: Error & { code?: string }, timeoutMs: number): LookerUnreachableError {
  const where = `${method} ${url.origin}${url.pathname}`;
  if (error.code === 'ETIMEDOUT') {
    return new LookerUnreachableError(
      `Looker's API did not answer ${where} within ${timeoutMs / 1000} s. Check that the function can reach it: apiUrl, and Looker's security group admitting the function on the API port (LookerBackend's peer).`,
    );
  }
  if (error.code && /CERT|SSL|TLS|ALTNAME|SELF_SIGNED|UNABLE_TO/.test(error.code)) {
    return new LookerUnreachableError(`TLS to Looker's API failed at ${where} (${error.code}): give the CA of Looker's certificate (caCertificatePem) and the name in it (serverName).`);
  }
  return new LookerUnreachableError(`Looker's API is unreachable at ${where} (${error.code ?? error.message}). Check apiUrl and that Looker's security group admits the function on the API port.`);
}

function describeFailure(method: string, path: string, answer: HttpAnswer): string {
  const where = `${method} ${path}`;
  if (answer.status === 401) return `Looker answered 401 Unauthorized to ${where}: the API token was refused; check the API3 credentials and that the API key's user is not disabled.`;
  if (answer.status === 403) return `Looker answered 403 Forbidden to ${where}: the API key's user must be a Looker admin (only admins can read and update the OIDC configuration).`;
  if (answer.status === 422) {
    const error = parseJson<LookerValidationError>(answer.body);
    const fields = (error?.errors ?? []).map((e) => `${e.field ?? '?'}: ${e.message ?? e.code ?? 'invalid'}`).join('; ');
    return `Looker refused the OIDC configuration (422 ${error?.message ?? 'Validation Failed'}) at ${where}${fields ? `: ${fields}` : ''}.`;
  }
  return `Looker answered HTTP ${answer.status} to ${where}${messageOf(answer)}.`;
}

function messageOf(answer: HttpAnswer): string {
  const message = parseJson<{ message?: unknown }>(answer.body)?.message;
  return typeof message === 'string' && message ? `: ${message.slice(0, 300)}` : '';
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
