/**
 * The Looker stand-in's model of Looker's OpenID Connect authentication, as Looker's
 * documentation describes it (docs/looker-oidc.md has every source): one `oidc_config`
 * that `PATCH /api/4.0/oidc_config` changes only when the new state is valid, the roles
 * and user attributes it refers to by id, and what a login applies to a Looker user.
 * No HTTP here: looker-stand-in.ts serves it, looker-oidc-login.ts runs the login flow.
 *
 * Where the documentation leaves a behaviour open, the model takes the stricter reading and
 * says so next to the rule, so that what passes here does not rely on Looker being lenient.
 */
import type { LookerNamedObject, OidcConfigRead, OidcConfigWrite, OidcGroupWrite, OidcUserAttributeWrite } from '../../../core/looker/oidc-config';
import { LOOKER_MIGRATION_TYPES } from '../../../core/looker/oidc-config';

/** Looker's documentation links, quoted in error answers as Looker does (`documentation_url`). */
export const LOOKER_DOCS = {
  updateOidcConfig: 'https://cloud.google.com/looker/docs/reference/looker-api/latest/methods/Auth/update_oidc_config',
  login: 'https://cloud.google.com/looker/docs/reference/looker-api/latest/methods/ApiAuth/login',
  apiTroubleshooting: 'https://cloud.google.com/looker/docs/api-troubleshooting',
  oidcAdmin: 'https://cloud.google.com/looker/docs/admin-panel-authentication-openid-connect',
} as const;

/** Looker's built-in roles (ids as a fresh instance numbers them in this model). */
export const DEFAULT_LOOKER_ROLES: readonly LookerNamedObject[] = [
  { id: '2', name: 'Admin' },
  { id: '3', name: 'Developer' },
  { id: '4', name: 'User' },
  { id: '5', name: 'Viewer' },
];

/** Looker's system user attributes, plus the `region` attribute the local mapping sets. */
export const DEFAULT_LOOKER_USER_ATTRIBUTES: readonly LookerNamedObject[] = [
  { id: '1', name: 'email' },
  { id: '2', name: 'first_name' },
  { id: '3', name: 'last_name' },
  { id: '4', name: 'locale' },
  { id: '10', name: 'region' },
];

/** A field error of a 422 answer (Looker's `ValidationErrorDetail`). */
export interface FieldError {
  readonly field: string;
  readonly code: 'missing' | 'invalid' | 'not_found';
  readonly message: string;
}

const STRING_FIELDS = [
  'audience',
  'authorization_endpoint',
  'groups_attribute',
  'identifier',
  'issuer',
  'new_user_migration_types',
  'secret',
  'token_endpoint',
  'user_attribute_map_email',
  'user_attribute_map_first_name',
  'user_attribute_map_last_name',
  'userinfo_endpoint',
] as const;
const BOOLEAN_FIELDS = [
  'alternate_email_login_allowed',
  'auth_requires_role',
  'enabled',
  'set_roles_from_groups',
  'allow_normal_group_membership',
  'allow_roles_from_normal_groups',
  'allow_direct_roles',
] as const;
const LIST_FIELDS = ['scopes', 'default_new_user_group_ids', 'default_new_user_role_ids', 'groups_with_role_ids', 'user_attributes_with_ids'] as const;
/** Read-only fields of OIDCConfig: Looker's API documents them as read-only; a PATCH that carries them changes nothing. */
const READ_ONLY_FIELDS = new Set([
  'can',
  'default_new_user_groups',
  'default_new_user_roles',
  'groups',
  'modified_at',
  'modified_by',
  'test_slug',
  'user_attributes',
  'url',
]);
const URL_FIELDS = ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint'] as const;
/**
 * Fields an enabled configuration needs. The API reference says only that updates succeed
 * when "all required fields are populated"; the Admin panel asks for each of these. The
 * model requires them all (the stricter reading).
 */
const REQUIRED_WHEN_ENABLED = [
  'identifier',
  'secret',
  'issuer',
  'audience',
  'authorization_endpoint',
  'token_endpoint',
  'userinfo_endpoint',
  'user_attribute_map_email',
  'user_attribute_map_first_name',
  'user_attribute_map_last_name',
] as const;

type StoredConfig = { -readonly [K in keyof OidcConfigWrite]: OidcConfigWrite[K] };

