/**
 * Claim mapping rules: validation messages, evaluation, and properties (fast-check):
 * deny by default, and no minted session over the size budget.
 */
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { AttributeConflictPolicy, evaluateMappingRules, globToRegExp, identityFacts, isEmailVerified, readEmailVerified, validateMappingRules, type MappingRuleSet } from '../../lib/auth/mapping-rules';
import { MAX_SESSION_TOKEN_BYTES } from '../../lib/session-contract';
import { SessionSigner } from '../../lambda/auth/keys';
import { CachedSecret, StaticSecretSource } from '../../lambda/shared/secrets';
import { parseGatewaySecret, SECRET_KINDS } from '../../lib/key-material';
import { generateSigningKeySet } from './support/harness';


const grant = { roles: ['Viewer'] };

describe('validateMappingRules', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['not an object', [], /expected \{ "rules": \[\.\.\.\] \}/],
    ['no rules', { rules: [] }, /non-empty list of rules.*every user is denied/],
    ['empty match', { rules: [{ name: 'r', match: {}, grant }] }, /rule #1 \("r"\): match is empty: a rule must say whom it applies to/],
    ['rule granting nothing', { rules: [{ name: 'r', match: { groups: ['g'] }, grant: {} }] }, /grants nothing: give at least one of grant.roles/],
    ['empty grant lists', { rules: [{ name: 'r', match: { groups: ['g'] }, grant: { roles: [], groups: [] } }] }, /grants nothing/],
    ['bad glob (character class)', { rules: [{ name: 'r', match: { groups: ['eng-[ab]'] }, grant }] }, /"eng-\[ab\]" uses glob syntax that is not supported: only "\*"/],
    ['bad glob (braces)', { rules: [{ name: 'r', match: { groups: ['{a,b}'] }, grant }] }, /glob syntax that is not supported/],
    ['double star', { rules: [{ name: 'r', match: { groups: ['a**'] }, grant }] }, /contains "\*\*"/],
    ['empty pattern', { rules: [{ name: 'r', match: { groups: [''] }, grant }] }, /pattern is empty: give the exact text, or "\*"/],
    ['padded pattern', { rules: [{ name: 'r', match: { groups: [' g'] }, grant }] }, /leading or trailing spaces/],
    ['empty group list', { rules: [{ name: 'r', match: { groups: [] }, grant }] }, /match.groups is an empty list/],
    ['bad attribute name', { rules: [{ name: 'r', match: { groups: ['g'] }, grant: { attributes: { 'Cost-Center': 'x' } } }] }, /attribute name "Cost-Center" is invalid: use lower case letters/],
    ['attribute value not a string', { rules: [{ name: 'r', match: { groups: ['g'] }, grant: { attributes: { team: 3 } } }] }, /attribute "team" has value 3/],
    ['comma in a role', { rules: [{ name: 'r', match: { groups: ['g'] }, grant: { roles: ['a,b'] } }] }, /contains a comma or control character/],
    ['e-mail with @', { rules: [{ name: 'r', match: { emailDomains: ['@example.com'] }, grant }] }, /contains "@": give the domain only/],
    ['bad claim name', { rules: [{ name: 'r', match: { claims: [{ claim: 'a b', values: ['x'] }] }, grant }] }, /names claim "a b"/],
    ['unknown field', { rules: [{ name: 'r', match: { group: ['g'] }, grant }] }, /unknown match field "group": use groups, emailDomains or claims/],
    ['duplicate names', { rules: [{ name: 'r', match: { groups: ['g'] }, grant }, { name: 'r', match: { groups: ['h'] }, grant }] }, /rule "r": the name is used twice/],
    [
      'conflicting single-valued attributes without a policy',
      {
        rules: [
          { name: 'emea', match: { groups: ['emea'] }, grant: { attributes: { region: 'emea' } } },
          { name: 'us', match: { groups: ['us'] }, grant: { attributes: { region: 'us' } } },
        ],
      },
      /rules "emea" and "us" set attribute "region" to different values \("emea" and "us"\).*set attributeConflicts to "first-match", "join" or "deny"/,
    ],
    ['unknown policy', { rules: [{ name: 'r', match: { groups: ['g'] }, grant }], attributeConflicts: 'last' }, /"last" is not a policy: use one of "first-match", "join", "deny"/],
  ];
  test.each(cases)('rejects %s with the bad value and the fix', (_name, rules, message) => {
    expect(() => validateMappingRules(rules)).toThrow(message);
  });

  test('accepts a valid rule set and returns it', () => {
    const rules = { rules: [{ name: 'r', match: { groups: ['eng-*'], emailDomains: ['*.example.com'], claims: [{ claim: 'department', values: ['R?D'] }] }, grant: { roles: ['Viewer'], attributes: { team: 'eng' } } }] };
    expect(validateMappingRules(rules)).toBe(rules);
  });
});

