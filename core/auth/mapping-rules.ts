/**
 * Claim mapping as data: rules from IdP groups and claims to Looker roles, Looker
 * groups and user attributes. Deny by default: a user that matches no rule gets no
 * session. Pure (no AWS, no crypto): the construct validates rules at synth time and
 * the auth service evaluates them at run time from the same code.
 *
 * Size: one small language (its types, its validation and its evaluation), which the
 * construct and the auth service must read identically.
 */
import { ATTRIBUTE_NAME_PATTERN } from '../session-contract';
import { claimValues, readClaimStrings } from './claim-pointer';

/** A condition on one IdP claim. */
export interface ClaimCondition {
  /** Claim name in the ID token or userinfo answer (for example `department`). */
  readonly claim: string;
  /**
   * Patterns, any of which must match the claim's value (or, for an array claim, any
   * of its elements). Exact text, or a glob where `*` matches any run of characters
   * and `?` exactly one. Matching is case-sensitive.
   */
  readonly values: string[];
}

/**
 * When a rule applies. Every condition that is given must hold (AND); within one
 * condition any listed pattern may match (OR). At least one condition is required.
 */
export interface RuleMatch {
  /**
   * Patterns matched against the user's IdP groups (the claim named by the service's
   * groups-claim setting): the rule matches if any group matches any pattern.
   * Case-sensitive, exact or glob (`*`, `?`).
   * @default - groups are not checked
   */
  readonly groups?: string[];
  /**
   * Domains of the user's e-mail address (the part after `@`), exact or glob, compared
   * case-insensitively. Only an address the IdP marks verified counts
   * (`email_verified: true`); a missing or false `email_verified` never matches unless
   * the IdP is configured to trust addresses without the claim.
   * @default - the e-mail domain is not checked
   */
  readonly emailDomains?: string[];
  /**
   * Conditions on other claims; all of them must hold.
   * @default - no other claim is checked
   */
  readonly claims?: ClaimCondition[];
}

/** What a matching rule gives the user. At least one role, group or attribute. */
export interface RuleGrant {
  /**
   * Looker roles.
   * @default - no roles
   */
  readonly roles?: string[];
  /**
   * Looker groups.
   * @default - no groups
   */
  readonly groups?: string[];
  /**
   * Looker user attributes, name to value (for example `{ "team": "finance" }`).
   * Names: lower case letters, digits and `_`, starting with a letter.
   * @default - no attributes
   */
  readonly attributes?: { [name: string]: string };
}

export interface MappingRule {
  /** Unique name, reported in audit events as a matched rule. */
  readonly name: string;
  readonly match: RuleMatch;
  readonly grant: RuleGrant;
}

/**
 * What happens when two matching rules set the same attribute to different values.
 * A string enum (jsii-friendly): its values are the strings of the JSON form of rules
 * (cdk.json, LG_MAPPING_RULES), so `"join"` in JSON and `AttributeConflictPolicy.JOIN`
 * in code are the same value.
 */
export enum AttributeConflictPolicy {
  /** The first matching rule (in list order) wins. */
  FIRST_MATCH = 'first-match',
  /** Values are joined with a comma, in rule order (Looker reads it as a multi-value filter). */
  JOIN = 'join',
  /** The user is denied with reason `attribute-conflict`. */
  DENY = 'deny',
}

export interface MappingRuleSet {
  /** Evaluated in order; every matching rule contributes. */
  readonly rules: MappingRule[];
  /**
   * Required as soon as two rules can set the same attribute to different values.
   * @default - no conflicts are allowed: validation fails if rules set one attribute to different values
   */
  readonly attributeConflicts?: AttributeConflictPolicy;
}

