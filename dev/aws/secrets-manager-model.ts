/**
 * A stateful model of AWS Secrets Manager: secrets, versions and staging labels, with
 * the semantics the API reference documents, for tests of code that reads, writes or
 * rotates secrets. Two ways in:
 *   - `installSecretsManagerFake(model)` answers SDK v3 calls (`SecretsManagerClient`)
 *     through aws-sdk-client-mock;
 *   - dev/aws/secrets-manager-endpoint.ts serves the same model over HTTP for the
 *     AWS CLI.
 *
 * Modelled (API reference, SecretsManager 2017-10-17):
 *   - CreateSecret with tags; its first version gets AWSCURRENT.
 *   - PutSecretValue: ClientRequestToken becomes the VersionId. The same token with the
 *     same value is ignored; the same token with a different value on a version that
 *     has a value fails with ResourceExistsException; a version with no value yet (the
 *     AWSPENDING placeholder of a rotation) receives it. Without VersionStages the new
 *     version gets AWSCURRENT; with them, exactly those labels, moved from other versions.
 *   - Moving AWSCURRENT moves AWSPREVIOUS to the version that had AWSCURRENT.
 *   - UpdateSecretVersionStage: a label attached elsewhere needs RemoveFromVersionId
 *     naming that version (InvalidParameterException otherwise); without
 *     MoveToVersionId it only removes the label.
 *   - GetSecretValue by VersionId and/or VersionStage (AWSCURRENT by default);
 *     ResourceNotFoundException when the version, the label or the value is missing.
 *   - DescribeSecret: VersionIdsToStages lists labelled versions only (versions
 *     without labels are deprecated), RotationEnabled, rotation settings, tags.
 *   - ListSecretVersionIds: labelled versions, deprecated ones with IncludeDeprecated.
 *   - RotateSecret: fails with InvalidRequestException while AWSPENDING sits on a
 *     version other than AWSCURRENT's (a previous rotation is unfinished); otherwise
 *     makes an empty version with AWSPENDING and runs the rotation function's four
 *     steps in order with that token.
 * Simplification: the real RotateSecret answers before the rotation runs; the model
 * runs the four steps first and rethrows a step's error, so a test sees the outcome.
 * `retryRotation(secretId)` plays the service's retry of an unfinished rotation.
 *
 * Failures: `injectFailure({ operation, when, times })` makes the next matching calls
 * throw (a network error by default), to test crash-and-resume paths.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  InvalidRequestException,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import { mockClient, AwsClientStub } from 'aws-sdk-client-mock';

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';
export const AWSPREVIOUS = 'AWSPREVIOUS';

export type RotationStep = SecretsManagerRotationEvent['Step'];
export const ROTATION_STEPS: readonly RotationStep[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

/** The rotation Lambda as the model calls it (the real service invokes the function with this event). */
export type RotationFunction = (event: SecretsManagerRotationEvent) => Promise<unknown>;

export type ModelOperation =
  'CreateSecret' | 'PutSecretValue' | 'GetSecretValue' | 'DescribeSecret' | 'ListSecretVersionIds' | 'UpdateSecretVersionStage' | 'RotateSecret';

export interface InjectedFailure {
  readonly operation: ModelOperation;
  /** Only calls whose input matches fail. @default every call of the operation */
  readonly when?: (input: Record<string, unknown>) => boolean;
  /** How many matching calls fail. @default 1 */
  readonly times?: number;
  /** What is thrown. @default a network error (ECONNRESET) */
  readonly error?: () => Error;
}

interface SecretVersion {
  readonly versionId: string;
  secretString?: string;
  stages: Set<string>;
  readonly createdDate: Date;
  lastAccessedDate?: Date;
}