describe('evaluateMappingRules', () => {
  const ruleSet: MappingRuleSet = validateMappingRules({
    rules: [
      { name: 'analysts', match: { groups: ['looker-analysts'] }, grant: { roles: ['Viewer'], groups: ['Analysts'], attributes: { team: 'analytics' } } },
      { name: 'admins', match: { groups: ['looker-admin*'] }, grant: { roles: ['Admin'] } },
      { name: 'emea-staff', match: { emailDomains: ['*.emea.example.com'], claims: [{ claim: 'employee_type', values: ['staff'] }] }, grant: { attributes: { region: 'emea' } } },
    ],
  });

  test('collects roles, groups and attributes of every matching rule, without duplicates', () => {
    const result = evaluateMappingRules(ruleSet, {
      groups: ['looker-analysts', 'looker-admins', 'other'],
      email: 'a@lon.EMEA.example.com',
      emailVerified: true,
      claims: { employee_type: ['contractor', 'staff'] },
    });
    expect(result).toEqual({ allowed: true, matchedRules: ['analysts', 'admins', 'emea-staff'], roles: ['Viewer', 'Admin'], groups: ['Analysts'], attributes: { team: 'analytics', region: 'emea' } });
  });

  test('every condition of a rule must hold; only a verified e-mail matches (missing email_verified is not verified)', () => {
    expect(evaluateMappingRules(ruleSet, { groups: [], email: 'a@lon.emea.example.com', emailVerified: true, claims: { employee_type: 'contractor' } }).allowed).toBe(false);
    expect(evaluateMappingRules(ruleSet, { groups: [], email: 'a@lon.emea.example.com', emailVerified: false, claims: { employee_type: 'staff' } }).allowed).toBe(false);
    // Issue 11 item 9: an IdP that omits email_verified (Entra ID) used to count as verified.
    expect(evaluateMappingRules(ruleSet, { groups: [], email: 'a@lon.emea.example.com', claims: { employee_type: 'staff' } }).allowed).toBe(false);
    expect(evaluateMappingRules(ruleSet, { groups: [], email: 'a@lon.emea.example.com', emailVerified: true, claims: { employee_type: 'staff' } }).allowed).toBe(true);
  });

  test('groups match exactly (case-sensitive) or by glob; glob metacharacters of regular expressions are literal', () => {
    expect(evaluateMappingRules(ruleSet, { groups: ['Looker-Analysts'], claims: {} }).allowed).toBe(false);
    expect(evaluateMappingRules(ruleSet, { groups: ['looker-admin'], claims: {} }).allowed).toBe(true);
    expect(globToRegExp('a.b(c)+').test('a.b(c)+')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('a?c').test('abc')).toBe(true);
  });

  test('attribute conflicts follow the policy', () => {
    const rules = (attributeConflicts?: string) =>
      validateMappingRules({
        rules: [
          { name: 'one', match: { groups: ['a'] }, grant: { attributes: { region: 'emea' } } },
          { name: 'two', match: { groups: ['b'] }, grant: { attributes: { region: 'us' } } },
        ],
        attributeConflicts,
      });
    const both = { groups: ['a', 'b'], claims: {} };
    expect(evaluateMappingRules(rules('first-match'), both)).toMatchObject({ allowed: true, attributes: { region: 'emea' } });
    expect(evaluateMappingRules(rules('join'), both)).toMatchObject({ allowed: true, attributes: { region: 'emea,us' } });
    expect(evaluateMappingRules(rules('deny'), both)).toMatchObject({ allowed: false, reason: 'attribute-conflict' });
    expect(evaluateMappingRules(rules('deny'), { groups: ['b'], claims: {} })).toMatchObject({ allowed: true, attributes: { region: 'us' } });
  });

  test('AttributeConflictPolicy values are the strings of the JSON form: a rule set from JSON (cdk.json, LG_MAPPING_RULES) and one written with the enum behave alike', () => {
    expect(Object.values(AttributeConflictPolicy)).toEqual(['first-match', 'join', 'deny']);
    const rules = [
      { name: 'one', match: { groups: ['a'] }, grant: { attributes: { region: 'emea' } } },
      { name: 'two', match: { groups: ['b'] }, grant: { attributes: { region: 'us' } } },
    ];
    const both = { groups: ['a', 'b'], claims: {} };
    for (const policy of Object.values(AttributeConflictPolicy)) {
      const fromJson = validateMappingRules(JSON.parse(JSON.stringify({ rules, attributeConflicts: policy.toString() })));
      const fromCode = validateMappingRules({ rules, attributeConflicts: policy });
      expect(fromJson).toEqual(fromCode);
      expect(JSON.parse(JSON.stringify(fromCode)).attributeConflicts).toBe(policy.toString());
      expect(evaluateMappingRules(fromJson, both)).toEqual(evaluateMappingRules(fromCode, both));
    }
    expect(evaluateMappingRules(validateMappingRules({ rules, attributeConflicts: AttributeConflictPolicy.JOIN }), both)).toMatchObject({ attributes: { region: 'emea,us' } });
  });
});

