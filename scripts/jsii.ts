/**
 * The public API through the real jsii compiler (npm package `jsii`, with its own
 * TypeScript), and API.md generated from it by jsii-docgen.
 *
 * jsii needs a package of its own settings (a `jsii` section, `main` pointing at the .ts
 * entry's output, exact dev dependencies for each peer), which this repository's
 * package.json does not have and should not: its build is tsc + esbuild. So the check
 * runs in a temporary copy of what the package's entry reaches (lib/ and core/), with a
 * package.json derived from ours, and node_modules linked to ours.
 *
 *   npx tsx scripts/jsii.ts            compile with jsii; exit 1 with its errors
 *   npx tsx scripts/jsii.ts --api-md   also regenerate API.md (npm run api-docs)
 *
 * Only the package entry's API is checked (lib/index.ts); the `./nag` subpath is
 * TypeScript only (it would load cdk-nag from the entry if it were a jsii submodule).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..');
export const API_MD = path.join(REPO_ROOT, 'API.md');
/** Lines jsii prints for errors ("error JSII1234: ..."). */
const JSII_ERROR = /\berror JSII\d+/;

export interface JsiiResult {
  /** The temporary project (remove it with `cleanup`). */
  readonly dir: string;
  readonly status: number | null;
  /** jsii's output, without its banner about the Node.js version. */
  readonly output: string;
  /** Each `error JSII...` line. */
  readonly errors: string[];
  cleanup(): void;
}

function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** package.json of the jsii project: ours, with the settings jsii requires. */
export function jsiiPackageJson(): Record<string, unknown> {
  const ours = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const peers = ours.peerDependencies as Record<string, string>;
  return {
    name: ours.name,
    version: ours.version,
    description: ours.description,
    license: ours.license,
    author: ours.author,
    repository: ours.repository,
    homepage: ours.homepage,
    keywords: ours.keywords,
    main: 'lib/index.js',
    types: 'lib/index.d.ts',
    peerDependencies: peers,
    // jsii wants each peer as an exact dev dependency: the versions this repository builds with.
    devDependencies: Object.fromEntries(Object.keys(peers).map((name) => [name, installedVersion(name)])),
    stability: 'experimental',
    jsii: {
      outdir: 'dist-jsii',
      targets: { python: { distName: 'cdk-looker-gateway', module: 'cdk_looker_gateway' } },
    },
  };
}

function run(command: string, args: string[], cwd: string): { status: number | null; output: string } {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? `\n${result.error.message}` : ''}`;
  return {
    status: result.status,
    output: output
      .split('\n')
      .filter((line) => !line.startsWith('!!'))
      .join('\n'),
  };
}

/** Copies lib/, core/, README and LICENSE into a temporary project and compiles it with jsii. */
export function compileWithJsii(): JsiiResult {
  const jsii = path.join(REPO_ROOT, 'node_modules', '.bin', 'jsii');
  if (!existsSync(jsii)) throw new Error('node_modules/.bin/jsii is missing: run `npm ci` (jsii is a dev dependency).');
  // Outside the repository, with node_modules linked to ours: jsii and jsii-docgen find the
  // peers' .jsii assemblies through the link (inside node_modules the link would be a loop).
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-jsii-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    for (const entry of ['lib', 'core']) cpSync(path.join(REPO_ROOT, entry), path.join(dir, entry), { recursive: true });
    for (const file of ['README.md', 'LICENSE']) cpSync(path.join(REPO_ROOT, file), path.join(dir, file));
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(jsiiPackageJson(), null, 2)}\n`);
    // reserved-word: property names such as `function` are fine in TypeScript; the other
    // languages' generators rename them, which jsii only warns about.
    const { status, output } = run(jsii, ['--silence-warnings=reserved-word'], dir);
    const errors = output.split('\n').filter((line) => JSII_ERROR.test(line));
    return { dir, status, output, errors, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

/** API.md for the jsii project in `dir` (after a successful compile), as jsii-docgen writes it. */
export function generateApiMarkdown(dir: string): string {
  const docgen = path.join(REPO_ROOT, 'node_modules', '.bin', 'jsii-docgen');
  if (!existsSync(docgen)) throw new Error('node_modules/.bin/jsii-docgen is missing: run `npm ci` (jsii-docgen is a dev dependency).');
  const { status, output } = run(docgen, ['--language', 'typescript', '--output', 'API.md'], dir);
  if (status !== 0) throw new Error(`jsii-docgen failed (exit ${status}):\n${output}`);
  return readFileSync(path.join(dir, 'API.md'), 'utf8');
}

if (require.main === module) {
  const result = compileWithJsii();
  try {
    if (result.status !== 0 || result.errors.length > 0) {
      process.stderr.write(result.output);
      process.stderr.write(`\njsii found ${result.errors.length} error(s) in the public API (exit ${result.status}).\n`);
      process.exit(1);
    }
    process.stdout.write('jsii: the public API compiles with zero errors.\n');
    if (process.argv.includes('--api-md')) {
      writeFileSync(API_MD, generateApiMarkdown(result.dir));
      process.stdout.write(`Wrote ${path.relative(process.cwd(), API_MD)}.\n`);
    }
  } finally {
    result.cleanup();
  }
}
