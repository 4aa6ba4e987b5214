/**
 * `email_verified` (issue 11 item 9, issue 16 item 4): the dev IdP sends each shape of the
 * claim, in the ID token and through userinfo; only `true` (or, with the cognito profile
 * only, the string "true" its userinfo sends) makes the address count for `emailDomains`
 * rules, `claims` conditions on `email`, and the session's `email` claim
 * (X-Forwarded-Email, and X-Forwarded-User with userClaim email).
 * LG_IDP_TRUST_UNVERIFIED_EMAIL=true makes a missing claim count (Entra ID), never an
 * explicit false or a string the IdP is not known to send.
 * https://docs.aws.amazon.com/cognito/latest/developerguide/userinfo-endpoint.html (the sample answer's "email_verified": "true")
 */
import { decodeJwt } from 'jose';
import { SESSION_COOKIE } from '../../lib/session-contract';
import { CookieJar, Harness, loginAt, startHarness, type TestUsers } from './support/harness';

const RULES = {
  rules: [
    { name: 'company-domain', match: { emailDomains: ['example.com'] }, grant: { roles: ['Viewer'] } },
    { name: 'named-admin', match: { claims: [{ claim: 'email', values: ['boss@example.org'] }] }, grant: { roles: ['Admin'] } },
    { name: 'staff-group', match: { groups: ['staff'] }, grant: { groups: ['Staff'] } },
  ],
};

/** One user per shape of email_verified; each tries the domain rule (generic profile, trusting, cognito profile). */
const SHAPES: ReadonlyArray<readonly [string, unknown, { byDefault: boolean; trusting: boolean; cognito: boolean }]> = [
  ['true', true, { byDefault: true, trusting: true, cognito: true }],
  // Only Cognito sends strings: from any other IdP a string is not a verification.
  ['string-true', 'true', { byDefault: false, trusting: false, cognito: true }],
  ['missing', undefined, { byDefault: false, trusting: true, cognito: false }],
  ['false', false, { byDefault: false, trusting: false, cognito: false }],
  ['string-false', 'false', { byDefault: false, trusting: false, cognito: false }],
];

const USERS: TestUsers = {
  ...Object.fromEntries(
    SHAPES.map(([shape, claim]) => [`v-${shape}`, { email: `v-${shape}@example.com`, name: shape, groups: [], ...(claim === undefined ? {} : { email_verified: claim }) }]),
  ),
  // Admitted by group; the address must still not reach the session unless verified.
  'staff-unverified': { email: 'someone-else@example.com', name: 'Staff', groups: ['staff'] },
  // A rule on the `email` claim itself is an e-mail decision too.
  'boss-unverified': { email: 'boss@example.org', name: 'Boss', groups: [], email_verified: false },
  'boss-missing': { email: 'boss@example.org', name: 'Boss', groups: [] },
};

/** Logs `user` in at `base`; the session's claims when one was set. */
async function loginClaims(h: Harness, base: string, user: string) {
  const jar = new CookieJar();
  const callback = await loginAt(h, base, jar, user);
  const session = jar.get(base, SESSION_COOKIE);
  return { callback, claims: session ? decodeJwt(session) : undefined };
}

describe.each([
  ['claims from userinfo', false],
  ['claims in the ID token', true],
])('%s', (_label, idTokenClaims) => {
  let h: Harness;
  let trusting: Awaited<ReturnType<Harness['startAnother']>>;
  let cognito: Awaited<ReturnType<Harness['startAnother']>>;
  beforeAll(async () => {
    h = await startHarness({ rules: RULES, users: USERS, idTokenClaims });
    trusting = await h.startAnother({ LG_IDP_TRUST_UNVERIFIED_EMAIL: 'true' });
    // The cognito profile reads strings; its groups claim is pointed at this IdP's.
    cognito = await h.startAnother({ LG_IDP_PROVIDER: 'cognito', LG_IDP_SCOPES: 'openid email profile groups', LG_IDP_GROUPS_CLAIM: '/groups', LG_IDP_END_SESSION: 'off' });
  });
  afterAll(async () => {
    await trusting?.stop();
    await cognito?.stop();
    await h?.stop();
  });

  test.each(SHAPES.map(([shape, , expected]) => [shape, expected.byDefault, expected.trusting, expected.cognito]))(
    'email_verified %s: domain rule applies by default %s, when trusting unverified addresses %s, with the cognito profile %s',
    async (shape, byDefault, whenTrusting, withCognito) => {
      for (const [base, admitted] of [
        [h.gatewayUrl, byDefault],
        [trusting.url, whenTrusting],
        [cognito.url, withCognito],
      ] as const) {
        const { callback, claims } = await loginClaims(h, base, `v-${shape}`);
        if (admitted) {
          expect({ base, status: callback.status }).toEqual({ base, status: 302 });
          expect(claims).toMatchObject({ email: `v-${shape}@example.com`, roles_csv: 'Viewer' });
        } else {
          expect({ base, status: callback.status }).toEqual({ base, status: 403 });
          const body = JSON.parse(callback.body) as { reason: string; message: string };
          expect(body.reason).toBe('no-rule-matched');
          expect(body.message).toContain('did not mark the e-mail address as verified');
          expect(claims).toBeUndefined();
        }
      }
    },
  );

  test('a user admitted by group keeps an unverified address out of the session (no X-Forwarded-Email or e-mail user from it)', async () => {
    const { callback, claims } = await loginClaims(h, h.gatewayUrl, 'staff-unverified');
    expect(callback.status).toBe(302);
    expect(claims).toMatchObject({ sub: 'staff-unverified', email: '', groups_csv: 'Staff' });
    const audit = h.logs.audits().find((e) => e.event === 'login' && (e.user as { sub?: string }).sub === 'staff-unverified');
    expect(audit?.user).toEqual({ sub: 'staff-unverified' });
    // Trusting missing claims, the address travels.
    expect((await loginClaims(h, trusting.url, 'staff-unverified')).claims).toMatchObject({ email: 'someone-else@example.com' });
  });

  test('a claims condition on `email` only sees a verified address', async () => {
    expect((await loginClaims(h, h.gatewayUrl, 'boss-unverified')).callback.status).toBe(403);
    expect((await loginClaims(h, h.gatewayUrl, 'boss-missing')).callback.status).toBe(403);
    expect((await loginClaims(h, trusting.url, 'boss-unverified')).callback.status).toBe(403);
    expect((await loginClaims(h, trusting.url, 'boss-missing')).claims).toMatchObject({ roles_csv: 'Admin' });
  });
});
