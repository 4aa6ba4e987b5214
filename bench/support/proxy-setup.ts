/**
 * The three proxies both proxy benchmarks compare, written to a directory:
 *   plain:            HAProxy as an operator's plain TLS reverse proxy: the same TLS settings
 *                     in (certificate, ciphers, ALPN), the same mTLS out (client certificate,
 *                     CA, SNI, name check, health check), X-Forwarded-For/-Proto, keep-alive,
 *                     and a standard `option httplog` access line to the same sink as the gateway;
 *   gateway:          the rendered gateway config, every request carrying a valid session
 *                     (verification cache on, the default);
 *   gatewayNoCache:   the same with the verification cache off (jwt_verify on every request).
 * The stand-in Looker is a second haproxy (TLS, client certificate required, `http-request
 * return`), so the proxy under test is the bottleneck, not a Node server.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { SignJWT } from 'jose';
import { publicKeyPemFromJwk, renderGatewayConfig } from '../../core/haproxy';
import { ASSERTION_COOKIE, ASSERTION_TOKEN_TYPE, SESSION_COOKIE, SESSION_TOKEN_TYPE, assertionAudience } from '../../core/session-contract';
import { freePorts } from '../../dev/ports';
import {
  AUDIENCE,
  DEFAULT_CLAIMS,
  ISSUER,
  LOOKER_TLS_NAME,
  baseGatewayOptions,
  createSigningKeys,
  createTestPki,
  writeRenderedFiles,
} from '../../dev/gateway-env';

export type ScenarioName = 'plain' | 'gateway' | 'gatewayNoCache';
export const SCENARIOS: readonly ScenarioName[] = ['plain', 'gateway', 'gatewayNoCache'];

export interface Scenario {
  readonly name: ScenarioName;
  /** haproxy.cfg of the proxy under test. */
  readonly configFile: string;
  readonly port: number;
}

export interface ProxyBenchSetup {
  /** haproxy.cfg of the stand-in Looker. */
  readonly standInConfig: string;
  readonly standInPort: number;
  readonly scenarios: Record<ScenarioName, Scenario>;
  /** Request headers every scenario gets: a valid session cookie and its assertion, a Looker cookie, Accept. */
  readonly headers: Record<string, string>;
}

/** Same cipher lists as the gateway (core/haproxy/global.ts), so TLS costs the same. */
const CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';
const SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/**
 * Writes the stand-in, plain and gateway configs under `dir`. `healthCheckIntervalSeconds`
 * applies to plain and gateway alike (the instruction count uses a long one so no check
 * falls inside the measured window).
 */