/** The facts about a user that rules look at, read from the ID token or userinfo. */
export interface IdentityFacts {
  /** IdP groups (the configured groups claim, as strings). */
  readonly groups: readonly string[];
  /** E-mail address, when the IdP gave one. */
  readonly email?: string;
  /**
   * Whether the IdP vouches for the address (see {@link isEmailVerified}). Anything but
   * `true` disables e-mail domain rules.
   */
  readonly emailVerified?: boolean;
  /** Every claim, for `claims` conditions. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface MappingGrant {
  readonly allowed: true;
  readonly matchedRules: readonly string[];
  readonly roles: readonly string[];
  readonly groups: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
}

export interface MappingDenial {
  readonly allowed: false;
  /** `no-rule-matched` or `attribute-conflict`. */
  readonly reason: 'no-rule-matched' | 'attribute-conflict';
  readonly matchedRules: readonly string[];
  /** A sentence for the audit event and the error page. */
  readonly detail: string;
}

export type MappingResult = MappingGrant | MappingDenial;

/** Longest name, pattern or value accepted (characters). */
const MAX_TEXT_LENGTH = 256;
/** Roles and groups travel comma-separated, and all of it in HTTP headers. */
// eslint-disable-next-line no-control-regex -- control characters are what this rejects
const FORBIDDEN_IN_NAMES = /[,\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex -- control characters are what this rejects
const FORBIDDEN_IN_VALUES = /[\u0000-\u001f\u007f]/;
/** Glob syntax this module does not support, so it is rejected rather than taken literally. */
const UNSUPPORTED_GLOB = /[[\]{}!\\]/;
const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_:./-]{0,127}$/;

class RuleError extends Error {}

