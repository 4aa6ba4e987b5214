/**
 * A stateful model of AWS Secrets Manager: secrets, versions, staging labels, rotation
 * and its schedule, with the semantics the API reference and the User Guide document, for
 * tests of code that reads, writes or rotates secrets. Two ways in:
 *   - `installSecretsManagerFake(model)` answers SDK v3 calls (`SecretsManagerClient`)
 *     through aws-sdk-client-mock;
 *   - dev/aws/secrets-manager-endpoint.ts serves the same model over HTTP for the
 *     AWS CLI.
 * dev/aws/cloudformation-model.ts drives it the way CloudFormation does.
 *
 * The model is as strict as AWS where AWS is strict and assumes nothing AWS does not
 * document. Each behaviour names its source; the short names are:
 *   [API]  AWS Secrets Manager API Reference, https://docs.aws.amazon.com/secretsmanager/latest/apireference/
 *          (the operation's page, e.g. API_RotateSecret.html)
 *   [HOW]  User Guide, "Rotation by Lambda function",
 *          https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda.html
 *   [SCHED] User Guide, "Schedule expressions in Secrets Manager rotation" and
 *          RotationRulesType in [API] (see core/rotation-window.ts for the quotes)
 *   [TRAIL] User Guide, "Log AWS Secrets Manager events with AWS CloudTrail"
 *          (RotationStarted, RotationSucceeded, RotationFailed, RotationAbandoned)
 *
 * Time: the model has its own clock (`now()`, `advanceTime()`), which dates versions
 * and drives scheduled rotations. Rotation functions run on the test's clock.
 *
 * Failures: `injectFailure({ operation, when, times })` makes the next matching calls
 * throw (a network error by default), to test crash-and-resume paths.
 *
 * Size: one stateful model of one service's documented semantics (versions, staging labels,
 * rotation), plus its SDK adapter; the tests rely on it behaving as one whole.
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
  UpdateSecretCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import { mockClient, AwsClientStub } from 'aws-sdk-client-mock';
import { nextRotationWindow, parseScheduleExpression, windowLengthSeconds } from '../../core/rotation-window';

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';
export const AWSPREVIOUS = 'AWSPREVIOUS';

export type RotationStep = SecretsManagerRotationEvent['Step'];
export const ROTATION_STEPS: readonly RotationStep[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

/** The rotation Lambda as the model calls it (the real service invokes the function with this event). */
export type RotationFunction = (event: SecretsManagerRotationEvent) => Promise<unknown>;

export type ModelOperation =
  | 'CreateSecret'
  | 'PutSecretValue'
  | 'UpdateSecret'
  | 'GetSecretValue'
  | 'DescribeSecret'
  | 'ListSecretVersionIds'
  | 'UpdateSecretVersionStage'
  | 'RotateSecret';

export interface InjectedFailure {
  readonly operation: ModelOperation;
  /** Only calls whose input matches fail. @default every call of the operation */
  readonly when?: (input: Record<string, unknown>) => boolean;
  /** How many matching calls fail. @default 1 */
  readonly times?: number;
  /** What is thrown. @default a network error (ECONNRESET) */
  readonly error?: () => Error;
}

export interface RotationRules {
  readonly AutomaticallyAfterDays?: number;
  readonly ScheduleExpression?: string;
  readonly Duration?: string;
}

/**
 * What the service records about rotations: RotationStarted, RotationSucceeded and
 * RotationFailed as [TRAIL] names them; ScheduledRotationBlocked is the model's own record
 * of a window that started nothing because AWSPENDING was unfinished.
 */
export interface RotationEvent {
  readonly at: Date;
  readonly secretArn: string;
  readonly type: 'RotationStarted' | 'RotationSucceeded' | 'RotationFailed' | 'ScheduledRotationBlocked';
  readonly token?: string;
  readonly error?: string;
  /** 'api' (RotateSecret), 'schedule' (a rotation window), 'retry' (the documented retry of a failed rotation). */
  readonly trigger?: 'api' | 'schedule' | 'retry';
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
  description?: string;
  readonly tags: { Key: string; Value: string }[];
  readonly createdDate: Date;
  readonly versions: Map<string, SecretVersion>;
  rotationEnabled: boolean;
  rotationLambdaArn?: string;
  rotationRules?: RotationRules;
  lastChangedDate: Date;
  lastRotatedDate?: Date;
  /** When the rules were last set: the schedule counts from here until the first rotation. */
  rulesSetAt?: Date;
  /** The next scheduled rotation: the window and the moment in it the model picked. */
  nextRotation?: { start: Date; end: Date; at: Date };
}

