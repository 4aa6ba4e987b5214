/**
 * npm run bench — runs every benchmark script in bench/ (each writes bench/results/<name>.json),
 * one after another; resilience.ts (about 40 minutes) only through `npm run bench:resilience`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

const scripts = readdirSync(__dirname)
  .filter((name) => name.endsWith('.ts') && name !== 'run.ts' && name !== 'resilience.ts')
  .sort();
let failed = 0;
for (const script of scripts) {
  console.log(`\n== bench/${script}`);
  const result = spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, script)], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed += 1;
    console.error(`bench/${script} failed (exit ${result.status ?? result.signal})`);
  }
}
process.exit(failed === 0 ? 0 : 1);
