/**
 * Secrets Manager's four-step rotation protocol, as the AWS rotation template does it,
 * for every kind of secret the gateway owns. Each step is idempotent: a step run again
 * with the same token (a retry, if the service makes one: it documents retrying "the
 * entire rotation process" without saying with which token) finishes the same rotation.
 * Nothing here relies on a retry: a rotation that stops half-way leaves AWSCURRENT
 * working, and clearAbandonedRotations() removes its AWSPENDING label later.
 *
 * A pending value that no longer follows AWSCURRENT (AWSCURRENT was replaced since the
 * rotation made it) is abandoned on the spot: its AWSPENDING label is removed and the step
 * fails, so it is never published or made current, and the next rotation starts afresh.
 */
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import type { DescribeSecretCommandOutput } from '@aws-sdk/client-secrets-manager';
import { parseGatewaySecret, SECRET_KIND_TAG, SECRET_KINDS, SecretKind } from '../../lib/key-material';
import { ROTATION_EVENTS, type ResolvedRotationSettings } from '../../lib/keys/rotation-contract';
import { backendClientCertificateRotation, frontendCertificateRotation } from './certificates';
import { cookieKeyRotation } from './cookie-keys';
import type { KindRotation, Log, RotationContext } from './kind';
import { AWSCURRENT, AWSPENDING, isAwsError, SecretStore, versionWithStage } from './secret-store';
import { signingKeyRotation } from './signing-keys';

export const ROTATION_STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;

const ROTATIONS: Partial<Record<SecretKind, KindRotation>> = {
  [SECRET_KINDS.signingKeys]: signingKeyRotation,
  [SECRET_KINDS.cookieKeys]: cookieKeyRotation,
  [SECRET_KINDS.backendClientCertificate]: backendClientCertificateRotation,
  [SECRET_KINDS.frontendCertificate]: frontendCertificateRotation,
};

/** Kinds that other rotations write: scheduling a rotation on them is a configuration mistake. */
const WRITTEN_BY: Partial<Record<SecretKind, string>> = {
  [SECRET_KINDS.verificationKeys]: `the ${SECRET_KINDS.signingKeys} rotation publishes it in its setSecret step`,
  [SECRET_KINDS.backendCa]: `the ${SECRET_KINDS.backendClientCertificate} rotation creates the CA once`,
};

export interface RotationDependencies {
  readonly store: SecretStore;
  readonly settings: ResolvedRotationSettings;
  readonly log: Log;
  readonly now: () => Date;
}

export type RotationOutcome = 'created' | 'already-created' | 'set' | 'tested' | 'configuration-tested' | 'finished' | 'already-current';

