/**
 * Builds the Lambda bundles with esbuild using the settings the constructs use
 * (core/lambda-assets.ts), so the bundle that tests and benchmarks run is the
 * bundle that deploys. Generic over LAMBDA_BUNDLES.
 *
 *   npx tsx scripts/bundle-lambdas.ts [name ...] [--out dir]   (default: every bundle, into dist/lambda)
 */
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { BUNDLING, LAMBDA_BUNDLES, REPO_ROOT } from '../core/lambda-assets';

export type LambdaBundleName = keyof typeof LAMBDA_BUNDLES;

export interface BuiltBundle {
  readonly name: LambdaBundleName;
  /** Absolute path of the bundled `index.js`. */
  readonly file: string;
  readonly bytes: number;
  readonly maxBytes: number;
}

/** Bundles one Lambda into `<outDir>/<name>/index.js`. */
export async function bundleLambda(name: LambdaBundleName, outDir: string): Promise<BuiltBundle> {
  const spec = LAMBDA_BUNDLES[name];
  if (!spec) throw new Error(`Unknown Lambda bundle ${JSON.stringify(name)}: expected one of ${Object.keys(LAMBDA_BUNDLES).join(', ')}.`);
  const entry = path.join(REPO_ROOT, spec.entry);
  if (!existsSync(entry)) throw new Error(`The entry of the ${name} bundle, ${spec.entry}, does not exist yet.`);
  const file = path.join(outDir, name, 'index.js');
  await build({
    entryPoints: [entry],
    outfile: file,
    bundle: true,
    target: BUNDLING.target,
    format: BUNDLING.format,
    platform: BUNDLING.platform,
    minify: BUNDLING.minify,
    sourcemap: BUNDLING.sourceMap,
    external: [...BUNDLING.externalModules],
    mainFields: [...BUNDLING.mainFields],
    logLevel: 'silent',
  });
  return { name, file, bytes: statSync(file).size, maxBytes: spec.maxBytes };
}

async function main(argv: string[]): Promise<void> {
  const outIndex = argv.indexOf('--out');
  const outDir = path.resolve(outIndex >= 0 ? argv[outIndex + 1] : path.join(REPO_ROOT, 'dist', 'lambda'));
  const requested = argv.filter((arg, i) => !arg.startsWith('--') && (outIndex < 0 || i !== outIndex + 1));
  const names = (requested.length > 0 ? requested : Object.keys(LAMBDA_BUNDLES)) as LambdaBundleName[];
  let failed = false;
  for (const name of names) {
    try {
      const built = await bundleLambda(name, outDir);
      const over = built.bytes > built.maxBytes;
      failed ||= over;
      process.stdout.write(`${name}: ${path.relative(REPO_ROOT, built.file)} ${built.bytes} bytes (budget ${built.maxBytes})${over ? ' OVER BUDGET' : ''}\n`);
    } catch (error) {
      failed = true;
      process.stderr.write(`${name}: ${(error as Error).message}\n`);
    }
  }
  if (failed) process.exit(1);
}

if (require.main === module) void main(process.argv.slice(2));
