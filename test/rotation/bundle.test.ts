/**
 * The esbuild bundle that deploys (lib/private/lambda-bundling.ts settings, through
 * scripts/bundle-lambdas.ts) rotates every kind of secret. The AWS SDK stays external,
 * so aws-sdk-client-mock's patch of SecretsManagerClient reaches the bundle too.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import { parseGatewaySecret, SECRET_KINDS } from '../../lib/key-material';
import { REPO_ROOT } from '../../lib/private/lambda-bundling';
import { bundleLambda } from '../../scripts/bundle-lambdas';
import { rotateAndWait, runHourlyCheck, startRotationWorld } from './fixture';

let dir: string;
let bundled: { handler: (event: SecretsManagerRotationEvent) => Promise<void> };
let source: string;

beforeAll(async () => {
  // Inside the repository's own node_modules (.cache may be a link to another checkout's),
  // so the bundle's require('@aws-sdk/...') resolves to the same SDK the test mocks.
  mkdirSync(path.join(REPO_ROOT, 'node_modules', '.cache'), { recursive: true });
  dir = mkdtempSync(path.join(REPO_ROOT, 'node_modules', '.cache', 'test-rotation-bundle-'));
  const built = await bundleLambda('rotation', dir);
  source = readFileSync(built.file, 'utf8');
  // .cjs: loaded as is, not transformed again by ts-jest.
  const file = path.join(dir, 'index.cjs');
  copyFileSync(built.file, file);
  bundled = require(file);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
    expect(check.lines).toEqual([expect.objectContaining({ source: 'lg-rotation', action: 'clear-abandoned-rotations', event: 'abandoned-rotation-cleared', secretArn: arns.cookieKeys, clearedVersion: token })]);
    expect(model.versionAt(arns.cookieKeys, 'AWSPENDING')).toBeUndefined();
    expect(await rotateAndWait(model, arns.cookieKeys)).toMatchObject({ succeeded: true });
  } finally {
    world.stop();
  }
});
