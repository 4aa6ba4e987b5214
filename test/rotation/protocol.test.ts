/**
 * The four-step protocol of the rotation handler (TS source) against the Secrets
 * Manager model: every kind from the seed and from a previous state, repeated steps,
 * crashes and resumes, and the refusals the AWS template makes.
 */
import { randomUUID } from 'node:crypto';
import { parseGatewaySecret, SECRET_KIND_TAG, SECRET_KINDS, seedSecretValue, SigningKeySetSecret } from '../../core/key-material';
import { handler } from '../../lambda/rotation/index';
import { ROTATION_STEPS, RotationStep, SecretsManagerModel } from '../../dev/aws/secrets-manager-model';
import { captureLogs, event, GatewaySecretArns, RotationWorld, startRotationWorld } from './fixture';

let world: RotationWorld;
let model: SecretsManagerModel;
let arns: GatewaySecretArns;

beforeEach(() => {
  world = startRotationWorld(handler);
  ({ model, arns } = world);
});
afterEach(() => world.stop());

const rotated = ['signingKeys', 'cookieKeys', 'backendClientCertificate', 'frontendCertificate'] as const;

function signingSet(stage = 'AWSCURRENT'): SigningKeySetSecret {
  return parseGatewaySecret(model.valueAt(arns.signingKeys, stage), SECRET_KINDS.signingKeys, 'test');
}

function assertRotationFinished(arn: string, token: string): void {
  expect(model.versionAt(arn, 'AWSCURRENT')).toBe(token);
  expect(model.versionAt(arn, 'AWSPENDING')).toBeUndefined();
}

describe('a full rotation', () => {
  test.each(rotated)('turns the seed of %s into a usable secret, then rotates it again', async (name) => {
    const arn = arns[name];
    const seedVersion = model.versionAt(arn)!;
    const { result: first } = await captureLogs(() => model.rotateSecret({ SecretId: arn }));
    assertRotationFinished(arn, first!.VersionId!);
    expect(model.versionAt(arn, 'AWSPREVIOUS')).toBe(seedVersion);
    const firstValue = model.valueAt(arn)!;
    expect(firstValue).not.toBe(seedSecretValue(SECRET_KINDS[name]));

    const { result: second } = await captureLogs(() => model.rotateSecret({ SecretId: arn }));
    assertRotationFinished(arn, second!.VersionId!);
    expect(model.valueAt(arn, 'AWSPREVIOUS')).toBe(firstValue);
    expect(model.valueAt(arn)).not.toBe(firstValue);
  });

  test('works in any order of first rotations: the client certificate before anything else creates the CA', async () => {
    expect(parseGatewaySecret(model.valueAt(arns.backendCa), SECRET_KINDS.backendCa, 'ca').certificatePem).toBe('');
    for (const name of ['backendClientCertificate', 'frontendCertificate', 'cookieKeys', 'signingKeys'] as const) {
      await captureLogs(() => model.rotateSecret({ SecretId: arns[name] }));
    }
    const ca = parseGatewaySecret(model.valueAt(arns.backendCa), SECRET_KINDS.backendCa, 'ca');
    expect(ca.certificatePem).toContain('BEGIN CERTIFICATE');
    const client = parseGatewaySecret(model.valueAt(arns.backendClientCertificate), SECRET_KINDS.backendClientCertificate, 'client');
    expect(client.chainPem).toBe(ca.certificatePem);
  });

  test('logs one JSON line per step with step, secret ARN, kind, token and outcome, and no key material', async () => {
    const logs = await captureLogs(async () => {
      for (const name of rotated) await model.rotateSecret({ SecretId: arns[name] });
    });
    expect(logs.error).toBeUndefined();
    const outcomes = logs.lines.filter((l) => 'outcome' in l);
    expect(outcomes).toHaveLength(rotated.length * 4);
    for (const line of outcomes) {
      expect(line).toEqual(
        expect.objectContaining({
          step: expect.any(String),
          secretArn: expect.any(String),
          kind: expect.any(String),
          token: expect.any(String),
          outcome: expect.any(String),
        }),
      );
    }
    expect(outcomes.map((l) => `${l.step}:${l.outcome}`).slice(0, 4)).toEqual([
      'createSecret:created',
      'setSecret:set',
      'testSecret:tested',
      'finishSecret:finished',
    ]);
    expect(logs.raw).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE|PUBLIC KEY|"d":|"k":/);
    for (const key of parseGatewaySecret(model.valueAt(arns.cookieKeys), SECRET_KINDS.cookieKeys, 'c').keys) expect(logs.raw).not.toContain(key.k);
    for (const key of signingSet().keys) expect(logs.raw).not.toContain(key.privateJwk.d as string);
  });
});

