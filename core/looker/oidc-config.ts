/**
 * Looker's OpenID Connect configuration as its API 4.0 describes it (the JSON shapes of
 * `GET`/`PATCH /api/4.0/oidc_config`, `POST /api/4.0/login`, roles and user attributes),
 * and the pure pieces of configuring Looker to use the gateway's broker: the settings the
 * construct hands to its custom resource, the name-to-id resolution, and the `oidc_config`
 * the custom resource writes. Pure (no AWS, no I/O): imported by lib/ (at synth), by the
 * custom resource in lambda/ (at run time) and by the Looker stand-in in local/.
 *
 * Sources for every field: docs/looker-oidc.md.
 */
import { LOOKER_CLAIMS, LOOKER_SCOPES, lookerAttributeClaim, lookerBrokerEndpoints } from '../auth/looker-broker';

/** Looker API 4.0 paths the gateway uses (relative to the API's base URL). */
export const LOOKER_API_PATHS = {
  login: '/api/4.0/login',
  oidcConfig: '/api/4.0/oidc_config',
  roles: '/api/4.0/roles',
  userAttributes: '/api/4.0/user_attributes',
} as const;

/** `OIDCGroupWrite`: one OpenID Connect group and the Looker roles it grants. */
export interface OidcGroupWrite {
  readonly id?: string | null;
  /** Name of the group in OIDC: a value of the `groups_attribute` claim. */
  readonly name?: string | null;
  /** Name of the Looker group that mirrors it. */
  readonly looker_group_name?: string | null;
  /** Looker role ids. */
  readonly role_ids?: readonly string[] | null;
}

/** `OIDCUserAttributeWrite`: one OpenID Connect claim and the Looker user attributes it sets. */
export interface OidcUserAttributeWrite {
  /** Name of the claim in OIDC. */
  readonly name?: string | null;
  /** Required to be in the OIDC answer for the login to succeed. */
  readonly required?: boolean;
  /** Looker user attribute ids. */
  readonly user_attribute_ids?: readonly string[] | null;
}

/** The writable fields of Looker's `OIDCConfig` (read-only ones such as `groups`, `user_attributes`, `url` are left out). */
export interface OidcConfigWrite {
  readonly alternate_email_login_allowed?: boolean;
  readonly audience?: string | null;
  readonly auth_requires_role?: boolean;
  readonly authorization_endpoint?: string | null;
  readonly default_new_user_group_ids?: readonly string[] | null;
  readonly default_new_user_role_ids?: readonly string[] | null;
  readonly enabled?: boolean;
  readonly groups_attribute?: string | null;
  readonly groups_with_role_ids?: readonly OidcGroupWrite[] | null;
  readonly identifier?: string | null;
  readonly issuer?: string | null;
  readonly new_user_migration_types?: string | null;
  readonly scopes?: readonly string[] | null;
  /** Write-only: Looker never returns it. */
  readonly secret?: string | null;
  readonly set_roles_from_groups?: boolean;
  readonly token_endpoint?: string | null;
  readonly user_attribute_map_email?: string | null;
  readonly user_attribute_map_first_name?: string | null;
  readonly user_attribute_map_last_name?: string | null;
  readonly user_attributes_with_ids?: readonly OidcUserAttributeWrite[] | null;
  readonly userinfo_endpoint?: string | null;
  readonly allow_normal_group_membership?: boolean;
  readonly allow_roles_from_normal_groups?: boolean;
  readonly allow_direct_roles?: boolean;
}

/** `GET /api/4.0/oidc_config`: the writable fields (never `secret`) plus read-only expansions. */
export interface OidcConfigRead extends Omit<OidcConfigWrite, 'secret'> {
  readonly groups?: ReadonlyArray<{
    readonly name: string;
    readonly looker_group_name?: string | null;
    readonly roles: ReadonlyArray<{ readonly id: string; readonly name: string }>;
  }>;
  readonly user_attributes?: ReadonlyArray<{
    readonly name: string;
    readonly required: boolean;
    readonly user_attributes: ReadonlyArray<{ readonly id: string; readonly name: string }>;
  }>;
  readonly modified_at?: string | null;
  readonly url?: string | null;
}

/** `AccessToken`, the answer of `POST /api/4.0/login`. */
export interface LookerAccessToken {
  readonly access_token: string;
  readonly token_type: string;
  readonly expires_in: number;
}