function fail(where: string, message: string): never {
  throw new RuleError(`Invalid claim mapping rules: ${where}: ${message}`);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkPattern(where: string, pattern: unknown, kind: string): void {
  if (typeof pattern !== 'string') fail(where, `${kind} pattern ${describe(pattern)} must be a string.`);
  if (pattern.length === 0) fail(where, `${kind} pattern is empty: give the exact text, or "*" to accept any value.`);
  if (pattern.length > MAX_TEXT_LENGTH) fail(where, `${kind} pattern ${describe(pattern)} is longer than ${MAX_TEXT_LENGTH} characters.`);
  if (pattern.trim() !== pattern) fail(where, `${kind} pattern ${describe(pattern)} has leading or trailing spaces: remove them.`);
  if (FORBIDDEN_IN_VALUES.test(pattern)) fail(where, `${kind} pattern ${describe(pattern)} contains control characters.`);
  if (UNSUPPORTED_GLOB.test(pattern)) {
    fail(
      where,
      `${kind} pattern ${describe(pattern)} uses glob syntax that is not supported: only "*" (any run of characters) and "?" (one character) are; list alternatives as separate patterns.`,
    );
  }
  if (pattern.includes('**')) fail(where, `${kind} pattern ${describe(pattern)} contains "**": a single "*" already matches any run of characters.`);
}

function checkPatternList(where: string, list: unknown, kind: string): void {
  if (!Array.isArray(list)) fail(where, `${kind} must be a list of patterns, got ${describe(list)}.`);
  if (list.length === 0) fail(where, `${kind} is an empty list: remove it or give at least one pattern.`);
  list.forEach((pattern) => checkPattern(where, pattern, kind));
}

function checkNameList(where: string, list: unknown, kind: string): number {
  if (list === undefined) return 0;
  if (!Array.isArray(list)) fail(where, `grant.${kind} must be a list of names, got ${describe(list)}.`);
  for (const name of list) {
    if (typeof name !== 'string' || name.length === 0 || name.trim() !== name || name.length > MAX_TEXT_LENGTH) {
      fail(where, `grant.${kind} entry ${describe(name)} must be a non-empty name without leading or trailing spaces, at most ${MAX_TEXT_LENGTH} characters.`);
    }
    if (FORBIDDEN_IN_NAMES.test(name))
      fail(where, `grant.${kind} entry ${describe(name)} contains a comma or control character: names travel comma-separated in headers.`);
  }
  return list.length;
}

function checkRule(rule: unknown, index: number): MappingRule {
  let where = `rule #${index + 1}`;
  if (!isRecord(rule)) fail(where, `expected an object { name, match, grant }, got ${describe(rule)}.`);
  if (typeof rule.name !== 'string' || rule.name.trim() === '' || rule.name.length > MAX_TEXT_LENGTH || FORBIDDEN_IN_NAMES.test(rule.name)) {
    fail(where, `name ${describe(rule.name)} must be a non-empty string without commas or control characters (it names the rule in audit events).`);
  }
  where = `rule #${index + 1} (${describe(rule.name)})`;
  for (const key of Object.keys(rule)) {
    if (!['name', 'match', 'grant'].includes(key)) fail(where, `unknown field ${describe(key)}: a rule has name, match and grant.`);
  }

  const match = rule.match;
  if (!isRecord(match)) fail(where, `match must be an object with groups, emailDomains and/or claims, got ${describe(match)}.`);
  for (const key of Object.keys(match)) {
    if (!['groups', 'emailDomains', 'claims'].includes(key)) fail(where, `unknown match field ${describe(key)}: use groups, emailDomains or claims.`);
  }
  if (match.groups === undefined && match.emailDomains === undefined && match.claims === undefined) {
    fail(
      where,
      'match is empty: a rule must say whom it applies to (groups, emailDomains or claims); to match every user use { "claims": [{ "claim": "sub", "values": ["*"] }] }.',
    );
  }
  if (match.groups !== undefined) checkPatternList(where, match.groups, 'match.groups');
  if (match.emailDomains !== undefined) {
    checkPatternList(where, match.emailDomains, 'match.emailDomains');
    for (const domain of match.emailDomains as string[]) {
      if (domain.includes('@')) fail(where, `match.emailDomains entry ${describe(domain)} contains "@": give the domain only, for example "example.com".`);
    }
  }
  if (match.claims !== undefined) {
    if (!Array.isArray(match.claims) || match.claims.length === 0)
      fail(where, `match.claims must be a non-empty list of { claim, values }, got ${describe(match.claims)}.`);
    for (const condition of match.claims) {
      if (!isRecord(condition)) fail(where, `match.claims entry ${describe(condition)} must be { claim, values }.`);
      if (typeof condition.claim !== 'string' || !CLAIM_NAME.test(condition.claim)) {
        fail(where, `match.claims entry names claim ${describe(condition.claim)}: a claim name is letters, digits and _ : . / - (for example "department").`);
      }
      checkPatternList(where, condition.values, `match.claims[${describe(condition.claim)}].values`);
    }
  }

  const grant = rule.grant;
  if (!isRecord(grant)) fail(where, `grant must be an object with roles, groups and/or attributes, got ${describe(grant)}.`);
  for (const key of Object.keys(grant)) {
    if (!['roles', 'groups', 'attributes'].includes(key)) fail(where, `unknown grant field ${describe(key)}: use roles, groups or attributes.`);
  }
  let granted = checkNameList(where, grant.roles, 'roles') + checkNameList(where, grant.groups, 'groups');
  if (grant.attributes !== undefined) {
    if (!isRecord(grant.attributes)) fail(where, `grant.attributes must be an object of name to value, got ${describe(grant.attributes)}.`);
    for (const [name, value] of Object.entries(grant.attributes)) {
      if (!ATTRIBUTE_NAME_PATTERN.test(name)) {
        fail(
          where,
          `attribute name ${describe(name)} is invalid: use lower case letters, digits and "_", starting with a letter, at most 32 characters (for example "region" or "cost_center").`,
        );
      }
      if (typeof value !== 'string' || value.length > MAX_TEXT_LENGTH || FORBIDDEN_IN_VALUES.test(value)) {
        fail(
          where,
          `attribute ${describe(name)} has value ${describe(value)}: a value is a string of at most ${MAX_TEXT_LENGTH} characters without control characters.`,
        );
      }
      granted += 1;
    }
  }
  if (granted === 0)
    fail(
      where,
      'grants nothing: give at least one of grant.roles, grant.groups or grant.attributes (users who should not get in need no rule: access is denied by default).',
    );
  return rule as unknown as MappingRule;
}

/**
 * Checks a rule set and returns it typed. Throws an Error that names the rule, the bad
 * value and the fix. Accepts parsed JSON (`unknown`), so the auth service can validate
 * what it read from its environment with the same code the construct runs at synth.
 */
export function validateMappingRules(ruleSet: unknown): MappingRuleSet {
  if (!isRecord(ruleSet)) fail('rule set', `expected { "rules": [...] }, got ${describe(ruleSet)}.`);
  for (const key of Object.keys(ruleSet)) {
    if (!['rules', 'attributeConflicts'].includes(key)) fail('rule set', `unknown field ${describe(key)}: a rule set has rules and attributeConflicts.`);
  }
  const policies: readonly string[] = Object.values(AttributeConflictPolicy);
  if (ruleSet.attributeConflicts !== undefined && !policies.includes(ruleSet.attributeConflicts as string)) {
    fail('attributeConflicts', `${describe(ruleSet.attributeConflicts)} is not a policy: use one of ${policies.map((p) => `"${p}"`).join(', ')}.`);
  }
  if (!Array.isArray(ruleSet.rules) || ruleSet.rules.length === 0) {
    fail('rules', `expected a non-empty list of rules, got ${describe(ruleSet.rules)}: with no rules every user is denied.`);
  }
  const rules = ruleSet.rules.map(checkRule);
  const seen = new Set<string>();
  for (const rule of rules) {
    if (seen.has(rule.name)) fail(`rule ${describe(rule.name)}`, 'the name is used twice: rule names must be unique (audit events report them).');
    seen.add(rule.name);
  }
  if (ruleSet.attributeConflicts === undefined) {
    const firstSetter = new Map<string, { rule: string; value: string }>();
    for (const rule of rules) {
      for (const [name, value] of Object.entries(rule.grant.attributes ?? {})) {
        const first = firstSetter.get(name);
        if (first && first.value !== value) {
          fail(
            'attributeConflicts',
            `rules ${describe(first.rule)} and ${describe(rule.name)} set attribute ${describe(name)} to different values (${describe(first.value)} and ${describe(value)}), and a user may match both: set attributeConflicts to "first-match", "join" or "deny".`,
          );
        }
        if (!first) firstSetter.set(name, { rule: rule.name, value });
      }
    }
  }
  return ruleSet as unknown as MappingRuleSet;
}

/** `*` any run, `?` one character, everything else literal. */
export function globToRegExp(pattern: string, caseInsensitive = false): RegExp {
  const source = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, caseInsensitive ? 'isu' : 'su');
}

