/**
 * The Looker stand-in's side of an OpenID Connect login, as Looker documents it
 * (docs/looker-oidc.md): authorization code flow only, no discovery, the endpoints taken
 * from `oidc_config`, redirect URI = Looker's URL + /openidconnect, the code exchanged
 * server-side at the token URL, the user's claims read from the userinfo URL.
 *
 * What the documentation leaves open is done the stricter way, so that an OpenID provider
 * that passes here does not rely on Looker being lenient:
 * - `state` always, bound to the browser and single-use; `nonce` always, and checked;
 * - no PKCE (Looker does not document sending it, so the provider must not require it);
 * - the token answer must carry an ID token whose `iss`, `aud`, `exp` and `nonce` match
 *   (Looker's configuration has no JWKS URL and discovery is unsupported, so its signature
 *   cannot be checked against the provider's keys and is not: see docs/looker-oidc.md);
 * - the userinfo `sub` must be the ID token's `sub` (OpenID Connect Core 5.3.2);
 * - client authentication at the token URL as configured for the stand-in
 *   (`client_secret_basic` or `client_secret_post`: which one Looker uses is not documented,
 *   so the tests run both).
 */
import { randomBytes } from 'node:crypto';
import * as https from 'node:https';
import type { OidcConfigWrite } from '../../../core/looker/oidc-config';
import { lookerRedirectUri } from '../../../core/auth/looker-broker';

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post';

export interface LookerOidcLoginOptions {
  /** The URL users open Looker at (behind the gateway: the gateway's URL). */
  readonly publicUrl: string;
  /** CA the OpenID provider's certificate chains to, PEM. @default - Node's trust store */
  readonly trustedCaPem?: string;
  /** @default 'client_secret_basic' */
  readonly tokenEndpointAuthMethod?: TokenEndpointAuthMethod;
  /** Deadline of each server-side call to the provider, ms. @default 10000 */
  readonly requestTimeoutMs?: number;
}

interface PendingLogin {
  readonly nonce: string;
  readonly returnTo: string;
  /** The browser's binding cookie value: a callback from another browser is refused. */
  readonly binding: string;
  readonly expiresAt: number;
}

export type LoginResult =
  | { readonly ok: true; readonly claims: Record<string, unknown>; readonly returnTo: string }
  | { readonly ok: false; readonly status: number; readonly reason: string; readonly detail: string };

/** A login the stand-in started must come back within this time. */
const PENDING_LOGIN_TTL_MS = 10 * 60 * 1000;
const MAX_PENDING_LOGINS = 10_000;
/** Clock skew allowed on the ID token's `exp`. */
const CLOCK_SKEW_SECONDS = 60;

export class LookerOidcLogin {
  private readonly pending = new Map<string, PendingLogin>();
  readonly redirectUri: string;
  private readonly authMethod: TokenEndpointAuthMethod;
  private readonly timeoutMs: number;

  constructor(private readonly options: LookerOidcLoginOptions) {
    this.redirectUri = lookerRedirectUri(options.publicUrl);
    this.authMethod = options.tokenEndpointAuthMethod ?? 'client_secret_basic';
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  /** The authorization request a browser without a Looker session is redirected to. */
  begin(config: OidcConfigWrite, returnTo: string, binding: string): string {
    this.dropExpired();
    const state = randomBytes(24).toString('base64url');
    const nonce = randomBytes(24).toString('base64url');
    this.pending.set(state, { nonce, returnTo, binding, expiresAt: Date.now() + PENDING_LOGIN_TTL_MS });
    const url = new URL(config.authorization_endpoint!);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', config.identifier!);
    url.searchParams.set('redirect_uri', this.redirectUri);
    url.searchParams.set('scope', (config.scopes ?? []).join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('nonce', nonce);
    return url.toString();
  }

  /** The callback at /openidconnect: state, code exchange, ID token checks, userinfo. */
  async complete(config: OidcConfigWrite, query: URLSearchParams, binding: string): Promise<LoginResult> {
    const state = query.get('state') ?? '';
    const pending = this.pending.get(state);
    // Single use: a replayed callback finds nothing.
    this.pending.delete(state);
    if (!pending || pending.expiresAt < Date.now() || pending.binding !== binding || binding === '') {
      return fail(
        400,
        'state-mismatch',
        'This sign-in answer does not belong to a sign-in this browser started (unknown, expired or already used state). Open Looker again to sign in.',
      );
    }
    const error = query.get('error');
    if (error)
      return fail(
        403,
        'provider-error',
        `The OpenID provider refused the sign-in: ${error}${query.get('error_description') ? ` (${query.get('error_description')})` : ''}.`,
      );
    const code = query.get('code');
    if (!code) return fail(400, 'no-code', 'The OpenID provider sent no authorization code.');

    const tokens = await this.exchange(config, code);
    if (!tokens.ok) return tokens;
    const idToken = checkIdToken(tokens.idToken, config, pending.nonce);
    if (!idToken.ok) return idToken;
    const userinfo = await this.userinfo(config, tokens.accessToken);
    if (!userinfo.ok) return userinfo;
    if (userinfo.claims.sub !== idToken.sub) {
      return fail(502, 'userinfo-subject-mismatch', 'The userinfo answer is about another user than the ID token ("sub" differs).');
    }
    return { ok: true, claims: userinfo.claims, returnTo: pending.returnTo };
  }

  private async exchange(
    config: OidcConfigWrite,
    code: string,
  ): Promise<{ ok: true; accessToken: string; idToken: string } | Extract<LoginResult, { ok: false }>> {
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: this.redirectUri });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (this.authMethod === 'client_secret_basic') {
      // RFC 6749 2.3.1: id and secret form-urlencoded, then Basic.
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(config.identifier!)}:${encodeURIComponent(config.secret ?? '')}`).toString('base64')}`;
    } else {
      form.set('client_id', config.identifier!);
      form.set('client_secret', config.secret ?? '');
    }
    let answer: HttpAnswer;
    try {
      answer = await this.request('POST', config.token_endpoint!, headers, form.toString());
    } catch (error) {
      return fail(502, 'token-unreachable', `The token URL did not answer: ${(error as Error).message}.`);
    }
    const body = parseJsonObject(answer.body);
    if (answer.status !== 200 || !body) {
      // Only the OAuth error code is shown: the body of a token answer may hold secrets.
      const code = body && typeof body.error === 'string' ? body.error : `HTTP ${answer.status}`;
      return fail(502, 'token-refused', `The token URL refused the authorization code: ${code}.`);
    }
    if (typeof body.access_token !== 'string' || !body.access_token) return fail(502, 'token-invalid', 'The token answer has no access_token.');
    if (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer')
      return fail(502, 'token-invalid', 'The token answer\'s token_type is not "Bearer".');
    if (typeof body.id_token !== 'string' || !body.id_token)
      return fail(502, 'token-invalid', 'The token answer has no id_token (an OpenID Connect provider must return one).');
    return { ok: true, accessToken: body.access_token, idToken: body.id_token };
  }

