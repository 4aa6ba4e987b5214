/**
 * Where the gateway's files live on an instance (and in a test's temporary folder):
 * the config renderer writes these names into haproxy.cfg, and the key-sync unit
 * writes the rotated material to the same names. Paths are relative to the config
 * directory (`/etc/haproxy/gateway` on instances).
 *
 * Session keys live in three fixed slots (previous, current, next), so haproxy.cfg
 * never changes on rotation: key-sync rewrites the slot files and the kid map, checks
 * the config and reloads. A slot with no key holds a copy of the current key and has
 * no line in the kid map.
 */
import type { SigningKeyStatus } from './key-material';

export const DEFAULT_CONFIG_DIR = '/etc/haproxy/gateway';

export const GATEWAY_FILES = {
  haproxyConfig: 'haproxy.cfg',
  /** Public session key of a slot, PEM (SPKI). */
  sessionKey: (slot: SigningKeyStatus): string => `keys/session-${slot}.pem`,
  /** `<kid> <absolute path of the slot file>` per known kid. */
  sessionKidMap: 'maps/session-kids.map',
  /** Frontend certificate, chain and private key in one PEM (HAProxy `crt`). */
  frontendCertificate: 'tls/frontend.pem',
  /** CAs that machine-client certificates must chain to. */
  clientCa: 'tls/client-ca.pem',
  /** Optional CRL for machine-client certificates. */
  clientCrl: 'tls/client-crl.pem',
  /** The fleet's client certificate and key for mTLS to Looker, one PEM. */
  backendClientCertificate: 'tls/backend-client.pem',
  /** CAs that Looker's server certificates chain to. */
  backendCa: 'tls/backend-ca.pem',
  /** CAs that the auth service's certificate chains to. */
  authServiceCa: 'tls/auth-ca.pem',
  /** `<sha256 fingerprint> <identity name>` per machine client. */
  machineClientMap: 'maps/machine-clients.map',
  /** The inline-refresh Lua action. */
  refreshLua: 'lua/gateway-refresh.lua',
} as const;
