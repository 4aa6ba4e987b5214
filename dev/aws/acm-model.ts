/**
 * A stateful model of AWS Certificate Manager for exportable public certificates, as the
 * gateway's instances use it (DescribeCertificate, ExportCertificate) and as ACM renews
 * them. No emulator of ACM runs here; this follows the documentation, cited per behaviour:
 *
 * - ACM API Reference, ExportCertificate: the request carries CertificateArn and a
 *   Passphrase (a blob, base64 on the wire, 4 to 128 bytes, "any ASCII character except #,
 *   $, or %"); the response carries Certificate, CertificateChain and PrivateKey, "the
 *   encrypted private key associated with the public key that is embedded in the
 *   certificate" (PEM, PKCS#8 encrypted with the passphrase: `openssl rsa -in
 *   encrypted_key.pem` reads it back). Errors: ResourceNotFoundException,
 *   RequestInProgressException (not issued yet), InvalidArnException.
 * - ACM User Guide, "AWS Certificate Manager exportable public certificates": only
 *   certificates requested with export ENABLED (CertificateOptions.Export, fixed at
 *   request time) can be exported; public ones created before 17 June 2025 cannot.
 * - ACM API Reference, DescribeCertificate / CertificateDetail: Serial (colon-separated
 *   hex), Status (PENDING_VALIDATION, ISSUED, EXPIRED, ...), NotBefore, NotAfter,
 *   KeyAlgorithm, Options.Export, RenewalEligibility, RenewalSummary; the ARN stays the same
 *   across renewals (User Guide, "Managed certificate renewal").
 * - ACM User Guide, "Managed certificate renewal": a certificate is ELIGIBLE "if exported
 *   since being issued or last renewed"; a renewed certificate is a new certificate (new
 *   serial and validity) under the same ARN. The model gives a renewal a new key pair as
 *   well, so key-sync must install certificate and key together.
 * - ACM User Guide, "Force certificate renewal": RenewCertificate renews "certificates that
 *   have been previously exported"; each renewal of an exportable public certificate is charged.
 * - ACM User Guide, "AWS Certificate Manager public certificates": key algorithms RSA 2048,
 *   EC P-256 and P-384; the chain comes from an intermediate CA below a root.
 *
 * Faults can be injected into the next export (corruptNextExport) to test what an instance
 * does with an answer it must not install.
 */
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { createCa, createIntermediateCa, issueCertificate, TestCa, TestKeyAlgorithm } from '../pki';

export class AcmError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** The error names the model throws; the endpoint answers them as AWS errors. */
export const ACM_ERROR_NAMES = new Set(['ResourceNotFoundException', 'RequestInProgressException', 'InvalidArnException', 'ValidationException']);

/** What an export can carry that an instance must refuse. */
export type ExportFault =
  /** The certificate PEM cut short. */
  | 'truncated-certificate'
  /** A private key that does not belong to the certificate (another certificate's key). */
  | 'mismatched-key'
  /** A private key encrypted with another passphrase than the one sent. */
  | 'key-for-another-passphrase'
  /** A chain whose certificates did not sign the leaf (another CA's). */
  | 'foreign-chain'
  /** A certificate that has expired already. */
  | 'expired-certificate';

interface Issued {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

interface CertificateRecord {
  readonly arn: string;
  readonly domainName: string;
  readonly subjectAlternativeNames: string[];
  readonly keyAlgorithm: TestKeyAlgorithm;
  readonly exportable: boolean;
  validityDays: number;
  status: 'PENDING_VALIDATION' | 'ISSUED';
  issued?: Issued;
  /** Exported since it was issued or last renewed (managed renewal eligibility). */
  exportedSinceIssued: boolean;
  renewals: number;
}

export interface RequestOptions {
  readonly domainName: string;
  readonly subjectAlternativeNames?: string[];
  /** CertificateOptions.Export ENABLED. @default true */
  readonly exportable?: boolean;
  /** @default 'RSA_2048' (ACM's default) */
  readonly keyAlgorithm?: TestKeyAlgorithm;
  /** Validity of each issued certificate. @default 198 (public certificates issued from 2026) */
  readonly validityDays?: number;
  /** Leave it in PENDING_VALIDATION (DNS validation not done yet). @default false */
  readonly pending?: boolean;
}

/** An export as the service saw it: never the passphrase itself. */
export interface ExportRecord {
  readonly arn: string;
  readonly passphraseBytes: number;
  /** The serial of the certificate handed out. */
  readonly serial: string;
}

/** ACM's `Serial`: the serial number's bytes as lower-case hex, separated by colons. */
export function acmSerial(hexSerial: string): string {
  const hex = hexSerial.toLowerCase().replace(/^0+(?=.)/, '');
  const even = hex.length % 2 === 1 ? `0${hex}` : hex;
  return even.match(/../g)!.join(':');
}

export class AcmModel {
  public readonly region: string;
  public readonly accountId: string;
  public readonly exports: ExportRecord[] = [];
  private readonly certificates = new Map<string, CertificateRecord>();
  private readonly faults: ExportFault[] = [];
  private authorities?: Promise<{ root: TestCa; intermediate: TestCa; chainPem: string; foreign: TestCa }>;