interface Secret {
  readonly arn: string;
  readonly name: string;
  readonly description?: string;
  readonly tags: { Key: string; Value: string }[];
  readonly createdDate: Date;
  readonly versions: Map<string, SecretVersion>;
  rotationEnabled: boolean;
  rotationLambdaArn?: string;
  rotationRules?: { AutomaticallyAfterDays?: number; ScheduleExpression?: string; Duration?: string };
  rotationFunction?: RotationFunction;
  lastChangedDate: Date;
  lastRotatedDate?: Date;
}

const METADATA = () => ({ httpStatusCode: 400, requestId: randomUUID(), attempts: 1, totalRetryDelay: 0 });

export const errors = {
  notFound: (message: string) => new ResourceNotFoundException({ message, $metadata: METADATA() }),
  exists: (message: string) => new ResourceExistsException({ message, $metadata: METADATA() }),
  invalidRequest: (message: string) => new InvalidRequestException({ message, $metadata: METADATA() }),
  invalidParameter: (message: string) => new InvalidParameterException({ message, $metadata: METADATA() }),
  network: (message = 'socket hang up') => Object.assign(new Error(message), { name: 'Error', code: 'ECONNRESET', $metadata: { attempts: 1 } }),
};

export interface ModelOptions {
  /** @default 'eu-west-1' */
  readonly region?: string;
  /** @default '123456789012' */
  readonly accountId?: string;
}

export class SecretsManagerModel {
  readonly region: string;
  readonly accountId: string;
  /** Every call the model answered, in order (operation and input), for assertions. */
  readonly calls: { operation: ModelOperation; input: Record<string, unknown> }[] = [];
  private readonly secrets = new Map<string, Secret>();
  private failures: (InjectedFailure & { remaining: number })[] = [];

  constructor(options: ModelOptions = {}) {
    this.region = options.region ?? 'eu-west-1';
    this.accountId = options.accountId ?? '123456789012';
  }

  // ---- API operations (input and output shapes as in the SDK) ----

  createSecret(input: { Name: string; SecretString?: string; Description?: string; Tags?: { Key?: string; Value?: string }[]; ClientRequestToken?: string }) {
    this.enter('CreateSecret', input);
    if ([...this.secrets.values()].some((s) => s.name === input.Name)) {
      throw errors.exists(`The operation failed because the secret ${input.Name} already exists.`);
    }
    const suffix = randomUUID().replace(/-/g, '').slice(0, 6);
    const arn = `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${input.Name}-${suffix}`;
    const now = new Date();
    const secret: Secret = {
      arn,
      name: input.Name,
      description: input.Description,
      tags: (input.Tags ?? []).map((t) => ({ Key: t.Key ?? '', Value: t.Value ?? '' })),
      createdDate: now,
      versions: new Map(),
      rotationEnabled: false,
      lastChangedDate: now,
    };
    this.secrets.set(arn, secret);
    let versionId: string | undefined;
    if (input.SecretString !== undefined) {
      versionId = input.ClientRequestToken ?? randomUUID();
      secret.versions.set(versionId, { versionId, secretString: input.SecretString, stages: new Set([AWSCURRENT]), createdDate: now });
    }
    return { ARN: arn, Name: input.Name, VersionId: versionId };
  }

  putSecretValue(input: { SecretId: string; ClientRequestToken?: string; SecretString?: string; VersionStages?: string[] }) {
    this.enter('PutSecretValue', input);
    const secret = this.find(input.SecretId);
    if (input.SecretString === undefined) throw errors.invalidParameter('You must provide either SecretString or SecretBinary.');
    const versionId = input.ClientRequestToken ?? randomUUID();
    checkToken(versionId);
    const existing = secret.versions.get(versionId);
    if (existing && existing.secretString !== undefined) {
      if (existing.secretString === input.SecretString) {
        return { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: [...existing.stages] };
      }
      throw errors.exists(
        `A resource with the ID you requested already exists: version ${versionId} of ${secret.name} has a different value and versions are immutable.`,
      );
    }
    const version = existing ?? { versionId, stages: new Set<string>(), createdDate: new Date() };
    version.secretString = input.SecretString;
    secret.versions.set(versionId, version);
    for (const stage of input.VersionStages ?? [AWSCURRENT]) this.attach(secret, stage, versionId);
    secret.lastChangedDate = new Date();
    return { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: [...version.stages] };
  }

