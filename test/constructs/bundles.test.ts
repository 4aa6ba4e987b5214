/**
 * The Lambda code the template references is the bundle the other tests run: a full synth
 * bundles through NodejsFunction (local esbuild, the settings of core/lambda-assets.ts),
 * and each asset is compared with scripts/bundle-lambdas.ts's bundle of the same entry and
 * held to its size budget.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LAMBDA_BUNDLES } from '../../core/lambda-assets';
import { bundleLambda, LambdaBundleName } from '../../scripts/bundle-lambdas';
import { newGatewayStack } from './fixtures';

jest.setTimeout(180_000);

const outdir = mkdtempSync(path.join(tmpdir(), 'lg-bundles-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

const FUNCTIONS: Record<LambdaBundleName, string> = {
  auth: '/AuthService/Function/Resource',
  rotation: '/Keys/RotationFunction/Resource',
  lookerOidc: '/LookerOidc/Function/Resource',
};
/** The optional Looker OIDC configuration is on, so every function the package can deploy is in the template. */
const LOOKER_OIDC_CONTEXT = {
  lookerApiCredentialsSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:looker-api-AbCdEf',
  lookerGroupRoles: [
    { group: 'Administrators', roles: ['Admin'] },
    { group: 'Analysts', roles: ['Viewer'] },
  ],
};

const assetFiles: Partial<Record<LambdaBundleName, string>> = {};
beforeAll(() => {
  const { app, stack } = newGatewayStack({ bundle: true, outdir, context: { 'aws:cdk:enable-asset-metadata': true, ...LOOKER_OIDC_CONTEXT } });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as { Resources: Record<string, { Type: string; Properties: any; Metadata?: any }> };
  for (const name of Object.keys(FUNCTIONS) as LambdaBundleName[]) {
    const fn = Object.values(template.Resources).find(
      (r) => r.Type === 'AWS::Lambda::Function' && String(r.Metadata?.['aws:cdk:path']).endsWith(FUNCTIONS[name]),
    )!;
    assetFiles[name] = path.join(assembly.directory, fn.Metadata['aws:asset:path'], 'index.js');
  }
});

describe.each(Object.keys(FUNCTIONS) as LambdaBundleName[])('the %s function', (name) => {
  const assetFile = () => assetFiles[name]!;

  test('is the bundle scripts/bundle-lambdas.ts makes', async () => {
    const built = await bundleLambda(name, path.join(outdir, 'script'));
    const digest = (file: string) => ({ bytes: statSync(file).size, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') });
    expect(digest(assetFile())).toEqual(digest(built.file));
  });

  test('fits its size budget', () => {
    const bytes = statSync(assetFile()).size;
    expect({ name, bytes, withinBudget: bytes <= LAMBDA_BUNDLES[name].maxBytes }).toEqual({ name, bytes, withinBudget: true });
  });
});
