/**
 * Broker mode's pure rules (core/auth/looker-broker-protocol.ts) and its configuration
 * (core/auth/environment.ts), where the bundled-handler tests cannot reach every branch:
 * RFC 6749 2.3.1's form-encoding of Basic credentials, RFC 7636's defaults, the claims
 * built from a session, and the environment checks.
 */
import { createHash } from 'node:crypto';
import { parseAuthServiceEnvironment } from '../../core/auth/environment';
import { checkAuthorizationRequest, lookerUserClaims, pkceVerifierMatches, readClientAuthentication } from '../../core/auth/looker-broker-protocol';

const params = (entries: Record<string, string | string[]>) => new Map(Object.entries(entries).map(([k, v]) => [k, [v].flat()]));
const CLIENT = { clientId: 'looker', redirectUri: 'https://looker.example.com/openidconnect' };

describe('client authentication', () => {
  test('Basic credentials are form-encoded before base64 (RFC 6749 2.3.1): a ":" or "+" in the secret survives', () => {
    const secret = 'a:b+c d%';
    const header = `Basic ${Buffer.from(`looker:${encodeURIComponent(secret).replace(/%20/g, '+')}`).toString('base64')}`;
    expect(readClientAuthentication(header, params({}))).toEqual({ ok: true, clientId: 'looker', clientSecret: secret, method: 'client_secret_basic' });
  });

  test('a client_id in the body that differs from the Basic one is refused', () => {
    const header = `Basic ${Buffer.from('looker:s').toString('base64')}`;
    expect(readClientAuthentication(header, params({ client_id: 'other' }))).toMatchObject({
      ok: false,
      error: 'invalid_request',
      reason: 'client-id-mismatch',
    });
  });
});

describe('authorization request', () => {
  test('a code_challenge without a method is "plain" (RFC 7636 4.3), and its verifier is itself', () => {
    const verifier = 'v'.repeat(43);
    const check = checkAuthorizationRequest(
      params({ client_id: 'looker', redirect_uri: CLIENT.redirectUri, response_type: 'code', scope: 'openid', code_challenge: verifier }),
      CLIENT,
    );
    expect(check).toMatchObject({ ok: true, request: { codeChallengeMethod: 'plain' } });
    expect(pkceVerifierMatches(verifier, 'plain', verifier)).toBe(true);
    const s256 = createHash('sha256').update(verifier).digest('base64url');
    expect(pkceVerifierMatches(s256, 'S256', verifier)).toBe(true);
    expect(pkceVerifierMatches(s256, 'S256', 'w'.repeat(43))).toBe(false);
    expect(pkceVerifierMatches(s256, 'S256', 'short')).toBe(false);
  });

  test('client_id twice is not redirected to Looker (the client is unknown)', () => {
    expect(checkAuthorizationRequest(params({ client_id: ['looker', 'looker'], redirect_uri: CLIENT.redirectUri }), CLIENT)).toMatchObject({
      ok: false,
      redirect: false,
    });
  });
});

describe('claims for Looker, from a session', () => {
  test('groups from groups_csv as an array, attributes as attr_ claims, no e-mail when the session has none, no gateway-only claims', () => {
    const claims = lookerUserClaims({
      iss: 'x',
      aud: 'y',
      sid: 's',
      sub: 'u',
      email: '',
      name: 'U',
      groups_csv: 'A,B',
      roles_csv: 'Viewer',
      attr_region: 'emea',
      exp: 1,
    });
    expect(claims).toEqual({ sub: 'u', name: 'U', groups: ['A', 'B'], attr_region: 'emea' });
  });
});

describe('environment', () => {
  const base = {
    LG_IDP_ISSUER: 'https://idp.example.com',
    LG_IDP_CLIENT_ID: 'gw',
    LG_IDP_CLIENT_SECRET_ARN: 'arn:secret',
    LG_PUBLIC_BASE_URL: 'https://looker.example.com',
    LG_SESSION_ISSUER: 'https://looker.example.com',
    LG_SESSION_AUDIENCE: 'https://looker.example.com',
    LG_MAPPING_RULES: JSON.stringify({ rules: [{ name: 'a', match: { groups: ['g'] }, grant: { groups: ['A'] } }] }),
    LG_SIGNING_KEYS_SECRET_ARN: 'arn:signing',
    LG_COOKIE_KEYS_SECRET_ARN: 'arn:cookie',
  };

  test('broker mode is off without the client secret, on with it, for Looker at the gateway origin', () => {
    expect(parseAuthServiceEnvironment(base).lookerBroker).toBeUndefined();
    expect(parseAuthServiceEnvironment({ ...base, LG_LOOKER_CLIENT_SECRET_ARN: 'arn:looker' }).lookerBroker).toEqual({
      issuer: 'https://looker.example.com',
      clientId: 'looker',
      clientSecretId: 'arn:looker',
      redirectUri: 'https://looker.example.com/openidconnect',
    });
  });

  test.each([
    [{ LG_LOOKER_CLIENT_ID: 'looker' }, 'LG_LOOKER_CLIENT_ID is set but LG_LOOKER_CLIENT_SECRET_ARN is not'],
    [{ LG_LOOKER_CLIENT_SECRET_ARN: 'arn:looker', LG_LOOKER_CLIENT_ID: 'looker prod' }, 'LG_LOOKER_CLIENT_ID="looker prod" must be 1 to 128 letters'],
    [
      { LG_LOOKER_CLIENT_SECRET_ARN: 'arn:looker', LG_LOOKER_CLIENT_ID: 'gateway', LG_SESSION_AUDIENCE: 'gateway' },
      'equals LG_SESSION_AUDIENCE: an ID token for Looker would then pass as a gateway session',
    ],
  ])('%j is refused with the fix', (overrides, message) => {
    expect(() => parseAuthServiceEnvironment({ ...base, ...overrides })).toThrow(message);
  });
});