const METADATA = () => ({ httpStatusCode: 400, requestId: randomUUID(), attempts: 1, totalRetryDelay: 0 });

export const errors = {
  notFound: (message: string) => new ResourceNotFoundException({ message, $metadata: METADATA() }),
  exists: (message: string) => new ResourceExistsException({ message, $metadata: METADATA() }),
  invalidRequest: (message: string) => new InvalidRequestException({ message, $metadata: METADATA() }),
  invalidParameter: (message: string) => new InvalidParameterException({ message, $metadata: METADATA() }),
  network: (message = 'socket hang up') => Object.assign(new Error(message), { name: 'Error', code: 'ECONNRESET', $metadata: { attempts: 1 } }),
};

export type WindowPoint = 'start' | 'end' | 'random';

export interface ModelOptions {
  /** @default 'eu-west-1' */
  readonly region?: string;
  /** @default '123456789012' */
  readonly accountId?: string;
  /** The model clock's start. @default 2026-03-02T09:00:00Z (a Monday) */
  readonly start?: Date;
  /**
   * [HOW]: "If any rotation step fails, Secrets Manager retries the entire rotation process
   * multiple times." It says neither how often, nor when, nor with which token. The model
   * does not retry unless asked: code under test must be correct without any retry. With a
   * number, a failed rotation runs again that many times with the same token (its
   * AWSPENDING version is the one the service made), to show a retry does no harm.
   * @default 0
   */
  readonly failedRotationRetries?: number;
  /**
   * Where in its window a scheduled rotation runs ([SCHED]: "at any time during this
   * window"). 'end' and 'start' give the worst cases; 'random' uses a seeded generator.
   * @default 'random'
   */
  readonly scheduledRotationAt?: WindowPoint;
  /** Seed of the 'random' window point. @default 1 */
  readonly seed?: number;
  /**
   * Called whenever the model's clock moves (and once at the start), before anything runs
   * at the new time: tests set the process clock there (jest's Date) so that rotation
   * functions, which read the time themselves, live on the model's clock.
   */
  readonly onTimeChange?: (now: Date) => void;
}

export class SecretsManagerModel {
  readonly region: string;
  readonly accountId: string;
  /** Every call the model answered, in order (operation and input), for assertions. */
  readonly calls: { operation: ModelOperation; input: Record<string, unknown> }[] = [];
  /** Rotation events, oldest first. */
  readonly events: RotationEvent[] = [];
  private readonly secrets = new Map<string, Secret>();
  private readonly functions = new Map<string, RotationFunction>();
  private failures: (InjectedFailure & { remaining: number })[] = [];
  private clock: number;
  private readonly retries: number;
  private readonly windowPoint: WindowPoint;
  private random: () => number;
  private readonly onTimeChange?: (now: Date) => void;
  private readonly running = new Set<Promise<void>>();
  private gate: Promise<void> = Promise.resolve();

  constructor(options: ModelOptions = {}) {
    this.region = options.region ?? 'eu-west-1';
    this.accountId = options.accountId ?? '123456789012';
    this.clock = (options.start ?? new Date(Date.UTC(2026, 2, 2, 9, 0, 0))).getTime();
    this.retries = options.failedRotationRetries ?? 0;
    this.windowPoint = options.scheduledRotationAt ?? 'random';
    this.random = seededRandom(options.seed ?? 1);
    this.onTimeChange = options.onTimeChange;
    this.onTimeChange?.(this.now());
  }

  private setClock(ms: number): void {
    if (ms === this.clock) return;
    this.clock = ms;
    this.onTimeChange?.(this.now());
  }

  // ---- API operations (input and output shapes as in the SDK) ----

