/**
 * The auth service as it deploys: the esbuild bundle (core/lambda-assets.ts
 * settings) loaded as the Lambda runtime would load it, served by the harness. The
 * bundle reads its configuration from process.env at module init, calls the IdP with the
 * global fetch, writes its audit log to stdout and uses its own AWS SDK clients (answered
 * by the fakes the test installs), exactly as in Lambda.
 */
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { AuthServiceEnvironment } from '../../../core/auth/environment';
import { REPO_ROOT } from '../../../core/lambda-assets';
import { fetchTrustingCa, type ProxyHandler } from '../../../local/auth-local-server';
import { bundleLambda, type BuiltBundle } from '../../../scripts/bundle-lambdas';
import { startHarness, type Harness, type HarnessOptions } from './harness';

export interface BundledHarness {
  readonly h: Harness;
  readonly built: BuiltBundle;
  /** The bundle's stdout lines so far. */
  stdout(): string[];
  /** The bundle's audit events (JSON lines on stdout). */
  audits(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/**
 * Builds the bundle into this checkout's node_modules/.cache (so its external
 * `@aws-sdk/*` resolves from this checkout's dependencies, as the runtime's would: .cache
 * may be a link to another checkout) and serves it through the harness.
 */
export async function startBundledHarness(options: Omit<HarnessOptions, 'handler'> = {}): Promise<BundledHarness> {
  const outDir = path.join(REPO_ROOT, 'node_modules', '.cache', 'test-bundles', `auth-${process.pid}-${Date.now()}`);
  const savedEnv = { ...process.env };
  const savedFetch = globalThis.fetch;
  const built = await bundleLambda('auth', outDir);
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
    rmSync(outDir, { recursive: true, force: true });
  };
  let h: Harness;
  try {
    h = await startHarness({
      ...options,
      handler: async (environment: AuthServiceEnvironment, caPem: string): Promise<ProxyHandler> => {
        Object.assign(process.env, environment, { AWS_REGION: 'eu-west-1' });
        // The bundle calls the IdP with the global fetch, as in Lambda; here it must trust the test CA.
        globalThis.fetch = (await fetchTrustingCa(caPem)) as unknown as typeof fetch;
        const bundle = require(built.file) as { handler: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult> };
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