function matchesAny(values: readonly string[], patterns: readonly string[], caseInsensitive = false): boolean {
  if (values.length === 0) return false;
  const expressions = patterns.map((p) => globToRegExp(p, caseInsensitive));
  return values.some((value) => expressions.some((re) => re.test(value)));
}

function emailDomain(facts: IdentityFacts): string[] {
  if (facts.emailVerified !== true || typeof facts.email !== 'string') return [];
  const at = facts.email.lastIndexOf('@');
  return at > 0 && at < facts.email.length - 1 ? [facts.email.slice(at + 1)] : [];
}

/** How `email_verified` arrives: a JSON boolean, or (Cognito's userinfo) the strings "true"/"false". */
export type EmailVerifiedShape = 'boolean' | 'boolean-or-string';

/**
 * `email_verified` as a boolean, or undefined when it is missing or unreadable. A JSON
 * boolean always counts; the strings "true" and "false" count only for an IdP that sends
 * them (Cognito's userinfo), so a string can never pass as verified elsewhere. The one
 * reading of the claim: the IdP profiles and the rules both use it.
 */
export function readEmailVerified(value: unknown, shape: EmailVerifiedShape): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (shape === 'boolean-or-string' && (value === 'true' || value === 'false')) return value === 'true';
  return undefined;
}

/**
 * Whether an IdP's `email_verified` claim vouches for the address (read as
 * {@link readEmailVerified} reads it for the IdP's shape). A missing claim counts only
 * when `trustUnverifiedEmail` is set (IdPs such as Entra ID never send it); `false`, a
 * string the IdP is not known to send, and anything else never count.
 */
