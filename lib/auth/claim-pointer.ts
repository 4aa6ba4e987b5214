/**
 * Claim paths as JSON pointers (RFC 6901, https://www.rfc-editor.org/rfc/rfc6901), so a
 * groups claim can live anywhere in the ID token or userinfo: Okta's `groups` is
 * `/groups`, Keycloak's realm roles `/realm_access/roles`, an Auth0 namespaced claim
 * `/https:~1~1example.com~1groups` (`~1` is `/`, `~0` is `~`), Cognito's `/cognito:groups`.
 * Pure: imported by the construct at synth time and by the auth service at run time.
 */

export class ClaimPointerError extends Error {
  constructor(
    readonly pointer: string,
    problem: string,
  ) {
    super(`The claim path ${JSON.stringify(pointer)} is not a JSON pointer (RFC 6901): ${problem}`);
    this.name = 'ClaimPointerError';
  }
}

/** Longest pointer accepted: claim paths are configuration, not data. */
const MAX_POINTER_LENGTH = 512;

/**
 * The reference tokens of a pointer, unescaped (`~1` to `/`, then `~0` to `~`, in that
 * order as RFC 6901 section 4 requires). `""` is the whole document (no tokens).
 * Throws ClaimPointerError with the fix for anything else that does not start with `/`
 * or holds a `~` not followed by `0` or `1`.
 */
export function parseClaimPointer(pointer: string): string[] {
  if (pointer.length > MAX_POINTER_LENGTH) throw new ClaimPointerError(pointer.slice(0, 40) + '...', `longer than ${MAX_POINTER_LENGTH} characters.`);
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) {
    throw new ClaimPointerError(pointer, `it must start with "/", e.g. ${JSON.stringify(claimPointerFor(pointer))} for the top-level claim ${JSON.stringify(pointer)}.`);
  }
  return pointer
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~(?![01])/.test(token)) throw new ClaimPointerError(pointer, `"~" must be followed by 0 (for "~") or 1 (for "/"), found ${JSON.stringify(token)}.`);
      return token.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

/** The pointer to one top-level claim, escaped: `https://example.com/groups` becomes `/https:~1~1example.com~1groups`. */
export function claimPointerFor(claimName: string): string {
  return `/${claimName.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/**
 * A groups-claim setting as a pointer: a value starting with `/` is a pointer already;
 * anything else is the name of one top-level claim (what LG_IDP_GROUPS_CLAIM held before
 * pointers, e.g. `groups` or `cognito:groups`).
 */
export function toClaimPointer(nameOrPointer: string): string {
  return nameOrPointer.startsWith('/') ? nameOrPointer : claimPointerFor(nameOrPointer);
}

export interface ClaimLookup {
  /** Whether the pointer resolved to a value (a JSON `null` counts as found). */
  readonly found: boolean;
  readonly value: unknown;
}

const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

/**
 * Resolves a pointer in a claims object. Only own properties count (`/__proto__` or
 * `/constructor` never reach Object.prototype); an array is indexed by a decimal index
 * without leading zeros, and `-` (one past the end) or any other token resolves to
 * nothing. Never throws for missing paths; throws ClaimPointerError for a malformed pointer.
 */
export function readClaimPointer(claims: unknown, pointer: string): ClaimLookup {
  let current: unknown = claims;
  for (const token of parseClaimPointer(pointer)) {
    if (Array.isArray(current)) {
      if (!ARRAY_INDEX.test(token) || Number(token) >= current.length) return { found: false, value: undefined };
      current = current[Number(token)];
    } else if (current !== null && typeof current === 'object' && Object.prototype.hasOwnProperty.call(current, token)) {
      current = (current as Record<string, unknown>)[token];
    } else {
      return { found: false, value: undefined };
    }
  }
  return { found: true, value: current };
}

/** Claim values as strings: strings, numbers and booleans, or the elements of an array of them. */
export function claimValues(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  return list.filter((v) => ['string', 'number', 'boolean'].includes(typeof v)).map((v) => String(v));
}

export interface ClaimStrings {
  readonly found: boolean;
  /** The string values: a string claim is one value; numbers and booleans become strings. */
  readonly values: string[];
  /** Elements that are not strings, numbers or booleans (objects, arrays, null), left out: worth an audit note. */
  readonly ignored: number;
}

/** Reads a claim that lists values (groups, roles) at `pointer`, as strings. */
export function readClaimStrings(claims: unknown, pointer: string): ClaimStrings {
  const { found, value } = readClaimPointer(claims, pointer);
  if (!found || value === undefined) return { found: false, values: [], ignored: 0 };
  const values = claimValues(value);
  const total = Array.isArray(value) ? value.length : 1;
  return { found: true, values, ignored: total - values.length };
}
