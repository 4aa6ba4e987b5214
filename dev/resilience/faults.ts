/**
 * What the resilience faults and the soak need besides the rig's own handles: the key sets
 * one rotation step further (as the rotation function leaves them), and what a process uses
 * (memory, file descriptors; HAProxy's stick tables and pools through its sockets).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes, X509Certificate } from 'node:crypto';
import { SECRET_FORMAT_VERSION, type CookieKeySetSecret, type SigningKeySetSecret } from '../../core/key-material';
import { PROXY_NAMES } from '../../core/haproxy/names';
import { generateSigningKeySet } from '../keys';
import { masterCli, poolBytes, stickTableUsed } from './master-cli';
import { issueCertificate } from '../pki';
import { GATEWAY_HOST } from '../gateway-env';
import type { GatewayInstance, ResilienceRig } from './rig';
import { DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS } from '../../core/timeouts';

/** An auth service slower than HAProxy's inline-refresh wait (the IdP timeout plus a margin), by 2 s. */
export const AUTH_SLOWER_THAN_REFRESH_MS = DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS * 1000 + 2000;

/**
 * One scheduled rotation of the signing key set: next signs (it was published a rotation
 * ago), current becomes previous, the old previous is dropped, a new next is made.
 */
export async function rotatedSigningKeys(set: SigningKeySetSecret): Promise<SigningKeySetSecret> {
  const fresh = (await generateSigningKeySet(set.alg)).keys.find((k) => k.status === 'next')!;
  const slot = (status: string) => set.keys.find((k) => k.status === status)!;
  return {
    ...set,
    keys: [
      { ...slot('current'), status: 'previous' },
      { ...slot('next'), status: 'current' },
      { ...fresh, createdAt: new Date().toISOString() },
    ],
  };
}

/** One rotation of the cookie keys: a new current; the old current stays to open cookies sealed with it. */
export function rotatedCookieKeys(set: CookieKeySetSecret): CookieKeySetSecret {
  const current = set.keys.find((k) => k.status === 'current')!;
  return {
    kind: set.kind,
    version: SECRET_FORMAT_VERSION,
    keys: [
      { kid: `cookie-${randomBytes(6).toString('hex')}`, status: 'current', createdAt: new Date().toISOString(), k: randomBytes(32).toString('base64url') },
      { ...current, status: 'previous' },
    ],
  };
}

export interface ProcessUsage {
  readonly rssKb: number;
  readonly fds: number;
}

/** Resident memory (VmRSS) and open file descriptors of a process, from /proc. */
export function processUsage(pid: number): ProcessUsage {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return { rssKb, fds: readdirSync(`/proc/${pid}/fd`).length };
}

export interface HaproxyUsage extends ProcessUsage {
  readonly workerPid: number;
  /** Entries used per stick table. */
  readonly tables: Record<string, number>;
  /** Bytes allocated and used in HAProxy's memory pools. */
  readonly pools: { readonly allocated: number; readonly used: number };
}

/** The current worker's pid, from the master's `show proc` (the first worker listed is the newest). */
export async function workerPid(gateway: GatewayInstance): Promise<number> {
  const answer = await masterCli(gateway.masterSocket, 'show proc');
  const workers = answer.slice(answer.indexOf('# workers'));
  const match = /^(\d+)\s+worker\s/m.exec(workers);
  if (!match) throw new Error(`show proc named no worker:\n${answer}`);
  return Number(match[1]);
}

export async function haproxyUsage(gateway: GatewayInstance): Promise<HaproxyUsage> {
  const pid = await workerPid(gateway);
  const tables: Record<string, number> = {};
  for (const table of [PROXY_NAMES.sessionCache, PROXY_NAMES.authRateLimit, PROXY_NAMES.refreshByAddress, PROXY_NAMES.refreshBySession]) {
    tables[table] = await stickTableUsed(gateway.adminSocket, table);
  }
  return { workerPid: pid, ...processUsage(pid), tables, pools: await poolBytes(gateway.adminSocket) };
}

/**
 * A fault of the suite: `inject` breaks something real, `heal` puts it back (both resolve
 * once done). The tests and bench/resilience.ts run these same functions.
 */
export interface Fault {
  readonly name: string;
  /** What users must see, as the issue's table says. */
  readonly expectation: string;
  inject(rig: ResilienceRig): Promise<void>;
  heal(rig: ResilienceRig): Promise<void>;
}

