/**
 * How the gateway's Lambda functions are bundled: the one place that the constructs
 * (NodejsFunction) and the tests and benchmarks (esbuild's API) both read, so the
 * bundle that is tested is the bundle that deploys.
 */
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..');

export interface LambdaBundle {
  /** Entry file, relative to the repository root. */
  readonly entry: string;
  /** Budget of the minified bundle, bytes. */
  readonly maxBytes: number;
}

export const LAMBDA_BUNDLES = {
  auth: { entry: 'lambda/auth/index.ts', maxBytes: 250 * 1024 },
  rotation: { entry: 'lambda/rotation/index.ts', maxBytes: 320 * 1024 },
  lookerOidc: { entry: 'lambda/looker-oidc/index.ts', maxBytes: 64 * 1024 },
} as const satisfies Record<string, LambdaBundle>;

/**
 * esbuild settings shared by NodejsFunction and the test bundles. The AWS SDK v3 is
 * part of the Node.js Lambda runtime, so it stays external (smaller bundle, faster
 * cold start); everything else is bundled.
 */
export const BUNDLING = {
  target: 'node22',
  format: 'cjs',
  platform: 'node',
  minify: true,
  sourceMap: false,
  externalModules: ['@aws-sdk/*'],
  /**
   * Prefer packages' ES builds: esbuild can drop what an ES module does not use, which
   * takes the rotation bundle from 421 KB to 286 KB (@peculiar/x509 and its ASN.1 stack).
   */
  mainFields: ['module', 'main'],
} as const;
