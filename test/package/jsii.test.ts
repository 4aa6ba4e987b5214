/**
 * The public API compiles with the real jsii compiler (zero errors), so Python, Java and
 * .NET users can be served later, and API.md is what jsii-docgen makes of it today.
 * scripts/jsii.ts says how the temporary jsii project is made.
 */
import { readFileSync } from 'node:fs';
import { API_MD, compileWithJsii, generateApiMarkdown, JsiiResult } from '../../scripts/jsii';

// jsii type-checks lib/ and core/ with its own TypeScript: about a minute alone, several on a busy machine.
jest.setTimeout(900_000);

let result: JsiiResult;
beforeAll(() => {
  result = compileWithJsii();
});
afterAll(() => result?.cleanup());

test('jsii compiles the public API (lib/index.ts) with zero errors', () => {
  expect({ status: result.status, errors: result.errors }).toEqual({ status: 0, errors: [] });
});

test('API.md is up to date with the TSDoc of the public API (fix: npm run api-docs)', () => {
  if (result.status !== 0) throw new Error(`jsii failed, so API.md cannot be generated:\n${result.output}`);
  const generated = generateApiMarkdown(result.dir);
  const committed = readFileSync(API_MD, 'utf8');
  if (generated !== committed) {
    throw new Error('API.md is stale: the public API or its TSDoc changed. Run `npm run api-docs` and commit API.md.');
  }
});
