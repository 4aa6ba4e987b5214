import {
  DescribeSecretCommand,
  RotateSecretCommand,
  UpdateSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { installSecretsManagerFake, SecretsManagerModel } from '../support/secrets-manager-model';

const TOKEN_A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const TOKEN_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

describe('the Secrets Manager model follows the documented semantics', () => {
  let model: SecretsManagerModel;
  let fake: ReturnType<typeof installSecretsManagerFake>;
  const client = new SecretsManagerClient({ region: 'eu-west-1' });
  beforeEach(() => {
    model = new SecretsManagerModel();
    fake = installSecretsManagerFake(model);
  });
  afterEach(() => fake.restore());

  test('a new value becomes AWSCURRENT and the old one AWSPREVIOUS; a label-less version is deprecated', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1', Tags: [{ Key: 'k', Value: 'v' }] });
    const first = model.versionAt(ARN!)!;
    await client.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'v2', ClientRequestToken: TOKEN_A }));
    await client.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'v3', ClientRequestToken: TOKEN_B }));
    const described = await client.send(new DescribeSecretCommand({ SecretId: ARN }));
    expect(described.VersionIdsToStages).toEqual({ [TOKEN_A]: ['AWSPREVIOUS'], [TOKEN_B]: ['AWSCURRENT'] });
    expect(described.Tags).toEqual([{ Key: 'k', Value: 'v' }]);
    expect(described.RotationEnabled).toBe(false);
    const listed = await client.send(new ListSecretVersionIdsCommand({ SecretId: ARN }));
    expect(listed.Versions!.map((v) => v.VersionId)).toEqual([TOKEN_A, TOKEN_B]);
    const all = await client.send(new ListSecretVersionIdsCommand({ SecretId: ARN, IncludeDeprecated: true }));
    expect(all.Versions!.map((v) => v.VersionId)).toEqual([first, TOKEN_A, TOKEN_B]);
    // A deprecated version can still be read by id.
    expect((await client.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: first }))).SecretString).toBe('v1');
  });

  test('PutSecretValue is idempotent per token and refuses a different value under the same token', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    await client.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'v2', ClientRequestToken: TOKEN_A, VersionStages: ['AWSPENDING'] }));
    await client.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'v2', ClientRequestToken: TOKEN_A, VersionStages: ['AWSPENDING'] }));
    expect(model.versions(ARN!)).toHaveLength(2);
    await expect(client.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'other', ClientRequestToken: TOKEN_A }))).rejects.toMatchObject({
      name: 'ResourceExistsException',
      $metadata: expect.objectContaining({ httpStatusCode: 400 }),
    });
    expect(model.valueAt(ARN!, 'AWSCURRENT')).toBe('v1');
    expect(model.valueAt(ARN!, 'AWSPENDING')).toBe('v2');
  });

  test('GetSecretValue fails with ResourceNotFoundException for a missing label, a mismatched stage, or an empty pending version', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    const current = model.versionAt(ARN!)!;
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionStage: 'AWSPENDING' }))).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: current, VersionStage: 'AWSPENDING' }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    model.setRotationFunction(ARN!, async () => undefined);
    const token = model.startRotation(ARN!);
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: token, VersionStage: 'AWSPENDING' }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'nope' }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  test('UpdateSecretVersionStage needs RemoveFromVersionId to move a label, and AWSPREVIOUS follows AWSCURRENT', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    const first = model.versionAt(ARN!)!;
    await client.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'v2', ClientRequestToken: TOKEN_A, VersionStages: ['AWSPENDING'] }));
    await expect(client.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: TOKEN_A }))).rejects.toMatchObject({
      name: 'InvalidParameterException',
    });
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: TOKEN_A, RemoveFromVersionId: first }));
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSPENDING', RemoveFromVersionId: TOKEN_A }));
    expect(model.versions(ARN!).map((v) => [v.versionId, v.stages])).toEqual([
      [first, ['AWSPREVIOUS']],
      [TOKEN_A, ['AWSCURRENT']],
    ]);
  });

  test('RotateSecret answers with the new version before the rotation function ran; the steps follow in order (API_RotateSecret: "starts the asynchronous process")', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    const steps: string[] = [];
    model.setRotationFunction(ARN!, async (e) => {
      steps.push(e.Step);
      if (e.Step === 'createSecret') model.putSecretValue({ SecretId: e.SecretId, ClientRequestToken: e.ClientRequestToken, SecretString: 'v2', VersionStages: ['AWSPENDING'] });
      if (e.Step === 'finishSecret') {
        model.updateSecretVersionStage({ SecretId: e.SecretId, VersionStage: 'AWSCURRENT', MoveToVersionId: e.ClientRequestToken, RemoveFromVersionId: model.versionAt(e.SecretId)! });
        model.updateSecretVersionStage({ SecretId: e.SecretId, VersionStage: 'AWSPENDING', RemoveFromVersionId: e.ClientRequestToken });
      }
    });
    const answer = await client.send(new RotateSecretCommand({ SecretId: ARN }));
    expect(steps).toEqual([]);
    // The empty AWSPENDING version the function's first check looks for is already there.
    expect((await client.send(new DescribeSecretCommand({ SecretId: ARN }))).VersionIdsToStages![answer.VersionId!]).toEqual(['AWSPENDING']);
    expect(model.valueAt(ARN!)).toBe('v1');
    await model.settled();
    expect(steps).toEqual(['createSecret', 'setSecret', 'testSecret', 'finishSecret']);
    expect(model.rotationOutcome(answer.VersionId!)).toEqual({ succeeded: true });
    expect(model.valueAt(ARN!)).toBe('v2');
    expect(model.describeSecret({ SecretId: ARN! }).LastRotatedDate).toEqual(model.now());
  });

  test('a failed rotation is recorded, not retried unless asked, and leaves AWSPENDING, so RotateSecret and startRotation refuse (API_RotateSecret)', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    const steps: string[] = [];
    model.setRotationFunction(ARN!, async (e) => {
      steps.push(e.Step);
      if (e.Step === 'testSecret') throw new Error('boom');
    });
    const { VersionId } = await model.rotateSecret({ SecretId: ARN! });
    await model.settled();
    expect(steps).toEqual(['createSecret', 'setSecret', 'testSecret']);
    expect(model.rotationOutcome(VersionId!)).toEqual({ succeeded: false, error: 'Error: boom' });
    expect(model.describeSecret({ SecretId: ARN! }).RotationEnabled).toBe(true);
    await expect(client.send(new RotateSecretCommand({ SecretId: ARN }))).rejects.toMatchObject({ name: 'InvalidRequestException', message: "A previous rotation isn't complete. That rotation will be reattempted." });
    expect(() => model.startRotation(ARN!)).toThrow(expect.objectContaining({ name: 'InvalidRequestException' }));
    // The same request token again is the same request: it starts nothing new.
    await expect(model.rotateSecret({ SecretId: ARN!, ClientRequestToken: VersionId })).resolves.toMatchObject({ VersionId });
    await model.settled();
    expect(steps).toHaveLength(3);
  });

  test('with failedRotationRetries, a failed rotation runs again with the same token that many times (the User Guide documents retries, not their token)', async () => {
    const retrying = new SecretsManagerModel({ failedRotationRetries: 2 });
    const { ARN } = retrying.createSecret({ Name: 's', SecretString: 'v1' });
    const tokens: string[] = [];
    retrying.setRotationFunction(ARN!, async (e) => {
      tokens.push(e.ClientRequestToken);
      throw new Error('always');
    });
    const { VersionId } = await retrying.rotateSecret({ SecretId: ARN! });
    await retrying.settled();
    expect(tokens).toEqual([VersionId, VersionId, VersionId]);
    expect(retrying.events.map((e) => `${e.type}:${e.trigger ?? ''}`)).toEqual(['RotationStarted:api', 'RotationFailed:', 'RotationStarted:retry', 'RotationFailed:', 'RotationStarted:retry', 'RotationFailed:']);
  });

  test('RotateImmediately false runs only testSecret, on an empty AWSPENDING version that is removed after; a failing test is the error (API_RotateSecret, RotateImmediately)', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    const seen: { step: string; pending: string[] | undefined; value: string | undefined }[] = [];
    let fail = false;
    model.setRotationFunction(ARN!, async (e) => {
      seen.push({ step: e.Step, pending: model.describeSecret({ SecretId: e.SecretId }).VersionIdsToStages[e.ClientRequestToken], value: model.versions(e.SecretId).find((v) => v.versionId === e.ClientRequestToken)?.secretString });
      if (fail) throw new Error('cannot read the secret');
    });
    await expect(model.rotateSecret({ SecretId: ARN!, RotateImmediately: false, RotationRules: { ScheduleExpression: 'rate(7 days)' } })).resolves.not.toHaveProperty('VersionId');
    expect(seen).toEqual([{ step: 'testSecret', pending: ['AWSPENDING'], value: undefined }]);
    expect(model.versionAt(ARN!, 'AWSPENDING')).toBeUndefined();
    expect(model.valueAt(ARN!)).toBe('v1');
    fail = true;
    await expect(model.rotateSecret({ SecretId: ARN!, RotateImmediately: false })).rejects.toMatchObject({ name: 'InvalidRequestException', message: expect.stringContaining('cannot read the secret') });
    expect(model.versionAt(ARN!, 'AWSPENDING')).toBeUndefined();
  });

  test('PutSecretValue that repeats a version with the same value is ignored, labels included (API_PutSecretValue)', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    model.putSecretValue({ SecretId: ARN!, SecretString: 'v2', ClientRequestToken: TOKEN_A });
    model.putSecretValue({ SecretId: ARN!, SecretString: 'v3', ClientRequestToken: TOKEN_B });
    const again = await client.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'v2', ClientRequestToken: TOKEN_A }));
    expect(again.VersionStages).toEqual(['AWSPREVIOUS']);
    expect(model.valueAt(ARN!)).toBe('v3');
  });

  test('UpdateSecret with a SecretString makes a new AWSCURRENT version, as CloudFormation updates a secret (API_UpdateSecret)', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    const first = model.versionAt(ARN!);
    const { VersionId } = await client.send(new UpdateSecretCommand({ SecretId: ARN, SecretString: 'v2' }));
    expect(model.versionAt(ARN!)).toBe(VersionId);
    expect(model.versionAt(ARN!, 'AWSPREVIOUS')).toBe(first);
  });

  test('RotationRules are checked as the API reference states them', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    model.setRotationFunction(ARN!, async () => undefined);
    for (const [rules, message] of [
      [{ AutomaticallyAfterDays: 7, ScheduleExpression: 'rate(7 days)' }, /not both/],
      [{ ScheduleExpression: 'rate(2 hours)' }, /at most every 4 hours/],
      [{ ScheduleExpression: 'rate(7 days)', Duration: '25h' }, /1h to 24h/],
      [{ AutomaticallyAfterDays: 0 }, /1 to 1000/],
    ] as const) {
      await expect(model.rotateSecret({ SecretId: ARN!, RotationRules: rules, RotateImmediately: false })).rejects.toMatchObject({ name: 'InvalidParameterException', message: expect.stringMatching(message) });
    }
  });
  test('injected failures hit the matching calls only, then stop', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    model.injectFailure({ operation: 'GetSecretValue', when: (input) => input.VersionStage === 'AWSPREVIOUS' });
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN }))).resolves.toMatchObject({ SecretString: 'v1' });
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionStage: 'AWSPREVIOUS' }))).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionStage: 'AWSPREVIOUS' }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});