  private async userinfo(
    config: OidcConfigWrite,
    accessToken: string,
  ): Promise<{ ok: true; claims: Record<string, unknown> } | Extract<LoginResult, { ok: false }>> {
    let answer: HttpAnswer;
    try {
      answer = await this.request('GET', config.userinfo_endpoint!, { authorization: `Bearer ${accessToken}`, accept: 'application/json' });
    } catch (error) {
      return fail(502, 'userinfo-unreachable', `The userinfo URL did not answer: ${(error as Error).message}.`);
    }
    const claims = parseJsonObject(answer.body);
    if (answer.status !== 200 || !claims) return fail(502, 'userinfo-refused', `The userinfo URL answered HTTP ${answer.status}.`);
    return { ok: true, claims };
  }

  private request(method: string, url: string, headers: Record<string, string>, body?: string): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const request = https.request(
        url,
        { method, headers, ...(this.options.trustedCaPem ? { ca: this.options.trustedCaPem } : {}), timeout: this.timeoutMs },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer within ${this.timeoutMs / 1000} s`)));
      request.on('error', reject);
      if (body !== undefined) request.write(body);
      request.end();
    });
  }

  private dropExpired(): void {
    const now = Date.now();
    for (const [state, login] of this.pending) if (login.expiresAt < now) this.pending.delete(state);
    while (this.pending.size >= MAX_PENDING_LOGINS) this.pending.delete(this.pending.keys().next().value!);
  }
}

interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

function fail(status: number, reason: string, detail: string): Extract<LoginResult, { ok: false }> {
  return { ok: false, status, reason, detail };
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The ID token's claims that Looker's configuration lets it check: `iss` (Issuer), `aud`
 * (Audience), `exp`, and the `nonce` this login sent. The signature is not checked: see the
 * module comment.
 */
function checkIdToken(idToken: string, config: OidcConfigWrite, nonce: string): { ok: true; sub: string } | Extract<LoginResult, { ok: false }> {
  const parts = idToken.split('.');
  let claims: Record<string, unknown> | undefined;
  if (parts.length === 3) claims = parseJsonObject(Buffer.from(parts[1], 'base64url').toString('utf8'));
  if (!claims) return fail(502, 'id-token-invalid', 'The ID token is not a compact JWT.');
  if (claims.iss !== config.issuer)
    return fail(502, 'id-token-issuer', `The ID token's issuer is ${JSON.stringify(claims.iss)}, not the configured ${JSON.stringify(config.issuer)}.`);
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(config.audience))
    return fail(502, 'id-token-audience', `The ID token is not for the configured audience ${JSON.stringify(config.audience)}.`);
  if (typeof claims.exp !== 'number' || claims.exp + CLOCK_SKEW_SECONDS < Date.now() / 1000) return fail(502, 'id-token-expired', 'The ID token has expired.');
  if (claims.nonce !== nonce) return fail(502, 'id-token-nonce', "The ID token's nonce is not the one this sign-in sent.");
  if (typeof claims.sub !== 'string' || !claims.sub) return fail(502, 'id-token-invalid', 'The ID token has no "sub".');
  return { ok: true, sub: claims.sub };
}
