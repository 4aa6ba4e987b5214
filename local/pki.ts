/**
 * The local gateway's PKI, made fresh at every start: one local CA, a server
 * certificate per local server (all for 127.0.0.1 / localhost), the fleet's client
 * certificate for mutual TLS to the Looker stand-in, and a machine client ("agent")
 * certificate.
 */
import 'reflect-metadata';
import { createHash, X509Certificate } from 'node:crypto';
import { createCa, issueCertificate, Pem, TestCa } from '../dev/pki';

export const LOCAL_HOST_NAMES = ['localhost'];
export const LOCAL_ADDRESSES = ['127.0.0.1'];
/** The TLS name the Looker stand-in's certificate carries (HAProxy checks it). */
export const LOOKER_TLS_NAME = 'looker.local';
/** The TLS name the local auth service's certificate carries. */
export const AUTH_TLS_NAME = 'auth.local';

export interface LocalPki {
  readonly ca: TestCa;
  /** The gateway's frontend (HAProxy) certificate. */
  readonly gateway: Pem;
  readonly idp: Pem;
  readonly looker: Pem;
  readonly authService: Pem;
  /** HAProxy's client certificate towards Looker. */
  readonly fleetClient: Pem;
  /** The machine client's certificate. */
  readonly agent: Pem;
}

export async function createLocalPki(): Promise<LocalPki> {
  const ca = await createCa('Looker Gateway Local CA');
  const server = (commonName: string, extraNames: string[] = []) =>
    issueCertificate(ca, {
      commonName,
      dnsNames: [...new Set([commonName, ...extraNames, ...LOCAL_HOST_NAMES])],
      ipAddresses: LOCAL_ADDRESSES,
      usages: ['server'],
    });
  return {
    ca,
    gateway: await server('localhost'),
    idp: await server('idp.local'),
    looker: await server(LOOKER_TLS_NAME),
    authService: await server(AUTH_TLS_NAME),
    fleetClient: await issueCertificate(ca, { commonName: 'gateway-fleet', usages: ['client'] }),
    agent: await issueCertificate(ca, { commonName: 'local-agent', usages: ['client'] }),
  };
}

/** base64 SHA-256 of a certificate's public key (SPKI), as Chromium's `--ignore-certificate-errors-spki-list` wants it. */
export function spkiSha256Base64(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** Joins PEM blocks one per line (certificates from @peculiar/x509 end without a newline). */
export function pemChain(...blocks: string[]): string {
  return blocks.map((block) => (block.endsWith('\n') ? block : `${block}\n`)).join('');
}
