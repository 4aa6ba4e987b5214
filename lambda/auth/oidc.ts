/**
 * The IdP side, through openid-client 6: discovery (cached per container, retried after
 * a failure), authorization URL with PKCE/state/nonce, code exchange, refresh, userinfo,
 * end-session URL and token revocation. Every call is bounded: openid-client's own
 * timeout plus a deadline here, so a slow IdP becomes a 504, never a hang.
 */
import * as client from 'openid-client';

/**
 * `client-auth`: the IdP refused the client's own credential (`invalid_client`): a client
 * secret or key that no longer matches the one registered there, or the wrong method.
 */
export type IdpFailureKind = 'unreachable' | 'timeout' | 'rejected' | 'bad-response' | 'client-auth';

/** A failed IdP call, classified for the answer: 502, 504, or a 4xx the caller chooses. */
export class IdpError extends Error {
  constructor(
    readonly kind: IdpFailureKind,
    message: string,
    /** The OAuth error code of a rejection (`invalid_grant`, ...), when the IdP sent one. */
    readonly oauthError?: string,
  ) {
    super(message);
    this.name = 'IdpError';
  }
}

export interface IdpClientOptions {
  readonly issuer: string;
  readonly clientId: string;
  /** The client's authentication at the token endpoint; may read its credential at each call. */
  readonly clientAuth: client.ClientAuth;
  /** After `invalid_client`: re-reads the credential; true when it changed (the call is then tried once more). */
  readonly rereadCredential: () => Promise<boolean>;
  readonly redirectUri: string;
  readonly timeoutMs: number;
  readonly clockSkewSeconds: number;
  /** Fetch used for every IdP call (tests and local runs: one that trusts a test CA). @default global fetch */
  readonly fetch?: client.CustomFetch;
}

export interface IdpTokens {
  readonly refreshToken?: string;
  readonly accessToken: string;
  /** The ID token as received, kept for `id_token_hint` at logout. */
  readonly idToken?: string;
  /** ID token claims when an ID token came back (validated by openid-client). */
  readonly idTokenClaims?: Record<string, unknown>;
}

function oauthErrorOf(error: unknown): string | undefined {
  const value = (error as { error?: unknown }).error;
  return typeof value === 'string' && /^[\w.-]{1,64}$/.test(value) ? value : undefined;
}

/** Maps what openid-client throws to an IdpError without copying token material into messages. */
export function classifyIdpError(error: unknown): IdpError {
  if (error instanceof IdpError) return error;
  if (error instanceof client.ResponseBodyError) {
    if (oauthErrorOf(error) === 'invalid_client') return new IdpError('client-auth', `the IdP refused the gateway's client credential (invalid_client, HTTP ${error.status})`, 'invalid_client');
    if (error.status >= 500) return new IdpError('unreachable', `the IdP answered HTTP ${error.status}`);
    return new IdpError('rejected', `the IdP refused the request (${oauthErrorOf(error) ?? `HTTP ${error.status}`})`, oauthErrorOf(error));
  }
  if (error instanceof client.AuthorizationResponseError) {
    return new IdpError('rejected', `the IdP returned an error (${oauthErrorOf(error) ?? 'unknown'})`, oauthErrorOf(error));
  }
  if (error instanceof client.ClientError) {
    if (error.code === 'OAUTH_TIMEOUT' || error.code === 'OAUTH_ABORT') return new IdpError('timeout', 'the IdP did not answer in time');
    if (error.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || error.code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
      return new IdpError('unreachable', `the IdP gave an unexpected answer (${error.message})`);
    }
    return new IdpError('bad-response', `the IdP answer failed validation: ${error.message}`);
  }
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError')) return new IdpError('timeout', 'the IdP did not answer in time');
  if (error instanceof TypeError) return new IdpError('unreachable', 'the IdP could not be reached');
  return new IdpError('bad-response', 'the IdP call failed unexpectedly');
}

export class IdpClient {
  private configuration?: Promise<client.Configuration>;

  constructor(private readonly options: IdpClientOptions) {}