/** Runs one step and logs one JSON line with its outcome (or error): step, secret ARN, kind, token. */
export async function rotate(event: SecretsManagerRotationEvent, deps: RotationDependencies): Promise<RotationOutcome> {
  const base: Record<string, unknown> = { step: event?.Step, secretArn: event?.SecretId, kind: undefined, token: event?.ClientRequestToken };
  try {
    const outcome = await runStep(event, deps, base);
    deps.log({ ...base, outcome });
    return outcome;
  } catch (error) {
    deps.log({ ...base, outcome: 'error', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    throw error;
  }
}

async function runStep(event: SecretsManagerRotationEvent, deps: RotationDependencies, base: Record<string, unknown>): Promise<RotationOutcome> {
  checkEvent(event);
  const { SecretId: secretArn, ClientRequestToken: token, Step: step } = event;
  const described = await deps.store.describe(secretArn);
  const kind = kindOf(described, secretArn);
  base.kind = kind;
  const context: RotationContext = { store: deps.store, settings: deps.settings, secretArn, token, now: deps.now(), log: (entry) => deps.log({ ...base, ...entry }) };

  if (!described.RotationEnabled) throw new Error(`Secret ${secretArn} is not enabled for rotation.`);
  const stages = described.VersionIdsToStages?.[token];
  if (!stages) throw new Error(`Secret version ${token} has no stage for rotation of secret ${secretArn}.`);
  if (stages.includes(AWSCURRENT)) {
    if (step === 'finishSecret' && stages.includes(AWSPENDING)) await deps.store.updateStage(secretArn, AWSPENDING, { from: token });
    return 'already-current';
  }
  if (!stages.includes(AWSPENDING)) throw new Error(`Secret version ${token} is not set as AWSPENDING for rotation of secret ${secretArn}.`);

  const rotation = ROTATIONS[kind];
  if (!rotation) throw new Error(`Secret ${secretArn} (${kind}) is not rotated on its own: ${WRITTEN_BY[kind]}. Remove its rotation schedule.`);

  switch (step) {
    case 'createSecret':
      return createSecret(rotation, kind, context);
    case 'setSecret':
      await rotation.set(await followingPendingValue(rotation, kind, context), context);
      return 'set';
    case 'testSecret': {
      // RotateSecret with RotateImmediately false tests the configuration on an AWSPENDING
      // version that createSecret never filled ([API] RotateSecret, RotateImmediately).
      if (!(await context.store.tryGet(secretArn, { versionId: token, stage: AWSPENDING }))) return testConfiguration(kind, context);
      await rotation.test(await followingPendingValue(rotation, kind, context), context);
      return 'tested';
    }
    case 'finishSecret':
      await followingPendingValue(rotation, kind, context);
      return finishSecret(context);
  }
}

async function createSecret(rotation: KindRotation, kind: SecretKind, context: RotationContext): Promise<RotationOutcome> {
  const { store, secretArn, token } = context;
  const current = await store.get(secretArn, { stage: AWSCURRENT });
  parseGatewaySecret(current.secretString, kind, secretArn);
  const existing = await store.tryGet(secretArn, { versionId: token, stage: AWSPENDING });
  if (existing) {
    await abandonUnlessFollows(rotation, existing.secretString, current.secretString, context);
    return 'already-created';
  }
  const next = await rotation.create(current.secretString, context);
  try {
    await store.put(secretArn, token, next, [AWSPENDING]);
  } catch (error) {
    // A concurrent attempt with the same token stored its value first: that value stands.
    if (isAwsError(error, 'ResourceExistsException') && (await store.tryGet(secretArn, { versionId: token, stage: AWSPENDING }))) return 'already-created';
    throw error;
  }
  return 'created';
}

/** The AWSPENDING value, checked to still follow AWSCURRENT (else the rotation is abandoned). */
async function followingPendingValue(rotation: KindRotation, kind: SecretKind, context: RotationContext): Promise<string> {
  const pending = await context.store.get(context.secretArn, { versionId: context.token, stage: AWSPENDING });
  parseGatewaySecret(pending.secretString, kind, context.secretArn);
  const current = await context.store.get(context.secretArn, { stage: AWSCURRENT });
  await abandonUnlessFollows(rotation, pending.secretString, current.secretString, context);
  return pending.secretString;
}

async function abandonUnlessFollows(rotation: KindRotation, pending: string, current: string, context: RotationContext): Promise<void> {
  const problem = rotation.follows(pending, current, context);
  if (!problem) return;
  // Safe: nobody reads AWSPENDING, and this value was never made current.
  await context.store.updateStage(context.secretArn, AWSPENDING, { from: context.token });
  context.log({ event: ROTATION_EVENTS.abandonedRotationCleared, reason: problem, clearedVersion: context.token });
  throw new Error(
    `Rotation ${context.token} of ${context.secretArn} was made from an earlier value: ${problem}. Its AWSPENDING label was removed; the next rotation starts from the current value.`,
  );
}

/** testSecret on an empty AWSPENDING: the function can read the secret, and the secret is of its kind. */
async function testConfiguration(kind: SecretKind, context: RotationContext): Promise<RotationOutcome> {
  const current = await context.store.get(context.secretArn, { stage: AWSCURRENT });
  parseGatewaySecret(current.secretString, kind, context.secretArn);
  return 'configuration-tested';
}

async function finishSecret(context: RotationContext): Promise<RotationOutcome> {
  const { store, secretArn, token } = context;
  const described = await store.describe(secretArn);
  const currentVersion = versionWithStage(described, AWSCURRENT);
  if (currentVersion !== token) {
    await store.updateStage(secretArn, AWSCURRENT, { to: token, from: currentVersion });
  }
  await store.updateStage(secretArn, AWSPENDING, { from: token });
  return 'finished';
}

/**
 * The hourly check (an EventBridge schedule invokes the rotation function with
 * `{"action": "clear-abandoned-rotations"}`): on each rotated secret, an AWSPENDING label
 * on a version other than AWSCURRENT's, older than `abandonedRotationSeconds`, belongs to a
 * rotation that stopped (a crash, a timeout, a failure that no retry fixed). While it is
 * there, Secrets Manager refuses every new rotation, scheduled or requested, and every
 * deployment that updates the rotation schedule fails. Removing the label is safe: nobody
 * reads AWSPENDING, the value was never made current, and the verification keys it may
 * have published still include the key that signs now (setSecret checks that the
 * pending set keeps it). Logs `abandoned-rotation-cleared` for each (the stuck-rotation alarm).
 */
export async function clearAbandonedRotations(deps: RotationDependencies): Promise<{ cleared: string[] }> {
  const cleared: string[] = [];
  const now = deps.now().getTime();
  for (const secretArn of deps.settings.rotatedSecretArns) {
    const base = { action: 'clear-abandoned-rotations', secretArn };
    try {
      const versions = await deps.store.versions(secretArn);
      const stale = versions.find((v) => v.stages.includes(AWSPENDING) && !v.stages.includes(AWSCURRENT));
      if (!stale) continue;
      const ageSeconds = stale.createdDate ? Math.floor((now - stale.createdDate.getTime()) / 1000) : Number.POSITIVE_INFINITY;
      if (ageSeconds < deps.settings.abandonedRotationSeconds) {
        deps.log({ ...base, event: 'rotation-in-progress', pendingVersion: stale.versionId, ageSeconds });
        continue;
      }
      await deps.store.updateStage(secretArn, AWSPENDING, { from: stale.versionId });
      cleared.push(secretArn);
      deps.log({
        ...base,
        event: ROTATION_EVENTS.abandonedRotationCleared,
        clearedVersion: stale.versionId,
        ageSeconds,
        reason: `AWSPENDING sat on an unfinished version for ${ageSeconds} s (limit ${deps.settings.abandonedRotationSeconds} s): the rotation stopped; the next one starts from the current value`,
      });
    } catch (error) {
      deps.log({ ...base, outcome: 'error', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    }
  }
  return { cleared };
}

function kindOf(described: DescribeSecretCommandOutput, secretArn: string): SecretKind {
  const tag = described.Tags?.find((t) => t.Key === SECRET_KIND_TAG)?.Value;
  const kinds = Object.values(SECRET_KINDS) as string[];
  if (!tag || !kinds.includes(tag)) {
    throw new Error(`Secret ${secretArn} has tag ${SECRET_KIND_TAG}=${JSON.stringify(tag)}; expected one of ${kinds.join(', ')}. This rotation only rotates the gateway's own secrets.`);
  }
  return tag as SecretKind;
}

function checkEvent(event: SecretsManagerRotationEvent): void {
  const missing = (['SecretId', 'ClientRequestToken', 'Step'] as const).filter((k) => typeof event?.[k] !== 'string' || event[k] === '');
  if (missing.length > 0) throw new Error(`The rotation event lacks ${missing.join(', ')}: it must come from Secrets Manager ({SecretId, ClientRequestToken, Step}).`);
  if (!(ROTATION_STEPS as readonly string[]).includes(event.Step)) {
    throw new Error(`Unknown rotation step ${JSON.stringify(event.Step)}: expected one of ${ROTATION_STEPS.join(', ')}.`);
  }
}
