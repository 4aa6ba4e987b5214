/**
 * A whole gateway on 127.0.0.1: test PKI, session keys in three slots, Looker and auth
 * stand-ins, the rendered config written to a temporary directory, and the real haproxy
 * 3.0 running it. One per test file (start in beforeAll, stop in afterAll).
 */
import 'reflect-metadata'; // @peculiar/x509 (dev/pki.ts) needs it loaded first
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, JWTPayload } from 'jose';
import type { SigningKeyStatus, StoredJwk, VerificationKeyEntry } from '../core/key-material';
import {
  ASSERTION_COOKIE,
  ASSERTION_TOKEN_TYPE,
  SESSION_COOKIE,
  SESSION_TOKEN_TYPE,
  REFRESH_COOKIE,
  SessionAlgorithm,
  assertionAudience,
} from '../core/session-contract';
import { GatewayConfigOptions, RenderedGatewayConfig, publicKeyPemFromJwk, renderGatewayConfig } from '../core/haproxy';
import { createCa, issueCertificate, Pem, TestCa } from './pki';
import { freePorts } from './ports';
import type { RunningHaproxy } from './haproxy';
import { startHaproxy } from './haproxy';
import { AuthStandIn, LookerStandIn, RefreshState, standInRefreshCookie, startAuthStandIn, startLookerStandIn } from './stand-ins/gateway-backends';
import { ClientIdentity, GatewayClient, GatewayClientOptions } from './proxy-client';

export const ISSUER = 'https://gateway.test/oauth2';
export const AUDIENCE = 'looker-gateway';
export const LOOKER_TLS_NAME = 'looker.test';
export const AUTH_HOST = 'auth.test';
export const AUTH_PATH_PREFIX = '/prod';
export const GATEWAY_HOST = 'gateway.test';

export interface SigningKey {
  readonly kid: string;
  readonly slot: SigningKeyStatus | 'unknown';
  readonly privateKey: CryptoKey;
  readonly publicJwk: StoredJwk;
}

export interface TestPki {
  readonly ca: TestCa;
  readonly gatewayServer: Pem;
  readonly gatewayBackendClient: Pem;
  readonly looker: Pem;
  readonly auth: Pem;
  /** CA of machine clients. */
  readonly clientCa: TestCa;
  readonly machineClient: Pem;
  readonly otherMachineClient: Pem;
  /** A certificate from a CA the gateway does not trust. */
  readonly rogueClient: Pem;
}

export async function createTestPki(): Promise<TestPki> {
  const ca = await createCa('Gateway Test Server CA');
  const clientCa = await createCa('Gateway Test Machine Client CA');
  const rogueCa = await createCa('Rogue CA');
  return {
    ca,
    gatewayServer: await issueCertificate(ca, { commonName: GATEWAY_HOST, dnsNames: [GATEWAY_HOST, 'machines.gateway.test'], usages: ['server'] }),
    gatewayBackendClient: await issueCertificate(ca, { commonName: 'gateway-fleet', usages: ['client'] }),
    looker: await issueCertificate(ca, { commonName: LOOKER_TLS_NAME, usages: ['server'] }),
    auth: await issueCertificate(ca, { commonName: AUTH_HOST, usages: ['server'] }),
    clientCa,
    machineClient: await issueCertificate(clientCa, { commonName: 'reporting-bot', usages: ['client'] }),
    otherMachineClient: await issueCertificate(clientCa, { commonName: 'unregistered-bot', usages: ['client'] }),
    rogueClient: await issueCertificate(rogueCa, { commonName: 'reporting-bot', usages: ['client'] }),
  };
}

/** A CRL of `ca` revoking `revoked`, in the PEM form OpenSSL reads ("X509 CRL"). */
export async function createCrl(ca: TestCa, revoked: Pem[]): Promise<string> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: ca.certificate.subject,
      thisUpdate: new Date(Date.now() - 60_000),
      nextUpdate: new Date(Date.now() + 24 * 3600_000),
      entries: revoked.map((pem) => ({
        serialNumber: new X509Certificate(pem.cert).serialNumber.toLowerCase(),
        revocationDate: new Date(Date.now() - 30_000),
        reason: x509.X509CrlReason.keyCompromise,
      })),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      signingKey: ca.keys.privateKey,
    },
    webcrypto as unknown as Crypto,
  );
  return crl.toString('pem').replace(/-----(BEGIN|END) CRL-----/g, '-----$1 X509 CRL-----');
}

export async function createSigningKeys(algorithm: SessionAlgorithm): Promise<Record<SigningKeyStatus | 'unknown', SigningKey>> {
  const make = async (slot: SigningKeyStatus | 'unknown'): Promise<SigningKey> => {
    const { privateKey, publicKey } = await generateKeyPair(algorithm, { extractable: true });
    const kid = `${slot}-${Math.random().toString(36).slice(2, 10)}`;
    return { kid, slot, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: algorithm, use: 'sig' } as unknown as StoredJwk };
  };
  return { previous: await make('previous'), current: await make('current'), next: await make('next'), unknown: await make('unknown') };
}

