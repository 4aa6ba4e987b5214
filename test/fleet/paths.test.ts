/**
 * The model of the gateway's path normalization (core/haproxy/paths.ts), which validation uses
 * for configured prefixes and path-normalization.test.ts uses as the expected answer for its
 * generated corpus, checked here against RFC 3986 itself.
 */
import { ambiguousPathReason, normalizePath, pathPrefixesOverlap, pathUnderPrefix } from '../../core/haproxy/paths';

describe('normalizePath', () => {
  // RFC 3986 section 5.4.1: the reference resolved against the base path /b/c/d;p, written
  // here as the merged path (section 5.2.3: the base's last segment dropped) before
  // remove_dot_segments (section 5.2.4), and the result the RFC gives.
  test.each([
    ['/b/c/g', '/b/c/g'],
    ['/b/c/./g', '/b/c/g'],
    ['/b/c/g/', '/b/c/g/'],
    ['/b/c/.', '/b/c/'],
    ['/b/c/./', '/b/c/'],
    ['/b/c/..', '/b/'],
    ['/b/c/../', '/b/'],
    ['/b/c/../g', '/b/g'],
    ['/b/c/../..', '/'],
    ['/b/c/../../', '/'],
    ['/b/c/../../g', '/g'],
    ['/b/c/../../../g', '/g'],
    ['/b/c/../../../../g', '/g'],
    ['/./g', '/g'],
    ['/../g', '/g'],
    ['/b/c/g.', '/b/c/g.'],
    ['/b/c/.g', '/b/c/.g'],
    ['/b/c/g..', '/b/c/g..'],
    ['/b/c/..g', '/b/c/..g'],
    ['/b/c/./../g', '/b/g'],
    ['/b/c/./g/.', '/b/c/g/'],
    ['/b/c/g/./h', '/b/c/g/h'],
    ['/b/c/g/../h', '/b/c/h'],
    ['/a/b/c/./../../g', '/a/g'],
  ])('RFC 3986 dot segments: %s -> %s', (path, expected) => {
    expect(normalizePath(path)).toBe(expected);
  });

  test.each([
    // Section 6.2.2.2: escapes of unreserved characters are the characters; the others are upper case (6.2.2.1).
    ['/api/4.0/%71ueries/run', '/api/4.0/queries/run'],
    ['/%7e%7E%2d%5f%2E%41', '/~~-_.A'],
    ['/a%2fb/%c3%a9', '/a%2Fb/%C3%A9'],
    ['/a/%2e%2e/b', '/b'],
    ['/a/.%2e/b', '/b'],
    // An empty segment is a segment for "..", then repeated slashes are merged.
    ['/a//../b', '/a/b'],
    ['//a///b//', '/a/b/'],
    ['/api/4.0//queries/run', '/api/4.0/queries/run'],
    ['/api/4.0/x/../queries/run', '/api/4.0/queries/run'],
    ['/api/4.0/queries/run/../../users/me', '/api/4.0/users/me'],
  ])('%s -> %s', (path, expected) => {
    expect(normalizePath(path)).toBe(expected);
  });
});

test('ambiguousPathReason names what a server behind the gateway could read another way', () => {
  expect(ambiguousPathReason('/a/b')).toBeUndefined();
  expect(ambiguousPathReason('/a/%20b/%C3%A9')).toBeUndefined();
  for (const path of ['/a%2Fb', '/a%5Cb', '/a%252e', '/a%00', '/%C0%AE']) expect(ambiguousPathReason(path)).toMatch(/encoded slash/);
  for (const path of ['/a;b', '/a\\b']) expect(ambiguousPathReason(path)).toMatch(/parameters or a backslash/);
  for (const path of ['/a%', '/a%2', '/a%zz', '/a%u002e']) expect(ambiguousPathReason(path)).toMatch(/does not start a percent-escape/);
});

test('prefixes match on segment boundaries', () => {
  expect(pathUnderPrefix('/api/4.0/queries', '/api/4.0/queries')).toBe(true);
  expect(pathUnderPrefix('/api/4.0/queries/run', '/api/4.0/queries')).toBe(true);
  expect(pathUnderPrefix('/api/4.0/queriesX', '/api/4.0/queries')).toBe(false);
  expect(pathUnderPrefix('/api/4.0/queriesX', '/api/4.0/')).toBe(true);
  expect(pathUnderPrefix('/api/4.0', '/api/4.0/')).toBe(false);
  expect(pathPrefixesOverlap('/api/4.0/', '/api/4.0/queries')).toBe(true);
  expect(pathPrefixesOverlap('/api/4.0/queries', '/api/4.0/queriesX')).toBe(false);
  expect(pathPrefixesOverlap('/oauth2', '/oauth2/')).toBe(true);
});
