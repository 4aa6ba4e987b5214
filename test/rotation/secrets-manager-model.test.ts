import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { installSecretsManagerFake, SecretsManagerModel } from '../../dev/aws/secrets-manager-model';

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
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: current, VersionStage: 'AWSPENDING' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    model.setRotationFunction(ARN!, async () => undefined);
    const token = model.startRotation(ARN!);
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionId: token, VersionStage: 'AWSPENDING' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'nope' }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  test('UpdateSecretVersionStage needs RemoveFromVersionId to move a label, and AWSPREVIOUS follows AWSCURRENT', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    const first = model.versionAt(ARN!)!;
    await client.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'v2', ClientRequestToken: TOKEN_A, VersionStages: ['AWSPENDING'] }));
    await expect(
      client.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: TOKEN_A })),
    ).rejects.toMatchObject({
      name: 'InvalidParameterException',
    });
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: TOKEN_A, RemoveFromVersionId: first }));
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: ARN, VersionStage: 'AWSPENDING', RemoveFromVersionId: TOKEN_A }));
    expect(model.versions(ARN!).map((v) => [v.versionId, v.stages])).toEqual([
      [first, ['AWSPREVIOUS']],
      [TOKEN_A, ['AWSCURRENT']],
    ]);
  });

  test('RotateSecret runs the four steps in order and refuses to start while another rotation is unfinished', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    const steps: string[] = [];
    model.setRotationFunction(ARN!, async (e) => {
      steps.push(e.Step);
      if (e.Step === 'testSecret') throw new Error('boom');
    });
    await expect(model.rotateSecret({ SecretId: ARN! })).rejects.toThrow('boom');
    expect(steps).toEqual(['createSecret', 'setSecret', 'testSecret']);
    expect(model.describeSecret({ SecretId: ARN! }).RotationEnabled).toBe(true);
    await expect(model.rotateSecret({ SecretId: ARN! })).rejects.toMatchObject({ name: 'InvalidRequestException' });
  });

  test('injected failures hit the matching calls only, then stop', async () => {
    const { ARN } = model.createSecret({ Name: 's', SecretString: 'v1' });
    model.injectFailure({ operation: 'GetSecretValue', when: (input) => input.VersionStage === 'AWSPREVIOUS' });
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN }))).resolves.toMatchObject({ SecretString: 'v1' });
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionStage: 'AWSPREVIOUS' }))).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(client.send(new GetSecretValueCommand({ SecretId: ARN, VersionStage: 'AWSPREVIOUS' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });
});
