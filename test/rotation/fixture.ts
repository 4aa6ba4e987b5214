/**
 * The gateway's six secrets in a Secrets Manager model, seeded as CloudFormation seeds
 * them, with the rotation handler attached, for the rotation tests.
 */
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import { SECRET_KIND_TAG, SECRET_KINDS, SecretKind, seedSecretValue } from '../../lib/key-material';
import { CLEAR_ABANDONED_ROTATIONS, rotationEnvironment, RotationSettings } from '../../lib/keys/rotation-contract';
import { installSecretsManagerFake, ModelOptions, ROTATION_STEPS, RotationFunction, RotationStep, SecretsManagerModel } from '../support/secrets-manager-model';

export type GatewaySecretArns = Record<keyof typeof SECRET_KINDS, string>;

export const DOMAIN = 'looker.example.com';

export function seedGatewaySecrets(model: SecretsManagerModel): GatewaySecretArns {
  const make = (kind: SecretKind) => model.createSecret({ Name: `lg/${kind}`, SecretString: seedSecretValue(kind), Tags: [{ Key: SECRET_KIND_TAG, Value: kind }] }).ARN;
  return {
    signingKeys: make(SECRET_KINDS.signingKeys),
    verificationKeys: make(SECRET_KINDS.verificationKeys),
    cookieKeys: make(SECRET_KINDS.cookieKeys),
    backendCa: make(SECRET_KINDS.backendCa),
    backendClientCertificate: make(SECRET_KINDS.backendClientCertificate),
    frontendCertificate: make(SECRET_KINDS.frontendCertificate),
  };
}

/**
 * The handler's settings for the seeded secrets. Rotations in these tests follow each other
 * within milliseconds, so the signing keys' minimum age is 0 unless a test sets it (the
 * tests of that rule do).
 */
export function rotationSettings(arns: GatewaySecretArns, overrides: Partial<RotationSettings> = {}): RotationSettings {
  return {
    verificationKeysSecretArn: arns.verificationKeys,
    backendCaSecretArn: arns.backendCa,
    frontendDomainName: DOMAIN,
    signingKeyMinAgeSeconds: 0,
    rotatedSecretArns: [arns.signingKeys, arns.cookieKeys, arns.backendClientCertificate, arns.frontendCertificate],
    ...overrides,
  };
}

/** Sets the handler's environment (as the construct would) and returns a function that restores it. */
export function setRotationEnvironment(settings: RotationSettings): () => void {
  const env = rotationEnvironment(settings);
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** Attaches `fn` as the rotation function of every rotated secret. */
export function attachRotation(model: SecretsManagerModel, arns: GatewaySecretArns, fn: RotationFunction): void {
  for (const arn of [arns.signingKeys, arns.cookieKeys, arns.backendClientCertificate, arns.frontendCertificate]) model.setRotationFunction(arn, fn);
}

/** Collects the handler's JSON log lines (raw lines on stdout) while `run` runs. */
export async function captureLogs<T>(run: () => Promise<T>): Promise<{ result?: T; error?: unknown; lines: Record<string, unknown>[]; raw: string }> {
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    let result: T | undefined;
    let error: unknown;
    try {
      result = await run();
    } catch (e) {
      error = e;
    }
    const raw = spy.mock.calls.map((args) => String(args[0])).join('');
    const lines = raw
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { result, error, lines, raw };
  } finally {
    spy.mockRestore();
  }
}

export function event(secretId: string, token: string, step: SecretsManagerRotationEvent['Step']): SecretsManagerRotationEvent {
  return { SecretId: secretId, ClientRequestToken: token, Step: step };
}

/**
 * A fresh model with the SDK fake installed, the gateway's secrets seeded (with the
 * settings' session algorithm), the handler's environment set and `handler` attached
 * as the rotation function of every rotated secret.
 */
export interface RotationWorld {
  readonly model: SecretsManagerModel;
  readonly arns: GatewaySecretArns;
  /** Rotates one secret (RotateSecret, then waits for the rotation to end); throws when it failed. */
  rotate(arn: string): Promise<void>;
  /** Replaces the handler's environment by the one of `settings`. */
  setEnvironment(settings: RotationSettings): void;
  /** Puts the environment back as it was before the world started (the handler then lacks its variables). */
  restoreEnvironment(): void;
  /** Restores the environment and the real SDK client. */
  stop(): void;
}

