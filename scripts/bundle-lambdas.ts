/**
 * Builds the Lambda assets the package ships: each handler of core/lambda-assets.ts bundled
 * by esbuild into `dist/assets/<directory>/index.js`, plus `dist/assets/manifest.json` with
 * the SHA-256 of every input file (sources and the node_modules files bundled in) and of
 * each output. The manifest tells whether the assets are fresh: the tests, `npx cdk synth`
 * in this repository and the consumer test all use these files, so what is tested is what ships.
 *
 *   npx tsx scripts/bundle-lambdas.ts              build every asset into dist/assets
 *   npx tsx scripts/bundle-lambdas.ts --if-stale   build only when an input changed
 *   npx tsx scripts/bundle-lambdas.ts --check      exit 1, saying why, when the assets are stale
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { BUNDLING, LAMBDA_ASSETS, LambdaAssetName } from '../core/lambda-assets';

const REPO_ROOT = path.resolve(__dirname, '..');
/** Where `npm run build` puts the assets; the compiled constructs find them at `dist/assets` too. */
export const ASSETS_DIR = path.join(REPO_ROOT, 'dist', 'assets');
const MANIFEST = 'manifest.json';
const FIX = 'Run `npm run build` (npm test runs it first).';

export interface BuiltBundle {
  readonly name: LambdaAssetName;
  /** Absolute path of the bundled `index.js`. */
  readonly file: string;
  readonly bytes: number;
  readonly maxBytes: number;
  /** Input files (relative to the repository root) with their SHA-256. */
  readonly inputs: Record<string, string>;
}

interface Manifest {
  readonly bundling: unknown;
  readonly assets: Record<string, { readonly directory: string; readonly sha256: string; readonly bytes: number; readonly inputs: Record<string, string> }>;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Bundles one handler into `<outDir>/<directory>/index.js`. */
export async function bundleLambda(name: LambdaAssetName, outDir: string): Promise<BuiltBundle> {
  const spec = LAMBDA_ASSETS[name];
  if (!spec) throw new Error(`Unknown Lambda asset ${JSON.stringify(name)}: expected one of ${Object.keys(LAMBDA_ASSETS).join(', ')}.`);
  const entry = path.join(REPO_ROOT, spec.entry);
  if (!existsSync(entry)) throw new Error(`The entry of the ${name} asset, ${spec.entry}, does not exist.`);
  const file = path.join(outDir, spec.directory, 'index.js');
  const result = await build({
    absWorkingDir: REPO_ROOT,
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
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.fromEntries(
    Object.keys(result.metafile.inputs)
      .sort()
      .map((input) => [input, sha256(path.join(REPO_ROOT, input))]),
  );
  return { name, file, bytes: statSync(file).size, maxBytes: spec.maxBytes, inputs };
}

/** Builds every asset into `outDir` and writes its manifest. */
export async function buildLambdaAssets(outDir: string = ASSETS_DIR): Promise<BuiltBundle[]> {
  const built: BuiltBundle[] = [];
  for (const name of Object.keys(LAMBDA_ASSETS) as LambdaAssetName[]) built.push(await bundleLambda(name, outDir));
  const manifest: Manifest = {
    bundling: BUNDLING,
    assets: Object.fromEntries(
      built.map((b) => [b.name, { directory: LAMBDA_ASSETS[b.name].directory, sha256: sha256(b.file), bytes: b.bytes, inputs: b.inputs }]),
    ),
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return built;
}

/** Why the assets in `outDir` are not what a build would make now (empty when they are fresh). */
export function staleLambdaAssets(outDir: string = ASSETS_DIR): string[] {
  const manifestFile = path.join(outDir, MANIFEST);
  if (!existsSync(manifestFile)) return [`${path.relative(REPO_ROOT, manifestFile)} does not exist: the Lambda assets were never built.`];
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  const problems: string[] = [];
  if (JSON.stringify(manifest.bundling) !== JSON.stringify(BUNDLING)) problems.push('the esbuild settings in core/lambda-assets.ts changed.');
  for (const [name, spec] of Object.entries(LAMBDA_ASSETS)) {
    const entry = manifest.assets[name];
    if (!entry || entry.directory !== spec.directory) {
      problems.push(`the ${name} asset is not in the manifest.`);
      continue;
    }
    const file = path.join(outDir, spec.directory, 'index.js');
    if (!existsSync(file) || sha256(file) !== entry.sha256) problems.push(`${path.relative(REPO_ROOT, file)} is not the file the build wrote.`);
    const changed = Object.entries(entry.inputs).filter(([input, digest]) => {
      const source = path.join(REPO_ROOT, input);
      return !existsSync(source) || sha256(source) !== digest;
    });
    if (changed.length > 0) problems.push(`${changed.map(([input]) => input).join(', ')} changed since the ${name} asset was built.`);
  }
  return problems;
}

/** The built `index.js` of an asset, after checking that every asset is fresh; throws the reasons and the fix otherwise. */
export function builtAssetFile(name: LambdaAssetName, outDir: string = ASSETS_DIR): string {
  const problems = staleLambdaAssets(outDir);
  if (problems.length > 0) throw new Error(`The Lambda assets in ${path.relative(REPO_ROOT, outDir)} are stale: ${problems.join(' ')} ${FIX}`);
  return path.join(outDir, LAMBDA_ASSETS[name].directory, 'index.js');
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--check')) {
    const problems = staleLambdaAssets();
    if (problems.length === 0) return;
    process.stderr.write(`The Lambda assets in dist/assets are stale:\n- ${problems.join('\n- ')}\n${FIX}\n`);
    process.exit(1);
  }
  if (argv.includes('--if-stale') && staleLambdaAssets().length === 0) return;
  const built = await buildLambdaAssets();
  let over = false;
  for (const b of built) {
    over ||= b.bytes > b.maxBytes;
    process.stdout.write(
      `${b.name}: ${path.relative(REPO_ROOT, b.file)} ${b.bytes} bytes (budget ${b.maxBytes})${b.bytes > b.maxBytes ? ' OVER BUDGET' : ''}\n`,
    );
  }
  if (over) process.exit(1);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
}