describe('the rotation schedule (RotationRulesType; "Schedule expressions in Secrets Manager rotation")', () => {
  function rotating(options: ConstructorParameters<typeof SecretsManagerModel>[0]) {
    const m = new SecretsManagerModel(options);
    const { ARN } = m.createSecret({ Name: 's', SecretString: 'v0' });
    let n = 0;
    m.setRotationFunction(ARN!, async (e) => {
      if (e.Step === 'createSecret') m.putSecretValue({ SecretId: e.SecretId, ClientRequestToken: e.ClientRequestToken, SecretString: `v${++n}`, VersionStages: ['AWSPENDING'] });
      if (e.Step === 'finishSecret') {
        m.updateSecretVersionStage({ SecretId: e.SecretId, VersionStage: 'AWSCURRENT', MoveToVersionId: e.ClientRequestToken, RemoveFromVersionId: m.versionAt(e.SecretId)! });
        m.updateSecretVersionStage({ SecretId: e.SecretId, VersionStage: 'AWSPENDING', RemoveFromVersionId: e.ClientRequestToken });
      }
    });
    const rotations = () => m.events.filter((e) => e.type === 'RotationSucceeded').map((e) => e.at.toISOString());
    return { m, arn: ARN!, rotations };
  }

  test('rate(1 day): the window is the whole UTC day after the last rotation, so two rotations can land two minutes apart', async () => {
    const { m, arn, rotations } = rotating({ start: new Date('2026-03-02T23:58:00Z'), scheduledRotationAt: 'start' });
    await m.rotateSecret({ SecretId: arn, RotationRules: { ScheduleExpression: 'rate(1 day)' } });
    await m.settled();
    expect(m.nextRotation(arn)).toEqual({ start: new Date('2026-03-03T00:00:00Z'), end: new Date('2026-03-04T00:00:00Z'), at: new Date('2026-03-03T00:00:00Z') });
    await m.advanceTime(5 * 60_000);
    expect(rotations()).toEqual(['2026-03-02T23:58:00.000Z', '2026-03-03T00:00:00.000Z']);
  });

  test('rate(7 days) rotates once a week, anywhere in the day; a scheduled rotation finds AWSPENDING of a failed one and is blocked', async () => {
    const { m, arn, rotations } = rotating({ start: new Date('2026-03-02T09:00:00Z'), scheduledRotationAt: 'random', seed: 7 });
    await m.rotateSecret({ SecretId: arn, RotationRules: { AutomaticallyAfterDays: 7 } });
    await m.advanceTime(21 * 86400_000 + 15 * 3600_000);
    const days = rotations().map((t) => t.slice(0, 10));
    expect(days).toEqual(['2026-03-02', '2026-03-09', '2026-03-16', '2026-03-23']);
    expect(new Set(rotations().map((t) => t.slice(11, 16))).size).toBeGreaterThan(1);

    m.setRotationFunction(arn, async () => {
      throw new Error('down');
    });
    await m.advanceTime(15 * 86400_000);
    expect(m.events.filter((e) => e.type === 'RotationFailed')).toHaveLength(1);
    expect(m.events.filter((e) => e.type === 'ScheduledRotationBlocked').length).toBeGreaterThanOrEqual(1);
  });

  test('cron() with a Duration rotates inside that window only', async () => {
    const { m, arn, rotations } = rotating({ start: new Date('2026-03-02T09:00:00Z'), scheduledRotationAt: 'end' });
    await m.rotateSecret({ SecretId: arn, RotationRules: { ScheduleExpression: 'cron(0 3 ? * MON *)', Duration: '2h' } });
    await m.advanceTime(15 * 86400_000);
    expect(rotations()).toEqual(['2026-03-02T09:00:00.000Z', '2026-03-09T04:59:59.000Z', '2026-03-16T04:59:59.000Z']);
  });

  test('a value written by hand counts as a rotation when the next date is worked out (RotationRulesType, AutomaticallyAfterDays)', async () => {
    const { m, arn } = rotating({ start: new Date('2026-03-02T09:00:00Z'), scheduledRotationAt: 'start' });
    await m.rotateSecret({ SecretId: arn, RotationRules: { ScheduleExpression: 'rate(7 days)' } });
    await m.settled();
    await m.advanceTime(3 * 86400_000);
    m.putSecretValue({ SecretId: arn, SecretString: 'by hand' });
    expect(m.nextRotation(arn)!.start).toEqual(new Date('2026-03-12T00:00:00Z'));
  });
});

