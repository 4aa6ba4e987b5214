/**
 * Synth-time checks of the PEM material for machine clients: the CA bundle that client
 * certificates must chain to and the optional CRL. Certificates are parsed with Node's
 * X509Certificate; a CRL is only checked for its PEM shape (Node has no CRL parser, and
 * haproxy -c on the instance parses it before haproxy starts).
 */
import { X509Certificate } from 'node:crypto';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

function pemBlocks(pem: string): PemBlock[] {
  return [...pem.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], der: Buffer.from(m[2].replace(/\s+/g, ''), 'base64') }));
}

/** Problems of a client CA bundle, as sentences naming the fix; empty when it is usable. */
export function clientCaProblems(pem: string, now: Date = new Date()): string[] {
  if (/PRIVATE KEY-----/.test(pem)) {
    return [
      "it contains a PRIVATE KEY block: give only the CA certificate(s), and keep the CA's private key out of the app (it would end up in the template).",
    ];
  }
  const blocks = pemBlocks(pem);
  const certificates = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (certificates.length === 0) {
    return [
      'it holds no "-----BEGIN CERTIFICATE-----" block: give the PEM of the CA that issues the machine clients\' certificates (openssl x509 -in ca.crt -outform PEM).',
    ];
  }
  const other = blocks.filter((b) => b.label !== 'CERTIFICATE');
  if (other.length > 0) return [`it holds a "${other[0].label}" block: give only CERTIFICATE blocks (a CRL goes in the separate CRL setting).`];
  const problems: string[] = [];
  certificates.forEach((block, index) => {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(block.der);
    } catch (error) {
      problems.push(`certificate ${index + 1} does not parse (${(error as Error).message}): check that the PEM was copied whole.`);
      return;
    }
    const subject = certificate.subject.replace(/\n/g, ', ');
    if (!certificate.ca)
      problems.push(
        `certificate ${index + 1} (${subject}) is not a CA certificate (basicConstraints CA:TRUE): give the issuing CA, not a client certificate; clients are listed by fingerprint in machineClients.`,
      );
    if (new Date(certificate.validTo) <= now)
      problems.push(`certificate ${index + 1} (${subject}) expired on ${certificate.validTo}: renew the CA and re-issue the client certificates.`);
  });
  return problems;
}

/** Problems of a CRL in PEM; empty when it has the shape HAProxy's crl-file reads. */
export function clientCrlProblems(pem: string): string[] {
  const blocks = pemBlocks(pem);
  const crls = blocks.filter((b) => b.label === 'X509 CRL');
  if (crls.length === 0) return ['it holds no "-----BEGIN X509 CRL-----" block: give the CRL in PEM (openssl crl -in ca.crl -inform DER -outform PEM).'];
  const other = blocks.find((b) => b.label !== 'X509 CRL');
  if (other) return [`it holds a "${other.label}" block: give only X509 CRL blocks.`];
  // DER of a CertificateList starts with a SEQUENCE.
  if (crls.some((b) => b.der.length < 16 || b.der[0] !== 0x30))
    return ['a CRL block is not DER-encoded ASN.1 after base64 decoding: check that the PEM was copied whole.'];
  return [];
}
