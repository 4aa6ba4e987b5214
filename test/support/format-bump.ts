/**
 * lib/key-material.ts as a later release that bumps SECRET_FORMAT_VERSION would ship it:
 * the same source, compiled with another number, for jest.doMock in an isolated module
 * registry. The tests load the construct against it and compare what it synthesizes.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

export function keyMaterialWithFormatVersion(version: number): unknown {
  const file = path.join(__dirname, '..', '..', 'lib', 'key-material.ts');
  const source = readFileSync(file, 'utf8');
  const bumped = source.replace(/export const SECRET_FORMAT_VERSION = \d+;/, `export const SECRET_FORMAT_VERSION = ${version};`);
  if (bumped === source) throw new Error('lib/key-material.ts no longer declares SECRET_FORMAT_VERSION as a number literal: update test/support/format-bump.ts.');
  const js = ts.transpileModule(bumped, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
  const module = { exports: {} as Record<string, unknown> };
  const requireFromLib = (id: string) => jest.requireActual(id.startsWith('.') ? path.join(path.dirname(file), id) : id);
  new Function('require', 'module', 'exports', js)(requireFromLib, module, module.exports);
  return module.exports;
}
