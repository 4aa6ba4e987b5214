/**
 * The four-step protocol of the rotation handler (TS source) against the Secrets
 * Manager model: every kind from the seed and from a previous state, repeated steps,
 * crashes (without and with the retry Secrets Manager documents), the hourly check that
 * clears an unfinished rotation, and the refusals the AWS template makes.
 */
import { randomUUID } from 'node:crypto';
import { parseGatewaySecret, SECRET_KIND_TAG, SECRET_KINDS, seedSecretValue, SigningKeySetSecret } from '../../lib/key-material';
import { handler } from '../../lambda/rotation/index';
import { republishToken } from '../../lambda/rotation/signing-keys';
import { ROTATION_STEPS, RotationStep, SecretsManagerModel } from '../support/secrets-manager-model';
import { captureLogs, event, GatewaySecretArns, rotateAndWait, RotationWorld, runHourlyCheck, startRotationWorld } from './fixture';

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
    const first = await rotateAndWait(model, arn);
    expect(first).toMatchObject({ succeeded: true });
    assertRotationFinished(arn, first.token);
    expect(model.versionAt(arn, 'AWSPREVIOUS')).toBe(seedVersion);
    const firstValue = model.valueAt(arn)!;
    expect(firstValue).not.toBe(seedSecretValue(SECRET_KINDS[name]));

    const second = await rotateAndWait(model, arn);
    assertRotationFinished(arn, second.token);
    expect(model.valueAt(arn, 'AWSPREVIOUS')).toBe(firstValue);
    expect(model.valueAt(arn)).not.toBe(firstValue);
  });

  test('works in any order of first rotations: the client certificate before anything else creates the CA', async () => {
    expect(parseGatewaySecret(model.valueAt(arns.backendCa), SECRET_KINDS.backendCa, 'ca').certificatePem).toBe('');
    for (const name of ['backendClientCertificate', 'frontendCertificate', 'cookieKeys', 'signingKeys'] as const) await world.rotate(arns[name]);
    const ca = parseGatewaySecret(model.valueAt(arns.backendCa), SECRET_KINDS.backendCa, 'ca');
    expect(ca.certificatePem).toContain('BEGIN CERTIFICATE');
    const client = parseGatewaySecret(model.valueAt(arns.backendClientCertificate), SECRET_KINDS.backendClientCertificate, 'client');
    expect(client.chainPem).toBe(ca.certificatePem);
  });

  test('logs one JSON line per step with step, secret ARN, kind, token and outcome, and no key material', async () => {
    const ended = [];
    for (const name of rotated) ended.push(await rotateAndWait(model, arns[name]));
    const lines = ended.flatMap((e) => e.lines);
    const raw = ended.map((e) => e.raw).join('');
    const outcomes = lines.filter((l) => 'outcome' in l);
    expect(outcomes).toHaveLength(rotated.length * 4);
    for (const line of outcomes) {
      expect(line).toEqual(expect.objectContaining({ step: expect.any(String), secretArn: expect.any(String), kind: expect.any(String), token: expect.any(String), outcome: expect.any(String) }));
    }
    expect(outcomes.map((l) => `${l.step}:${l.outcome}`).slice(0, 4)).toEqual(['createSecret:created', 'setSecret:set', 'testSecret:tested', 'finishSecret:finished']);
    expect(raw).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE|PUBLIC KEY|"d":|"k":/);
    for (const key of parseGatewaySecret(model.valueAt(arns.cookieKeys), SECRET_KINDS.cookieKeys, 'c').keys) expect(raw).not.toContain(key.k);
    for (const key of signingSet().keys) expect(raw).not.toContain(key.privateJwk.d as string);
  });
});