/** `ValidationError`, the body of a 422 answer. */
export interface LookerValidationError {
  readonly message: string;
  readonly errors?: ReadonlyArray<{ readonly field?: string; readonly code?: string; readonly message?: string; readonly documentation_url?: string }>;
  readonly documentation_url?: string;
}

/** The `id` and `name` of a Looker role or user attribute (the rest of `Role`/`UserAttribute` is not used). */
export interface LookerNamedObject {
  readonly id: string;
  readonly name: string;
}

/** The secret with Looker API3 credentials: the `client_id` and `client_secret` of an API key of a Looker admin. */
export interface LookerApiCredentials {
  readonly client_id: string;
  readonly client_secret: string;
}

/** Parses the API3 credentials secret; the error names the expected shape, never the value. */
export function parseLookerApiCredentials(secretString: string, secretId: string): LookerApiCredentials {
  let value: unknown;
  try {
    value = JSON.parse(secretString);
  } catch {
    throw new Error(
      `The Looker API credentials secret ${secretId} is not JSON: store {"client_id": "...", "client_secret": "..."} (an API key of a Looker admin, from Admin > Users > Edit API keys).`,
    );
  }
  const record = value as Record<string, unknown>;
  if (
    !record ||
    typeof record !== 'object' ||
    typeof record.client_id !== 'string' ||
    typeof record.client_secret !== 'string' ||
    !record.client_id ||
    !record.client_secret
  ) {
    throw new Error(
      `The Looker API credentials secret ${secretId} lacks "client_id" or "client_secret": store {"client_id": "...", "client_secret": "..."} (an API key of a Looker admin).`,
    );
  }
  return { client_id: record.client_id, client_secret: record.client_secret };
}

/** One Looker group the broker can name in its groups claim, and the Looker roles (by name) it grants. */
export interface LookerGroupRolesSetting {
  readonly group: string;
  readonly roleNames: readonly string[];
}

/** One mapped user attribute and the Looker user attribute (by name) it sets. */
export interface LookerUserAttributeSetting {
  /** The attribute name of the mapping rules (its claim is `attr_<name>`). */
  readonly attribute: string;
  /** Name of the Looker user attribute it sets. */
  readonly lookerUserAttribute: string;
  /** Looker refuses a login whose userinfo lacks the claim. */
  readonly required: boolean;
}

/**
 * Everything the custom resource needs, passed as one JSON resource property (CloudFormation
 * hands every property to the function as a string, so one JSON document keeps the types).
 */
export interface LookerOidcResourceSettings {
  /** Base URL of Looker's API, without `/api/4.0` (for example `https://10.0.8.10:19999`). */
  readonly apiUrl: string;
  /** Name in Looker's certificate, when it differs from the host of `apiUrl` (SNI and check). */
  readonly serverName?: string;
  /** CA of Looker's certificate, PEM; the runtime's trust store when absent. */
  readonly caCertificatePem?: string;
  /** ARN of the secret with the API3 credentials ({@link LookerApiCredentials}). */
  readonly apiCredentialsSecretArn: string;
  /** ARN of the secret with the client secret Looker authenticates with at the broker (a plain string). */
  readonly clientSecretArn: string;
  readonly clientId: string;
  /** The gateway's origin: the broker's issuer and the base of its endpoints. */
  readonly gatewayOrigin: string;
  readonly groupRoles: readonly LookerGroupRolesSetting[];
  readonly userAttributes: readonly LookerUserAttributeSetting[];
  readonly authRequiresRole: boolean;
  /** Looker's `new_user_migration_types`, for example `["email"]`. */
  readonly migrationTypes: readonly string[];
  /** Deadline of each call to Looker, seconds. */
  readonly requestTimeoutSeconds: number;
}

export const DEFAULT_LOOKER_REQUEST_TIMEOUT_SECONDS = 10;
/** Looker's documented values of `new_user_migration_types`. */
export const LOOKER_MIGRATION_TYPES = ['email', 'ldap', 'google', 'saml'] as const;

