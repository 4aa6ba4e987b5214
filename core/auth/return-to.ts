/**
 * The `rd` (return-to) check: only a same-origin path is accepted, so the login flow
 * cannot be turned into an open redirect. Pure.
 *
 * The check refuses rather than repairs: a value is accepted only when it is already the
 * canonical path a browser would request (the URL parser would not rewrite it) and when
 * nothing in it, at any depth of percent-decoding, could be read as another host, a
 * scheme or a dot-segment. The value returned is the value received, checked once more
 * as the redirect target it becomes.
 */

export type ReturnToResult = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

const MAX_RETURN_TO_LENGTH = 2048;
/** Percent-decoding rounds looked through; a value encoded deeper than this is refused. */
const MAX_DECODING_ROUNDS = 3;
/** Controls, and Unicode spaces, zero-width and bidi marks: never part of a real path, often part of a trick. */
const CONTROL_OR_INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Zs}]/u;
/**
 * Look-alikes of `/`, `\` and `.` that NFKC does not fold (division slash, fraction slash,
 * big solidus, ideographic and halfwidth full stops, ...): refused in a decoded path.
 */
const SEPARATOR_LOOK_ALIKES = /[\u2044\u2215\u29f8\u29f5\u29f9\u3002\uff61\u2024\ufe52\uff0e\uff0f\uff3c\ufe68]/u;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;
/** A percent-encoded `/`, `\` or `.`: one path segment or several? Ambiguous, so refused. */
const ENCODED_SEPARATOR = /%(2f|5c|2e)/i;
const DOT_SEGMENT = /(^|\/)\.{1,2}(\/|$)/;
const BASES = ['https://gateway.invalid', 'https://gateway.invalid/oauth2/callback'];

/** Why a form of the path part is not a plain same-origin path, or undefined when it is. */
function pathProblem(form: string): string | undefined {
  if (CONTROL_OR_INVISIBLE.test(form)) return 'contains control or invisible characters';
  if (SCHEME.test(form)) return 'has a scheme';
  if (!form.startsWith('/')) return 'is not a path starting with "/"';
  if (form.startsWith('//') || form.startsWith('/\\')) return 'starts with "//" or "/\\" (another host)';
  if (form.includes('\\')) return 'contains a backslash';
  if (form.includes('//')) return 'contains an empty path segment ("//")';
  if (DOT_SEGMENT.test(form)) return 'contains a "." or ".." path segment';
  if (ENCODED_SEPARATOR.test(form)) return 'contains a percent-encoded "/", "\\" or "."';
  if (form.includes(';')) return 'contains ";" (path parameters)';
  if (SEPARATOR_LOOK_ALIKES.test(form)) return 'contains a character that looks like "/", "\\" or "."';
  return undefined;
}

/** The path part and each of its percent-decoded forms, or why they cannot be worked out. */
function decodedForms(path: string): { forms: string[] } | { problem: string } {
  if (/%(?![0-9a-f]{2})/i.test(path)) return { problem: 'has malformed percent-encoding ("%" not followed by two hex digits)' };
  const forms = [path];
  let current = path;
  for (let round = 0; /%[0-9a-f]{2}/i.test(current); round += 1) {
    if (round === MAX_DECODING_ROUNDS) return { problem: `is percent-encoded more than ${MAX_DECODING_ROUNDS} times` };
    try {
      current = decodeURIComponent(current);
    } catch {
      return { problem: 'has malformed percent-encoding (not UTF-8)' };
    }
    forms.push(current);
  }
  return { forms };
}

/**
 * Whether `target`, used as a `Location`, stays on the origin it is resolved against and
 * means the same path from anywhere on that origin. This is the last check, made on the
 * exact string that is returned.
 */
function staysOnOrigin(target: string): boolean {
  if (!target.startsWith('/') || target.startsWith('//') || target.startsWith('/\\')) return false;
  return BASES.every((base) => {
    const resolved = new URL(target, base);
    return resolved.origin === new URL(base).origin && `${resolved.pathname}${resolved.search}${resolved.hash}` === target;
  });
}

/**
 * Accepts `rd` when it is a canonical path on this origin, and returns it unchanged as
 * the redirect target. Looks at the value as received (printable ASCII, no backslash)
 * and at every percent-decoded form of its path part, and of each its NFKC form
 * (fullwidth solidus and friends): no other host, scheme, dot-segment, empty segment,
 * encoded separator, `;`, control or look-alike character. The query and fragment are
 * kept as they are: they cannot change the origin of a path.
 */
export function checkReturnTo(value: string | undefined): ReturnToResult {
  if (value === undefined || value === '') return { ok: true, path: '/' };
  if (value.length > MAX_RETURN_TO_LENGTH) return { ok: false, reason: `rd is longer than ${MAX_RETURN_TO_LENGTH} characters` };
  if (/[^\u0021-\u007e]/.test(value)) return { ok: false, reason: 'rd contains spaces or characters outside printable ASCII (browsers percent-encode them)' };
  if (value.includes('\\')) return { ok: false, reason: 'rd contains a backslash' };
  // Where a browser ends the path of a relative reference: at the first raw "?" or "#".
  const pathEnd = value.search(/[?#]/);
  const path = pathEnd < 0 ? value : value.slice(0, pathEnd);
  const decoded = decodedForms(path);
  if ('problem' in decoded) return { ok: false, reason: `rd ${decoded.problem}` };
  for (const form of decoded.forms) {
    for (const candidate of [form, form.normalize('NFKC')]) {
      const problem = pathProblem(candidate);
      if (problem) return { ok: false, reason: `rd ${problem}` };
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(value, BASES[0]);
  } catch {
    return { ok: false, reason: 'rd is not a valid path' };
  }
  const canonical = `${parsed.pathname}${parsed.search}${parsed.hash}`;
  if (canonical !== value) return { ok: false, reason: `rd is not in canonical form (a browser would request ${JSON.stringify(canonical.slice(0, 80))})` };
  if (!staysOnOrigin(value)) return { ok: false, reason: 'rd leads to another origin' };
  return { ok: true, path: value };
}