  getSecretValue(input: { SecretId: string; VersionId?: string; VersionStage?: string }) {
    this.enter('GetSecretValue', input);
    const secret = this.find(input.SecretId);
    let version: SecretVersion | undefined;
    if (input.VersionId) {
      version = secret.versions.get(input.VersionId);
      if (version && input.VersionStage && !version.stages.has(input.VersionStage)) version = undefined;
    } else {
      const stage = input.VersionStage ?? AWSCURRENT;
      version = [...secret.versions.values()].find((v) => v.stages.has(stage));
    }
    if (!version || version.secretString === undefined) {
      throw errors.notFound(
        `Secrets Manager can't find the specified secret value for ${input.VersionId ? `VersionId: ${input.VersionId}` : ''}${input.VersionId && input.VersionStage ? ' and ' : ''}${input.VersionStage || !input.VersionId ? `staging label: ${input.VersionStage ?? AWSCURRENT}` : ''}`,
      );
    }
    version.lastAccessedDate = new Date();
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      SecretString: version.secretString,
      VersionStages: [...version.stages],
      CreatedDate: version.createdDate,
    };
  }

  describeSecret(input: { SecretId: string }) {
    this.enter('DescribeSecret', input);
    const secret = this.find(input.SecretId);
    const versionIdsToStages: Record<string, string[]> = {};
    for (const v of secret.versions.values()) if (v.stages.size > 0) versionIdsToStages[v.versionId] = [...v.stages];
    return {
      ARN: secret.arn,
      Name: secret.name,
      Description: secret.description,
      RotationEnabled: secret.rotationEnabled,
      RotationLambdaARN: secret.rotationLambdaArn,
      RotationRules: secret.rotationRules,
      LastChangedDate: secret.lastChangedDate,
      LastRotatedDate: secret.lastRotatedDate,
      CreatedDate: secret.createdDate,
      Tags: secret.tags.map((t) => ({ ...t })),
      VersionIdsToStages: versionIdsToStages,
    };
  }

  listSecretVersionIds(input: { SecretId: string; IncludeDeprecated?: boolean }) {
    this.enter('ListSecretVersionIds', input);
    const secret = this.find(input.SecretId);
    const versions = [...secret.versions.values()]
      .filter((v) => input.IncludeDeprecated || v.stages.size > 0)
      .map((v) => ({ VersionId: v.versionId, VersionStages: [...v.stages], CreatedDate: v.createdDate, LastAccessedDate: v.lastAccessedDate }));
    return { ARN: secret.arn, Name: secret.name, Versions: versions };
  }

  updateSecretVersionStage(input: { SecretId: string; VersionStage: string; MoveToVersionId?: string; RemoveFromVersionId?: string }) {
    this.enter('UpdateSecretVersionStage', input);
    const secret = this.find(input.SecretId);
    const holder = [...secret.versions.values()].find((v) => v.stages.has(input.VersionStage));
    if (input.RemoveFromVersionId !== undefined) {
      if (!holder || holder.versionId !== input.RemoveFromVersionId) {
        throw errors.invalidParameter(`The staging label ${input.VersionStage} is not attached to version ${input.RemoveFromVersionId}.`);
      }
    } else if (holder && input.MoveToVersionId !== undefined && holder.versionId !== input.MoveToVersionId) {
      throw errors.invalidParameter(
        `The staging label ${input.VersionStage} is currently attached to version ${holder.versionId}. You must include RemoveFromVersionId to move it to ${input.MoveToVersionId}.`,
      );
    }
    if (input.MoveToVersionId !== undefined) {
      if (!secret.versions.has(input.MoveToVersionId)) throw errors.notFound(`Secrets Manager can't find version ${input.MoveToVersionId} of ${secret.name}.`);
      this.attach(secret, input.VersionStage, input.MoveToVersionId);
    } else if (holder) {
      holder.stages.delete(input.VersionStage);
    }
    secret.lastChangedDate = new Date();
    return { ARN: secret.arn, Name: secret.name };
  }

  async rotateSecret(input: {
    SecretId: string;
    ClientRequestToken?: string;
    RotationLambdaARN?: string;
    RotationRules?: Secret['rotationRules'];
    RotateImmediately?: boolean;
  }) {
    this.enter('RotateSecret', input);
    const secret = this.find(input.SecretId);
    if (input.RotationLambdaARN) secret.rotationLambdaArn = input.RotationLambdaARN;
    if (input.RotationRules) secret.rotationRules = input.RotationRules;
    if (!secret.rotationFunction) {
      throw errors.invalidRequest(`Secret ${secret.name} has no rotation function: call model.setRotationFunction() first (RotationLambdaARN).`);
    }
    secret.rotationEnabled = true;
    const pending = [...secret.versions.values()].find((v) => v.stages.has(AWSPENDING));
    if (pending && !pending.stages.has(AWSCURRENT)) {
      throw errors.invalidRequest(`A previous rotation isn't complete. That rotation will be reattempted.`);
    }
    if (input.RotateImmediately === false) return { ARN: secret.arn, Name: secret.name };
    const token = this.startRotation(secret.arn, input.ClientRequestToken);
    await this.runRotationSteps(secret.arn, token);
    return { ARN: secret.arn, Name: secret.name, VersionId: token };
  }

  // ---- model controls (no AWS equivalent) ----

  /** Attaches the rotation function (what RotationLambdaARN points to). */
  setRotationFunction(secretId: string, fn: RotationFunction, lambdaArn = `arn:aws:lambda:${this.region}:${this.accountId}:function:rotation`): void {
    const secret = this.find(secretId);
    secret.rotationFunction = fn;
    secret.rotationLambdaArn = lambdaArn;
  }

  /** Turns rotation on or off without running it (CancelRotateSecret turns it off). */
  setRotationEnabled(secretId: string, enabled: boolean): void {
    this.find(secretId).rotationEnabled = enabled;
  }

  /**
   * What the service does first when a rotation starts: an empty version with AWSPENDING
   * (moved from wherever it was). Returns the token. RotateSecret calls it after its
   * checks; tests call it directly to drive the steps one by one.
   */
  startRotation(secretId: string, token: string = randomUUID()): string {
    const secret = this.find(secretId);
    checkToken(token);
    if (secret.versions.has(token)) throw errors.exists(`Version ${token} of ${secret.name} already exists: use a new ClientRequestToken.`);
    secret.versions.set(token, { versionId: token, stages: new Set(), createdDate: new Date() });
    this.attach(secret, AWSPENDING, token);
    return token;
  }

  /** Invokes the rotation function for the four steps in order with `token`; rethrows a step's error. */
  async runRotationSteps(secretId: string, token: string): Promise<void> {
    const secret = this.find(secretId);
    if (!secret.rotationFunction) throw new Error(`Model: ${secret.name} has no rotation function (setRotationFunction).`);
    for (const step of ROTATION_STEPS) {
      await secret.rotationFunction({ SecretId: secret.arn, ClientRequestToken: token, Step: step });
    }
    secret.lastRotatedDate = new Date();
  }

  /** The service's retry of an unfinished rotation: the four steps again with the AWSPENDING version's token. */
  async retryRotation(secretId: string): Promise<string> {
    const secret = this.find(secretId);
    const pending = [...secret.versions.values()].find((v) => v.stages.has(AWSPENDING) && !v.stages.has(AWSCURRENT));
    if (!pending) throw new Error(`Model: ${secret.name} has no unfinished rotation to retry.`);
    await this.runRotationSteps(secret.arn, pending.versionId);
    return pending.versionId;
  }

  /** Makes the next matching calls fail (after `enter` records them). */
  injectFailure(failure: InjectedFailure): void {
    this.failures.push({ ...failure, remaining: failure.times ?? 1 });
  }

  clearFailures(): void {
    this.failures = [];
  }

  /** The ARN of a secret given its name or ARN. */
  arnOf(secretId: string): string {
    return this.find(secretId).arn;
  }

  /** The value of the version holding a label, or undefined. */
  valueAt(secretId: string, stage: string = AWSCURRENT): string | undefined {
    return [...this.find(secretId).versions.values()].find((v) => v.stages.has(stage))?.secretString;
  }

  /** The VersionId holding a label, or undefined. */
  versionAt(secretId: string, stage: string = AWSCURRENT): string | undefined {
    return [...this.find(secretId).versions.values()].find((v) => v.stages.has(stage))?.versionId;
  }

  /** Every version, labelled or not, oldest first. */
  versions(secretId: string): { versionId: string; stages: string[]; secretString?: string }[] {
    return [...this.find(secretId).versions.values()].map((v) => ({ versionId: v.versionId, stages: [...v.stages], secretString: v.secretString }));
  }

  // ---- internals ----

  private enter(operation: ModelOperation, input: object): void {
    const record = input as Record<string, unknown>;
    this.calls.push({ operation, input: record });
    const failure = this.failures.find((f) => f.operation === operation && f.remaining > 0 && (!f.when || f.when(record)));
    if (failure) {
      failure.remaining -= 1;
      this.failures = this.failures.filter((f) => f.remaining > 0);
      throw failure.error ? failure.error() : errors.network();
    }
  }

  private find(secretId: string): Secret {
    const secret = this.secrets.get(secretId) ?? [...this.secrets.values()].find((s) => s.name === secretId);
    if (!secret) throw errors.notFound(`Secrets Manager can't find the specified secret: ${secretId}.`);
    return secret;
  }

  private attach(secret: Secret, stage: string, versionId: string): void {
    const target = secret.versions.get(versionId)!;
    if (target.stages.has(stage)) return;
    const holder = [...secret.versions.values()].find((v) => v.stages.has(stage));
    if (stage === AWSCURRENT && holder) {
      for (const v of secret.versions.values()) v.stages.delete(AWSPREVIOUS);
      holder.stages.add(AWSPREVIOUS);
    }
    holder?.stages.delete(stage);
    target.stages.add(stage);
  }
}

