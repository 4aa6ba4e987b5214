/**
 * JSON pointers (RFC 6901, https://www.rfc-editor.org/rfc/rfc6901) as claim paths: the
 * escapes, arrays, missing paths, non-string values and malformed pointers.
 */
import fc from 'fast-check';
import { claimPointerFor, ClaimPointerError, parseClaimPointer, readClaimPointer, readClaimStrings, toClaimPointer } from '../../core/auth/claim-pointer';

describe('parseClaimPointer', () => {
  test('splits on "/" and unescapes ~1 to "/" and ~0 to "~"', () => {
    expect(parseClaimPointer('/realm_access/roles')).toEqual(['realm_access', 'roles']);
    expect(parseClaimPointer('/https:~1~1example.com~1groups')).toEqual(['https://example.com/groups']);
    expect(parseClaimPointer('/a~0b')).toEqual(['a~b']);
  });

  test('unescapes ~1 before ~0, so "~01" is the two characters "~1" (RFC 6901 section 4)', () => {
    expect(parseClaimPointer('/~01')).toEqual(['~1']);
    expect(parseClaimPointer('/~10')).toEqual(['/0']);
  });

  test('"" is the whole document and "/" the member named ""', () => {
    expect(parseClaimPointer('')).toEqual([]);
    expect(parseClaimPointer('/')).toEqual(['']);
  });

  test('refuses a pointer without the leading "/" and names the pointer to use instead', () => {
    expect(() => parseClaimPointer('groups')).toThrow(ClaimPointerError);
    expect(() => parseClaimPointer('groups')).toThrow('it must start with "/", e.g. "/groups"');
  });

  test('refuses "~" followed by anything but 0 or 1', () => {
    expect(() => parseClaimPointer('/a~2b')).toThrow('"~" must be followed by 0');
    expect(() => parseClaimPointer('/trailing~')).toThrow('"~" must be followed by 0');
  });

  test('refuses pointers longer than 512 characters', () => {
    expect(() => parseClaimPointer(`/${'a'.repeat(600)}`)).toThrow('longer than 512 characters');
  });
});

describe('claimPointerFor and toClaimPointer', () => {
  test('escape a claim name so that it parses back to itself', () => {
    for (const name of ['groups', 'cognito:groups', 'https://example.com/groups', 'odd~name/with/slashes']) {
      expect(parseClaimPointer(claimPointerFor(name))).toEqual([name]);
    }
    expect(claimPointerFor('https://example.com/groups')).toBe('/https:~1~1example.com~1groups');
  });

  test('round-trips any claim name and finds its value (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 2 }), (name, value) => {
        expect(parseClaimPointer(claimPointerFor(name))).toEqual([name]);
        const claims = JSON.parse(JSON.stringify({ [name]: value })) as Record<string, unknown>;
        expect(readClaimPointer(claims, claimPointerFor(name))).toEqual({ found: true, value: claims[name] });
      }),
    );
  });

  test('toClaimPointer keeps pointers and turns a flat claim name (the old setting) into one', () => {
    expect(toClaimPointer('/realm_access/roles')).toBe('/realm_access/roles');
    expect(toClaimPointer('groups')).toBe('/groups');
    expect(toClaimPointer('cognito:groups')).toBe('/cognito:groups');
  });
});

describe('readClaimPointer', () => {
  const claims = {
    groups: ['a', 'b'],
    realm_access: { roles: ['admin', 'viewer'] },
    'https://example.com/groups': ['ns'],
    'a~b': 1,
    empty: null,
    nested: [{ name: 'x' }, { name: 'y' }],
  };

  test('walks objects and arrays', () => {
    expect(readClaimPointer(claims, '/realm_access/roles')).toEqual({ found: true, value: ['admin', 'viewer'] });
    expect(readClaimPointer(claims, '/groups/1')).toEqual({ found: true, value: 'b' });
    expect(readClaimPointer(claims, '/nested/1/name')).toEqual({ found: true, value: 'y' });
    expect(readClaimPointer(claims, '/https:~1~1example.com~1groups')).toEqual({ found: true, value: ['ns'] });
    expect(readClaimPointer(claims, '/a~0b')).toEqual({ found: true, value: 1 });
  });

  test('a JSON null is found; a missing member is not', () => {
    expect(readClaimPointer(claims, '/empty')).toEqual({ found: true, value: null });
    expect(readClaimPointer(claims, '/missing')).toEqual({ found: false, value: undefined });
    expect(readClaimPointer(claims, '/empty/below')).toEqual({ found: false, value: undefined });
    expect(readClaimPointer(claims, '/groups/0/deeper')).toEqual({ found: false, value: undefined });
  });

  test('array tokens must be decimal indexes without leading zeros; "-" and out-of-range find nothing', () => {
    expect(readClaimPointer(claims, '/groups/01').found).toBe(false);
    expect(readClaimPointer(claims, '/groups/-').found).toBe(false);
    expect(readClaimPointer(claims, '/groups/2').found).toBe(false);
    expect(readClaimPointer(claims, '/groups/length').found).toBe(false);
  });

  test('never reaches inherited properties such as __proto__ or constructor', () => {
    expect(readClaimPointer(claims, '/__proto__').found).toBe(false);
    expect(readClaimPointer(claims, '/constructor/name').found).toBe(false);
    expect(readClaimPointer(claims, '/groups/map').found).toBe(false);
  });

  test('"" resolves to the document itself', () => {
    expect(readClaimPointer(claims, '')).toEqual({ found: true, value: claims });
  });

  test('a malformed pointer throws instead of reading nothing', () => {
    expect(() => readClaimPointer(claims, 'groups')).toThrow(ClaimPointerError);
  });
});

describe('readClaimStrings', () => {
  test('a list of strings, or one string, gives the strings', () => {
    expect(readClaimStrings({ groups: ['a', 'b'] }, '/groups')).toEqual({ found: true, values: ['a', 'b'], ignored: 0 });
    expect(readClaimStrings({ group: 'solo' }, '/group')).toEqual({ found: true, values: ['solo'], ignored: 0 });
  });

  test('numbers and booleans become strings; objects, arrays and nulls are left out and counted', () => {
    expect(readClaimStrings({ groups: ['a', 7, true, { id: 'x' }, ['y'], null] }, '/groups')).toEqual({ found: true, values: ['a', '7', 'true'], ignored: 3 });
    expect(readClaimStrings({ groups: { id: 'x' } }, '/groups')).toEqual({ found: true, values: [], ignored: 1 });
  });

  test('a missing claim is reported as not found, with no values', () => {
    expect(readClaimStrings({}, '/groups')).toEqual({ found: false, values: [], ignored: 0 });
  });
});
