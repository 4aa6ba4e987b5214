/**
 * What the stand-in's Looker applies at an OIDC login (decideLogin), rule by rule, as the
 * fields of Looker's OIDCConfig describe it
 * (https://cloud.google.com/looker/docs/reference/looker-api/latest/types/OIDCConfig):
 * `set_roles_from_groups` "Set user roles in Looker based on groups from OIDC",
 * `auth_requires_role` "Users will not be allowed to login at all unless a role for them is
 * found in OIDC", `user_attributes_with_ids[].required` "Required to be in OIDC assertion
 * for login to be allowed to succeed", `default_new_user_role_ids` "applied to new users
 * the first time they login via OIDC".
 */
import type { OidcConfigWrite } from '../../core/looker/oidc-config';
import { decideLogin, LookerUser } from '../../dev/stand-ins/looker/looker-oidc-model';

const CONFIG: OidcConfigWrite = {
  enabled: true,
  user_attribute_map_email: 'email',
  user_attribute_map_first_name: 'given_name',
  user_attribute_map_last_name: 'family_name',
  groups_attribute: 'groups',
  set_roles_from_groups: true,
  auth_requires_role: true,
  groups_with_role_ids: [
    { name: 'Analysts', looker_group_name: 'Looker Analysts', role_ids: ['5'] },
    { name: 'Admins', role_ids: ['2', '5'] },
  ],
  user_attributes_with_ids: [
    { name: 'attr_region', required: false, user_attribute_ids: ['10'] },
    { name: 'attr_team', required: true, user_attribute_ids: ['11', '12'] },
  ],
  default_new_user_role_ids: ['4'],
};
const ALICE = {
  sub: 'alice',
  email: 'alice@example.com',
  given_name: 'Alice',
  family_name: 'Analyst',
  groups: ['Analysts'],
  attr_region: 'emea',
  attr_team: 'finance',
};
let ids = 0;
const newId = () => String((ids += 1));

function allowed(config: OidcConfigWrite, claims: Record<string, unknown>, existing?: LookerUser): LookerUser {
  const decision = decideLogin(config, claims, existing, newId);
  if (!decision.ok) throw new Error(`refused: ${decision.reason}`);
  return decision.user;
}

test('roles come from the mapped groups, the mirrored group takes its Looker name, attributes their claims; a new user also gets the default roles', () => {
  const user = allowed(CONFIG, ALICE);
  expect(user).toMatchObject({
    email: 'alice@example.com',
    firstName: 'Alice',
    lastName: 'Analyst',
    roleIds: ['5', '4'],
    groupNames: ['Looker Analysts'],
    attributeValues: { '10': 'emea', '11': 'finance', '12': 'finance' },
    logins: 1,
  });
});

test('at the next login the roles mirror the groups again (default roles are for the first login only), the user keeps its id', () => {
  const first = allowed(CONFIG, ALICE);
  const second = allowed(CONFIG, { ...ALICE, groups: ['Admins'] }, first);
  expect(second).toMatchObject({ id: first.id, roleIds: ['2', '5'], groupNames: ['Admins'], logins: 2 });
});

test.each([
  ['no group maps to a role', { ...ALICE, groups: ['Contractors'] }, 'no-role'],
  ['no groups claim at all', { ...ALICE, groups: undefined }, 'no-role'],
  ['a required attribute claim is missing', { ...ALICE, attr_team: undefined }, 'missing-required-attribute'],
  ['no e-mail claim', { ...ALICE, email: undefined }, 'no-email'],
  ['no subject', { ...ALICE, sub: undefined }, 'no-subject'],
])('refused when %s', (_case, claims, reason) => {
  const decision = decideLogin(CONFIG, claims, undefined, newId);
  expect(decision).toMatchObject({ ok: false, reason });
});

test('without auth_requires_role, a user with no mapped group gets in with no role from OIDC (the default roles on a first login)', () => {
  const user = allowed({ ...CONFIG, auth_requires_role: false }, { ...ALICE, groups: ['Contractors'] });
  expect(user.roleIds).toEqual(['4']);
});

test('auth_requires_role without roles from groups refuses everyone: no role can be found in OIDC', () => {
  expect(decideLogin({ ...CONFIG, set_roles_from_groups: false }, ALICE, undefined, newId)).toMatchObject({ ok: false, reason: 'no-role' });
});

test('an optional attribute that is missing leaves the attribute as it was; one group as a plain string counts as one group', () => {
  const first = allowed(CONFIG, ALICE);
  const second = allowed(CONFIG, { ...ALICE, attr_region: undefined, groups: 'Analysts' }, first);
  expect(second.attributeValues['10']).toBe('emea');
  expect(second.roleIds).toEqual(['5']);
});
