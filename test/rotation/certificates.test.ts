/**
 * Backend client certificates (issued by the internal CA, created once) and the
 * self-signed frontend certificate, checked with Node's own X.509 parser.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { parseGatewaySecret, SECRET_KINDS, seedSecretValue } from '../../lib/key-material';
import { caCreationToken } from '../../lambda/rotation/certificates';
import { handler } from '../../lambda/rotation/index';
import { checkCertificate } from '../../lambda/rotation/pki';
import type { SecretsManagerModel } from '../support/secrets-manager-model';
import { captureLogs, DOMAIN, event, GatewaySecretArns, rotateAndWait, RotationWorld, rotationSettings, runSteps, startRotationWorld } from './fixture';

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
    await expect(checkCertificate(secret.certificatePem, secret.privateKeyPem, { ...expectations, now: new Date(Date.now() + 13 * DAY_MS) })).resolves.toBeUndefined();
    await expect(checkCertificate(secret.certificatePem, secret.privateKeyPem, { ...expectations, now: new Date(Date.now() + 15 * DAY_MS) })).rejects.toThrow(/is valid from .* not at/);
    await expect(checkCertificate(secret.certificatePem, caSecret().privateKeyPem, { ...expectations, now: new Date() })).rejects.toThrow(/private key does not belong/);
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
    await captureLogs(() => runSteps(model, arns.backendClientCertificate, token));
    expect(model.versionAt(arns.backendClientCertificate)).toBe(token);
  });

  test('a first rotation that crashed after creating the CA, retried or followed by a new one, reuses that CA', async () => {
    model.injectFailure({ operation: 'PutSecretValue', when: (input) => input.SecretId === arns.backendClientCertificate });
    const first = await rotateAndWait(model, arns.backendClientCertificate);
    expect(first.succeeded).toBe(false);
    const ca = caSecret().certificatePem;
    expect(ca).toContain('BEGIN CERTIFICATE');
    // The same token again (a retry, should Secrets Manager make one) ...
    await captureLogs(() => runSteps(model, arns.backendClientCertificate, first.token));
    expect(caSecret().certificatePem).toBe(ca);
    // ... and a new rotation.
    await rotate(arns.backendClientCertificate);
    expect(caSecret().certificatePem).toBe(ca);
    expect(model.versions(arns.backendCa)).toHaveLength(2);
    expect(clientSecret().chainPem).toBe(ca);
  });

  test('a CA secret ARN that points at another kind of secret is refused', async () => {
    world.setEnvironment(rotationSettings(arns, { backendCaSecretArn: arns.cookieKeys }));
    const { error } = await rotateAndWait(model, arns.backendClientCertificate);
    expect(error).toBe(
      `Error: The backend CA secret ${arns.cookieKeys} is tagged cdk-looker-gateway:kind="cookie-encryption-keys", expected "backend-ca": check the CA secret ARN given to the rotation.`,
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

  test('a certificate the user put in the secret (selfSigned: false) is kept, and its rotations finish instead of failing every period', async () => {
    const provided = JSON.stringify({ ...JSON.parse(seedSecretValue(SECRET_KINDS.frontendCertificate)), selfSigned: false, certificatePem: 'x', notAfter: '2027-01-01T00:00:00.000Z' });
    model.putSecretValue({ SecretId: arns.frontendCertificate, SecretString: provided });
    for (let i = 0; i < 2; i += 1) {
      const ended = await rotateAndWait(model, arns.frontendCertificate);
      expect(ended).toMatchObject({ succeeded: true });
      expect(ended.lines).toContainEqual(expect.objectContaining({ event: 'kept-provided-certificate', notAfter: '2027-01-01T00:00:00.000Z' }));
      expect(model.valueAt(arns.frontendCertificate)).toBe(provided);
      // Nothing is left behind that would block the next rotation or a deployment.
      expect(model.versionAt(arns.frontendCertificate, 'AWSPENDING')).toBeUndefined();
    }
  });

  test('a certificate the user puts in the secret while a rotation is under way is not replaced by that rotation', async () => {
    await rotate(arns.frontendCertificate);
    const token = model.startRotation(arns.frontendCertificate);
    await captureLogs(() => handler(event(arns.frontendCertificate, token, 'createSecret')));
    const provided = JSON.stringify({ ...JSON.parse(seedSecretValue(SECRET_KINDS.frontendCertificate)), selfSigned: false, certificatePem: 'x' });
    model.putSecretValue({ SecretId: arns.frontendCertificate, SecretString: provided });
    const finish = await captureLogs(() => runSteps(model, arns.frontendCertificate, token, ['setSecret', 'testSecret', 'finishSecret']));
    expect((finish.error as Error).message).toMatch(/was made from an earlier value: the secret now holds a certificate you provided/);
    expect(finish.lines).toContainEqual(expect.objectContaining({ event: 'abandoned-rotation-cleared', clearedVersion: token }));
    expect(model.valueAt(arns.frontendCertificate)).toBe(provided);
    expect(model.versionAt(arns.frontendCertificate, 'AWSPENDING')).toBeUndefined();
  });
});
