/**
 * The gateway's six secrets in a Secrets Manager model, seeded as CloudFormation seeds
 * them, with the rotation handler attached, for the rotation tests.
 */
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import { SECRET_KIND_TAG, SECRET_KINDS, SecretKind, seedSecretValue } from '../../core/key-material';
import { rotationEnvironment, RotationSettings } from '../../core/rotation-contract';
import type { SessionAlgorithm } from '../../core/session-contract';
import { installSecretsManagerFake, RotationFunction, SecretsManagerModel } from '../../dev/aws/secrets-manager-model';

export type GatewaySecretArns = Record<keyof typeof SECRET_KINDS, string>;

export const DOMAIN = 'looker.example.com';

export function seedGatewaySecrets(model: SecretsManagerModel, alg: SessionAlgorithm = 'ES256'): GatewaySecretArns {
  const make = (kind: SecretKind) =>
    model.createSecret({ Name: `lg/${kind}`, SecretString: seedSecretValue(kind, alg), Tags: [{ Key: SECRET_KIND_TAG, Value: kind }] }).ARN;
  return {
    signingKeys: make(SECRET_KINDS.signingKeys),
    verificationKeys: make(SECRET_KINDS.verificationKeys),
    cookieKeys: make(SECRET_KINDS.cookieKeys),
    backendCa: make(SECRET_KINDS.backendCa),
    backendClientCertificate: make(SECRET_KINDS.backendClientCertificate),
    frontendCertificate: make(SECRET_KINDS.frontendCertificate),
  };
}

export function rotationSettings(arns: GatewaySecretArns, overrides: Partial<RotationSettings> = {}): RotationSettings {
  return { verificationKeysSecretArn: arns.verificationKeys, backendCaSecretArn: arns.backendCa, frontendDomainName: DOMAIN, ...overrides };
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
  /** Rotates one secret through all four steps; throws what the handler threw. */
  rotate(arn: string): Promise<void>;
  /** Replaces the handler's environment by the one of `settings`. */
  setEnvironment(settings: RotationSettings): void;
  /** Puts the environment back as it was before the world started (the handler then lacks its variables). */
  restoreEnvironment(): void;
  /** Restores the environment and the real SDK client. */
  stop(): void;
}

export function startRotationWorld(handler: RotationFunction, overrides: Partial<RotationSettings> = {}): RotationWorld {
  const model = new SecretsManagerModel();
  const fake = installSecretsManagerFake(model);
  const arns = seedGatewaySecrets(model, overrides.sessionAlgorithm);
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

/** Rotates one secret through all four steps (the handler's log lines captured); throws what the handler threw. */
export async function rotateSecret(model: SecretsManagerModel, arn: string): Promise<void> {
  const { error } = await captureLogs(() => model.rotateSecret({ SecretId: arn }));
  if (error) throw error;
}
