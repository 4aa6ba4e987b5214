/**
 * The built asset that deploys (dist/assets/rotation/index.js, made by `npm run build`)
 * rotates every kind of secret. The AWS SDK stays external, so aws-sdk-client-mock's patch
 * of SecretsManagerClient reaches the bundle too.
 */
import { readFileSync } from 'node:fs';
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import { parseGatewaySecret, SECRET_KINDS } from '../../core/key-material';
import { builtAssetFile } from '../../scripts/bundle-lambdas';
import { rotateAndWait, runHourlyCheck, startRotationWorld } from './fixture';

let bundled: { handler: (event: SecretsManagerRotationEvent) => Promise<void> };
let source: string;

beforeAll(() => {
  // In the repository's dist/, so the bundle's require('@aws-sdk/...') resolves to the same SDK the test mocks.
  const file = builtAssetFile('rotation');
  source = readFileSync(file, 'utf8');
  bundled = require(file);
});

test('the bundle keeps the AWS SDK external and carries jose and @peculiar/x509 inside', () => {
  expect(source).toMatch(/require\("@aws-sdk\/client-secrets-manager"\)/);
  expect(source).not.toMatch(/require\("(jose|@peculiar\/x509|reflect-metadata)"\)/);
});

test('the bundled handler rotates every kind of secret from the seed, twice', async () => {
  const world = startRotationWorld((event) => bundled.handler(event));
  const { model, arns } = world;
  try {
    const lines: Record<string, unknown>[] = [];
    for (let round = 0; round < 2; round += 1) {
      for (const name of ['backendClientCertificate', 'frontendCertificate', 'cookieKeys', 'signingKeys'] as const) {
        const ended = await rotateAndWait(model, arns[name]);
        expect(ended).toMatchObject({ succeeded: true, error: undefined });
        lines.push(...ended.lines);
      }
    }
    expect(lines.filter((l) => l.outcome === 'finished')).toHaveLength(8);
    const signing = parseGatewaySecret(model.valueAt(arns.signingKeys), SECRET_KINDS.signingKeys, 's');
    expect(signing.keys.map((k) => k.status)).toEqual(['previous', 'current', 'next']);
    const published = parseGatewaySecret(model.valueAt(arns.verificationKeys), SECRET_KINDS.verificationKeys, 'v');
    expect(published.keys.map((k) => k.kid)).toEqual(signing.keys.map((k) => k.kid));
    expect(parseGatewaySecret(model.valueAt(arns.cookieKeys), SECRET_KINDS.cookieKeys, 'c').keys).toHaveLength(2);
    const client = parseGatewaySecret(model.valueAt(arns.backendClientCertificate), SECRET_KINDS.backendClientCertificate, 'b');
    expect(client.chainPem).toBe(parseGatewaySecret(model.valueAt(arns.backendCa), SECRET_KINDS.backendCa, 'ca').certificatePem);
    expect(parseGatewaySecret(model.valueAt(arns.frontendCertificate), SECRET_KINDS.frontendCertificate, 'f').certificatePem).toContain('BEGIN CERTIFICATE');
  } finally {
    world.stop();
  }
});

test('the bundled handler answers the hourly check: it clears the AWSPENDING label of a rotation that stopped', async () => {
  const world = startRotationWorld((event) => bundled.handler(event));
  const { model, arns } = world;
  try {
    const token = model.startRotation(arns.cookieKeys);
    model.setRotationEnabled(arns.cookieKeys, true);
    const check = await runHourlyCheck((event) => bundled.handler(event as never), model.now().getTime() + 3 * 3600_000);
    expect(check.error).toBeUndefined();
    expect(check.lines).toEqual([
      expect.objectContaining({
        source: 'lg-rotation',
        action: 'clear-abandoned-rotations',
        event: 'abandoned-rotation-cleared',
        secretArn: arns.cookieKeys,
        clearedVersion: token,
      }),
    ]);
    expect(model.versionAt(arns.cookieKeys, 'AWSPENDING')).toBeUndefined();
    expect(await rotateAndWait(model, arns.cookieKeys)).toMatchObject({ succeeded: true });
  } finally {
    world.stop();
  }
});
