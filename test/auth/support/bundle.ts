/**
 * The auth service as it deploys: the esbuild bundle (core/lambda-assets.ts
 * settings) loaded as the Lambda runtime would load it, served by the harness. The
 * bundle reads its configuration from process.env at module init, calls the IdP with the
 * global fetch, writes its audit log to stdout and uses its own AWS SDK clients (answered
 * by the fakes the test installs), exactly as in Lambda.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { AuthServiceEnvironment } from '../../../core/auth/environment';
import { LAMBDA_ASSETS } from '../../../core/lambda-assets';
import { fetchTrustingCa, type ProxyHandler } from '../../../dev/auth-local-server';
import { REPO_ROOT } from '../../../dev/repo';
import { builtAssetFile } from '../../../scripts/bundle-lambdas';
import { startHarness, type Harness, type HarnessOptions } from './harness';

export interface BuiltAsset {
  /** The asset's index.js, as the package ships it (dist/assets). */
  readonly file: string;
  readonly bytes: number;
  readonly maxBytes: number;
}

export interface BundledHarness {
  readonly h: Harness;
  readonly built: BuiltAsset;
  /** The bundle's stdout lines so far. */
  stdout(): string[];
  /** The bundle's audit events (JSON lines on stdout). */
  audits(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/**
 * Serves the built asset (dist/assets/auth/index.js, the file the package ships and the
 * template deploys) through the harness. Its external `@aws-sdk/*` resolves from this
 * checkout's dependencies, as the runtime's would.
 */
function copyOfBuiltAsset(file: string): string {
  const parent = path.join(REPO_ROOT, 'node_modules', '.cache');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(path.join(parent, 'auth-bundle-'));
  copies.push(dir);
  const copy = path.join(dir, 'index.js');
  copyFileSync(file, copy);
  return copy;
}
const copies: string[] = [];
afterAll(() => {
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export async function startBundledHarness(options: Omit<HarnessOptions, 'handler'> = {}): Promise<BundledHarness> {
  const savedEnv = { ...process.env };
  const savedFetch = globalThis.fetch;
  const file = builtAssetFile('auth');
  const built: BuiltAsset = { file, bytes: statSync(file).size, maxBytes: LAMBDA_ASSETS.auth.maxBytes };
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(
      ...chunk
        .toString()
        .split('\n')
        .filter((line) => line.length > 0),
    );
    return true;
  });
  const restore = () => {
    spy.mockRestore();
    globalThis.fetch = savedFetch;
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
  };
  let h: Harness;
  try {
    h = await startHarness({
      ...options,
      handler: async (environment: AuthServiceEnvironment, caPem: string): Promise<ProxyHandler> => {
        Object.assign(process.env, environment, { AWS_REGION: 'eu-west-1' });
        // The bundle calls the IdP with the global fetch, as in Lambda; here it must trust the test CA.
        globalThis.fetch = (await fetchTrustingCa(caPem)) as unknown as typeof fetch;
        // A module of its own for each harness: the bundle reads its configuration at module
        // init, as in Lambda, and require() keeps a module per path. So each harness loads a
        // byte-for-byte copy of the shipped file from a path of its own, inside the repository
        // so that its external @aws-sdk/* is the module the test's fakes patch.
        const bundle = require(copyOfBuiltAsset(built.file)) as { handler: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult> };
        return { handle: (event, context) => bundle.handler(event, (context ?? {}) as Context) };
      },
    });
  } catch (error) {
    restore();
    throw error;
  }
  return {
    h,
    built,
    stdout: () => [...lines],
    audits: () => lines.filter((line) => line.startsWith('{"type":"audit"')).map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: async () => {
      try {
        await h.stop();
      } finally {
        restore();
      }
    },
  };
}
