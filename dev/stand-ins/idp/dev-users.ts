import type { MappingRuleSet } from '../../../core/auth/mapping-rules';

/**
 * The documented users of the development IdP (see docs/local.md). Dev-only
 * passwords: the IdP listens on 127.0.0.1 and lives as long as `npm run local`.
 */
export interface DevUser {
  readonly username: string;
  readonly password: string;
  readonly name: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly email: string;
  /** IdP groups, as the `groups` claim carries them. */
  readonly groups: readonly string[];
}

export const DEV_USERS = {
  /** Maps to Looker's Viewer role with region=emea. */
  alice: {
    username: 'alice',
    password: 'alice-dev-password',
    name: 'Alice Analyst',
    givenName: 'Alice',
    familyName: 'Analyst',
    email: 'alice@example.com',
    groups: ['looker-analysts'],
  },
  /** Maps to Looker's Admin role. */
  bob: {
    username: 'bob',
    password: 'bob-dev-password',
    name: 'Bob Admin',
    givenName: 'Bob',
    familyName: 'Admin',
    email: 'bob@example.com',
    groups: ['looker-admins'],
  },
  /** In no group the mapping knows: the gateway refuses her. */
  carol: {
    username: 'carol',
    password: 'carol-dev-password',
    name: 'Carol Contractor',
    givenName: 'Carol',
    familyName: 'Contractor',
    email: 'carol@example.com',
    groups: ['contractors'],
  },
} as const satisfies Record<string, DevUser>;

/** The IdP groups the local mapping knows. */
export const DEV_GROUPS = { analysts: 'looker-analysts', admins: 'looker-admins' } as const;
/** The region attribute the local mapping gives analysts. */
export const DEV_ANALYST_REGION = 'emea';

/** The claim mapping of the local gateway: analysts are Viewers with a region, admins are Admins, anyone else is refused. */
export const DEV_MAPPING_RULES: MappingRuleSet = {
  rules: [
    {
      name: 'analysts',
      match: { groups: [DEV_GROUPS.analysts] },
      grant: { roles: ['Viewer'], groups: ['Analysts'], attributes: { region: DEV_ANALYST_REGION } },
    },
    { name: 'admins', match: { groups: [DEV_GROUPS.admins] }, grant: { roles: ['Admin'], groups: ['Admins'] } },
  ],
};
/** The user attributes the mapping can set (HAProxy must list them to forward them as headers). */
export const DEV_ATTRIBUTE_NAMES = ['region'];

/**
 * Broker mode: the Looker group each rule grants and the Looker roles the stand-in's
 * `oidc_config` maps it to (`groups_with_role_ids`), as the LookerOidcConfiguration
 * construct's `groupRoles` would write them.
 */
export const DEV_LOOKER_GROUP_ROLES = [
  { group: 'Analysts', roleNames: ['Viewer'] },
  { group: 'Admins', roleNames: ['Admin'] },
] as const;