/** Parses and checks the resource settings (the function's first step); the message says which field is wrong. */
export function parseLookerOidcResourceSettings(json: unknown): LookerOidcResourceSettings {
  if (typeof json !== 'string')
    throw new Error('The custom resource property "Settings" is missing: it must be the JSON the LookerOidcConfiguration construct writes.');
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(json) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`The custom resource property "Settings" is not JSON (${(error as Error).message}).`);
  }
  const problems: string[] = [];
  const text = (key: string, optional = false) => {
    const v = value[key];
    if (optional && (v === undefined || v === null)) return;
    if (typeof v !== 'string' || v.length === 0) problems.push(`"${key}" must be a non-empty string`);
  };
  ['apiUrl', 'apiCredentialsSecretArn', 'clientSecretArn', 'clientId', 'gatewayOrigin'].forEach((k) => text(k));
  ['serverName', 'caCertificatePem'].forEach((k) => text(k, true));
  if (!Array.isArray(value.groupRoles)) problems.push('"groupRoles" must be a list');
  if (!Array.isArray(value.userAttributes)) problems.push('"userAttributes" must be a list');
  if (!Array.isArray(value.migrationTypes)) problems.push('"migrationTypes" must be a list');
  if (typeof value.authRequiresRole !== 'boolean') problems.push('"authRequiresRole" must be true or false');
  if (typeof value.requestTimeoutSeconds !== 'number' || !(value.requestTimeoutSeconds > 0)) problems.push('"requestTimeoutSeconds" must be a positive number');
  if (problems.length > 0) throw new Error(`The custom resource settings are invalid: ${problems.join('; ')}.`);
  return value as unknown as LookerOidcResourceSettings;
}

/**
 * Maps names to Looker ids. Unknown names fail with every available name listed, so the
 * fix (create the role, or correct the spelling) is in the message.
 */
export function resolveLookerIds(kind: 'role' | 'user attribute', wanted: readonly string[], available: readonly LookerNamedObject[]): Map<string, string> {
  const byName = new Map(available.map((item) => [item.name, String(item.id)]));
  const missing = [...new Set(wanted)].filter((name) => !byName.has(name));
  if (missing.length > 0) {
    const known = available.map((item) => JSON.stringify(item.name)).join(', ') || 'none';
    throw new Error(
      `Looker has no ${kind} named ${missing.map((m) => JSON.stringify(m)).join(', ')} (it has: ${known}). Create it in Looker (Admin > ${kind === 'role' ? 'Roles' : 'User Attributes'}) or correct the name.`,
    );
  }
  return byName;
}

/**
 * The `oidc_config` that points Looker at the broker: authorization code flow against the
 * broker's endpoints, claims read as LOOKER_CLAIMS names them, roles from the mapped groups,
 * the mapped attributes, and the alternate e-mail login kept so Looker admins are never
 * locked out. `roleIds` and `attributeIds` come from {@link resolveLookerIds}.
 */
export function brokerOidcConfig(
  settings: LookerOidcResourceSettings,
  clientSecret: string,
  roleIds: Map<string, string>,
  attributeIds: Map<string, string>,
): OidcConfigWrite {
  const endpoints = lookerBrokerEndpoints(settings.gatewayOrigin);
  return {
    enabled: true,
    identifier: settings.clientId,
    secret: clientSecret,
    issuer: endpoints.issuer,
    // Looker's "OpenID Provider Audience": the `aud` of the broker's ID tokens, which OpenID Connect makes the client id.
    audience: settings.clientId,
    authorization_endpoint: endpoints.authorizationEndpoint,
    token_endpoint: endpoints.tokenEndpoint,
    userinfo_endpoint: endpoints.userinfoEndpoint,
    scopes: [...LOOKER_SCOPES],
    user_attribute_map_email: LOOKER_CLAIMS.email,
    user_attribute_map_first_name: LOOKER_CLAIMS.firstName,
    user_attribute_map_last_name: LOOKER_CLAIMS.lastName,
    groups_attribute: LOOKER_CLAIMS.groups,
    set_roles_from_groups: true,
    groups_with_role_ids: settings.groupRoles.map((entry) => ({
      name: entry.group,
      looker_group_name: entry.group,
      role_ids: entry.roleNames.map((role) => roleIds.get(role)!),
    })),
    auth_requires_role: settings.authRequiresRole,
    user_attributes_with_ids: settings.userAttributes.map((entry) => ({
      name: lookerAttributeClaim(entry.attribute),
      required: entry.required,
      user_attribute_ids: [attributeIds.get(entry.lookerUserAttribute)!],
    })),
    new_user_migration_types: settings.migrationTypes.join(','),
    alternate_email_login_allowed: true,
  };
}

/** True when Looker's current configuration is the broker of this gateway (so deleting the resource may switch it off). */
export function pointsAtBroker(current: OidcConfigRead, settings: Pick<LookerOidcResourceSettings, 'gatewayOrigin' | 'clientId'>): boolean {
  const endpoints = lookerBrokerEndpoints(settings.gatewayOrigin);
  return current.issuer === endpoints.issuer && current.identifier === settings.clientId;
}