describe('idempotence and resumption', () => {
  test.each(rotated)('running every step of %s twice gives one new version, as if run once', async (name) => {
    const arn = arns[name];
    model.setRotationFunction(arn, async (e) => {
      await handler(e);
      await handler(e);
    });
    const { result, error } = await captureLogs(() => model.rotateSecret({ SecretId: arn }));
    expect(error).toBeUndefined();
    assertRotationFinished(arn, result!.VersionId!);
    const puts = model.calls.filter((c) => c.operation === 'PutSecretValue' && c.input.SecretId === arn);
    expect(puts).toHaveLength(1);
    expect(model.versions(arn)).toHaveLength(2);
  });

  describe.each(ROTATION_STEPS.slice(0, 3))('a crash right after %s', (crashAfter: RotationStep) => {
    test.each(rotated)('of %s is resumed by the retry with the same token', async (name) => {
      const arn = arns[name];
      const before = model.valueAt(arn)!;
      let crashed = false;
      model.setRotationFunction(arn, async (e) => {
        await handler(e);
        if (e.Step === crashAfter && !crashed) {
          crashed = true;
          throw new Error('Lambda crashed');
        }
      });
      const first = await captureLogs(() => model.rotateSecret({ SecretId: arn }));
      expect(first.error).toEqual(new Error('Lambda crashed'));
      expect(model.valueAt(arn)).toBe(before);
      const pendingToken = model.versionAt(arn, 'AWSPENDING')!;
      const pendingValue = model.valueAt(arn, 'AWSPENDING');

      const retry = await captureLogs(() => model.retryRotation(arn));
      expect(retry.error).toBeUndefined();
      assertRotationFinished(arn, pendingToken);
      // The retry reused what the first attempt made: the value is the one put before the crash.
      expect(model.valueAt(arn)).toBe(pendingValue);
      expect(retry.lines.find((l) => l.step === 'createSecret')?.outcome).toBe('already-created');
    });
  });

  test('a crash inside finishSecret (AWSCURRENT moved, AWSPENDING not yet removed) is finished by the retry', async () => {
    model.injectFailure({ operation: 'UpdateSecretVersionStage', when: (input) => input.VersionStage === 'AWSPENDING' });
    const first = await captureLogs(() => model.rotateSecret({ SecretId: arns.signingKeys }));
    expect(first.error).toMatchObject({ code: 'ECONNRESET' });
    const token = model.versionAt(arns.signingKeys, 'AWSCURRENT')!;
    expect(model.versionAt(arns.signingKeys, 'AWSPENDING')).toBe(token);
    const retry = await captureLogs(() => handler(event(arns.signingKeys, token, 'finishSecret')));
    expect(retry.error).toBeUndefined();
    assertRotationFinished(arns.signingKeys, token);
    expect(retry.lines.at(-1)?.outcome).toBe('already-current');
  });

  test('a failed publish of the verification keys fails setSecret, and the retry publishes', async () => {
    model.injectFailure({ operation: 'PutSecretValue', when: (input) => input.SecretId === arns.verificationKeys });
    const first = await captureLogs(() => model.rotateSecret({ SecretId: arns.signingKeys }));
    expect(first.error).toMatchObject({ code: 'ECONNRESET' });
    expect(first.lines.find((l) => l.outcome === 'error')).toMatchObject({ step: 'setSecret', kind: SECRET_KINDS.signingKeys });
    await captureLogs(() => model.retryRotation(arns.signingKeys));
    const published = parseGatewaySecret(model.valueAt(arns.verificationKeys), SECRET_KINDS.verificationKeys, 'v');
    expect(published.keys.map((k) => k.kid).sort()).toEqual(
      signingSet()
        .keys.map((k) => k.kid)
        .sort(),
    );
  });

  test('a stale AWSPENDING left by a failed rotation does not block a new rotation, and its keys are not used', async () => {
    await captureLogs(() => model.rotateSecret({ SecretId: arns.signingKeys }));
    const before = signingSet();
    // The attempt publishes its keys in setSecret, then fails in testSecret (its second read of the published set).
    let reads = 0;
    model.injectFailure({
      operation: 'GetSecretValue',
      when: (input) => input.SecretId === arns.verificationKeys && input.VersionStage === 'AWSCURRENT' && ++reads === 2,
    });
    const failed = await captureLogs(() => model.rotateSecret({ SecretId: arns.signingKeys }));
    expect(failed.lines.find((l) => l.outcome === 'error')).toMatchObject({ step: 'testSecret' });
    const staleToken = model.versionAt(arns.signingKeys, 'AWSPENDING')!;
    const stale = signingSet('AWSPENDING');

    // The service starts a fresh rotation (for example after an operator cancelled the old one).
    const token = model.startRotation(arns.signingKeys);
    const fresh = await captureLogs(() => model.runRotationSteps(arns.signingKeys, token));
    expect(fresh.error).toBeUndefined();
    assertRotationFinished(arns.signingKeys, token);
    expect(model.versions(arns.signingKeys).find((v) => v.versionId === staleToken)?.stages).toEqual([]);
    const after = signingSet();
    const staleNext = stale.keys.find((k) => k.status === 'next')!.kid;
    expect(after.keys.map((k) => k.kid)).not.toContain(staleNext);
    const published = parseGatewaySecret(model.valueAt(arns.verificationKeys), SECRET_KINDS.verificationKeys, 'v');
    expect(published.keys.map((k) => k.kid)).not.toContain(staleNext);
    expect(after.keys.find((k) => k.status === 'current')!.kid).toBe(before.keys.find((k) => k.status === 'next')!.kid);
  });
});