  constructor(options: { region?: string; accountId?: string } = {}) {
    this.region = options.region ?? 'eu-west-1';
    this.accountId = options.accountId ?? '111122223333';
  }

  /** RequestCertificate followed by a DNS validation that succeeded (unless `pending`). */
  public async requestCertificate(options: RequestOptions): Promise<string> {
    const arn = `arn:aws:acm:${this.region}:${this.accountId}:certificate/${randomUUID()}`;
    const record: CertificateRecord = {
      arn,
      domainName: options.domainName,
      subjectAlternativeNames: [options.domainName, ...(options.subjectAlternativeNames ?? []).filter((name) => name !== options.domainName)],
      keyAlgorithm: options.keyAlgorithm ?? 'RSA_2048',
      exportable: options.exportable ?? true,
      validityDays: options.validityDays ?? 198,
      status: 'PENDING_VALIDATION',
      exportedSinceIssued: false,
      renewals: 0,
    };
    this.certificates.set(arn, record);
    if (!options.pending) await this.issue(record);
    return arn;
  }

  /** The validation records appeared: ACM issues the certificate. */
  public async completeValidation(arn: string): Promise<void> {
    const record = this.find(arn);
    if (record.status === 'PENDING_VALIDATION') await this.issue(record);
  }

  /** The root CA clients trust (what a browser's store holds for a public CA). */
  public async trustedRootPem(): Promise<string> {
    return (await this.cas()).root.cert;
  }

  public describeCertificate(input: { CertificateArn?: string }): { Certificate: Record<string, unknown> } {
    const record = this.find(input.CertificateArn);
    const issued = record.issued;
    return {
      Certificate: {
        CertificateArn: record.arn,
        DomainName: record.domainName,
        SubjectAlternativeNames: record.subjectAlternativeNames,
        Status: record.status,
        Type: 'AMAZON_ISSUED',
        KeyAlgorithm: record.keyAlgorithm === 'RSA_2048' ? 'RSA-2048' : 'EC-prime256v1',
        Options: { Export: record.exportable ? 'ENABLED' : 'DISABLED' },
        RenewalEligibility: record.exportedSinceIssued ? 'ELIGIBLE' : 'INELIGIBLE',
        ...(issued
          ? {
              Serial: acmSerial(issued.serial),
              NotBefore: issued.notBefore,
              NotAfter: issued.notAfter,
              IssuedAt: issued.notBefore,
              Issuer: 'Amazon',
              ...(record.renewals > 0 ? { RenewalSummary: { RenewalStatus: 'SUCCESS', UpdatedAt: issued.notBefore } } : {}),
            }
          : {}),
      },
    };
  }

  public async exportCertificate(input: {
    CertificateArn?: string;
    Passphrase?: string;
  }): Promise<{ Certificate: string; CertificateChain: string; PrivateKey: string }> {
    const record = this.find(input.CertificateArn);
    const passphrase = Buffer.from(String(input.Passphrase ?? ''), 'base64');
    if (passphrase.length < 4 || passphrase.length > 128) {
      throw new AcmError('ValidationException', 'Passphrase must be 4 to 128 bytes long.');
    }
    if (/[^\x20-\x7e]|[#$%]/.test(passphrase.toString('latin1'))) {
      throw new AcmError('ValidationException', 'Passphrase may hold any ASCII character except #, $ or %.');
    }
    if (!record.exportable)
      throw new AcmError('ValidationException', `Certificate ${record.arn} was not requested with export enabled and cannot be exported.`);
    if (record.status !== 'ISSUED' || !record.issued)
      throw new AcmError('RequestInProgressException', `Certificate ${record.arn} is ${record.status}: it has not been issued yet.`);
    const cas = await this.cas();
    let { certificatePem, privateKeyPem } = record.issued;
    let chainPem = cas.chainPem;
    let encryptWith = passphrase;
    const fault = this.faults.shift();
    switch (fault) {
      case 'truncated-certificate':
        certificatePem = certificatePem.slice(0, Math.floor(certificatePem.length / 2));
        break;
      case 'mismatched-key':
        privateKeyPem = (await issueCertificate(cas.intermediate, { commonName: record.domainName, keyAlgorithm: record.keyAlgorithm, usages: ['server'] }))
          .key;
        break;
      case 'key-for-another-passphrase':
        encryptWith = Buffer.from('not-the-passphrase-that-was-sent');
        break;
      case 'foreign-chain':
        chainPem = cas.foreign.cert;
        break;
      case 'expired-certificate':
        certificatePem = (
          await issueCertificate(cas.intermediate, {
            commonName: record.domainName,
            dnsNames: record.subjectAlternativeNames,
            keyAlgorithm: record.keyAlgorithm,
            usages: ['server'],
            notBefore: new Date(Date.now() - 10 * 86_400_000),
            notAfter: new Date(Date.now() - 86_400_000),
          })
        ).cert;
        break;
      case undefined:
        break;
    }
    record.exportedSinceIssued = true;
    this.exports.push({ arn: record.arn, passphraseBytes: passphrase.length, serial: acmSerial(record.issued.serial) });
    return {
      Certificate: certificatePem,
      CertificateChain: chainPem,
      PrivateKey: createPrivateKey(privateKeyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: encryptWith }).toString(),
    };
  }

