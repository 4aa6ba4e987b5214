/**
 * The auth service of the local gateway: the Lambda's own handler served on 127.0.0.1
 * over HTTPS by its local adapter (dev/auth-local-server.ts), configured through the
 * same environment variables the construct sets, with the key sets generated at start
 * held in an in-memory secret source.
 */
import { AuthServiceConfigError, parseAuthServiceEnvironment, type AuthServiceEnvironment } from '../core/auth/environment';
import type { CookieKeySetSecret, SigningKeySetSecret } from '../core/key-material';
import { fetchTrustingCa, startLocalAuthService } from '../dev/auth-local-server';
import { StaticSecretSource } from '../lambda/shared/secrets';
import { DEV_MAPPING_RULES } from '../dev/stand-ins/idp/dev-users';
import { LocalFolder } from './files';
import { LocalPki, pemChain } from './pki';
import { appendFileSync } from 'node:fs';
import * as path from 'node:path';

/** The plain settings of the local auth service (no secrets), as its environment holds them. */
export interface LocalAuthSettings {
  /** The gateway's origin, `https://127.0.0.1:<port>`. */
  readonly publicUrl: string;
  readonly idpIssuer: string;
  readonly idpClientId: string;
  readonly sessionIssuer: string;
  readonly sessionAudience: string;
  readonly sessionTtlSeconds: number;
  readonly refreshWindowSeconds: number;
  readonly clockSkewSeconds: number;
  /** Broker mode: the auth service is Looker's OpenID provider (its client secret is `lookerClientSecret`). */
  readonly lookerBroker: boolean;
}

export interface LocalAuthOptions {
  readonly folder: LocalFolder;
  readonly pki: LocalPki;
  readonly settings: LocalAuthSettings;
  readonly idpClientSecret: string;
  /** Looker's client secret at the broker (broker mode). */
  readonly lookerClientSecret?: string;
  readonly signingKeys: SigningKeySetSecret;
  readonly cookieKeys: CookieKeySetSecret;
}

export interface RunningLocalAuth {
  readonly port: number;
  readonly logFile: string;
  /** The service's log and audit lines so far. */
  log(): string;
  stop(): Promise<void>;
}

export const SECRET_IDS = {
  clientSecret: 'local/idp-client-secret',
  lookerClientSecret: 'local/looker-client-secret',
  signingKeys: 'local/session-signing-keys',
  cookieKeys: 'local/cookie-encryption-keys',
} as const;

const MAX_LOG_KEPT = 256 * 1024;

/**
 * Checks the settings with the auth service's own parser, so a bad value fails before
 * anything starts; the message names the runner's option and the service's variable.
 */
export function checkLocalAuthSettings(settings: LocalAuthSettings): void {
  try {
    parseAuthServiceEnvironment({ ...localAuthEnvironment(settings) });
  } catch (error) {
    if (!(error instanceof AuthServiceConfigError)) throw error;
    const flags: Record<string, string> = { LG_SESSION_TTL_SECONDS: '--session-ttl', LG_REFRESH_WINDOW_SECONDS: '--refresh-window' };
    const problems = error.problems.map((problem) => {
      const variable = Object.keys(flags).find((name) => problem.startsWith(name));
      return variable ? `${flags[variable]} (the auth service's ${problem})` : problem;
    });
    throw new Error(`The auth service refuses these settings:\n- ${problems.join('\n- ')}`);
  }
}

export function localAuthEnvironment(options: LocalAuthSettings): AuthServiceEnvironment {
  return {
    LG_IDP_ISSUER: options.idpIssuer,
    LG_IDP_CLIENT_ID: options.idpClientId,
    LG_IDP_CLIENT_SECRET_ARN: SECRET_IDS.clientSecret,
    LG_IDP_SCOPES: 'openid email profile offline_access',
    LG_PUBLIC_BASE_URL: options.publicUrl,
    LG_SESSION_ISSUER: options.sessionIssuer,
    LG_SESSION_AUDIENCE: options.sessionAudience,
    LG_SESSION_TTL_SECONDS: String(options.sessionTtlSeconds),
    LG_REFRESH_WINDOW_SECONDS: String(options.refreshWindowSeconds),
    LG_CLOCK_SKEW_SECONDS: String(options.clockSkewSeconds),
    LG_MAPPING_RULES: JSON.stringify(DEV_MAPPING_RULES),
    LG_SIGNING_KEYS_SECRET_ARN: SECRET_IDS.signingKeys,
    LG_COOKIE_KEYS_SECRET_ARN: SECRET_IDS.cookieKeys,
    ...(options.lookerBroker ? { LG_LOOKER_CLIENT_SECRET_ARN: SECRET_IDS.lookerClientSecret } : {}),
  };
}

export async function startLocalAuth(options: LocalAuthOptions): Promise<RunningLocalAuth> {
  const logFile = path.join(options.folder.folder('logs'), 'auth.log');
  let kept = '';
  const running = await startLocalAuthService({
    tls: { cert: pemChain(options.pki.authService.cert, options.pki.ca.cert), key: options.pki.authService.key },
    environment: localAuthEnvironment(options.settings),
    secretsSource: new StaticSecretSource({
      [SECRET_IDS.clientSecret]: options.idpClientSecret,
      [SECRET_IDS.signingKeys]: options.signingKeys,
      [SECRET_IDS.cookieKeys]: options.cookieKeys,
      ...(options.lookerClientSecret ? { [SECRET_IDS.lookerClientSecret]: options.lookerClientSecret } : {}),
    }),
    idpFetch: await fetchTrustingCa(options.pki.ca.cert),
    logSink: {
      write(line: string) {
        kept = `${kept}${line}\n`.slice(-MAX_LOG_KEPT);
        appendFileSync(logFile, `${line}\n`, { mode: 0o600 });
      },
    },
  });
  return { port: running.port, logFile, log: () => kept, stop: () => running.stop() };
}
