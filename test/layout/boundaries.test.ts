/**
 * The layout's boundaries are lint rules (eslint.config.mjs), not prose: each forbidden
 * import below is reported by ESLint exactly as `npm run lint` runs it, and each allowed one
 * is not. The files are linted as text under the path they would have; nothing is written.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * Lints each [file, source] with the repository's ESLint config in one child process (the
 * flat config is an ES module, which jest's module loader cannot import), and returns the
 * messages of no-restricted-imports for each.
 */
function restrictedImports(cases: ReadonlyArray<readonly [string, string]>): string[][] {
  const script = `
    import { ESLint } from 'eslint';
    const cases = JSON.parse(process.argv[1]);
    const eslint = new ESLint({ cwd: process.cwd() });
    const out = [];
    for (const [file, source] of cases) {
      const [result] = await eslint.lintText(source, { filePath: file });
      out.push(result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message));
    }
    process.stdout.write(JSON.stringify(out));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(cases)], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`ESLint did not run (status ${result.status}, ${result.error?.message ?? ''}):\n${result.stderr}`);
  return JSON.parse(result.stdout) as string[][];
}

const forbidden: Array<[string, string, RegExp]> = [
  ['core/auth/example.ts', "import { App } from 'aws-cdk-lib';", /core\/ is the pure contract/],
  ['core/haproxy/example.ts', "import { Construct } from 'constructs';", /core\/ is the pure contract/],
  ['core/example.ts', "import { LookerGateway } from '../lib/looker-gateway';", /core\/ is the pure contract/],
  ['core/auth/example.ts', "import { handler } from '../../lambda/auth/index';", /core\/ is the pure contract/],
  ['core/example.ts', "import { startHaproxy } from '../dev/haproxy';", /core\/ is the pure contract/],
  ['lambda/auth/example.ts', "import { GatewayKeys } from '../../lib/keys/gateway-keys';", /lambda\/ may import only core\//],
  ['lambda/rotation/example.ts', "import { Stack } from 'aws-cdk-lib';", /lambda\/ may import only core\//],
  ['lambda/shared/example.ts', "import { freePort } from '../../dev/ports';", /lambda\/ may import only core\//],
  ['lib/auth/example.ts', "import { handler } from '../../lambda/auth/index';", /lib\/ never imports lambda\//],
  ['lib/fleet/example.ts', "import { startHaproxy } from '../../dev/haproxy';", /lib\/ never imports lambda\/, dev\//],
  ['lib/index.ts', "import { AwsSolutionsChecks } from 'cdk-nag';", /cdk-nag is loaded only by lib\/nag\//],
  ['dev/example.ts', "import { newGatewayStack } from '../test/constructs/fixtures';", /dev\/ is imported by test\/, bench\/ and local\//],
  ['dev/stand-ins/example.ts', "import { startLocalGateway } from '../../local/gateway';", /dev\/ is imported by test\/, bench\/ and local\//],
];

const forbiddenResults = restrictedImports(forbidden.map(([file, source]) => [file, source]));

test.each(forbidden.map((c, i) => [...c, i] as const))('%s: `%s` is reported', (_file, _source, message, index) => {
  expect(forbiddenResults[index]).toEqual([expect.stringMatching(message)]);
});

const allowed: Array<[string, string]> = [
  ['lambda/auth/example.ts', "import { SESSION_COOKIE } from '../../core/session-contract';"],
  ['lambda/auth/example.ts', "import { audit } from '../shared/audit';"],
  ['lib/auth/example.ts', "import { parseAuthServiceEnvironment } from '../../core/auth/environment';"],
  ['lib/nag/index.ts', "import { AwsSolutionsChecks } from 'cdk-nag';"],
  ['core/haproxy/example.ts', "import { GATEWAY_FILES } from '../layout';"],
  ['dev/example.ts', "import { renderGatewayConfig } from '../core/haproxy';"],
  ['test/example.test.ts', "import { startHaproxy } from '../dev/haproxy';"],
  ['local/example.ts', "import { startDevIdp } from '../dev/stand-ins/idp/dev-idp';"],
];

const allowedResults = restrictedImports(allowed);

test.each(allowed.map((c, i) => [...c, i] as const))('%s: `%s` is allowed', (_file, _source, index) => {
  expect(allowedResults[index]).toEqual([]);
});