export function startRotationWorld(handler: RotationFunction, overrides: Partial<RotationSettings> = {}, modelOptions: ModelOptions = {}): RotationWorld {
  const model = new SecretsManagerModel(modelOptions);
  const fake = installSecretsManagerFake(model);
  const arns = seedGatewaySecrets(model);
  let restoreEnv = setRotationEnvironment(rotationSettings(arns, overrides));
  attachRotation(model, arns, handler);
  const restoreEnvironment = () => restoreEnv();
  return {
    model,
    arns,
    rotate: (arn) => rotateSecret(model, arn),
    setEnvironment: (settings) => {
      restoreEnv();
      restoreEnv = setRotationEnvironment(settings);
    },
    restoreEnvironment,
    stop: () => {
      restoreEnvironment();
      fake.restore();
    },
  };
}

export interface EndedRotation {
  /** The rotation's token (its AWSPENDING version). */
  readonly token: string;
  readonly succeeded: boolean;
  /** What the rotation function threw, as the service records it ("Error: ..."). */
  readonly error?: string;
  /** The handler's log lines while it ran. */
  readonly lines: Record<string, unknown>[];
  readonly raw: string;
}

/**
 * RotateSecret, then waits until the rotation it started has ended (RotateSecret only
 * starts it). Throws only when RotateSecret itself refuses.
 */
export async function rotateAndWait(model: SecretsManagerModel, arn: string): Promise<EndedRotation> {
  const logs = await captureLogs(async () => {
    const started = await model.rotateSecret({ SecretId: arn });
    await model.settled();
    return started.VersionId!;
  });
  if (logs.error) throw logs.error;
  const token = logs.result!;
  const outcome = model.rotationOutcome(token);
  if (!outcome) throw new Error(`Model: rotation ${token} of ${arn} has not ended after settled().`);
  return { token, succeeded: outcome.succeeded, error: outcome.error, lines: logs.lines, raw: logs.raw };
}

/** Rotates one secret and waits for the end (the handler's log lines captured); throws when the rotation failed. */
export async function rotateSecret(model: SecretsManagerModel, arn: string): Promise<void> {
  const ended = await rotateAndWait(model, arn);
  if (!ended.succeeded) throw new Error(`Rotation ${ended.token} of ${arn} failed: ${ended.error}`);
}

/** Every timer API but Date: only the clock moves, so promises, sockets and timeouts behave as usual. */
const ALL_BUT_DATE = [
  'hrtime',
  'nextTick',
  'performance',
  'queueMicrotask',
  'requestAnimationFrame',
  'cancelAnimationFrame',
  'requestIdleCallback',
  'cancelIdleCallback',
  'setImmediate',
  'clearImmediate',
  'setInterval',
  'clearInterval',
  'setTimeout',
  'clearTimeout',
] as const;

/** Runs `run` with the process clock (Date) set to `atMs`: for code that reads the time itself, as the handler does. */
export async function atTime<T>(atMs: number, run: () => Promise<T>): Promise<T> {
  jest.useFakeTimers({ doNotFake: [...ALL_BUT_DATE], now: atMs });
  try {
    return await run();
  } finally {
    jest.useRealTimers();
  }
}

/**
 * What the hourly EventBridge schedule does: invokes the rotation function with
 * `{"action": "clear-abandoned-rotations"}`, here at the time `atMs` (the model's clock
 * dates the versions, so the check runs on a clock in step with it).
 */
export async function runHourlyCheck(handler: (event: { action: string }) => Promise<unknown>, atMs: number): Promise<{ error?: unknown; lines: Record<string, unknown>[] }> {
  return atTime(atMs, () => captureLogs(() => handler({ action: CLEAR_ABANDONED_ROTATIONS })));
}

/** Invokes the secret's rotation function for `steps` (all four by default) with `token`, in order; throws what a step threw. */
export async function runSteps(model: SecretsManagerModel, arn: string, token: string, steps: readonly RotationStep[] = ROTATION_STEPS): Promise<void> {
  for (const step of steps) await model.invokeStep(arn, token, step);
}

/**
 * Makes the process clock (jest's Date; timers stay real) follow the model's: give
 * `onTimeChange` to the model, call `restore()` after. Rotation functions read the time
 * themselves (key ages, the hourly check), so with it they live on the model's clock.
 */
export function processClockFollowsModel(): { onTimeChange: (now: Date) => void; restore(): void } {
  let faked = false;
  return {
    onTimeChange: (now) => {
      if (faked) {
        jest.setSystemTime(now);
      } else {
        jest.useFakeTimers({ doNotFake: [...ALL_BUT_DATE], now });
        faked = true;
      }
    },
    restore: () => {
      if (faked) jest.useRealTimers();
      faked = false;
    },
  };
}
