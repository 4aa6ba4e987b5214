/**
 * The fleet's backend client certificate (issued by the internal CA, which the first
 * rotation creates) and the self-signed frontend certificate.
 */
import { createHash } from 'node:crypto';
import {
  BackendCaSecret,
  BackendClientCertificateSecret,
  FrontendCertificateSecret,
  parseGatewaySecret,
  SECRET_FORMAT_VERSION,
  SECRET_KIND_TAG,
  SECRET_KINDS,
} from '../../lib/key-material';
import type { KindRotation, RotationContext } from './kind';
import { checkCertificate, createCa, createSelfSignedServerCertificate, issueClientCertificate } from './pki';
import { AWSCURRENT, isAwsError } from './secret-store';

/**
 * A ClientRequestToken derived from the CA secret and its seed version: every attempt
 * to create the CA from that seed uses the same token, so Secrets Manager accepts only
 * the first value (a second, different one fails with ResourceExistsException).
 */
export function caCreationToken(caSecretArn: string, seedVersionId: string): string {
  const hex = createHash('sha256').update(`backend-ca\n${caSecretArn}\n${seedVersionId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The backend CA, created once: when its secret still holds the seed, it is made and written here. */
export async function ensureBackendCa(context: RotationContext): Promise<BackendCaSecret> {
  const arn = context.settings.backendCaSecretArn;
  const described = await context.store.describe(arn);
  const kind = described.Tags?.find((t) => t.Key === SECRET_KIND_TAG)?.Value;
  if (kind !== SECRET_KINDS.backendCa) {
    throw new Error(`The backend CA secret ${arn} is tagged ${SECRET_KIND_TAG}=${JSON.stringify(kind)}, expected ${JSON.stringify(SECRET_KINDS.backendCa)}: check the CA secret ARN given to the rotation.`);
  }
  const current = await context.store.get(arn, { stage: AWSCURRENT });
  const ca = parseGatewaySecret(current.secretString, SECRET_KINDS.backendCa, arn);
  if (ca.certificatePem) return ca;

  const token = caCreationToken(arn, current.versionId);
  const material = await createCa(context.settings.backendCaCommonName, context.settings.backendCaValidityDays, context.now);
  const value: BackendCaSecret = { kind: SECRET_KINDS.backendCa, version: SECRET_FORMAT_VERSION, ...material };
  try {
    await context.store.put(arn, token, JSON.stringify(value));
    context.log({ event: 'created-backend-ca', secretArn: arn, caVersion: token });
  } catch (error) {
    if (!isAwsError(error, 'ResourceExistsException')) throw error;
    context.log({ event: 'backend-ca-created-concurrently', secretArn: arn, caVersion: token });
  }
  // Whoever won, the CA is the value stored under the token.
  return parseGatewaySecret((await context.store.get(arn, { versionId: token })).secretString, SECRET_KINDS.backendCa, arn);
}

export const backendClientCertificateRotation: KindRotation = {
  async create(current, context) {
    parseGatewaySecret(current, SECRET_KINDS.backendClientCertificate, context.secretArn);
    const ca = await ensureBackendCa(context);
    const { backendClientCommonName, backendClientValidityDays } = context.settings;
    const issued = await issueClientCertificate(ca, backendClientCommonName, backendClientValidityDays, context.now);
    const value: BackendClientCertificateSecret = {
      kind: SECRET_KINDS.backendClientCertificate,
      version: SECRET_FORMAT_VERSION,
      certificatePem: issued.certificatePem,
      privateKeyPem: issued.privateKeyPem,
      chainPem: ca.certificatePem,
      notAfter: issued.notAfter.toISOString(),
    };
    return JSON.stringify(value);
  },

  async set() {
    // Instances pull the AWSCURRENT certificate (key-sync); Looker trusts the CA, not the certificate.
  },

  follows() {
    // Any certificate from the current CA can replace any other.
    return undefined;
  },

  async test(pending, context) {
    const value = parseGatewaySecret(pending, SECRET_KINDS.backendClientCertificate, context.secretArn);
    const caArn = context.settings.backendCaSecretArn;
    const ca = parseGatewaySecret((await context.store.get(caArn, { stage: AWSCURRENT })).secretString, SECRET_KINDS.backendCa, caArn);
    if (value.chainPem.trim() !== ca.certificatePem.trim()) throw new Error(`The pending certificate's chain is not the current backend CA of ${caArn}.`);
    await checkCertificate(value.certificatePem, value.privateKeyPem, {
      issuerPem: ca.certificatePem,
      extendedKeyUsage: 'clientAuth',
      commonName: context.settings.backendClientCommonName,
      now: context.now,
    });
  },
};

export const frontendCertificateRotation: KindRotation = {
  async create(current, context) {
    const existing = parseGatewaySecret(current, SECRET_KINDS.frontendCertificate, context.secretArn);
    if (existing.selfSigned === false) {
      // Never replace what the user provided, and never fail over it either: a failed
      // createSecret would leave an empty AWSPENDING that blocks every later rotation and
      // every deployment that updates the schedule. The rotation keeps the value as it is.
      context.log({
        event: 'kept-provided-certificate',
        notAfter: existing.notAfter,
        warning: 'the secret holds a certificate you provided (selfSigned: false): the rotation keeps it; renew it yourself before it expires, or pass it as the frontendCertificate prop (no rotation schedule then)',
      });
      return current;
    }
    const { frontendDomainName, frontendValidityDays } = context.settings;
    const issued = await createSelfSignedServerCertificate(frontendDomainName, frontendValidityDays, context.now);
    const value: FrontendCertificateSecret = {
      kind: SECRET_KINDS.frontendCertificate,
      version: SECRET_FORMAT_VERSION,
      certificatePem: issued.certificatePem,
      privateKeyPem: issued.privateKeyPem,
      chainPem: '',
      notAfter: issued.notAfter.toISOString(),
      selfSigned: true,
    };
    context.log({ event: 'self-signed-frontend-certificate', domainName: frontendDomainName, warning: 'browsers will not trust it: give the gateway a certificate from your CA' });
    return JSON.stringify(value);
  },

  async set() {
    // Instances pull the AWSCURRENT certificate (key-sync).
  },

  follows(pending, current, context) {
    const now = parseGatewaySecret(current, SECRET_KINDS.frontendCertificate, context.secretArn);
    if (now.selfSigned === false && pending !== current) return 'the secret now holds a certificate you provided (selfSigned: false), which the rotation never replaces';
    return undefined;
  },

  async test(pending, context) {
    const value = parseGatewaySecret(pending, SECRET_KINDS.frontendCertificate, context.secretArn);
    // A provided certificate is kept as it is (create); its checks are the user's business.
    if (value.selfSigned === false) return;
    await checkCertificate(value.certificatePem, value.privateKeyPem, {
      extendedKeyUsage: 'serverAuth',
      dnsName: context.settings.frontendDomainName,
      now: context.now,
    });
  },
};
