/**
 * Names haproxy.cfg gives to its proxies, tables, sockets and the files only the renderer
 * writes; the key-sync unit, the metrics and the tests refer to them by these constants.
 */
import * as path from 'node:path';

/** Files of this renderer that core/layout.ts does not list (they never change at run time). */
export const RENDERED_FILES = {
  errorPage: (status: number): string => `errors/${status}.http`,
  /** Only when machine clients have a host name of their own: asks for client certificates on that SNI only. */
  frontendCrtList: 'tls/frontend.crt-list',
  /** Revoked session ids: empty on disk, filled in memory by the Lua revocation poll. */
  revokedSessionMap: 'maps/revoked-sessions.map',
} as const;

/** Names of the config's proxies, for stats, metrics and the key-sync unit. */
export const PROXY_NAMES = {
  gateway: 'gateway',
  health: 'nlb_health',
  metrics: 'metrics',
  refreshRelay: 'refresh_relay',
  looker: 'looker',
  authService: 'auth_service',
  sessionCache: 'session_cache',
  authRateLimit: 'auth_rate_limit',
  refreshByAddress: 'inline_refresh_by_address',
  refreshBySession: 'inline_refresh_by_session',
  resolvers: 'gateway_dns',
  errors: 'gateway_errors',
} as const;

/** The `route` of health-check log lines (logged only while Looker is unavailable). */
export const HEALTH_ROUTE = 'health';

/** The unix socket the Lua refresh action reaches the auth service through. */
export function refreshRelaySocket(runtimeDir: string): string {
  return path.posix.join(runtimeDir, 'refresh-relay.sock');
}

/** The admin socket (`expose-fd listeners`) that key-sync and seamless reloads use. */
export function adminSocket(runtimeDir: string): string {
  return path.posix.join(runtimeDir, 'admin.sock');
}
