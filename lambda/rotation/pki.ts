/**
 * Certificates for the rotation: the internal backend CA, the fleet's client
 * certificate and the self-signed frontend certificate, made with @peculiar/x509 on
 * Node's WebCrypto (EC P-256, ECDSA with SHA-256), and the checks testSecret runs.
 */
// @peculiar/x509 uses tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 3600 * 1000;
/** Certificates start a little in the past, so a clock that runs behind still accepts them. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface IssuedCertificate {
  readonly certificatePem: string;
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  readonly notAfter: Date;
}

export interface CaMaterial {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return (await webcrypto.subtle.importKey('pkcs8', der, EC_ALG, false, ['sign'])) as unknown as CryptoKey;
}

/** A positive 128-bit serial number, hex (RFC 5280 allows up to 20 octets). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  return bytes.toString('hex');
}

function validity(now: Date, days: number): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: new Date(now.getTime() + days * DAY_MS) };
}

/** Escapes a value for an RFC 4514 distinguished name. */
function dnValue(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

export async function createCa(commonName: string, validityDays: number, now: Date): Promise<CaMaterial> {
  const keys = await newKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${dnValue(commonName)}`,
    ...validity(now, validityDays),
    signingAlgorithm: EC_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await pkcs8Pem(keys.privateKey) };
}

export async function issueClientCertificate(ca: CaMaterial, commonName: string, validityDays: number, now: Date): Promise<IssuedCertificate> {
  const caCertificate = new x509.X509Certificate(ca.certificatePem);
  const caPublicKey = await caCertificate.publicKey.export(EC_ALG, ['verify']);
  const caPrivateKey = await importPrivateKey(ca.privateKeyPem);
  const keys = await newKeyPair();
  const times = validity(now, validityDays);
  if (times.notAfter > caCertificate.notAfter) {
    throw new Error(
      `The backend CA expires on ${caCertificate.notAfter.toISOString()}, before a new client certificate would (${times.notAfter.toISOString()}): a new CA is needed.`,
    );
  }
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${dnValue(commonName)}`,
    issuer: caCertificate.subject,
    ...times,
    signingAlgorithm: EC_ALG,
    publicKey: keys.publicKey,
    signingKey: caPrivateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(caPublicKey),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await pkcs8Pem(keys.privateKey), notAfter: certificate.notAfter };
}

export async function createSelfSignedServerCertificate(domainName: string, validityDays: number, now: Date): Promise<IssuedCertificate> {
  const keys = await newKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${dnValue(domainName)}`,
    ...validity(now, validityDays),
    signingAlgorithm: EC_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: domainName }]),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: await pkcs8Pem(keys.privateKey), notAfter: certificate.notAfter };
}

export interface CertificateExpectations {
  /** The certificate must chain to this CA certificate (PEM); omitted means self-signed. */
  readonly issuerPem?: string;
  readonly extendedKeyUsage: 'clientAuth' | 'serverAuth';
  readonly commonName?: string;
  readonly dnsName?: string;
  readonly now: Date;
}

/**
 * The checks of testSecret: the certificate is signed by its issuer (or by itself),
 * is within its validity at `now`, carries the expected usage and names, and the
 * private key is the one the certificate was issued for. Throws what failed.
 */
export async function checkCertificate(certificatePem: string, privateKeyPem: string, expected: CertificateExpectations): Promise<void> {
  const certificate = new x509.X509Certificate(certificatePem);
  const issuer = expected.issuerPem ? new x509.X509Certificate(expected.issuerPem) : certificate;
  if (!(await certificate.verify({ publicKey: issuer.publicKey, signatureOnly: true }))) {
    throw new Error(`The certificate ${certificate.subject} is not signed by ${issuer.subject}.`);
  }
  if (certificate.issuer !== issuer.subject) {
    throw new Error(`The certificate's issuer ${certificate.issuer} is not ${issuer.subject}.`);
  }
  for (const cert of [certificate, issuer]) {
    if (expected.now < cert.notBefore || expected.now >= cert.notAfter) {
      throw new Error(
        `The certificate ${cert.subject} is valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not at ${expected.now.toISOString()}.`,
      );
    }
  }
  const usage = certificate.getExtension(x509.ExtendedKeyUsageExtension);
  const wanted = expected.extendedKeyUsage === 'clientAuth' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth;
  if (!usage || !usage.usages.includes(wanted)) {
    throw new Error(`The certificate ${certificate.subject} lacks the ${expected.extendedKeyUsage} extended key usage.`);
  }
  if (expected.commonName && certificate.subject !== `CN=${dnValue(expected.commonName)}`) {
    throw new Error(`The certificate's subject is ${certificate.subject}, expected CN=${expected.commonName}.`);
  }
  if (expected.dnsName) {
    const san = certificate.getExtension(x509.SubjectAlternativeNameExtension);
    const names = san?.names.items.filter((n) => n.type === 'dns').map((n) => n.value) ?? [];
    if (!names.includes(expected.dnsName)) {
      throw new Error(`The certificate's DNS names (${names.join(', ') || 'none'}) do not include ${expected.dnsName}.`);
    }
  }
  const challenge = randomBytes(32);
  const signature = await webcrypto.subtle.sign(EC_ALG, (await importPrivateKey(privateKeyPem)) as webcrypto.CryptoKey, challenge);
  const publicKey = await certificate.publicKey.export(EC_ALG, ['verify']);
  if (!(await webcrypto.subtle.verify(EC_ALG, publicKey as webcrypto.CryptoKey, signature, challenge))) {
    throw new Error(`The private key does not belong to the certificate ${certificate.subject}.`);
  }
}

/** notAfter of a PEM certificate. */
export function certificateNotAfter(certificatePem: string): Date {
  return new x509.X509Certificate(certificatePem).notAfter;
}