  createSecret(input: { Name: string; SecretString?: string; Description?: string; Tags?: { Key?: string; Value?: string }[]; ClientRequestToken?: string }) {
    this.enter('CreateSecret', input);
    if ([...this.secrets.values()].some((s) => s.name === input.Name)) {
      throw errors.exists(`The operation failed because the secret ${input.Name} already exists.`);
    }
    const suffix = randomUUID().replace(/-/g, '').slice(0, 6);
    const arn = `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${input.Name}-${suffix}`;
    const now = this.now();
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

  /**
   * [API] PutSecretValue: the ClientRequestToken becomes the VersionId. "If a version with
   * this value already exists and that version's SecretString and SecretBinary values are
   * the same as those in the request, then the request is ignored" (labels included); with
   * different values it fails (ResourceExistsException), versions are immutable. Without
   * VersionStages the new version gets AWSCURRENT; a label attached elsewhere moves here, and
   * moving AWSCURRENT moves AWSPREVIOUS to the version it left. The empty version that
   * RotateSecret made for AWSPENDING receives its value here.
   */
  putSecretValue(input: { SecretId: string; ClientRequestToken?: string; SecretString?: string; VersionStages?: string[] }) {
    this.enter('PutSecretValue', input);
    const secret = this.find(input.SecretId);
    if (input.SecretString === undefined) throw errors.invalidParameter('You must provide either SecretString or SecretBinary.');
    return this.writeVersion(secret, input.ClientRequestToken ?? randomUUID(), input.SecretString, input.VersionStages ?? [AWSCURRENT]);
  }

  /**
   * [API] UpdateSecret: "If you include SecretString or SecretBinary to create a new secret
   * version, Secrets Manager automatically moves the staging label AWSCURRENT to the new
   * version. Then it attaches the label AWSPREVIOUS to the version that AWSCURRENT was
   * removed from." (CloudFormation updates a secret's SecretString this way.)
   */
  updateSecret(input: { SecretId: string; SecretString?: string; Description?: string; ClientRequestToken?: string }) {
    this.enter('UpdateSecret', input);
    const secret = this.find(input.SecretId);
    if (input.Description !== undefined) secret.description = input.Description;
    let versionId: string | undefined;
    if (input.SecretString !== undefined) {
      versionId = input.ClientRequestToken ?? randomUUID();
      if (secret.versions.has(versionId)) throw errors.exists(`A version with VersionId ${versionId} already exists: you can't modify an existing version.`);
      this.writeVersion(secret, versionId, input.SecretString, [AWSCURRENT]);
    }
    secret.lastChangedDate = this.now();
    return { ARN: secret.arn, Name: secret.name, VersionId: versionId };
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
    version.lastAccessedDate = this.now();
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      SecretString: version.secretString,
      VersionStages: [...version.stages],
      CreatedDate: version.createdDate,
    };
  }

  /** [API] DescribeSecret: VersionIdsToStages lists labelled versions only (versions without labels are deprecated). */
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
      NextRotationDate: secret.rotationEnabled ? secret.nextRotation?.start : undefined,
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

