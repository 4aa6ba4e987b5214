/**
 * Backend client certificates (issued by the internal CA, created once) and the
 * self-signed frontend certificate, checked with Node's own X.509 parser.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { parseGatewaySecret, SECRET_KINDS, seedSecretValue } from '../../core/key-material';
import { caCreationToken } from '../../lambda/rotation/certificates';
import { handler } from '../../lambda/rotation/index';
import { checkCertificate } from '../../lambda/rotation/pki';
import type { SecretsManagerModel } from '../../dev/aws/secrets-manager-model';
import { captureLogs, DOMAIN, event, GatewaySecretArns, RotationWorld, rotationSettings, startRotationWorld } from './fixture';

const DAY_MS = 24 * 3600 * 1000;

let world: RotationWorld;
let model: SecretsManagerModel;
let arns: GatewaySecretArns;

beforeEach(() => {
  world = startRotationWorld(handler, { backendClientCommonName: 'gateway-fleet', backendClientValidityDays: 14, frontendValidityDays: 90 });
  ({ model, arns } = world);
});
afterEach(() => world.stop());

const rotate = (arn: string) => world.rotate(arn);

function clientSecret() {
  return parseGatewaySecret(model.valueAt(arns.backendClientCertificate), SECRET_KINDS.backendClientCertificate, 'client');
}
function caSecret() {
  return parseGatewaySecret(model.valueAt(arns.backendCa), SECRET_KINDS.backendCa, 'ca');
}

function expectKeyMatches(certificatePem: string, privateKeyPem: string): void {
  const fromKey = createPublicKey(createPrivateKey(privateKeyPem)).export({ type: 'spki', format: 'der' });
  const fromCert = new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' });
  expect(Buffer.compare(fromKey, fromCert)).toBe(0);
}

describe('backend client certificate', () => {
  test('chains to the internal CA, is for client authentication, and expires after the configured validity', async () => {
    const started = Date.now();
    await rotate(arns.backendClientCertificate);
    const secret = clientSecret();
    const ca = new X509Certificate(caSecret().certificatePem);
    const cert = new X509Certificate(secret.certificatePem);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=gateway-fleet');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(new X509Certificate(secret.chainPem).fingerprint256).toBe(ca.fingerprint256);
    const notAfter = new Date(cert.validTo).getTime();
    expect(notAfter).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000 + 14 * DAY_MS);
    expect(notAfter).toBeLessThanOrEqual(Date.now() + 14 * DAY_MS);
    expect(new Date(secret.notAfter).getTime()).toBe(notAfter);
    expectKeyMatches(secret.certificatePem, secret.privateKeyPem);
    expect(createPrivateKey(secret.privateKeyPem).asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
  });

  test('the checks of testSecret reject it once it has expired, and reject a key that is not its own', async () => {
    await rotate(arns.backendClientCertificate);
    const secret = clientSecret();
    const expectations = { issuerPem: caSecret().certificatePem, extendedKeyUsage: 'clientAuth' as const };
    await expect(
      checkCertificate(secret.certificatePem, secret.privateKeyPem, { ...expectations, now: new Date(Date.now() + 13 * DAY_MS) }),
    ).resolves.toBeUndefined();
    await expect(checkCertificate(secret.certificatePem, secret.privateKeyPem, { ...expectations, now: new Date(Date.now() + 15 * DAY_MS) })).rejects.toThrow(
      /is valid from .* not at/,
    );
    await expect(checkCertificate(secret.certificatePem, caSecret().privateKeyPem, { ...expectations, now: new Date() })).rejects.toThrow(
      /private key does not belong/,
    );
  });

  test('each rotation issues a new certificate and key from the same CA', async () => {
    await rotate(arns.backendClientCertificate);
    const first = clientSecret();
    const caBefore = caSecret().certificatePem;
    await rotate(arns.backendClientCertificate);
    const second = clientSecret();
    expect(second.certificatePem).not.toBe(first.certificatePem);
    expect(second.privateKeyPem).not.toBe(first.privateKeyPem);
    expect(caSecret().certificatePem).toBe(caBefore);
    expect(model.versions(arns.backendCa)).toHaveLength(2); // the seed and the one CA
  });

  test('the CA is created once when two attempts of the first rotation run at the same time', async () => {
    const token = model.startRotation(arns.backendClientCertificate);
    model.setRotationEnabled(arns.backendClientCertificate, true);
    const results = await captureLogs(() =>
      Promise.all([handler(event(arns.backendClientCertificate, token, 'createSecret')), handler(event(arns.backendClientCertificate, token, 'createSecret'))]),
    );
    expect(results.error).toBeUndefined();
    const caVersions = model.versions(arns.backendCa);
    expect(caVersions).toHaveLength(2);
    expect(caVersions[1].versionId).toBe(caCreationToken(arns.backendCa, caVersions[0].versionId));
    // Both attempts really made a CA; only one was stored, and both used it.
    expect(results.lines.filter((l) => l.event === 'created-backend-ca')).toHaveLength(1);
    expect(results.lines.filter((l) => l.event === 'backend-ca-created-concurrently')).toHaveLength(1);
    const pending = parseGatewaySecret(model.valueAt(arns.backendClientCertificate, 'AWSPENDING'), SECRET_KINDS.backendClientCertificate, 'pending');
    expect(pending.chainPem).toBe(caSecret().certificatePem);
    expect(new X509Certificate(pending.certificatePem).checkIssued(new X509Certificate(caSecret().certificatePem))).toBe(true);
    await captureLogs(() => model.runRotationSteps(arns.backendClientCertificate, token));
    expect(model.versionAt(arns.backendClientCertificate)).toBe(token);
  });

  test('a retried first rotation that crashed after creating the CA reuses that CA', async () => {
    model.injectFailure({ operation: 'PutSecretValue', when: (input) => input.SecretId === arns.backendClientCertificate });
    const first = await captureLogs(() => model.rotateSecret({ SecretId: arns.backendClientCertificate }));
    expect(first.error).toBeDefined();
    const ca = caSecret().certificatePem;
    expect(ca).toContain('BEGIN CERTIFICATE');
    await captureLogs(() => model.retryRotation(arns.backendClientCertificate));
    expect(caSecret().certificatePem).toBe(ca);
    expect(model.versions(arns.backendCa)).toHaveLength(2);
    expect(clientSecret().chainPem).toBe(ca);
  });

  test('a CA secret ARN that points at another kind of secret is refused', async () => {
    world.setEnvironment(rotationSettings(arns, { backendCaSecretArn: arns.cookieKeys }));
    const { error } = await captureLogs(() => model.rotateSecret({ SecretId: arns.backendClientCertificate }));
    expect((error as Error).message).toBe(
      `The backend CA secret ${arns.cookieKeys} is tagged cdk-looker-gateway:kind="cookie-encryption-keys", expected "backend-ca": check the CA secret ARN given to the rotation.`,
    );
  });
});

describe('self-signed frontend certificate', () => {
  test('names the gateway domain, is for server authentication, and lasts the configured validity', async () => {
    await rotate(arns.frontendCertificate);
    const secret = parseGatewaySecret(model.valueAt(arns.frontendCertificate), SECRET_KINDS.frontendCertificate, 'frontend');
    expect(secret.selfSigned).toBe(true);
    const cert = new X509Certificate(secret.certificatePem);
    expect(cert.subjectAltName).toBe(`DNS:${DOMAIN}`);
    expect(cert.checkHost(DOMAIN)).toBe(DOMAIN);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.verify(cert.publicKey)).toBe(true);
    const validDays = (new Date(cert.validTo).getTime() - Date.now()) / DAY_MS;
    expect(validDays).toBeGreaterThan(89.99);
    expect(validDays).toBeLessThanOrEqual(90);
    expectKeyMatches(secret.certificatePem, secret.privateKeyPem);
  });

  test('a certificate the user provided (selfSigned: false) is never replaced', async () => {
    const provided = JSON.stringify({ ...JSON.parse(seedSecretValue(SECRET_KINDS.frontendCertificate)), selfSigned: false, certificatePem: 'x' });
    model.putSecretValue({ SecretId: arns.frontendCertificate, SecretString: provided });
    const { error } = await captureLogs(() => model.rotateSecret({ SecretId: arns.frontendCertificate }));
    expect((error as Error).message).toMatch(/holds a frontend certificate you provided \(selfSigned: false\)/);
    expect(model.valueAt(arns.frontendCertificate)).toBe(provided);
  });
});