export interface MintOptions {
  /** Seconds from now. @default 600 */
  readonly expiresIn?: number;
  /** Seconds from now. @default -5 */
  readonly notBeforeIn?: number;
  readonly key?: SigningKey;
  readonly issuer?: string;
  readonly audience?: string;
  readonly omitKid?: boolean;
  /** The `typ` header. @default 'JWT' (the session's) */
  readonly type?: string;
}

export interface GatewayEnv {
  readonly dir: string;
  readonly ports: { gateway: number; health: number; metrics: number };
  readonly pki: TestPki;
  readonly keys: Record<SigningKeyStatus | 'unknown', SigningKey>;
  readonly algorithm: SessionAlgorithm;
  readonly looker: LookerStandIn[];
  readonly auth: AuthStandIn;
  readonly rendered: RenderedGatewayConfig;
  readonly haproxy: RunningHaproxy;
  mint(claims?: JWTPayload, options?: MintOptions): Promise<string>;
  /** An upstream assertion as the contract says the auth service mints it: typ, aud of its own. */
  mintAssertion(claims?: JWTPayload, options?: MintOptions): Promise<string>;
  /** A refresh cookie the auth stand-in redeems for a session with this sub and sid. */
  refreshCookie(state?: Partial<RefreshState>): string;
  /**
   * Claims the auth stand-in puts into the sessions it mints on refresh, over DEFAULT_CLAIMS
   * and the refresh cookie's sub and sid (tests change them to mint a mismatching session).
   */
  refreshedClaims: JWTPayload;
  client(options?: Partial<GatewayClientOptions>): GatewayClient;
  /** The access-log lines haproxy wrote so far, parsed. */
  logLines(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export const DEFAULT_CLAIMS: JWTPayload = {
  sub: 'user-123',
  email: 'ada@example.com',
  name: 'Ada Lovelace',
  sid: 'sid-1',
  groups_csv: 'analysts,finance',
  roles_csv: 'viewer,explorer',
  attr_region: 'emea',
  attr_cost_center: 'cc-42',
};

/** The claims the auth stand-in adds to a refreshed session, so tests can tell it from the first one. */
export const REFRESHED_CLAIMS: JWTPayload = { email: 'ada.refreshed@example.com' };

export interface GatewayEnvOptions {
  /** @default 'ES256' */
  readonly algorithm?: SessionAlgorithm;
  /** Looker nodes to start. @default 2 */
  readonly lookerNodes?: number;
  /** Options on top of the environment's (ports, files and names are filled in). */
  readonly overrides?: (base: GatewayConfigOptions, env: { pki: TestPki }) => GatewayConfigOptions | Promise<GatewayConfigOptions>;
}

export function writeRenderedFiles(dir: string, rendered: RenderedGatewayConfig): void {
  for (const directory of rendered.directories) mkdirSync(directory, { recursive: true });
  for (const file of rendered.files) {
    const target = path.join(dir, file.path);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, file.content);
    chmodSync(target, file.mode);
  }
}

/** Options for a gateway wired to the stand-ins, as the tests and the benchmark use them. */
export function baseGatewayOptions(args: {
  dir: string;
  ports: { gateway: number; health: number; metrics: number };
  lookerPorts: number[];
  authPort: number;
  pki: TestPki;
  sessionKeys: VerificationKeyEntry[];
}): GatewayConfigOptions {
  return {
    configDir: args.dir,
    runtimeDir: path.join(args.dir, 'run'),
    listener: { bindAddress: '127.0.0.1', port: args.ports.gateway },
    healthCheck: { bindAddress: '127.0.0.1', port: args.ports.health },
    metrics: { bindAddress: '127.0.0.1', port: args.ports.metrics },
    session: { issuer: ISSUER, audience: AUDIENCE, attributeNames: ['region', 'cost_center'] },
    authService: { host: AUTH_HOST, addresses: ['127.0.0.1'], port: args.authPort, pathPrefix: AUTH_PATH_PREFIX },
    looker: { servers: args.lookerPorts.map((port) => ({ address: '127.0.0.1', port })), tlsServerName: LOOKER_TLS_NAME, healthCheckIntervalSeconds: 1 },
    process: { nbthread: 2 },
    material: {
      sessionKeys: args.sessionKeys,
      frontendCertificatePem: args.pki.gatewayServer.bundle,
      clientCaPem: args.pki.clientCa.cert,
      backendClientPem: args.pki.gatewayBackendClient.bundle,
      backendCaPem: args.pki.ca.cert,
      authServiceCaPem: args.pki.ca.cert,
    },
  };
}

export async function startGatewayEnv(options: GatewayEnvOptions = {}): Promise<GatewayEnv> {
  const algorithm = options.algorithm ?? 'ES256';
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-fleet-'));
  const pki = await createTestPki();
  const keys = await createSigningKeys(algorithm);
  const stops: Array<() => Promise<void>> = [];
  try {
    const mint = async (claims: JWTPayload = DEFAULT_CLAIMS, mintOptions: MintOptions = {}) => {
      const now = Math.floor(Date.now() / 1000);
      const key = mintOptions.key ?? keys.current;
      return new SignJWT({ ...claims })
        .setProtectedHeader({ alg: algorithm, typ: mintOptions.type ?? SESSION_TOKEN_TYPE, ...(mintOptions.omitKid ? {} : { kid: key.kid }) })
        .setIssuer(mintOptions.issuer ?? ISSUER)
        .setAudience(mintOptions.audience ?? AUDIENCE)
        .setIssuedAt(now)
        .setNotBefore(now + (mintOptions.notBeforeIn ?? -5))
        .setExpirationTime(now + (mintOptions.expiresIn ?? 600))
        .sign(key.privateKey);
    };
    const mintAssertion = (claims: JWTPayload = DEFAULT_CLAIMS, mintOptions: MintOptions = {}) =>
      mint(claims, { audience: assertionAudience(AUDIENCE), type: ASSERTION_TOKEN_TYPE, ...mintOptions });
    const refreshed = { claims: { ...REFRESHED_CLAIMS } as JWTPayload };
    const looker: LookerStandIn[] = [];
    for (let i = 0; i < (options.lookerNodes ?? 2); i += 1) {
      const node = await startLookerStandIn(`looker-${i + 1}`, { cert: pki.looker.cert, key: pki.looker.key, clientCa: pki.ca.cert });
      looker.push(node);
      stops.push(() => node.close());
    }
    const auth = await startAuthStandIn(
      { cert: pki.auth.cert, key: pki.auth.key },
      {
        pathPrefix: AUTH_PATH_PREFIX,
        mintSession: async (state) => {
          const claims = { ...DEFAULT_CLAIMS, sub: state.sub, sid: state.sid, ...refreshed.claims };
          // nbf is the moment of minting, as the auth service sets it (core/auth/session-claims.ts).
          const timing = { notBeforeIn: 0 };
          return { token: await mint(claims, timing), assertion: await mintAssertion(claims, timing), expiresAt: Math.floor(Date.now() / 1000) + 600 };
        },
      },
    );
    stops.push(() => auth.close());
    const [gateway, health, metrics] = await freePorts(3);
    const ports = { gateway, health, metrics };
    const sessionKeys: VerificationKeyEntry[] = (['previous', 'current', 'next'] as const).map((slot) => ({
      kid: keys[slot].kid,
      status: slot,
      publicJwk: keys[slot].publicJwk,
      publicKeyPem: publicKeyPemFromJwk(keys[slot].publicJwk),
    }));
    let gatewayOptions = baseGatewayOptions({ dir, ports, lookerPorts: looker.map((node) => node.port), authPort: auth.port, pki, sessionKeys });
    gatewayOptions = { ...gatewayOptions, session: { ...gatewayOptions.session, algorithm } };
    if (options.overrides) gatewayOptions = await options.overrides(gatewayOptions, { pki });
    const rendered = renderGatewayConfig(gatewayOptions);
    writeRenderedFiles(dir, rendered);
    const haproxy = await startHaproxy(rendered.configFile, [gateway, health]);
    stops.push(() => haproxy.stop());
    // Wait until the health checks have found the Looker nodes.
    const deadline = Date.now() + 10_000;
    while (looker.some((node) => node.healthChecks() === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const clients: GatewayClient[] = [];
    return {
      dir,
      ports,
      pki,
      keys,
      algorithm,
      looker,
      auth,
      rendered,
      haproxy,
      mint,
      mintAssertion,
      refreshCookie: (state = {}) => standInRefreshCookie({ sub: String(DEFAULT_CLAIMS.sub), sid: String(DEFAULT_CLAIMS.sid), ...state }),
      get refreshedClaims() {
        return refreshed.claims;
      },
      set refreshedClaims(claims: JWTPayload) {
        refreshed.claims = claims;
      },
      client: (clientOptions = {}) => {
        const client = new GatewayClient({ port: gateway, ca: pki.ca.cert, ...clientOptions });
        clients.push(client);
        return client;
      },
      logLines: () =>
        haproxy
          .output()
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      stop: async () => {
        for (const client of clients) client.close();
        for (const stop of stops.reverse()) await stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export function sessionCookies(token: string, refresh?: string, assertion?: string): string {
  return [`${SESSION_COOKIE}=${token}`, ...(refresh ? [`${REFRESH_COOKIE}=${refresh}`] : []), ...(assertion ? [`${ASSERTION_COOKIE}=${assertion}`] : [])].join(
    '; ',
  );
}

export type { ClientIdentity };
export { issueCertificate };