  /** RenewCertificate: only a certificate that has been exported (Force certificate renewal). */
  public async renewCertificate(input: { CertificateArn?: string }): Promise<Record<string, never>> {
    const record = this.find(input.CertificateArn);
    if (!this.wasEverExported(record.arn)) {
      throw new AcmError('ValidationException', `Certificate ${record.arn} has never been exported: only exported certificates can be renewed.`);
    }
    await this.issue(record);
    record.renewals += 1;
    return {};
  }

  /**
   * ACM's own managed renewal, as it runs ahead of expiry: it renews only a certificate that
   * was exported since it was issued or last renewed, and reports whether it did.
   */
  public async managedRenewal(arn: string): Promise<boolean> {
    const record = this.find(arn);
    if (!record.exportedSinceIssued) return false;
    await this.issue(record);
    record.renewals += 1;
    return true;
  }

  /** Certificates issued from now on (renewals) are valid this many days (a test stands in for a date close to expiry). */
  public setValidityDays(arn: string, days: number): void {
    this.find(arn).validityDays = days;
  }

  /** The next ExportCertificate answer carries this fault (once). */
  public corruptNextExport(fault: ExportFault): void {
    this.faults.push(fault);
  }

  /** The issued certificate, as ACM holds it (for the tests' own checks). */
  public current(arn: string): { serial: string; notAfter: Date; certificatePem: string } {
    const issued = this.find(arn).issued;
    if (!issued) throw new Error(`${arn} has not been issued`);
    return { serial: acmSerial(issued.serial), notAfter: issued.notAfter, certificatePem: issued.certificatePem };
  }

  private wasEverExported(arn: string): boolean {
    return this.exports.some((e) => e.arn === arn);
  }

  private find(arn: string | undefined): CertificateRecord {
    if (typeof arn !== 'string' || !/^arn:[\w+=/,.@-]+:acm:[\w+=/,.@-]*:[0-9]+:[\w+=,.@-]+(\/[\w+=,.@-]+)*$/.test(arn)) {
      throw new AcmError('InvalidArnException', `The ARN ${JSON.stringify(arn)} is not a valid certificate ARN.`);
    }
    const record = this.certificates.get(arn);
    if (!record) throw new AcmError('ResourceNotFoundException', `Could not find certificate ${arn}.`);
    return record;
  }

  private async issue(record: CertificateRecord): Promise<void> {
    const cas = await this.cas();
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const notAfter = new Date(notBefore.getTime() + record.validityDays * 86_400_000);
    const leaf = await issueCertificate(cas.intermediate, {
      commonName: record.domainName,
      dnsNames: record.subjectAlternativeNames,
      keyAlgorithm: record.keyAlgorithm,
      usages: ['server'],
      notBefore,
      notAfter,
    });
    record.issued = { certificatePem: leaf.cert, privateKeyPem: leaf.key, serial: new X509Certificate(leaf.cert).serialNumber, notBefore, notAfter };
    record.status = 'ISSUED';
    record.exportedSinceIssued = false;
  }

  private cas(): Promise<{ root: TestCa; intermediate: TestCa; chainPem: string; foreign: TestCa }> {
    this.authorities ??= (async () => {
      const root = await createCa('Test Amazon Root CA');
      const intermediate = await createIntermediateCa(root, 'Test Amazon RSA 2048 M01');
      const foreign = await createCa('Some Other CA');
      const chainPem = [intermediate.cert, root.cert].map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`)).join('');
      return { root, intermediate, chainPem, foreign };
    })();
    return this.authorities;
  }
}