function checkToken(token: string): void {
  if (token.length < 32 || token.length > 64) {
    throw errors.invalidParameter(`ClientRequestToken must be 32 to 64 characters long, got ${token.length}.`);
  }
}

/**
 * Answers every SecretsManagerClient call through `model` (aws-sdk-client-mock, which
 * patches the client class, so handlers and bundles that make their own client are
 * covered). Call `.restore()` on the result in afterEach/afterAll.
 */
export function installSecretsManagerFake(model: SecretsManagerModel): AwsClientStub<SecretsManagerClient> {
  const mock = mockClient(SecretsManagerClient);
  mock.on(CreateSecretCommand).callsFake(async (input) => model.createSecret(input));
  mock.on(PutSecretValueCommand).callsFake(async (input) => model.putSecretValue(input));
  mock.on(GetSecretValueCommand).callsFake(async (input) => model.getSecretValue(input));
  mock.on(DescribeSecretCommand).callsFake(async (input) => model.describeSecret(input));
  mock.on(ListSecretVersionIdsCommand).callsFake(async (input) => model.listSecretVersionIds(input));
  mock.on(UpdateSecretVersionStageCommand).callsFake(async (input) => model.updateSecretVersionStage(input));
  mock.on(RotateSecretCommand).callsFake(async (input) => model.rotateSecret(input));
  return mock;
}
