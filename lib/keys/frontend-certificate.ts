/**
 * FrontendCertificate: the one choice of where the gateway's public TLS certificate comes
 * from. A class with factories instead of a union (jsii), read by GatewayKeys (which makes
 * the self-signed secret) and GatewayFleet (which requests the ACM certificate and lets the
 * instances export it).
 */
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { GatewayPropsError } from '../private/validation';

/** Where the frontend certificate comes from. */
export enum FrontendCertificateSource {
  /** An exportable public ACM certificate with DNS validation, renewed by ACM, exported by the instances. */
  ACM_EXPORTABLE = 'acm-exportable',
  /** Your own certificate in a secret (the frontend-certificate JSON format); you renew it. */
  SECRET = 'secret',
  /** A self-signed certificate made and rotated by the gateway: browsers refuse it (local runs and tests). */
  SELF_SIGNED = 'self-signed',
}

export interface AcmExportableCertificateOptions {
  /**
   * Key algorithm of the certificate: RSA_2048, EC_PRIME256V1 or EC_SECP384R1 (what ACM
   * issues for public certificates).
   * @default acm.KeyAlgorithm.RSA_2048
   */
  readonly keyAlgorithm?: acm.KeyAlgorithm;
}

/** Key algorithms ACM issues public certificates with (ACM User Guide, "AWS Certificate Manager public certificates"). */
const PUBLIC_KEY_ALGORITHMS = [acm.KeyAlgorithm.RSA_2048, acm.KeyAlgorithm.EC_PRIME256V1, acm.KeyAlgorithm.EC_SECP384R1].map((algorithm) => algorithm.name);

export class FrontendCertificate {
  /**
   * A public certificate from ACM for the gateway's names (the domain name and the machine
   * clients' host name), validated through the hosted zone (which the gateway then needs),
   * and exportable so that HAProxy can serve it. ACM renews it; key-sync exports it again
   * after each renewal. ACM charges for each issuance and renewal of an exportable
   * certificate (https://aws.amazon.com/certificate-manager/pricing/).
   */
  public static acmExportable(options: AcmExportableCertificateOptions = {}): FrontendCertificate {
    const algorithm = options.keyAlgorithm ?? acm.KeyAlgorithm.RSA_2048;
    if (!PUBLIC_KEY_ALGORITHMS.includes(algorithm.name)) {
      throw new GatewayPropsError(
        'FrontendCertificate.acmExportable',
        `keyAlgorithm ${algorithm.name} is not one ACM issues public certificates with: use acm.KeyAlgorithm.RSA_2048 (the default), EC_PRIME256V1 or EC_SECP384R1.`,
      );
    }
    return new FrontendCertificate(FrontendCertificateSource.ACM_EXPORTABLE, undefined, algorithm);
  }

  /**
   * Your own certificate, in a secret of the frontend-certificate JSON format
   * (`{"kind": "frontend-certificate", "version": 1, "certificatePem", "chainPem",
   * "privateKeyPem", "notAfter", "selfSigned": false}`, see docs/certificates.md). The
   * instances pick up a new version within minutes; you renew it.
   */
  public static fromSecret(secret: secretsmanager.ISecret): FrontendCertificate {
    return new FrontendCertificate(FrontendCertificateSource.SECRET, secret, undefined);
  }

  /**
   * A self-signed certificate for the domain name, made and rotated by the gateway's
   * rotation function. Browsers and machine clients refuse it: for local runs and tests.
   */
  public static selfSigned(): FrontendCertificate {
    return new FrontendCertificate(FrontendCertificateSource.SELF_SIGNED, undefined, undefined);
  }

  /** Where the certificate comes from. */
  public readonly source: FrontendCertificateSource;
  /** The secret of `fromSecret`. */
  public readonly secret?: secretsmanager.ISecret;
  /** The key algorithm of `acmExportable`. */
  public readonly keyAlgorithm?: acm.KeyAlgorithm;

  private constructor(source: FrontendCertificateSource, secret: secretsmanager.ISecret | undefined, keyAlgorithm: acm.KeyAlgorithm | undefined) {
    this.source = source;
    this.secret = secret;
    this.keyAlgorithm = keyAlgorithm;
  }
}