describe('properties', () => {
  // Rules are written over the letters g-k (each pattern has at least one), users' facts
  // over the letters t-z, and claims may be numbers, booleans and null, whose text ("12",
  // "true", "false", "null") has none of g-k either: no pattern can match any value.
  const ruleText = fc.stringMatching(/^[g-k*?.-]{0,6}[g-k][g-k*?.-]{0,6}$/).filter((p) => !p.includes('**'));
  const userText = fc.stringMatching(/^[t-z.@-]{1,12}$/);
  const rule = fc.record(
    {
      name: fc.stringMatching(/^[a-z]{1,8}$/),
      groups: fc.array(ruleText, { minLength: 1, maxLength: 4 }),
      emailDomains: fc.array(ruleText, { minLength: 1, maxLength: 3 }),
      claims: fc.array(fc.record({ claim: fc.constantFrom('department', 'team', 'sub', 'email'), values: fc.array(ruleText, { minLength: 1, maxLength: 3 }) }), { minLength: 1, maxLength: 2 }),
    },
    { requiredKeys: ['name'] },
  );
  const ruleSet = fc
    .uniqueArray(rule, { minLength: 1, maxLength: 6, selector: (r) => r.name })
    .filter((rules) => rules.every((r) => r.groups || r.emailDomains || r.claims))
    .map((rules) => validateMappingRules({ rules: rules.map(({ name, ...match }) => ({ name, match, grant: { roles: ['R'] } })) }));
  const claimValue = fc.oneof(userText, fc.array(userText), fc.integer(), fc.boolean(), fc.constant(null), fc.dictionary(userText, userText));

  test('deny by default: random claims that match no rule are always denied', () => {
    fc.assert(
      fc.property(ruleSet, fc.array(userText), fc.option(userText, { nil: undefined }), fc.dictionary(fc.constantFrom('department', 'team', 'sub', 'email', 'x'), claimValue), (rules, groups, email, claims) => {
        const result = evaluateMappingRules(rules, { groups, email, claims });
        expect(result.allowed).toBe(false);
        expect(result.matchedRules).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  test('a user whose group equals a rule pattern with no glob is allowed by that rule', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), fc.array(userText), (group, others) => {
        const rules = validateMappingRules({ rules: [{ name: 'exact', match: { groups: [group] }, grant: { roles: ['R'] } }] });
        expect(evaluateMappingRules(rules, { groups: [...others, group], claims: {} })).toMatchObject({ allowed: true, matchedRules: ['exact'] });
      }),
    );
  });

  test('size budget: no minted session ever exceeds it, and an overflow fails closed', async () => {
    const keySet = await generateSigningKeySet();
    const signer = new SessionSigner(
      new CachedSecret(new StaticSecretSource({ keys: keySet }), 'keys', (s) => parseGatewaySecret(s, SECRET_KINDS.signingKeys, 'keys'), { maxAgeMs: 60_000, rereadIntervalMs: 1000 }),
    );
    const name = fc.stringMatching(/^[A-Za-z0-9 _-]{1,60}$/);
    let overflows = 0;
    let fits = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(name, { maxLength: 60 }),
        fc.array(name, { maxLength: 60 }),
        fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/), fc.string({ maxLength: 80 }), { maxKeys: 20 }),
        fc.integer({ min: 512, max: MAX_SESSION_TOKEN_BYTES }),
        async (roles, groups, attributes, budget) => {
          const minted = await signer.mint(
            {
              issuer: 'https://gw.example.com/oauth2',
              audience: 'looker-gateway',
              sessionId: randomBytes(16).toString('base64url'),
              identity: { subject: 'user-1', email: 'user@example.com', name: 'User' },
              grant: { allowed: true, matchedRules: ['r'], roles: [...new Set(roles)], groups: [...new Set(groups)], attributes },
              timing: { now: 1_800_000_000, ttlSeconds: 600 },
            },
            budget,
          );
          if (minted.ok) {
            fits += 1;
            expect(Buffer.byteLength(minted.token)).toBeLessThanOrEqual(budget);
            expect(Buffer.byteLength(minted.assertion)).toBeLessThanOrEqual(budget);
            expect(decodeJwt(minted.token).roles_csv).toBe([...new Set(roles)].join(','));
          } else {
            overflows += 1;
            expect(minted.bytes).toBeGreaterThan(budget);
            expect(minted).not.toHaveProperty('token');
          }
        },
      ),
      { numRuns: 200 },
    );
    // Both sides of the budget were exercised.
    expect(fits).toBeGreaterThan(0);
    expect(overflows).toBeGreaterThan(0);
  });
});

