/** Where this checkout is: the root the tests, benchmarks and the local runner work from. */
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..');
