/**
 * The `rd` (return-to) check: only a same-origin relative path is accepted, so the
 * login flow cannot be turned into an open redirect. Pure.
 */

export type ReturnToResult = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

const MAX_RETURN_TO_LENGTH = 2048;
/** Controls, and Unicode spaces, zero-width and bidi marks: never part of a real path, often part of a trick. */
const CONTROL_OR_INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;
const BASE = 'https://gateway.invalid';

function checkForm(form: string): string | undefined {
  if (CONTROL_OR_INVISIBLE.test(form)) return 'contains control or invisible characters';
  if (SCHEME.test(form)) return 'has a scheme';
  if (!form.startsWith('/')) return 'is not a path starting with "/"';
  if (form.startsWith('//') || form.startsWith('/\\')) return 'starts with "//" or "/\\" (another host)';
  return undefined;
}

/**
 * Accepts `rd` when it is a path on this origin. Checks the value as received, each
 * percent-decoded form (up to three rounds, so double encoding cannot hide `//` or `\`),
 * and the Unicode-compatibility (NFKC) form of each (fullwidth solidus and friends).
 * Returns the normalized path, query and fragment to redirect to.
 */
export function checkReturnTo(value: string | undefined): ReturnToResult {
  if (value === undefined || value === '') return { ok: true, path: '/' };
  if (value.length > MAX_RETURN_TO_LENGTH) return { ok: false, reason: `rd is longer than ${MAX_RETURN_TO_LENGTH} characters` };
  if (/[^\u0021-\u007e]/.test(value)) return { ok: false, reason: 'rd contains spaces or characters outside printable ASCII (browsers percent-encode them)' };
  if (value.includes('\\')) return { ok: false, reason: 'rd contains a backslash' };
  const forms: string[] = [value];
  let current = value;
  for (let round = 0; round < 3 && current.includes('%'); round += 1) {
    try {
      current = decodeURIComponent(current);
    } catch {
      return { ok: false, reason: 'rd has malformed percent-encoding' };
    }
    forms.push(current);
  }
  for (const form of forms) {
    for (const candidate of [form, form.normalize('NFKC')]) {
      const problem = checkForm(candidate);
      if (problem) return { ok: false, reason: `rd ${problem}` };
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(value, BASE);
  } catch {
    return { ok: false, reason: 'rd is not a valid path' };
  }
  if (parsed.origin !== BASE) return { ok: false, reason: 'rd leads to another origin' };
  return { ok: true, path: `${parsed.pathname}${parsed.search}${parsed.hash}` };
}