describe('refusals', () => {
  test('a secret whose rotation is disabled is not touched', async () => {
    const token = model.startRotation(arns.cookieKeys);
    model.setRotationEnabled(arns.cookieKeys, false);
    const { error } = await captureLogs(() => handler(event(arns.cookieKeys, token, 'createSecret')));
    expect(error).toEqual(new Error(`Secret ${arns.cookieKeys} is not enabled for rotation.`));
    expect(model.calls.filter((c) => c.operation === 'PutSecretValue')).toHaveLength(0);
  });

  test('a token that is no version of the secret is refused', async () => {
    model.setRotationEnabled(arns.cookieKeys, true);
    const token = randomUUID();
    const { error, lines } = await captureLogs(() => handler(event(arns.cookieKeys, token, 'createSecret')));
    expect(error).toEqual(new Error(`Secret version ${token} has no stage for rotation of secret ${arns.cookieKeys}.`));
    expect(lines.at(-1)).toMatchObject({ outcome: 'error', token, kind: SECRET_KINDS.cookieKeys });
  });

  test('a token that is a version but not AWSPENDING is refused', async () => {
    await captureLogs(() => model.rotateSecret({ SecretId: arns.cookieKeys }));
    await captureLogs(() => model.rotateSecret({ SecretId: arns.cookieKeys }));
    const previous = model.versionAt(arns.cookieKeys, 'AWSPREVIOUS')!;
    const { error } = await captureLogs(() => handler(event(arns.cookieKeys, previous, 'setSecret')));
    expect(error).toEqual(new Error(`Secret version ${previous} is not set as AWSPENDING for rotation of secret ${arns.cookieKeys}.`));
  });

  test.each(ROTATION_STEPS)('%s with a token that is already AWSCURRENT does nothing', async (step) => {
    await captureLogs(() => model.rotateSecret({ SecretId: arns.signingKeys }));
    const token = model.versionAt(arns.signingKeys)!;
    const callsBefore = model.calls.length;
    const { error, lines } = await captureLogs(() => handler(event(arns.signingKeys, token, step)));
    expect(error).toBeUndefined();
    expect(lines.at(-1)?.outcome).toBe('already-current');
    expect(model.calls.slice(callsBefore).map((c) => c.operation)).toEqual(['DescribeSecret']);
  });

  test('the verification-keys and CA secrets are not rotated on their own', async () => {
    for (const [arn, why] of [
      [arns.verificationKeys, /publishes it in its setSecret step/],
      [arns.backendCa, /creates the CA once/],
    ] as const) {
      model.setRotationFunction(arn, handler);
      const { error } = await captureLogs(() => model.rotateSecret({ SecretId: arn }));
      expect((error as Error).message).toMatch(why);
    }
  });

  test('a secret without the kind tag, or whose value is another kind, is refused with the reason', async () => {
    const untagged = model.createSecret({ Name: 'other', SecretString: '{}' }).ARN!;
    model.setRotationFunction(untagged, handler);
    const first = await captureLogs(() => model.rotateSecret({ SecretId: untagged }));
    expect((first.error as Error).message).toContain(`has tag ${SECRET_KIND_TAG}=undefined`);

    const mislabelled = model.createSecret({
      Name: 'mislabelled',
      SecretString: seedSecretValue(SECRET_KINDS.cookieKeys),
      Tags: [{ Key: SECRET_KIND_TAG, Value: SECRET_KINDS.signingKeys }],
    }).ARN!;
    model.setRotationFunction(mislabelled, handler);
    const second = await captureLogs(() => model.rotateSecret({ SecretId: mislabelled }));
    expect((second.error as Error).message).toBe(`Secret ${mislabelled} holds kind "cookie-encryption-keys", expected "session-signing-keys".`);
  });

  test('a malformed event gets a clear error', async () => {
    const { error } = await captureLogs(() => handler({ SecretId: arns.cookieKeys, ClientRequestToken: randomUUID(), Step: 'rotate' as RotationStep }));
    expect((error as Error).message).toBe('Unknown rotation step "rotate": expected one of createSecret, setSecret, testSecret, finishSecret.');
  });

  test('a missing environment variable names the variable', async () => {
    world.restoreEnvironment();
    const { error } = await captureLogs(() => handler(event(arns.cookieKeys, randomUUID(), 'createSecret')));
    expect((error as Error).message).toMatch(/^Environment variable LG_VERIFICATION_KEYS_SECRET_ARN is not set/);
  });
});
