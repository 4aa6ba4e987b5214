/**
 * The gateway's keys across stack updates, in the Secrets Manager and CloudFormation
 * models: the synthesized GatewayKeys template is deployed, updated and rotated on its
 * schedule, with the rotation handler as the rotation function and the auth service's
 * signer reading the keys through its SDK client. The process clock follows the model's,
 * so days pass between rotations as they do in AWS.
 *
 *   - a change of sessionAlgorithm rewrites no secret and is carried out by rotations:
 *     the new algorithm's key is published a whole period before it signs;
 *   - a format bump of lib/key-material.ts leaves the template's seeds untouched;
 *   - a rotation that comes right after another (a deployment that updates a schedule:
 *     RotateImmediatelyOnUpdate) keeps the signing key;
 *   - a rotation that stopped half-way blocks deployments that update its schedule, as
 *     AWS does, until the hourly check clears it.
 */
import { createPublicKey } from 'node:crypto';
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { keyAlgorithm, parseGatewaySecret, SECRET_KINDS, SigningKeySetSecret, VerificationKeySetSecret } from '../../lib/key-material';
import { GatewayKeys, GatewayKeysProps } from '../../lib/keys/gateway-keys';
import { CLEAR_ABANDONED_ROTATIONS } from '../../lib/keys/rotation-contract';
import type { SessionClaims } from '../../lib/auth/session-claims';
import { SessionSigner } from '../../lambda/auth/keys';
import { handler } from '../../lambda/rotation/index';
import { CachedSecret, SecretsManagerSource } from '../../lambda/shared/secrets';
import { CloudFormationModel, TemplateJson } from '../support/cloudformation-model';
import { keyMaterialWithFormatVersion } from '../support/format-bump';
import { installSecretsManagerFake, RotationFunction, SecretsManagerModel } from '../support/secrets-manager-model';
import { newTestApp } from '../constructs/fixtures';
import { captureLogs, processClockFollowsModel } from './fixture';

const DAY_MS = 24 * 3600_000;
// Weeks of rotations with RS256 key generation: tens of seconds on a loaded 2-core machine.
jest.setTimeout(240_000);

function synth(props: GatewayKeysProps, keys: typeof GatewayKeys = GatewayKeys): TemplateJson {
  const stack = new Stack(newTestApp(), 'Gateway');
  new keys(stack, 'Keys', { domainName: 'looker.example.com', ...props });
  return Template.fromStack(stack).toJSON() as TemplateJson;
}

let model: SecretsManagerModel;
let cfn: CloudFormationModel;
let clock: ReturnType<typeof processClockFollowsModel>;
let fake: ReturnType<typeof installSecretsManagerFake>;
let savedEnv: Record<string, string | undefined>;
/** The rotation function CloudFormation points the schedules at; a test may wrap it. */
let rotationFunction: RotationFunction;
/** Every log line of the rotation function. */
let lines: Record<string, unknown>[];

beforeEach(() => {
  clock = processClockFollowsModel();
  model = new SecretsManagerModel({ onTimeChange: clock.onTimeChange, scheduledRotationAt: 'random', seed: 3 });
  fake = installSecretsManagerFake(model);
  savedEnv = { ...process.env };
  rotationFunction = handler;
  lines = [];
  cfn = new CloudFormationModel(model, {
    rotationFunction: async (event) => {
      const logs = await captureLogs(() => rotationFunction(event));
      lines.push(...logs.lines);
      if (logs.error) throw logs.error;
    },
    setEnvironment: (variables) => Object.assign(process.env, variables),
  });
});

