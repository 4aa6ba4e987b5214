/**
 * Test PKI: a CA and the server/client certificates the tests need, made fresh by the
 * test with @peculiar/x509 and Node's WebCrypto. Nothing here is committed as a file.
 */
import 'reflect-metadata';
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA_ALG = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const;

/** Key pair types the tests issue certificates with (ACM's names). */
export type TestKeyAlgorithm = 'EC_prime256v1' | 'RSA_2048';

export interface Pem {
  /** Certificate, PEM. */
  readonly cert: string;
  /** PKCS#8 private key, PEM. */
  readonly key: string;
  /** Certificate followed by key: the form HAProxy's `crt` wants. */
  readonly bundle: string;
  /** SHA-256 of the DER certificate, lower-case hex (HAProxy's `ssl_c_der,sha2(256),hex,lower`). */
  readonly fingerprint: string;
  readonly subject: string;
}

export interface TestCa extends Pem {
  readonly certificate: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

export interface IssueOptions {
  /** Common name; also the first DNS SAN for server certificates. */
  readonly commonName: string;
  readonly dnsNames?: string[];
  readonly ipAddresses?: string[];
  /** 'server', 'client' or both. @default ['server', 'client'] */
  readonly usages?: Array<'server' | 'client'>;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** @default 'EC_prime256v1' */
  readonly keyAlgorithm?: TestKeyAlgorithm;
}

let serialCounter = 1;
function nextSerial(): string {
  serialCounter += 1;
  return (Date.now().toString(16) + serialCounter.toString(16).padStart(4, '0')).padStart(16, '0');
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function fingerprintOf(certPem: string): string {
  return new NodeX509(certPem).fingerprint256.replace(/:/g, '').toLowerCase();
}

export async function createCa(commonName = 'Looker Gateway Test CA'): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  return caWithKeys(
    keys,
    await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: nextSerial(),
      name: `CN=${commonName}`,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 7 * 24 * 3600_000),
      signingAlgorithm: EC_ALG,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    }),
  );
}

/** A CA signed by `parent` (path length 0: it signs end-entity certificates only), as public CAs issue through intermediates. */
export async function createIntermediateCa(parent: TestCa, commonName: string): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  return caWithKeys(
    keys,
    await x509.X509CertificateGenerator.create({
      serialNumber: nextSerial(),
      subject: `CN=${commonName}`,
      issuer: parent.certificate.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 7 * 24 * 3600_000),
      signingAlgorithm: EC_ALG,
      publicKey: keys.publicKey,
      signingKey: parent.keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(parent.keys.publicKey),
      ],
    }),
  );
}

async function caWithKeys(keys: CryptoKeyPair, certificate: x509.X509Certificate): Promise<TestCa> {
  const cert = certificate.toString('pem');
  const key = await pkcs8Pem(keys.privateKey);
  return { cert, key, bundle: `${cert}\n${key}`, fingerprint: fingerprintOf(cert), subject: certificate.subject, certificate, keys };
}

export async function issueCertificate(ca: TestCa, options: IssueOptions): Promise<Pem> {
  const rsa = options.keyAlgorithm === 'RSA_2048';
  const keys = (await webcrypto.subtle.generateKey(rsa ? RSA_ALG : EC_ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const usages = options.usages ?? ['server', 'client'];
  const dnsNames = options.dnsNames ?? (usages.includes('server') ? [options.commonName] : []);
  const sans = [...dnsNames.map((value) => ({ type: 'dns' as const, value })), ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value }))];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: `CN=${options.commonName}`,
    issuer: ca.certificate.subject,
    notBefore: options.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: options.notAfter ?? new Date(Date.now() + 24 * 3600_000),
    signingAlgorithm: EC_ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // TLS with an RSA key encrypts the pre-master secret (TLS 1.2 RSA key exchange); with EC, key agreement.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.keyAgreement), true),
      new x509.ExtendedKeyUsageExtension(usages.map((u) => (u === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth))),
      ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  const cert = certificate.toString('pem');
  const key = await pkcs8Pem(keys.privateKey);
  return { cert, key, bundle: `${cert}\n${key}`, fingerprint: fingerprintOf(cert), subject: certificate.subject };
}