describe('e-mail verification (issue 11 item 9, issue 16 item 4)', () => {
  // Each shape of `email_verified` an IdP may send, and whether it counts, without and with
  // trustUnverifiedEmail, for an IdP that sends booleans and for Cognito (strings in userinfo).
  test.each([
    ['boolean true', true, true, true, true],
    ['string "true" (Cognito userinfo)', 'true', false, false, true],
    ['missing (Entra ID)', undefined, false, true, false],
    ['boolean false', false, false, false, false],
    ['string "false" (Cognito userinfo)', 'false', false, false, false],
    ['string "TRUE"', 'TRUE', false, false, false],
    ['number 1', 1, false, false, false],
    ['null', null, false, false, false],
    ['string "yes"', 'yes', false, false, false],
  ])('email_verified %s: verified %s by default, %s when trusting unverified addresses, %s for Cognito', (_label, claim, byDefault, trusting, cognito) => {
    expect(isEmailVerified(claim, false)).toBe(byDefault);
    expect(isEmailVerified(claim, true)).toBe(trusting);
    expect(isEmailVerified(claim, false, 'boolean-or-string')).toBe(cognito);
  });

  test('one reading of the claim: isEmailVerified agrees with readEmailVerified (which the IdP profiles use) for every shape', () => {
    for (const claim of [true, false, 'true', 'false', 'TRUE', 1, null, 'yes']) {
      for (const shape of ['boolean', 'boolean-or-string'] as const) expect(isEmailVerified(claim, false, shape)).toBe(readEmailVerified(claim, shape) === true);
    }
  });

  test('an address the IdP does not vouch for is left out of the facts, the claims included', () => {
    const claims = { sub: 'u', email: 'mallory@example.com', groups: ['g'] };
    const facts = identityFacts(claims, { groupsClaim: '/groups', trustUnverifiedEmail: false });
    expect(facts).toEqual({ groups: ['g'], email: undefined, emailVerified: false, claims: { sub: 'u', groups: ['g'] }, unverifiedEmail: true });
    const rules = validateMappingRules({ rules: [{ name: 'by-address', match: { claims: [{ claim: 'email', values: ['mallory@example.com'] }] }, grant: { roles: ['Admin'] } }] });
    expect(evaluateMappingRules(rules, facts).allowed).toBe(false);
    const trusted = identityFacts(claims, { groupsClaim: '/groups', trustUnverifiedEmail: true });
    expect(trusted).toMatchObject({ email: 'mallory@example.com', emailVerified: true, unverifiedEmail: false });
    expect(evaluateMappingRules(rules, trusted).allowed).toBe(true);
  });

  test('groups are read at a JSON pointer (issue 16 item 9), and a directory\'s groups replace the claim', () => {
    const claims = { sub: 'u', realm_access: { roles: ['looker-admin', 'offline'] }, 'https://example.com/groups': ['ns-group'] };
    expect(identityFacts(claims, { groupsClaim: '/realm_access/roles', trustUnverifiedEmail: false }).groups).toEqual(['looker-admin', 'offline']);
    expect(identityFacts(claims, { groupsClaim: '/https:~1~1example.com~1groups', trustUnverifiedEmail: false }).groups).toEqual(['ns-group']);
    expect(identityFacts(claims, { groupsClaim: '/missing', trustUnverifiedEmail: false }).groups).toEqual([]);
    expect(identityFacts(claims, { groupsClaim: '/realm_access/roles', groups: ['from-directory'], trustUnverifiedEmail: false }).groups).toEqual(['from-directory']);
  });
});