export function isEmailVerified(claim: unknown, trustUnverifiedEmail: boolean, shape: EmailVerifiedShape = 'boolean'): boolean {
  const verified = readEmailVerified(claim, shape);
  if (verified !== undefined) return verified;
  return claim === undefined && trustUnverifiedEmail;
}

export interface IdentityFactsOptions {
  /**
   * Where the groups are: a JSON pointer (RFC 6901, see claim-pointer.ts) into the claims.
   * @default - no groups from the claims
   */
  readonly groupsClaim?: string;
  /** Groups read elsewhere (a directory): used instead of the claim. @default - the claim's */
  readonly groups?: readonly string[];
  /** Whether an address without `email_verified` counts as verified. */
  readonly trustUnverifiedEmail: boolean;
  /** How the IdP writes `email_verified`. @default 'boolean' */
  readonly emailVerified?: EmailVerifiedShape;
}

/**
 * The facts rules look at, from the IdP's claims (ID token and userinfo merged). An
 * address the IdP does not vouch for is left out entirely, also from `claims`, so no
 * rule (not even a `claims` condition on `email`) and no header can rely on it.
 */
export function identityFacts(claims: Readonly<Record<string, unknown>>, options: IdentityFactsOptions): IdentityFacts & { readonly unverifiedEmail: boolean } {
  const address = typeof claims.email === 'string' && claims.email !== '' ? claims.email : undefined;
  const verified = address !== undefined && isEmailVerified(claims.email_verified, options.trustUnverifiedEmail, options.emailVerified);
  const trusted: Record<string, unknown> = { ...claims };
  if (!verified) delete trusted.email;
  const groups = options.groups ?? (options.groupsClaim !== undefined ? readClaimStrings(claims, options.groupsClaim).values : []);
  return {
    groups: [...groups],
    email: verified ? address : undefined,
    emailVerified: verified,
    claims: trusted,
    unverifiedEmail: address !== undefined && !verified,
  };
}

export function ruleMatches(rule: MappingRule, facts: IdentityFacts): boolean {
  const { groups, emailDomains, claims } = rule.match;
  if (groups && !matchesAny(facts.groups, groups)) return false;
  if (emailDomains && !matchesAny(emailDomain(facts), emailDomains, true)) return false;
  if (claims && !claims.every((c) => matchesAny(claimValues(facts.claims[c.claim]), c.values))) return false;
  return groups !== undefined || emailDomains !== undefined || claims !== undefined;
}

function addUnique(target: string[], values: readonly string[] | undefined): void {
  for (const value of values ?? []) if (!target.includes(value)) target.push(value);
}

/** Runs the rules over a user's facts. Deny by default. */
export function evaluateMappingRules(ruleSet: MappingRuleSet, facts: IdentityFacts): MappingResult {
  const matched = ruleSet.rules.filter((rule) => ruleMatches(rule, facts));
  const matchedRules = matched.map((rule) => rule.name);
  if (matched.length === 0) {
    return { allowed: false, reason: 'no-rule-matched', matchedRules, detail: 'No access rule matches your account.' };
  }
  const roles: string[] = [];
  const groups: string[] = [];
  const attributeValues = new Map<string, string[]>();
  for (const rule of matched) {
    addUnique(roles, rule.grant.roles);
    addUnique(groups, rule.grant.groups);
    for (const [name, value] of Object.entries(rule.grant.attributes ?? {})) {
      const values = attributeValues.get(name) ?? [];
      if (!values.includes(value)) values.push(value);
      attributeValues.set(name, values);
    }
  }
  const policy = ruleSet.attributeConflicts ?? AttributeConflictPolicy.DENY;
  const attributes: Record<string, string> = {};
  for (const [name, values] of attributeValues) {
    if (values.length > 1 && policy === AttributeConflictPolicy.DENY) {
      return {
        allowed: false,
        reason: 'attribute-conflict',
        matchedRules,
        detail: `The access rules give your account conflicting values for the attribute "${name}".`,
      };
    }
    attributes[name] = policy === AttributeConflictPolicy.JOIN ? values.join(',') : values[0];
  }
  return { allowed: true, matchedRules, roles, groups, attributes };
}