describe('idempotence, crashes and what follows them', () => {
  test.each(rotated)('running every step of %s twice gives one new version, as if run once', async (name) => {
    const arn = arns[name];
    model.setRotationFunction(arn, async (e) => {
      await handler(e);
      await handler(e);
    });
    const ended = await rotateAndWait(model, arn);
    expect(ended.error).toBeUndefined();
    assertRotationFinished(arn, ended.token);
    const puts = model.calls.filter((c) => c.operation === 'PutSecretValue' && c.input.SecretId === arn);
    expect(puts).toHaveLength(1);
    expect(model.versions(arn)).toHaveLength(2);
  });

  describe.each(ROTATION_STEPS.slice(0, 3))('a crash right after %s', (crashAfter: RotationStep) => {
    function crashOnce(arn: string): void {
      let crashed = false;
      model.setRotationFunction(arn, async (e) => {
        await handler(e);
        if (e.Step === crashAfter && !crashed) {
          crashed = true;
          throw new Error('Lambda crashed');
        }
      });
    }

    test.each(rotated)('of %s leaves AWSCURRENT as it was; without a retry the rotation stays unfinished and later ones are refused', async (name) => {
      const arn = arns[name];
      await world.rotate(arn);
      const before = model.valueAt(arn)!;
      crashOnce(arn);
      const first = await rotateAndWait(model, arn);
      expect(first).toMatchObject({ succeeded: false, error: 'Error: Lambda crashed' });
      expect(model.valueAt(arn)).toBe(before);
      expect(model.versionAt(arn, 'AWSPENDING')).toBe(first.token);
      // As AWS does: "any later invocation of RotateSecret assumes that a previous rotation request is still in progress and returns an error".
      await expect(model.rotateSecret({ SecretId: arn })).rejects.toMatchObject({ name: 'InvalidRequestException' });
    });

    test.each(rotated)('of %s: if Secrets Manager retries the rotation with the same token, the retry finishes it with the value made before the crash', async (name) => {
      world.stop();
      world = startRotationWorld(handler, {}, { failedRotationRetries: 1 });
      ({ model, arns } = world);
      const arn = arns[name];
      crashOnce(arn);
      const ended = await rotateAndWait(model, arn);
      expect(ended.succeeded).toBe(true);
      assertRotationFinished(arn, ended.token);
      expect(model.events.filter((e) => e.token === ended.token).map((e) => e.type)).toEqual(['RotationStarted', 'RotationFailed', 'RotationStarted', 'RotationSucceeded']);
      expect(ended.lines.filter((l) => l.step === 'createSecret' && 'outcome' in l).map((l) => l.outcome)).toEqual(['created', 'already-created']);
      // One value was made and it is the one that became current.
      expect(model.calls.filter((c) => c.operation === 'PutSecretValue' && c.input.SecretId === arn)).toHaveLength(1);
    });
  });

  test('a crash inside finishSecret (AWSCURRENT moved, AWSPENDING not yet removed) blocks nothing, and running finishSecret again tidies up', async () => {
    model.injectFailure({ operation: 'UpdateSecretVersionStage', when: (input) => input.VersionStage === 'AWSPENDING' });
    const first = await rotateAndWait(model, arns.signingKeys);
    expect(first.error).toMatch(/ECONNRESET|socket hang up/);
    expect(model.versionAt(arns.signingKeys, 'AWSCURRENT')).toBe(first.token);
    expect(model.versionAt(arns.signingKeys, 'AWSPENDING')).toBe(first.token);
    const retry = await captureLogs(() => handler(event(arns.signingKeys, first.token, 'finishSecret')));
    expect(retry.error).toBeUndefined();
    assertRotationFinished(arns.signingKeys, first.token);
    expect(retry.lines.at(-1)?.outcome).toBe('already-current');
    // AWSPENDING on the AWSCURRENT version is not an unfinished rotation: the next one starts.
    await world.rotate(arns.signingKeys);
  });

  test('a failed publish of the verification keys fails setSecret; the verification set and the signing set stay consistent', async () => {
    await world.rotate(arns.signingKeys);
    const signingBefore = signingSet();
    const publishedBefore = model.valueAt(arns.verificationKeys);
    model.injectFailure({ operation: 'PutSecretValue', when: (input) => input.SecretId === arns.verificationKeys });
    const first = await rotateAndWait(model, arns.signingKeys);
    expect(first.succeeded).toBe(false);
    expect(first.lines.find((l) => l.outcome === 'error')).toMatchObject({ step: 'setSecret', kind: SECRET_KINDS.signingKeys });
    expect(signingSet()).toEqual(signingBefore);
    expect(model.valueAt(arns.verificationKeys)).toBe(publishedBefore);
  });

  test('when the verification keys moved on after this rotation published, a retried setSecret publishes again under a new token instead of repeating a no-op', async () => {
    world.stop();
    world = startRotationWorld(handler, {}, { failedRotationRetries: 1 });
    ({ model, arns } = world);
    await world.rotate(arns.signingKeys);
    const earlier = model.valueAt(arns.verificationKeys)!;
    // The first attempt publishes under its token, then something puts an earlier set back
    // (an operator restoring, another writer) before testSecret compares.
    let moved = false;
    model.setRotationFunction(arns.signingKeys, async (e) => {
      if (e.Step === 'testSecret' && !moved) {
        moved = true;
        model.putSecretValue({ SecretId: arns.verificationKeys, SecretString: earlier });
      }
      await handler(e);
    });
    const ended = await rotateAndWait(model, arns.signingKeys);
    // The first attempt fails testSecret; Secrets Manager's retry (same token) runs setSecret again.
    expect(ended.lines.filter((l) => l.outcome === 'error').map((l) => l.step)).toEqual(['testSecret']);
    expect(ended.succeeded).toBe(true);
    const republished = ended.lines.find((l) => l.event === 'republished-verification-keys')!;
    expect(republished).toMatchObject({ step: 'setSecret', publishedVersion: republishToken(ended.token, republished.replacedVersion as string) });
    expect(model.versionAt(arns.verificationKeys)).toBe(republished.publishedVersion);
    const published = parseGatewaySecret(model.valueAt(arns.verificationKeys), SECRET_KINDS.verificationKeys, 'v');
    expect(published.keys.map((k) => `${k.status}:${k.kid}`)).toEqual(signingSet().keys.map((k) => `${k.status}:${k.kid}`));
  });

  test('an unfinished rotation blocks the next until the hourly check clears it; the keys it made are never used', async () => {
    await world.rotate(arns.signingKeys);
    const before = signingSet();
    // The attempt publishes its keys in setSecret, then fails in testSecret (its second read of the published set).
    let reads = 0;
    model.injectFailure({ operation: 'GetSecretValue', when: (input) => input.SecretId === arns.verificationKeys && input.VersionStage === 'AWSCURRENT' && ++reads === 2 });
    const failed = await rotateAndWait(model, arns.signingKeys);
    expect(failed.lines.find((l) => l.outcome === 'error')).toMatchObject({ step: 'testSecret' });
    const stale = signingSet('AWSPENDING');
    await expect(model.rotateSecret({ SecretId: arns.signingKeys })).rejects.toMatchObject({ name: 'InvalidRequestException' });

    // Within the limit the check leaves it alone (a rotation may be running); past it, it clears the label.
    const early = await runHourlyCheck(handler, model.now().getTime() + 60_000);
    expect(early.lines).toContainEqual(expect.objectContaining({ event: 'rotation-in-progress', secretArn: arns.signingKeys }));
    expect(model.versionAt(arns.signingKeys, 'AWSPENDING')).toBe(failed.token);
    const late = await runHourlyCheck(handler, model.now().getTime() + 2 * 3600_000 + 1000);
    expect(late.lines).toContainEqual(expect.objectContaining({ event: 'abandoned-rotation-cleared', secretArn: arns.signingKeys, clearedVersion: failed.token }));
    expect(model.versionAt(arns.signingKeys, 'AWSPENDING')).toBeUndefined();
    expect(signingSet()).toEqual(before);

    const fresh = await rotateAndWait(model, arns.signingKeys);
    expect(fresh.succeeded).toBe(true);
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
    await world.rotate(arns.cookieKeys);
    await world.rotate(arns.cookieKeys);
    const previous = model.versionAt(arns.cookieKeys, 'AWSPREVIOUS')!;
    const { error } = await captureLogs(() => handler(event(arns.cookieKeys, previous, 'setSecret')));
    expect(error).toEqual(new Error(`Secret version ${previous} is not set as AWSPENDING for rotation of secret ${arns.cookieKeys}.`));
  });

  test.each(ROTATION_STEPS)('%s with a token that is already AWSCURRENT does nothing', async (step) => {
    await world.rotate(arns.signingKeys);
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
      const { error } = await rotateAndWait(model, arn);
      expect(error).toMatch(why);
    }
  });

  test('a secret without the kind tag, or whose value is another kind, is refused with the reason', async () => {
    const untagged = model.createSecret({ Name: 'other', SecretString: '{}' }).ARN!;
    model.setRotationFunction(untagged, handler);
    const first = await rotateAndWait(model, untagged);
    expect(first.error).toContain(`has tag ${SECRET_KIND_TAG}=undefined`);

    const mislabelled = model.createSecret({
      Name: 'mislabelled',
      SecretString: seedSecretValue(SECRET_KINDS.cookieKeys),
      Tags: [{ Key: SECRET_KIND_TAG, Value: SECRET_KINDS.signingKeys }],
    }).ARN!;
    model.setRotationFunction(mislabelled, handler);
    const second = await rotateAndWait(model, mislabelled);
    expect(second.error).toBe(`Error: Secret ${mislabelled} holds kind "cookie-encryption-keys", expected "session-signing-keys".`);
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
