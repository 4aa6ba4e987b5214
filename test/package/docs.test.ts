/**
 * The README and docs/*.md as a reader follows them: every relative link names a file of
 * this repository and, with a #fragment, a heading of that file (GitHub's anchors: lower
 * case, punctuation dropped, spaces to hyphens, repeats numbered). And nothing points at
 * notes outside the repository, which users of the package never see. The access log's
 * decision codes each have a row in the data-plane guide.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DECISIONS } from '../../core/haproxy/logging';
import { REPO_ROOT } from '../../dev/repo';

const DOCS = [
  'README.md',
  ...readdirSync(path.join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Lines outside fenced code blocks, with their numbers. */
function proseLines(file: string): Array<[number, string]> {
  let fenced = false;
  const lines: Array<[number, string]> = [];
  readFileSync(path.join(REPO_ROOT, file), 'utf8')
    .split('\n')
    .forEach((line, index) => {
      if (line.startsWith('```')) fenced = !fenced;
      else if (!fenced) lines.push([index + 1, line]);
    });
  return lines;
}

function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, line] of proseLines(file)) {
    const heading = /^#{1,6} (.*)$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

test('every relative link in the README and docs/ reaches a file and heading of the repository', () => {
  const broken: string[] = [];
  for (const file of DOCS) {
    for (const [line, text] of proseLines(file)) {
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [linkPath, fragment] = target.split('#');
        const targetFile = linkPath ? path.normalize(path.join(path.dirname(file), linkPath)) : file;
        if (linkPath && !existsSync(path.join(REPO_ROOT, targetFile))) broken.push(`${file}:${line}: no file ${target}`);
        else if (fragment && targetFile.endsWith('.md') && !anchorsOf(targetFile).has(fragment)) broken.push(`${file}:${line}: no heading for ${target}`);
      }
    }
  }
  expect(broken).toEqual([]);
});

test('nothing in the repository points at notes outside it (HAPROXY-NOTES.md, the shared design folder)', () => {
  const pattern = 'HAPROXY-NOTES|/work/shared|\\.\\./shared/(DESIGN|STYLE|HAPROXY)';
  const result = spawnSync('git', ['grep', '-n', '-I', '-E', pattern, '--', '.', ':!test/package/docs.test.ts'], { cwd: REPO_ROOT, encoding: 'utf8' });
  // git grep exits 1 when nothing matches, 0 with the matches on stdout.
  expect({ status: result.status, matches: result.stdout }).toEqual({ status: 1, matches: '' });
});

test("every decision code HAProxy logs has a row in docs/data-plane.md's decision table, and the table no other", () => {
  const text = readFileSync(path.join(REPO_ROOT, 'docs/data-plane.md'), 'utf8');
  const start = text.indexOf('### Decisions (log field `decision`');
  expect(start).toBeGreaterThan(-1);
  const rows = text
    .slice(start, text.indexOf('\n#', start + 1))
    .split('\n')
    .map((line) => /^\| `([a-z-]+)` \|/.exec(line)?.[1])
    .filter((code): code is string => code !== undefined);
  expect(rows.sort()).toEqual([...Object.values(DECISIONS)].sort());
});
