/**
 * The Lambda code the template references is the prebuilt asset the package ships: a full
 * synth stages each function's code from dist/assets/<name>/ (no bundling at synth), byte for
 * byte the file `npm run build` wrote, within its size budget.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LAMBDA_ASSETS, LAMBDA_ASSET_HANDLER, LambdaAssetName } from '../../core/lambda-assets';
import { builtAssetFile } from '../../scripts/bundle-lambdas';
import { newGatewayStack } from './fixtures';

jest.setTimeout(180_000);

const outdir = mkdtempSync(path.join(tmpdir(), 'lg-bundles-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

const FUNCTIONS: Record<LambdaAssetName, string> = {
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

const staged: Partial<Record<LambdaAssetName, { directory: string; handler: string }>> = {};
beforeAll(() => {
  const { app, stack } = newGatewayStack({ outdir, context: { 'aws:cdk:enable-asset-metadata': true, ...LOOKER_OIDC_CONTEXT } });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as { Resources: Record<string, { Type: string; Properties: any; Metadata?: any }> };
  for (const name of Object.keys(FUNCTIONS) as LambdaAssetName[]) {
    const fn = Object.values(template.Resources).find(
      (r) => r.Type === 'AWS::Lambda::Function' && String(r.Metadata?.['aws:cdk:path']).endsWith(FUNCTIONS[name]),
    )!;
    staged[name] = { directory: path.join(assembly.directory, fn.Metadata['aws:asset:path']), handler: fn.Properties.Handler };
  }
});

const digest = (file: string) => ({ bytes: statSync(file).size, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') });

describe.each(Object.keys(FUNCTIONS) as LambdaAssetName[])('the %s function', (name) => {
  test('deploys the built asset as it is, and nothing else', () => {
    const { directory, handler } = staged[name]!;
    expect(readdirSync(directory)).toEqual(['index.js']);
    expect(digest(path.join(directory, 'index.js'))).toEqual(digest(builtAssetFile(name)));
    expect(handler).toBe(LAMBDA_ASSET_HANDLER);
  });

  test('fits its size budget', () => {
    const bytes = statSync(builtAssetFile(name)).size;
    expect({ name, bytes, withinBudget: bytes <= LAMBDA_ASSETS[name].maxBytes }).toEqual({ name, bytes, withinBudget: true });
  });
});