  /** Runs one IdP call under the deadline and classifies its failure. */
  private async bounded<T>(call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new IdpError('timeout', 'the IdP did not answer in time')), this.options.timeoutMs + 250);
    });
    try {
      return await Promise.race([call(), deadline]);
    } catch (error) {
      throw classifyIdpError(error);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs a call that authenticates the client; on `invalid_client` the credential is read
   * again and, when it changed (rotated at the IdP and in Secrets Manager), the call is
   * tried once more. A code is not spent by a request whose client authentication failed.
   */
  private async authenticated<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await this.bounded(call);
    } catch (error) {
      if (!(error instanceof IdpError) || error.kind !== 'client-auth' || !(await this.options.rereadCredential())) throw error;
      return this.bounded(call);
    }
  }

  config(): Promise<client.Configuration> {
    if (!this.configuration) {
      const attempt = this.bounded(async () => {
        const config = await client.discovery(new URL(this.options.issuer), this.options.clientId, { [client.clockTolerance]: this.options.clockSkewSeconds }, this.options.clientAuth, {
          timeout: this.options.timeoutMs / 1000,
          ...(this.options.fetch ? { [client.customFetch]: this.options.fetch } : {}),
        });
        config.timeout = this.options.timeoutMs / 1000;
        if (this.options.fetch) config[client.customFetch] = this.options.fetch;
        return config;
      });
      this.configuration = attempt;
      attempt.catch(() => {
        if (this.configuration === attempt) this.configuration = undefined;
      });
    }
    return this.configuration;
  }

  async authorizationUrl(params: { scope: string; state: string; nonce: string; codeChallenge: string; extra: Readonly<Record<string, string>> }): Promise<string> {
    const config = await this.config();
    return client
      .buildAuthorizationUrl(config, {
        ...params.extra,
        redirect_uri: this.options.redirectUri,
        scope: params.scope,
        state: params.state,
        nonce: params.nonce,
        code_challenge: params.codeChallenge,
        code_challenge_method: 'S256',
      })
      .toString();
  }

  async exchangeCode(callbackUrl: URL, checks: { state: string; nonce: string; codeVerifier: string }): Promise<IdpTokens> {
    const config = await this.config();
    const tokens = await this.authenticated(() =>
      client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      }),
    );
    return tokensOf(tokens);
  }

  async refresh(refreshToken: string): Promise<IdpTokens> {
    const config = await this.config();
    return tokensOf(await this.authenticated(() => client.refreshTokenGrant(config, refreshToken)));
  }

  /** An app-only access token (client credentials grant), e.g. for Microsoft Graph. */
  async clientCredentials(scope: string): Promise<{ accessToken: string; expiresInSeconds?: number }> {
    const config = await this.config();
    const tokens = await this.authenticated(() => client.clientCredentialsGrant(config, { scope }));
    return { accessToken: tokens.access_token, expiresInSeconds: tokens.expires_in };
  }

  async userinfo(accessToken: string, subject: string): Promise<Record<string, unknown> | undefined> {
    const config = await this.config();
    if (!config.serverMetadata().userinfo_endpoint) return undefined;
    return (await this.bounded(() => client.fetchUserInfo(config, accessToken, subject))) as Record<string, unknown>;
  }

  /**
   * RP-initiated logout at the discovered end_session_endpoint (OpenID Connect RP-Initiated
   * Logout 1.0): client_id, post_logout_redirect_uri, and id_token_hint when the ID
   * token is known (Okta refuses the request without it; Entra, Keycloak and Ping ask the
   * user to confirm without it). Undefined when the IdP has no such endpoint.
   */
  async endSessionUrl(params: { postLogoutRedirectUri: string; idTokenHint?: string }): Promise<string | undefined> {
    const config = await this.config();
    if (!config.serverMetadata().end_session_endpoint) return undefined;
    return client
      .buildEndSessionUrl(config, {
        client_id: this.options.clientId,
        post_logout_redirect_uri: params.postLogoutRedirectUri,
        ...(params.idTokenHint ? { id_token_hint: params.idTokenHint } : {}),
      })
      .toString();
  }

  /** Best effort: revokes a refresh token when the IdP supports revocation. */
  async revoke(refreshToken: string): Promise<boolean> {
    const config = await this.config();
    if (!config.serverMetadata().revocation_endpoint) return false;
    await this.authenticated(() => client.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' }));
    return true;
  }
}

function tokensOf(tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): IdpTokens {
  return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, idToken: tokens.id_token, idTokenClaims: tokens.claims() as Record<string, unknown> | undefined };
}