  /**
   * [API] UpdateSecretVersionStage: a label attached elsewhere needs RemoveFromVersionId
   * naming that version (InvalidParameterException otherwise); without MoveToVersionId it
   * only removes the label.
   */
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
    secret.lastChangedDate = this.now();
    return { ARN: secret.arn, Name: secret.name };
  }

  /**
   * [API] RotateSecret "configures and starts the asynchronous process of rotating the
   * secret": it answers with the new version's id (an empty version labelled AWSPENDING,
   * which the rotation function's first check finds in VersionIdsToStages) before the
   * function has run; `settled()` waits for the steps. "If the AWSPENDING staging label is
   * present but not attached to the same version as AWSCURRENT, then any later invocation
   * of RotateSecret assumes that a previous rotation request is still in progress and
   * returns an error." RotationRules take AutomaticallyAfterDays or ScheduleExpression,
   * "but not both", at most every 4 hours, with a window of at most a day ([SCHED]).
   *
   * RotateImmediately false: "Secrets Manager tests the rotation configuration by running
   * the testSecret step of the Lambda rotation function. The test creates an AWSPENDING
   * version of the secret and then removes it." The reference does not say what that
   * version holds, so the model makes it empty (the strictest reading); nor whether the
   * call waits for the test, so the model waits and reports a failed test as the error.
   */
  async rotateSecret(input: {
    SecretId: string;
    ClientRequestToken?: string;
    RotationLambdaARN?: string;
    RotationRules?: RotationRules;
    RotateImmediately?: boolean;
  }) {
    this.enter('RotateSecret', input);
    const secret = this.find(input.SecretId);
    const pending = [...secret.versions.values()].find((v) => v.stages.has(AWSPENDING) && !v.stages.has(AWSCURRENT));
    if (pending && input.ClientRequestToken === pending.versionId) {
      // The same request again (the token is the caller's idempotency key): nothing new starts.
      return { ARN: secret.arn, Name: secret.name, VersionId: pending.versionId };
    }
    if (pending) throw errors.invalidRequest(`A previous rotation isn't complete. That rotation will be reattempted.`);
    const lambdaArn = input.RotationLambdaARN ?? secret.rotationLambdaArn;
    if (!lambdaArn || !this.functions.has(lambdaArn)) {
      throw errors.invalidRequest(
        `Secret ${secret.name} has no rotation function${lambdaArn ? ` (${lambdaArn} is not registered with the model: registerRotationFunction)` : ': give RotationLambdaARN'}.`,
      );
    }
    if (input.RotationRules) checkRotationRules(input.RotationRules);
    if (input.ClientRequestToken !== undefined) checkToken(input.ClientRequestToken);
    secret.rotationLambdaArn = lambdaArn;
    if (input.RotationRules) {
      secret.rotationRules = input.RotationRules;
      secret.rulesSetAt = this.now();
    }
    secret.rotationEnabled = true;
    if (input.RotateImmediately === false) {
      await this.testRotationConfiguration(secret);
      this.scheduleNext(secret);
      return { ARN: secret.arn, Name: secret.name };
    }
    const token = this.startRotation(secret.arn, input.ClientRequestToken);
    this.launch(secret.arn, token, 'api');
    return { ARN: secret.arn, Name: secret.name, VersionId: token };
  }

  // ---- service behaviour and model controls (no API equivalent) ----

  /** The model's clock. */
  now(): Date {
    return new Date(this.clock);
  }

  /**
   * Moves the clock forward by `ms`, running every scheduled rotation whose moment comes
   * up on the way ([SCHED]: in its window, at the point `scheduledRotationAt` picks), each
   * to its end before the clock moves on. A window that opens while a previous rotation is
   * unfinished starts nothing (RotateSecret's rule) and is recorded as ScheduledRotationBlocked.
   */
  async advanceTime(ms: number): Promise<void> {
    const target = this.clock + ms;
    await this.settled();
    for (;;) {
      const due = [...this.secrets.values()]
        .filter((s) => s.rotationEnabled && s.nextRotation && s.nextRotation.at.getTime() <= target)
        .sort((a, b) => a.nextRotation!.at.getTime() - b.nextRotation!.at.getTime())[0];
      if (!due) break;
      this.setClock(Math.max(this.clock, due.nextRotation!.at.getTime()));
      const pending = [...due.versions.values()].find((v) => v.stages.has(AWSPENDING) && !v.stages.has(AWSCURRENT));
      if (pending) {
        this.events.push({
          at: this.now(),
          secretArn: due.arn,
          type: 'ScheduledRotationBlocked',
          token: pending.versionId,
          error: "A previous rotation isn't complete.",
        });
        this.scheduleNext(due, due.nextRotation!.end);
        continue;
      }
      this.launch(due.arn, this.startRotation(due.arn), 'schedule');
      await this.settled();
    }
    this.setClock(target);
  }

  /** Resolves when every rotation that has started has ended (succeeded or failed). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /**
   * Holds every rotation that starts from now on before its first step (a slow or
   * throttled rotation function), until the returned function is called.
   */
  holdRotations(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.gate = Promise.resolve();
      release();
    };
  }

  /** How a rotation ended: undefined while it runs (or if it never started). */
  rotationOutcome(token: string): { succeeded: boolean; error?: string } | undefined {
    const last = [...this.events].reverse().find((e) => e.token === token && e.type !== 'ScheduledRotationBlocked');
    if (!last || last.type === 'RotationStarted') return undefined;
    return last.type === 'RotationSucceeded' ? { succeeded: true } : { succeeded: false, error: last.error };
  }

  /** Makes a Lambda function ARN invokable by rotations (what RotationLambdaARN points to). */
  registerRotationFunction(lambdaArn: string, fn: RotationFunction): void {
    this.functions.set(lambdaArn, fn);
  }

  /** Attaches the rotation function to a secret without rotating (RotateSecret does it with RotationLambdaARN). */
  setRotationFunction(secretId: string, fn: RotationFunction, lambdaArn = `arn:aws:lambda:${this.region}:${this.accountId}:function:rotation`): void {
    const secret = this.find(secretId);
    this.registerRotationFunction(lambdaArn, fn);
    secret.rotationLambdaArn = lambdaArn;
  }

  /** Turns rotation on or off without running it (CancelRotateSecret turns it off). */
  setRotationEnabled(secretId: string, enabled: boolean): void {
    this.find(secretId).rotationEnabled = enabled;
  }

  /**
   * What the service does first when a rotation starts: an empty version labelled
   * AWSPENDING. Refused, like RotateSecret, while another version holds AWSPENDING. Tests
   * call it directly to drive the steps one by one with `invokeStep`.
   */
  startRotation(secretId: string, token: string = randomUUID()): string {
    const secret = this.find(secretId);
    checkToken(token);
    const pending = [...secret.versions.values()].find((v) => v.stages.has(AWSPENDING) && !v.stages.has(AWSCURRENT));
    if (pending) throw errors.invalidRequest(`A previous rotation isn't complete. That rotation will be reattempted.`);
    if (secret.versions.has(token)) throw errors.exists(`Version ${token} of ${secret.name} already exists: use a new ClientRequestToken.`);
    secret.versions.set(token, { versionId: token, stages: new Set(), createdDate: this.now() });
    this.attach(secret, AWSPENDING, token);
    return token;
  }

  /** Invokes the secret's rotation function for one step, as the service does. */
  async invokeStep(secretId: string, token: string, step: RotationStep): Promise<void> {
    const secret = this.find(secretId);
    const fn = secret.rotationLambdaArn ? this.functions.get(secret.rotationLambdaArn) : undefined;
    if (!fn) throw new Error(`Model: ${secret.name} has no rotation function (setRotationFunction).`);
    await fn({ SecretId: secret.arn, ClientRequestToken: token, Step: step });
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
  versions(secretId: string): { versionId: string; stages: string[]; secretString?: string; createdDate: Date }[] {
    return [...this.find(secretId).versions.values()].map((v) => ({
      versionId: v.versionId,
      stages: [...v.stages],
      secretString: v.secretString,
      createdDate: v.createdDate,
    }));
  }

  /** The next scheduled rotation of a secret (window and the moment picked in it), or undefined. */
  nextRotation(secretId: string): { start: Date; end: Date; at: Date } | undefined {
    return this.find(secretId).nextRotation;
  }

  /** Every secret's ARN. */
  secretArns(): string[] {
    return [...this.secrets.keys()];
  }

  // ---- internals ----

  private writeVersion(secret: Secret, versionId: string, secretString: string, stages: string[]) {
    checkToken(versionId);
    const existing = secret.versions.get(versionId);
    if (existing && existing.secretString !== undefined) {
      if (existing.secretString === secretString) {
        return { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: [...existing.stages] };
      }
      throw errors.exists(
        `A resource with the ID you requested already exists: version ${versionId} of ${secret.name} has a different value and versions are immutable.`,
      );
    }
    const version = existing ?? { versionId, stages: new Set<string>(), createdDate: this.now() };
    version.secretString = secretString;
    secret.versions.set(versionId, version);
    for (const stage of stages) this.attach(secret, stage, versionId);
    secret.lastChangedDate = this.now();
    // [SCHED]/RotationRulesType: "Manually updating the secret value by calling PutSecretValue or
    // UpdateSecret is considered a valid rotation" when the next date is worked out.
    if (stages.includes(AWSCURRENT) && secret.rotationEnabled && !this.rotating(secret)) {
      secret.lastRotatedDate = this.now();
      this.scheduleNext(secret);
    }
    return { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: [...version.stages] };
  }

  private rotating(secret: Secret): boolean {
    return [...secret.versions.values()].some((v) => v.stages.has(AWSPENDING) && !v.stages.has(AWSCURRENT));
  }

  /** Runs a rotation in the background, as the service does after RotateSecret answered. */
  private launch(secretArn: string, token: string, trigger: 'api' | 'schedule'): void {
    const gate = this.gate;
    const job = (async () => {
      // The service answers RotateSecret first and invokes the function afterwards.
      await new Promise((resolve) => setImmediate(resolve));
      await gate;
      for (let attempt = 0; attempt <= this.retries; attempt += 1) {
        this.events.push({ at: this.now(), secretArn, type: 'RotationStarted', token, trigger: attempt === 0 ? trigger : 'retry' });
        try {
          for (const step of ROTATION_STEPS) await this.invokeStep(secretArn, token, step);
        } catch (error) {
          this.events.push({ at: this.now(), secretArn, type: 'RotationFailed', token, error: describeError(error) });
          continue;
        }
        const secret = this.find(secretArn);
        if (secret.versions.get(token)?.stages.has(AWSCURRENT)) {
          secret.lastRotatedDate = this.now();
          this.scheduleNext(secret);
          this.events.push({ at: this.now(), secretArn, type: 'RotationSucceeded', token });
        } else {
          this.events.push({
            at: this.now(),
            secretArn,
            type: 'RotationFailed',
            token,
            error: 'the function returned but AWSCURRENT is not on the new version',
          });
        }
        return;
      }
      // Every attempt failed: the schedule goes on from now (the next window finds AWSPENDING and is blocked).
      this.scheduleNext(this.find(secretArn), this.now());
    })().catch((error: unknown) => {
      this.events.push({ at: this.now(), secretArn, type: 'RotationFailed', token, error: `model error: ${describeError(error)}` });
    });
    this.running.add(job);
    void job.finally(() => this.running.delete(job));
  }

  /** RotateImmediately false: testSecret on a temporary, empty AWSPENDING version, then the label goes. */
  private async testRotationConfiguration(secret: Secret): Promise<void> {
    const token = this.startRotation(secret.arn);
    try {
      await this.invokeStep(secret.arn, token, 'testSecret');
    } catch (error) {
      throw errors.invalidRequest(`The rotation function failed the configuration test (testSecret): ${describeError(error)}`);
    } finally {
      secret.versions.get(token)?.stages.delete(AWSPENDING);
    }
  }

  /** Picks the next scheduled rotation after `after` (the last rotation by default). */
  private scheduleNext(secret: Secret, after?: Date): void {
    const rules = secret.rotationRules;
    if (!rules) {
      secret.nextRotation = undefined;
      return;
    }
    const expression = rules.ScheduleExpression ?? `rate(${rules.AutomaticallyAfterDays} days)`;
    const from = after ?? secret.lastRotatedDate ?? secret.rulesSetAt ?? this.now();
    const { start, end } = nextRotationWindow(expression, rules.Duration, from);
    const span = end.getTime() - start.getTime();
    const offset = this.windowPoint === 'start' ? 0 : this.windowPoint === 'end' ? span - 1000 : Math.floor(this.random() * span);
    secret.nextRotation = { start, end, at: new Date(start.getTime() + offset) };
  }

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

/** [API] ClientRequestToken: 32 to 64 characters. */
function checkToken(token: string): void {
  if (token.length < 32 || token.length > 64) {
    throw errors.invalidParameter(`ClientRequestToken must be 32 to 64 characters long, got ${token.length}.`);
  }
}

/** [API] RotationRulesType: AutomaticallyAfterDays (1 to 1000) or ScheduleExpression, not both; [SCHED] for the rest. */
function checkRotationRules(rules: RotationRules): void {
  if ((rules.AutomaticallyAfterDays === undefined) === (rules.ScheduleExpression === undefined)) {
    throw errors.invalidParameter('RotationRules take AutomaticallyAfterDays or ScheduleExpression, but not both (and one of them).');
  }
  if (
    rules.AutomaticallyAfterDays !== undefined &&
    !(Number.isInteger(rules.AutomaticallyAfterDays) && rules.AutomaticallyAfterDays >= 1 && rules.AutomaticallyAfterDays <= 1000)
  ) {
    throw errors.invalidParameter(`AutomaticallyAfterDays ${rules.AutomaticallyAfterDays} is not a whole number from 1 to 1000.`);
  }
  try {
    const expression = rules.ScheduleExpression ?? `rate(${rules.AutomaticallyAfterDays} days)`;
    windowLengthSeconds(parseScheduleExpression(expression), rules.Duration);
  } catch (error) {
    throw errors.invalidParameter((error as Error).message);
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** mulberry32: a small seeded generator, so 'random' window points repeat from run to run. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
  mock.on(UpdateSecretCommand).callsFake(async (input) => model.updateSecret(input));
  mock.on(GetSecretValueCommand).callsFake(async (input) => model.getSecretValue(input));
  mock.on(DescribeSecretCommand).callsFake(async (input) => model.describeSecret(input));
  mock.on(ListSecretVersionIdsCommand).callsFake(async (input) => model.listSecretVersionIds(input));
  mock.on(UpdateSecretVersionStageCommand).callsFake(async (input) => model.updateSecretVersionStage(input));
  mock.on(RotateSecretCommand).callsFake(async (input) => model.rotateSecret(input));
  return mock;
}
