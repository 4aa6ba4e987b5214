/**
 * The gateway's Lambda functions as prebuilt assets: `npm run build` bundles each entry with
 * esbuild into `dist/assets/<directory>/index.js` (scripts/bundle-lambdas.ts), the package
 * ships those files, and the constructs point `lambda.Code.fromAsset` at them (as aws-cdk-lib
 * does for its own handlers). A consumer's synth needs no esbuild, no lockfile, no network.
 * Pure data, read by the constructs, the build script, the tests and the benchmarks alike.
 */

export interface LambdaAsset {
  /** Entry file of the handler, relative to the repository root. */
  readonly entry: string;
  /** Directory of the built `index.js` under `dist/assets/` (and `assets/` next to the compiled lib/). */
  readonly directory: string;
  /** Budget of the minified bundle, bytes. */
  readonly maxBytes: number;
}

export const LAMBDA_ASSETS = {
  auth: { entry: 'lambda/auth/index.ts', directory: 'auth', maxBytes: 250 * 1024 },
  rotation: { entry: 'lambda/rotation/index.ts', directory: 'rotation', maxBytes: 320 * 1024 },
  lookerOidc: { entry: 'lambda/looker-oidc/index.ts', directory: 'looker-oidc', maxBytes: 64 * 1024 },
} as const satisfies Record<string, LambdaAsset>;

export type LambdaAssetName = keyof typeof LAMBDA_ASSETS;

/** The handler of every asset: `exports.handler` of its `index.js`. */
export const LAMBDA_ASSET_HANDLER = 'index.handler';

/**
 * esbuild settings of every asset. The AWS SDK v3 is part of the Node.js Lambda runtime, so
 * it stays external (smaller bundle, faster cold start); everything else is bundled.
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
