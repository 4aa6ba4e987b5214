/**
 * Starts the development OpenID provider (dev/stand-ins/idp/dev-idp-server.mjs) as a child process under
 * plain `node`, because oidc-provider is ESM-only. `npm run local`, the browser tests and
 * the auth-service tests (with its test-only admin endpoints) all run this one provider.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DevUser } from './dev-users';
import { httpsRequest } from '../../readiness';
import { ManagedProcess, startProcess } from '../../processes';

export interface DevIdpOptions {
  /** Folder for the settings file (deleted with it). */
  readonly workDir: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** CA that signed the IdP's certificate, PEM (used to read /dev/stats). */
  readonly caPem: string;
  readonly accounts: readonly DevIdpAccount[];
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris: readonly string[];
  /**
   * Other relying parties of the IdP (for example the Looker stand-in's own OIDC login):
   * consent skipped, PKCE not required.
   * @default - none
   */
  readonly extraClients?: readonly DevIdpExtraClient[];
  /** @default 0 - a free port chosen by the kernel */
  readonly port?: number;
  /**
   * Whether name, e-mail and groups ride in the ID token whatever the scopes.
   * @default true - as most company IdPs do; false leaves only `sub` in the ID token, so the relying party has to read userinfo
   */
  readonly idTokenClaims?: boolean;
  /**
   * Serve the test-only endpoints under /test-admin/ (change a user's claims, revoke a user's grants, delay answers).
   * @default false - never for `npm run local`
   */
  readonly testAdminEndpoints?: boolean;
  /**
   * Answer as one IdP does, as its documentation describes it (dev/stand-ins/idp/dev-idp-quirks.mjs, docs/idps.md).
   * @default - no quirks: the dev IdP's own behaviour
   */
  readonly quirks?: DevIdpQuirks;
}

/** The IdP-specific behaviour of the dev IdP; dev/stand-ins/idp/dev-idp-quirks.mjs documents each field. */
export interface DevIdpQuirks {
  readonly profile?: 'generic' | 'okta' | 'entra' | 'google' | 'auth0' | 'keycloak' | 'ping' | 'cognito';
  readonly refreshTokens?: 'always' | 'offline_access' | 'access_type_offline';
  readonly refusedScopes?: readonly string[];
  readonly refusedScopeAnswer?: 'error-page' | 'redirect';
  readonly idTokenOnRefresh?: boolean;
  readonly refreshTokenRotation?: 'rotate-reuse-detection' | 'rotate' | 'none';
  readonly refreshTokenBytes?: number;
  readonly emailVerified?: 'boolean' | 'string-in-userinfo';
  readonly groups?: { readonly path: readonly string[] | null; readonly in: readonly ('id_token' | 'userinfo')[] } | null;
  readonly groupsOverageLimit?: number | null;
  readonly tenantId?: string | null;
  /** Entra: app-only tokens (client credentials, scope `<resource>/.default`) for the Graph stand-in, with these application permissions in `roles`. */
  readonly graph?: { readonly resource: string; readonly roles: readonly string[] } | null;
  readonly idTokenClaims?: boolean | null;
  readonly endSession?: 'standard' | 'id-token-hint-required' | 'confirm-without-hint' | 'cognito' | 'auth0-v2' | 'none';
  readonly tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  readonly alsoAcceptedAuthMethods?: readonly ('client_secret_basic' | 'client_secret_post')[];
  readonly clientJwks?: { readonly keys: readonly Record<string, unknown>[] } | null;
  readonly requireCertificateThumbprint?: boolean;
  readonly revocation?: boolean;
  readonly authorizationResponseIss?: boolean;
}

/** Another relying party of the dev IdP. */
export interface DevIdpExtraClient {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  /** @default 'client_secret_basic' */
  readonly tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
}

/** One account of the IdP: the login it accepts and the claims it gives out besides `sub` (the username). */
export interface DevIdpAccount {
  readonly username: string;
  readonly password: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The IdP account of a documented dev user: name, username, verified e-mail and groups. */
export function devUserAccount(user: DevUser): DevIdpAccount {
  return {
    username: user.username,
    password: user.password,
    claims: {
      name: user.name,
      given_name: user.givenName,
      family_name: user.familyName,
      preferred_username: user.username,
      email: user.email,
      email_verified: true,
      groups: user.groups,
    },
  };
}

/** What the IdP counted since it started. */
export interface DevIdpStats {
  readonly logins: number;
  readonly failedLogins: number;
  readonly codeExchanges: number;
  /** Successful refresh_token grants (each one rotates the refresh token). */
  readonly refreshes: number;
  readonly failedRefreshes: number;
  readonly logouts: number;
  /** Successful token revocations (the gateway's logout revokes the refresh token). */
  readonly revocations: number;
  readonly userinfo: number;
  /** Token requests whose client authenticated with HTTP Basic (client_secret_basic). */
  readonly tokenRequestsBasicAuth: number;
  /** Token requests without HTTP Basic (client_secret_post, or none). */
  readonly tokenRequestsPostAuth: number;
}

export interface RunningDevIdp {
  /** `https://127.0.0.1:<port>`, or `https://127.0.0.1:<port>/<tenant id>/v2.0` for an Entra profile */
  readonly issuer: string;
  /** `https://127.0.0.1:<port>` */
  readonly origin: string;
  readonly process: ManagedProcess;
  stats(): Promise<DevIdpStats>;
  stop(): Promise<void>;
}

/**
 * oidc-provider starts in about a second alone; on a 2-core machine shared by several test
 * runs (load average 15-20) a cold start took more than 15 s, so the deadline leaves room.
 */
const READY_TIMEOUT_MS = 60_000;

export async function startDevIdp(options: DevIdpOptions): Promise<RunningDevIdp> {
  const settingsFile = path.join(options.workDir, 'dev-idp.json');
  writeFileSync(
    settingsFile,
    JSON.stringify({
      port: options.port ?? 0,
      certFile: options.certFile,
      keyFile: options.keyFile,
      users: options.accounts,
      idTokenClaims: options.idTokenClaims ?? true,
      testAdminEndpoints: options.testAdminEndpoints ?? false,
      quirks: options.quirks,
      client: {
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        redirectUris: options.redirectUris,
        postLogoutRedirectUris: options.postLogoutRedirectUris,
      },
      extraClients: options.extraClients ?? [],
    }),
    { mode: 0o600 },
  );
  const child = startProcess('dev IdP', process.execPath, [path.join(__dirname, 'dev-idp-server.mjs'), settingsFile], {
    cwd: path.resolve(__dirname, '..', '..', '..'),
  });
  let issuer: string;
  try {
    const line = await child.waitForLine((l) => l.startsWith('{"ready":true'), READY_TIMEOUT_MS);
    issuer = (JSON.parse(line) as { issuer: string }).issuer;
  } catch (error) {
    await child.stop();
    throw error;
  }
  const origin = new URL(issuer).origin;
  return {
    issuer,
    origin,
    process: child,
    stats: () => getJson<DevIdpStats>(`${origin}/dev/stats`, options.caPem),
    stop: () => child.stop(),
  };
}

async function getJson<T>(url: string, ca: string): Promise<T> {
  const answer = await httpsRequest(url, ca);
  if (answer.status !== 200) throw new Error(`GET ${url} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
  return JSON.parse(answer.body) as T;
}