export async function writeProxyBenchSetup(dir: string, healthCheckIntervalSeconds = 5): Promise<ProxyBenchSetup> {
  const pki = await createTestPki();
  const keys = await createSigningKeys('ES256');
  const [standInPort, plainPort, authPort, gatewayPort, gatewayHealth, gatewayMetrics, noCachePort, noCacheHealth, noCacheMetrics] = await freePorts(9);

  const standIn = path.join(dir, 'stand-in');
  mkdirSync(standIn, { recursive: true });
  writeFileSync(path.join(standIn, 'looker.pem'), pki.looker.bundle);
  writeFileSync(path.join(standIn, 'ca.pem'), pki.ca.cert);
  writeFileSync(
    path.join(standIn, 'haproxy.cfg'),
    `global\n  nbthread 1\ndefaults\n  mode http\n  timeout client 3600s\n  timeout server 3600s\n  timeout connect 5s\n  timeout http-keep-alive 3600s\nfrontend looker\n  bind 127.0.0.1:${standInPort} ssl crt ${standIn}/looker.pem verify required ca-file ${standIn}/ca.pem alpn http/1.1\n  http-request return status 200 content-type application/json string '{"ok":true}'\n`,
  );

  const plain = path.join(dir, 'plain');
  mkdirSync(plain, { recursive: true });
  writeFileSync(path.join(plain, 'frontend.pem'), pki.gatewayServer.bundle);
  writeFileSync(path.join(plain, 'backend-client.pem'), pki.gatewayBackendClient.bundle);
  writeFileSync(path.join(plain, 'ca.pem'), pki.ca.cert);
  writeFileSync(
    path.join(plain, 'haproxy.cfg'),
    [
      'global',
      '  nbthread 1',
      '  log stdout len 16384 format raw local0',
      `  ssl-default-bind-ciphers ${CIPHERS}`,
      `  ssl-default-bind-ciphersuites ${SUITES}`,
      '  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets',
      `  ssl-default-server-ciphers ${CIPHERS}`,
      `  ssl-default-server-ciphersuites ${SUITES}`,
      '  ssl-default-server-options ssl-min-ver TLSv1.2 no-tls-tickets',
      'defaults',
      '  mode http',
      '  log global',
      '  option httplog',
      '  option dontlognull',
      '  timeout client 3600s',
      '  timeout server 3600s',
      '  timeout tunnel 3600s',
      '  timeout connect 5s',
      '  timeout http-request 30s',
      '  timeout http-keep-alive 60s',
      'frontend plain',
      `  bind 127.0.0.1:${plainPort} ssl crt ${plain}/frontend.pem alpn h2,http/1.1`,
      '  option forwardfor',
      '  http-request set-header X-Forwarded-Proto https',
      '  default_backend looker',
      'backend looker',
      '  option httpchk',
      `  http-check send meth GET uri /alive ver HTTP/1.1 hdr Host ${LOOKER_TLS_NAME}`,
      '  http-check expect status 200',
      `  server looker1 127.0.0.1:${standInPort} ssl verify required ca-file ${plain}/ca.pem crt ${plain}/backend-client.pem sni str(${LOOKER_TLS_NAME}) verifyhost ${LOOKER_TLS_NAME} check check-sni ${LOOKER_TLS_NAME} inter ${healthCheckIntervalSeconds}s`,
      '',
    ].join('\n'),
  );

  const sessionKeys = (['previous', 'current', 'next'] as const).map((slot) => ({
    kid: keys[slot].kid,
    status: slot,
    publicJwk: keys[slot].publicJwk,
    publicKeyPem: publicKeyPemFromJwk(keys[slot].publicJwk),
  }));
  const gateway = (verificationCache: boolean, port: number, health: number, metrics: number): string => {
    const gatewayDir = path.join(dir, verificationCache ? 'gateway' : 'gateway-no-cache');
    mkdirSync(gatewayDir, { recursive: true });
    const base = baseGatewayOptions({ dir: gatewayDir, ports: { gateway: port, health, metrics }, lookerPorts: [standInPort], authPort, pki, sessionKeys });
    const rendered = renderGatewayConfig({
      ...base,
      // wrk cannot send a PROXY header; the PROXY listener itself is tested in test/fleet.
      listener: { ...base.listener, acceptProxyProtocol: false },
      session: { ...base.session, verificationCache },
      looker: { ...base.looker, healthCheckIntervalSeconds },
      process: { nbthread: 1 },
    });
    writeRenderedFiles(gatewayDir, rendered);
    return rendered.configFile;
  };

  const now = Math.floor(Date.now() / 1000);
  // A session and the upstream assertion the auth service mints next to it (core/session-contract.ts).
  const mint = (type: string, audience: string) =>
    new SignJWT({ ...DEFAULT_CLAIMS })
      .setProtectedHeader({ alg: 'ES256', typ: type, kid: keys.current.kid })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + 3600 * 4)
      .sign(keys.current.privateKey);
  const token = await mint(SESSION_TOKEN_TYPE, AUDIENCE);
  const assertion = await mint(ASSERTION_TOKEN_TYPE, assertionAudience(AUDIENCE));

  return {
    standInConfig: path.join(standIn, 'haproxy.cfg'),
    standInPort,
    scenarios: {
      plain: { name: 'plain', configFile: path.join(plain, 'haproxy.cfg'), port: plainPort },
      gateway: { name: 'gateway', configFile: gateway(true, gatewayPort, gatewayHealth, gatewayMetrics), port: gatewayPort },
      gatewayNoCache: { name: 'gatewayNoCache', configFile: gateway(false, noCachePort, noCacheHealth, noCacheMetrics), port: noCachePort },
    },
    headers: { Cookie: `${SESSION_COOKIE}=${token}; ${ASSERTION_COOKIE}=${assertion}; looker_own=1`, Accept: 'application/json' },
  };
}