/** Faults with a duration: injected, left for a while under load, healed. */
export const FAULTS: readonly Fault[] = [
  {
    name: 'idp-hung',
    expectation: 'sessions served while valid; refreshes fail soft; a login under way gets the IdP-unavailable page',
    inject: async (rig) => void rig.idp.current().child.kill('SIGSTOP'),
    heal: async (rig) => void rig.idp.current().child.kill('SIGCONT'),
  },
  {
    name: 'auth-hung',
    expectation: 'sessions served while valid; the inline refresh gives up after its timeout; no 5xx',
    inject: async (rig) => void rig.auth.current().child.kill('SIGSTOP'),
    heal: async (rig) => void rig.auth.current().child.kill('SIGCONT'),
  },
  {
    name: 'auth-unreachable',
    expectation: 'as auth-hung, but the connection is refused at once',
    inject: (rig) => rig.auth.setMode('unreachable'),
    heal: (rig) => rig.auth.setMode('normal'),
  },
  {
    name: 'auth-throttled-429',
    expectation: 'as auth-hung; API Gateway answers 429 {"message":"Too Many Requests"}',
    inject: (rig) => rig.auth.setMode('throttled'),
    heal: (rig) => rig.auth.setMode('normal'),
  },
  {
    name: 'auth-slower-than-refresh-timeout',
    expectation: `as auth-hung (${AUTH_SLOWER_THAN_REFRESH_MS / 1000} s is over the ${DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS} s inline refresh timeout)`,
    inject: (rig) => rig.auth.setMode('slow', AUTH_SLOWER_THAN_REFRESH_MS),
    heal: (rig) => rig.auth.setMode('normal'),
  },
  {
    name: 'looker-node-lost',
    expectation: 'requests go to the other node; the gateway stays healthy; the node returns to service',
    inject: (rig) => rig.looker[0].kill(),
    heal: (rig) => rig.looker[0].restart(),
  },
];

/** Faults that are one action under load (no duration): reloads, restarts, rotations. */
export const EVENTS: ReadonlyArray<{ readonly name: string; readonly expectation: string; run(rig: ResilienceRig): Promise<unknown> }> = [
  {
    name: 'haproxy-reload',
    expectation: '0 failed requests',
    run: async (rig) => {
      await rig.reload(0);
      await rig.reload(1);
    },
  },
  { name: 'haproxy-restart-one-of-two', expectation: "only that instance's connections drop; clients retry on the other", run: (rig) => rig.restart(0) },
  { name: 'rotate-signing-key', expectation: '0 failed requests', run: (rig) => rotateSigningKey(rig) },
  { name: 'rotate-cookie-key', expectation: '0 failed requests', run: async (rig) => rotateCookieKey(rig) },
  { name: 'rotate-backend-client-certificate', expectation: '0 failed requests', run: (rig) => rotateBackendClientCertificate(rig) },
  { name: 'rotate-frontend-certificate', expectation: '0 failed requests', run: (rig) => rotateFrontendCertificate(rig) },
];

/** A scheduled rotation of the signing keys as AWS runs it: the secret first (the auth service signs with the new current once its cache expires), then key-sync on every instance. */
export async function rotateSigningKey(rig: ResilienceRig): Promise<string> {
  const before = rig.material();
  const rotated = await rotatedSigningKeys(before.signing);
  rig.secrets.putSecretValue({ SecretId: rig.secretIds.signing, SecretString: JSON.stringify(rotated) });
  rig.install({ ...before, signing: rotated });
  await rig.reload(0);
  await rig.reload(1);
  return rotated.keys.find((k) => k.status === 'current')!.kid;
}

/** The cookie keys rotated in Secrets Manager (HAProxy never reads them). */
export function rotateCookieKey(rig: ResilienceRig): string {
  const before = rig.material();
  const rotated = rotatedCookieKeys(before.cookie);
  rig.secrets.putSecretValue({ SecretId: rig.secretIds.cookie, SecretString: JSON.stringify(rotated) });
  rig.install({ ...before, cookie: rotated });
  return rotated.keys.find((k) => k.status === 'current')!.kid;
}

/** A new client certificate for mTLS to Looker (same CA), installed by key-sync and reloaded. */
export async function rotateBackendClientCertificate(rig: ResilienceRig): Promise<void> {
  const backendClient = await issueCertificate(rig.pki.ca, { commonName: 'gateway-fleet', usages: ['client'] });
  rig.install({ ...rig.material(), backendClient });
  await rig.reload(0);
  await rig.reload(1);
}

/** A new frontend certificate, installed by key-sync and reloaded; returns its serial. */
export async function rotateFrontendCertificate(rig: ResilienceRig): Promise<string> {
  const frontend = await issueCertificate(rig.pki.ca, { commonName: GATEWAY_HOST, dnsNames: [GATEWAY_HOST], usages: ['server'] });
  rig.install({ ...rig.material(), frontend });
  await rig.reload(0);
  await rig.reload(1);
  return new X509Certificate(frontend.cert).serialNumber;
}
