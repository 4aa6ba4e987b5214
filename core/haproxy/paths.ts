/**
 * Request paths as the gateway routes them. haproxy.cfg normalizes every path before any
 * routing decision (HAProxy's `normalize-uri` actions, in this order) and refuses what is
 * still ambiguous; Looker then receives the normalized path. These pure functions model the
 * same steps, so that configured prefixes can be checked at synth (a prefix that is not in
 * normal form would never match) and so that tests can state what HAProxy must produce.
 */

/** RFC 3986 section 2.3: characters that mean the same percent-encoded or not. */
const UNRESERVED = /^[A-Za-z0-9._~-]$/;

/**
 * The path after the gateway's normalization: percent-escapes of unreserved characters
 * decoded (`%2e` -> `.`, `%71` -> `q`), the other escapes in upper case, `.` and `..`
 * segments removed (a `..` above the root is dropped, RFC 3986 section 5.2.4, where an
 * empty segment counts as a segment: `/a//../b` -> `/a/b`), then repeated slashes merged.
 */
export function normalizePath(path: string): string {
  const decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (_escape: string, hex: string) => {
    const character = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(character) ? character : `%${hex.toUpperCase()}`;
  });
  const segments = decoded.split('/').slice(1);
  const kept: string[] = [];
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..') kept.pop();
      if (last) kept.push('');
      return;
    }
    kept.push(segment);
  });
  return `/${kept.join('/')}`.replace(/\/{2,}/g, '/');
}

/**
 * Why a normalized path is still ambiguous (a server behind the gateway could read it as
 * another path than the one routed on), or undefined. The gateway answers 400 with this reason.
 */
export function ambiguousPathReason(normalizedPath: string): string | undefined {
  if (/%(?![0-9A-Fa-f]{2})/.test(normalizedPath)) return AMBIGUOUS_PATH_REASONS.badEscape;
  if (/%(2F|5C|25|00|C0|C1)/i.test(normalizedPath)) return AMBIGUOUS_PATH_REASONS.encodedSeparator;
  if (/[;\\]/.test(normalizedPath)) return AMBIGUOUS_PATH_REASONS.parameters;
  return undefined;
}

/** The reasons the gateway gives (answer and access log) for a path it refuses: no quotes (they go into JSON as they are) and no percent sign (a log-format would read it). */
export const AMBIGUOUS_PATH_REASONS = {
  badEscape: 'the path has a percent sign that does not start a percent-escape',
  encodedSeparator: 'the path has an encoded slash, backslash, percent sign or NUL, or an overlong UTF-8 byte',
  parameters: 'the path has ; parameters or a backslash',
} as const;

/**
 * True when `path` lies under `prefix` on a segment boundary: `/api/4.0/queries` covers
 * `/api/4.0/queries` and `/api/4.0/queries/run` but not `/api/4.0/queriesX`; a prefix that
 * ends with `/` covers what starts with it.
 */
export function pathUnderPrefix(path: string, prefix: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** True when some path lies under both prefixes (each prefix lies under itself). */
export function pathPrefixesOverlap(a: string, b: string): boolean {
  return pathUnderPrefix(a, b) || pathUnderPrefix(b, a);
}