afterEach(() => {
  fake.restore();
  clock.restore();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

function arnOf(name: string): string {
  const [id] = cfn.logicalIds('AWS::SecretsManager::Secret', `Keys${name}`);
  return cfn.physicalId(id);
}

function signingSet(): SigningKeySetSecret {
  return parseGatewaySecret(model.valueAt(arnOf('SigningKeys')), SECRET_KINDS.signingKeys, 'signing');
}

function published(): VerificationKeySetSecret {
  return parseGatewaySecret(model.valueAt(arnOf('VerificationKeys')), SECRET_KINDS.verificationKeys, 'verification');
}

/** The auth service's signer, reading the signing keys through its SDK client at every use. */
function authServiceSigner(): SessionSigner {
  const arn = arnOf('SigningKeys');
  return new SessionSigner(new CachedSecret(new SecretsManagerSource(), arn, (s) => parseGatewaySecret(s, SECRET_KINDS.signingKeys, arn), { maxAgeMs: 0, rereadIntervalMs: 0 }));
}

async function signSession(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return authServiceSigner().sign({ sub, iat: now, nbf: now, exp: now + 600 } as unknown as SessionClaims);
}

/** What an instance does with the files key-sync wrote from `set`: the key by kid, its own algorithm only. */
async function verifiesOnInstances(token: string, set: VerificationKeySetSecret): Promise<boolean> {
  const { kid, alg } = decodeProtectedHeader(token);
  const entry = set.keys.find((k) => k.kid === kid);
  if (!entry || alg !== keyAlgorithm(entry, set)) return false;
  try {
    await jwtVerify(token, createPublicKey(entry.publicKeyPem), { algorithms: [keyAlgorithm(entry, set)], clockTolerance: 30 });
    return true;
  } catch {
    return false;
  }
}

async function deploy(template: TemplateJson): Promise<string[]> {
  const result = await cfn.deploy(template);
  if (!result.ok) throw new Error(result.error);
  await model.settled();
  return result.actions;
}

describe('a change of sessionAlgorithm (ES256 -> RS256)', () => {
  test('rewrites no secret; the rotations publish the RS256 key a period ahead, then sign with it; every session verifies throughout', async () => {
    await deploy(synth({ sessionAlgorithm: 'ES256' }));
    expect(signingSet().alg).toBe('ES256');
    const signingVersion = model.versionAt(arnOf('SigningKeys'));
    const verificationVersion = model.versionAt(arnOf('VerificationKeys'));
    const beforeChange = await signSession('alice');

    const actions = await deploy(synth({ sessionAlgorithm: 'RS256' }));
    // CloudFormation updates the rotation function's environment and nothing else here.
    expect(actions).toEqual([expect.stringMatching(/^update AWS::Lambda::Function KeysRotationFunction/)]);
    expect(model.versionAt(arnOf('SigningKeys'))).toBe(signingVersion);
    expect(model.versionAt(arnOf('VerificationKeys'))).toBe(verificationVersion);
    expect(decodeProtectedHeader(await signSession('bob')).alg).toBe('ES256');

    // Around each scheduled rotation: what instances had before it verifies what is signed
    // after it, and a session signed a minute before it verifies after it.
    const algorithms: string[] = [];
    for (let rotation = 0; rotation < 3; rotation += 1) {
      const due = model.nextRotation(arnOf('SigningKeys'))!.at.getTime();
      await model.advanceTime(due - 60_000 - model.now().getTime());
      const syncedBefore = published();
      const justBefore = await signSession(`before-${rotation}`);
      await model.advanceTime(2 * 60_000);
      const token = await signSession(`after-${rotation}`);
      algorithms.push(String(decodeProtectedHeader(token).alg));
      expect(await verifiesOnInstances(token, syncedBefore)).toBe(true);
      expect(await verifiesOnInstances(token, published())).toBe(true);
      expect(await verifiesOnInstances(justBefore, published())).toBe(true);
    }
    expect(await verifiesOnInstances(beforeChange, published())).toBe(false); // long expired, and its key is gone
    expect(algorithms).toEqual(['ES256', 'RS256', 'RS256']);
    expect(signingSet().keys.map((k) => keyAlgorithm(k, signingSet()))).toEqual(['RS256', 'RS256', 'RS256']);
    expect(lines).toContainEqual(expect.objectContaining({ event: 'algorithm-changed', from: 'ES256', to: 'RS256' }));
  });

  test('a format bump of lib/key-material.ts leaves the seeds in the template as they were: the update rewrites no secret', async () => {
    const before = synth({});
    // The same construct, loaded with a key-material.ts whose SECRET_FORMAT_VERSION is 2.
    let bumped!: TemplateJson;
    jest.isolateModules(() => {
      jest.doMock('../../lib/key-material', () => keyMaterialWithFormatVersion(2));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { GatewayKeys: BumpedKeys } = require('../../lib/keys/gateway-keys') as typeof import('../../lib/keys/gateway-keys');
      bumped = synth({}, BumpedKeys);
    });
    const seeds = (t: TemplateJson) => Object.values(t.Resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret').map((r) => r.Properties?.SecretString);
    expect(seeds(bumped)).toEqual(seeds(before));

    await deploy(before);
    const versions = ['SigningKeys', 'VerificationKeys', 'CookieKeys', 'BackendCa', 'BackendClientCertificate', 'FrontendCertificate'].map((name) => model.versionAt(arnOf(name)));
    const actions = await deploy(bumped);
    expect(actions.filter((a) => a.includes('AWS::SecretsManager::Secret'))).toEqual([]);
    expect(['SigningKeys', 'VerificationKeys', 'CookieKeys', 'BackendCa', 'BackendClientCertificate', 'FrontendCertificate'].map((name) => model.versionAt(arnOf(name)))).toEqual(versions);
  });
});

describe('rotations that come too soon, and rotations that stop', () => {
  test('a deployment that updates the signing schedule minutes after a scheduled rotation keeps the signing key (RotateImmediatelyOnUpdate)', async () => {
    await deploy(synth({}));
    await model.advanceTime(7 * DAY_MS + 12 * 3600_000);
    const lastRotation = model.events.filter((e) => e.type === 'RotationSucceeded' && e.secretArn === arnOf('SigningKeys')).at(-1)!;
    // Minutes after that rotation, a deployment changes the period: CloudFormation calls RotateSecret.
    await model.advanceTime(lastRotation.at.getTime() + 5 * 60_000 - model.now().getTime());
    const before = signingSet();
    const versionBefore = model.versionAt(arnOf('SigningKeys'));
    const actions = await deploy(synth({ signingKeyRotation: Duration.days(8) }));
    expect(actions).toEqual([expect.stringMatching(/^update AWS::SecretsManager::RotationSchedule KeysSigningKeysRotation/)]);
    const after = signingSet();
    // The rotation ran and finished (a new version), ...
    expect(model.versionAt(arnOf('SigningKeys'))).not.toBe(versionBefore);
    // ... but the key that was published five minutes ago does not sign yet, and nothing is dropped.
    expect(after.keys.map((k) => `${k.status}:${k.kid}`)).toEqual(before.keys.map((k) => `${k.status}:${k.kid}`));
    expect(lines).toContainEqual(expect.objectContaining({ event: 'promotion-deferred', reason: expect.stringMatching(/is 300 s old, less than the 1290 s/) }));

    // A day later the same request promotes as usual.
    await model.advanceTime(DAY_MS);
    const started = await model.rotateSecret({ SecretId: arnOf('SigningKeys') });
    await model.settled();
    expect(model.rotationOutcome(started.VersionId!)).toEqual({ succeeded: true });
    expect(signingSet().keys.find((k) => k.status === 'current')!.kid).toBe(before.keys.find((k) => k.status === 'next')!.kid);
  });

  test('a rotation that stopped half-way makes a deployment that updates its schedule fail, as AWS does, until the hourly check clears it', async () => {
    await deploy(synth({}));
    const cookieKeys = arnOf('CookieKeys');
    rotationFunction = async (event) => {
      if (event.SecretId === cookieKeys && event.Step === 'setSecret') throw new Error('Task timed out after 60.00 seconds');
      return handler(event);
    };
    await model.advanceTime(31 * DAY_MS);
    expect(model.events.filter((e) => e.secretArn === cookieKeys).map((e) => e.type)).toEqual(['RotationStarted', 'RotationSucceeded', 'RotationStarted', 'RotationFailed']);
    rotationFunction = handler;

    const update = synth({ cookieKeyRotation: Duration.days(20) });
    const blocked = await cfn.deploy(update);
    expect(blocked).toMatchObject({ ok: false, error: expect.stringMatching(/^update AWS::SecretsManager::RotationSchedule KeysCookieKeysRotation.* failed: InvalidRequestException: A previous rotation isn't complete/) });

    // The hourly schedule invokes the rotation function; past the limit (2 hours) it clears the label.
    await model.advanceTime(3 * 3600_000);
    const check = await captureLogs(() => handler({ action: CLEAR_ABANDONED_ROTATIONS }));
    expect(check.lines).toContainEqual(expect.objectContaining({ event: 'abandoned-rotation-cleared', secretArn: cookieKeys }));
    const cookiesBefore = model.valueAt(cookieKeys);

    const retried = await cfn.deploy(update);
    expect(retried).toMatchObject({ ok: true });
    await model.settled();
    // The deployment's rotation ran from the current value: the key in use is kept as previous.
    const previousKid = parseGatewaySecret(cookiesBefore, SECRET_KINDS.cookieKeys, 'c').keys.find((k) => k.status === 'current')!.kid;
    expect(parseGatewaySecret(model.valueAt(cookieKeys), SECRET_KINDS.cookieKeys, 'c').keys.find((k) => k.status === 'previous')!.kid).toBe(previousKid);
  });
});