/** A fresh instance: OIDC off, alternate login off, nothing mapped. */
function initialConfig(): StoredConfig {
  return {
    enabled: false,
    alternate_email_login_allowed: false,
    auth_requires_role: false,
    set_roles_from_groups: false,
    allow_normal_group_membership: false,
    allow_roles_from_normal_groups: false,
    allow_direct_roles: false,
    scopes: [],
    groups_with_role_ids: [],
    user_attributes_with_ids: [],
    default_new_user_role_ids: [],
    default_new_user_group_ids: [],
  };
}

export interface LookerDirectory {
  readonly roles: readonly LookerNamedObject[];
  readonly userAttributes: readonly LookerNamedObject[];
}

export type PatchOutcome = { readonly ok: true; readonly config: OidcConfigRead } | { readonly ok: false; readonly errors: readonly FieldError[] };

/** Looker's one OIDC configuration: read (never the secret) and patched only into a valid state. */
export class LookerOidcConfigStore {
  private config: StoredConfig = initialConfig();
  private modifiedAt: string | null = null;
  /** Every successful PATCH body, newest last, secrets replaced (tests check what was written). */
  readonly patches: Array<Record<string, unknown>> = [];

  constructor(private readonly directory: LookerDirectory) {}

  /** The current configuration as `GET /api/4.0/oidc_config` answers it. */
  read(): OidcConfigRead {
    const { secret: _secret, ...visible } = this.config;
    const role = (id: string) => this.directory.roles.find((r) => r.id === id);
    const attribute = (id: string) => this.directory.userAttributes.find((a) => a.id === id);
    return {
      ...visible,
      groups: (this.config.groups_with_role_ids ?? []).map((g) => ({
        name: g.name ?? '',
        looker_group_name: g.looker_group_name ?? g.name ?? null,
        roles: (g.role_ids ?? []).map((id) => role(id)).filter((r): r is LookerNamedObject => r !== undefined),
      })),
      user_attributes: (this.config.user_attributes_with_ids ?? []).map((a) => ({
        name: a.name ?? '',
        required: a.required ?? false,
        user_attributes: (a.user_attribute_ids ?? []).map((id) => attribute(id)).filter((x): x is LookerNamedObject => x !== undefined),
      })),
      modified_at: this.modifiedAt,
      url: '/api/4.0/oidc_config',
    };
  }

  /** The stored configuration including the secret: what the login flow uses. */
  current(): OidcConfigWrite {
    return this.config;
  }

  /**
   * PATCH semantics: the fields given replace the stored ones (a list replaces the whole
   * list), fields left out keep their value, `secret` is kept unless a new one is given.
   * The result must be valid, or nothing changes (docs: "Updates only succeed if the new
   * state will be valid").
   */
  patch(body: unknown): PatchOutcome {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return { ok: false, errors: [{ field: 'body', code: 'invalid', message: 'The body must be a JSON object (OIDCConfig).' }] };
    }
    const shapeErrors: FieldError[] = [];
    const changes: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(body as Record<string, unknown>)) {
      if (READ_ONLY_FIELDS.has(field)) continue;
      const error = typeError(field, value);
      if (error) shapeErrors.push(error);
      else changes[field] = value;
    }
    if (shapeErrors.length > 0) return { ok: false, errors: shapeErrors };
    const candidate: StoredConfig = { ...this.config, ...changes };
    const errors = validateOidcConfig(candidate, this.directory);
    if (errors.length > 0) return { ok: false, errors };
    this.config = candidate;
    this.modifiedAt = new Date().toISOString();
    this.patches.push({ ...changes, ...('secret' in changes ? { secret: '[set]' } : {}) });
    return { ok: true, config: this.read() };
  }

  /** Whether `secret` is the stored client secret (tests: the custom resource wrote the right one). */
  secretIs(secret: string): boolean {
    return this.config.secret === secret;
  }
}

function typeError(field: string, value: unknown): FieldError | undefined {
  if ((STRING_FIELDS as readonly string[]).includes(field)) {
    return value === null || typeof value === 'string' ? undefined : { field, code: 'invalid', message: `${field} must be a string or null.` };
  }
  if ((BOOLEAN_FIELDS as readonly string[]).includes(field)) {
    return typeof value === 'boolean' ? undefined : { field, code: 'invalid', message: `${field} must be true or false.` };
  }
  if ((LIST_FIELDS as readonly string[]).includes(field)) {
    return value === null || Array.isArray(value) ? undefined : { field, code: 'invalid', message: `${field} must be a list or null.` };
  }
  // The API reference lists every field of OIDCConfig; the model refuses any other name
  // (stricter than a server that might ignore it), so a misspelt field cannot pass unnoticed.
  return { field, code: 'invalid', message: `${field} is not a field of OIDCConfig.` };
}

function isHttpsUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}

function blank(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

/** Every reason the configuration is not valid, in field order; empty when it is. */
export function validateOidcConfig(config: OidcConfigWrite, directory: LookerDirectory): FieldError[] {
  const errors: FieldError[] = [];
  const roleIds = new Set(directory.roles.map((r) => r.id));
  const attributeIds = new Set(directory.userAttributes.map((a) => a.id));
  if (config.enabled) {
    for (const field of REQUIRED_WHEN_ENABLED) {
      if (blank(config[field])) errors.push({ field, code: 'missing', message: `${field} is required when OpenID Connect is enabled.` });
    }
    const scopes = config.scopes ?? [];
    if (!scopes.includes('openid')) errors.push({ field: 'scopes', code: 'invalid', message: 'scopes must include "openid".' });
  }
  // The Admin panel takes URLs; the model accepts https only (every OP here is HTTPS).
  for (const field of URL_FIELDS) {
    if (!blank(config[field]) && !isHttpsUrl(config[field])) errors.push({ field, code: 'invalid', message: `${field} must be an absolute https URL.` });
  }
  if (config.set_roles_from_groups && blank(config.groups_attribute)) {
    errors.push({ field: 'groups_attribute', code: 'missing', message: 'groups_attribute is required when set_roles_from_groups is true.' });
  }
  (config.groups_with_role_ids ?? []).forEach((group: OidcGroupWrite, index) => {
    const field = `groups_with_role_ids[${index}]`;
    if (group === null || typeof group !== 'object')
      return void errors.push({ field, code: 'invalid', message: `${field} must be an object (OIDCGroupWrite).` });
    if (blank(group.name)) errors.push({ field: `${field}.name`, code: 'missing', message: `${field}.name (the group's name in OIDC) is required.` });
    for (const id of group.role_ids ?? []) {
      if (!roleIds.has(String(id))) errors.push({ field: `${field}.role_ids`, code: 'not_found', message: `Role ${JSON.stringify(id)} does not exist.` });
    }
  });
  (config.user_attributes_with_ids ?? []).forEach((attribute: OidcUserAttributeWrite, index) => {
    const field = `user_attributes_with_ids[${index}]`;
    if (attribute === null || typeof attribute !== 'object')
      return void errors.push({ field, code: 'invalid', message: `${field} must be an object (OIDCUserAttributeWrite).` });
    if (blank(attribute.name)) errors.push({ field: `${field}.name`, code: 'missing', message: `${field}.name (the claim's name in OIDC) is required.` });
    const ids = attribute.user_attribute_ids ?? [];
    if (ids.length === 0)
      errors.push({
        field: `${field}.user_attribute_ids`,
        code: 'missing',
        message: `${field}.user_attribute_ids needs at least one Looker user attribute id.`,
      });
    for (const id of ids) {
      if (!attributeIds.has(String(id)))
        errors.push({ field: `${field}.user_attribute_ids`, code: 'not_found', message: `User attribute ${JSON.stringify(id)} does not exist.` });
    }
  });
  for (const id of config.default_new_user_role_ids ?? []) {
    if (!roleIds.has(String(id))) errors.push({ field: 'default_new_user_role_ids', code: 'not_found', message: `Role ${JSON.stringify(id)} does not exist.` });
  }
  if (!blank(config.new_user_migration_types)) {
    for (const type of String(config.new_user_migration_types)
      .split(',')
      .map((t) => t.trim())) {
      if (!(LOOKER_MIGRATION_TYPES as readonly string[]).includes(type)) {
        errors.push({
          field: 'new_user_migration_types',
          code: 'invalid',
          message: `${JSON.stringify(type)} is not one of ${LOOKER_MIGRATION_TYPES.join(', ')}.`,
        });
      }
    }
  }
  return errors;
}

/** A Looker user made or updated by an OIDC login. */
export interface LookerUser {
  readonly id: string;
  /** `sub` of the OP: the key of the user's OIDC credentials. */
  readonly subject: string;
  readonly email: string;
  readonly firstName: string;
  readonly lastName: string;
  readonly roleIds: readonly string[];
  /** Looker groups the user is in (mirrored OIDC groups). */
  readonly groupNames: readonly string[];
  /** Looker user attribute id to value. */
  readonly attributeValues: Readonly<Record<string, string>>;
  readonly logins: number;
}

export type LoginDecision = { readonly ok: true; readonly user: LookerUser } | { readonly ok: false; readonly reason: string; readonly detail: string };

/**
 * What Looker applies at an OIDC login, from the user's claims (userinfo) and the stored
 * configuration:
 * - e-mail, first and last name from the claims `user_attribute_map_*` names;
 * - with `set_roles_from_groups`, the roles of every `groups_with_role_ids` entry whose
 *   `name` is among the `groups_attribute` claim's values, replacing the user's roles at
 *   each login (the groups are mirrored: the directory manages them), and membership of the
 *   mirrored Looker groups; `default_new_user_role_ids` only on the first login;
 * - with `auth_requires_role`, no role found in OIDC refuses the login;
 * - each `user_attributes_with_ids` entry sets its Looker user attributes from its claim;
 *   a `required` claim that is missing refuses the login.
 */
export function decideLogin(
  config: OidcConfigWrite,
  claims: Readonly<Record<string, unknown>>,
  existing: LookerUser | undefined,
  newId: () => string,
): LoginDecision {
  const text = (name: string | null | undefined): string => {
    if (!name) return '';
    const value = claims[name];
    return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
  };
  const subject = text('sub');
  if (!subject) return { ok: false, reason: 'no-subject', detail: 'The OpenID provider gave no "sub" for the user.' };
  const email = text(config.user_attribute_map_email);
  // Looker keys accounts and migration by e-mail: a login without one cannot make a user.
  if (!email)
    return {
      ok: false,
      reason: 'no-email',
      detail: `The OpenID provider gave no ${JSON.stringify(config.user_attribute_map_email)} claim (Looker's e-mail attribute).`,
    };

  const oidcGroups = groupValues(config.groups_attribute ? claims[config.groups_attribute] : undefined);
  const matched = (config.groups_with_role_ids ?? []).filter((group) => group.name && oidcGroups.includes(group.name));
  const rolesFromOidc = [...new Set(matched.flatMap((group) => (group.role_ids ?? []).map(String)))];
  const groupNames = [...new Set(matched.map((group) => group.looker_group_name || group.name || ''))].filter(Boolean);
  if (config.auth_requires_role && (!config.set_roles_from_groups || rolesFromOidc.length === 0)) {
    return {
      ok: false,
      reason: 'no-role',
      detail: `No Looker role was found for you in OpenID Connect (groups ${oidcGroups.length ? oidcGroups.map((g) => JSON.stringify(g)).join(', ') : 'none'}), and this Looker requires one.`,
    };
  }

  const attributeValues: Record<string, string> = { ...(existing?.attributeValues ?? {}) };
  for (const mapping of config.user_attributes_with_ids ?? []) {
    const value = mapping.name ? claims[mapping.name] : undefined;
    const present = typeof value === 'string' ? value.length > 0 : typeof value === 'number' || typeof value === 'boolean';
    if (!present) {
      if (mapping.required)
        return { ok: false, reason: 'missing-required-attribute', detail: `The required claim ${JSON.stringify(mapping.name)} is missing.` };
      continue;
    }
    for (const id of mapping.user_attribute_ids ?? []) attributeValues[String(id)] = String(value);
  }

  const defaultRoles = existing ? [] : (config.default_new_user_role_ids ?? []).map(String);
  const roleIds = config.set_roles_from_groups ? [...new Set([...rolesFromOidc, ...defaultRoles])] : existing ? [...existing.roleIds] : defaultRoles;
  return {
    ok: true,
    user: {
      id: existing?.id ?? newId(),
      subject,
      email,
      firstName: text(config.user_attribute_map_first_name),
      lastName: text(config.user_attribute_map_last_name),
      roleIds,
      groupNames: config.set_roles_from_groups ? groupNames : (existing?.groupNames ?? []),
      attributeValues,
      logins: (existing?.logins ?? 0) + 1,
    },
  };
}

/**
 * The groups claim's values. Looker's documentation names the claim but not its form; the
 * model takes a JSON array of strings (or one string, as one group) and nothing else.
 */
function groupValues(value: unknown): string[] {
  if (typeof value === 'string') return value.length > 0 ? [value] : [];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v.length > 0);
  return [];
}
