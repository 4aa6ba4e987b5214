/**
 * Issue 16 at synth: the IdP profile and its overrides as construct props and cdk.json
 * settings, checked with validateIdpSettings (errors fail synth with the value and the
 * fix, warnings are CDK annotations), the environment the auth service then reads (only
 * what differs from the defaults), the secrets it may read, the alarm on
 * `idp-client-auth-failed`, and `userClaim` through LookerGateway into haproxy.cfg.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { parseAuthServiceEnvironment } from '../../core/auth/environment';
import { UserClaim } from '../../core/haproxy/options';
import { FILES_METADATA_KEY } from '../../core/instance/user-data';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGateway, type LookerGatewayProps } from '../../lib/looker-gateway';
import { AUDIT_EVENTS } from '../../core/log-fields';
import { Logger } from '../../lambda/shared/audit';
import { matchesJsonFilterPattern } from '../../dev/aws/metric-filter';
import { newGatewayStack, newTestApp } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

const RULES = { rules: [{ name: 'analysts', match: { groups: ['looker-analysts'] }, grant: { roles: ['Viewer'] } }] };

function newStack(): Stack {
  return new Stack(newTestApp(), 'IdpSettings', { env: { account: '123456789012', region: 'eu-west-1' } });
}

function gateway(stack: Stack, identityProvider: Partial<LookerGatewayProps['identityProvider']>, extra: Partial<LookerGatewayProps> = {}): LookerGateway {
  return new LookerGateway(stack, 'Gateway', {
    domainName: 'looker.example.com',
    identityProvider: {
      issuer: 'https://example.okta.com/oauth2/default',
      clientId: 'gateway',
      clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'ClientSecret', 'idp-client-secret'),
      ...identityProvider,
    },
    mappingRules: RULES,
    looker: LookerBackend.fromDnsName('looker.internal.example.com'),
    ...extra,
  });
}

/** The auth function's environment variables as synthesized. */
function authEnvironment(stack: Stack): Record<string, unknown> {
  const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('OIDC login') } });
  return (Object.values(functions)[0] as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties.Environment.Variables;
}

/** What the auth service reads from that environment (deploy-time values stand in as the parser sees them). */
function parsedIdp(stack: Stack) {
  const filledIn = (name: string) => (name.endsWith('_ARN') ? `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}` : 'filled-in-at-deploy');
  const env = Object.fromEntries(Object.entries(authEnvironment(stack)).map(([name, value]) => [name, typeof value === 'string' ? value : filledIn(name)]));
  return parseAuthServiceEnvironment(env).idp;
}

describe('the provider picks a profile; every field stays overridable (issue 16 item 1)', () => {
  test('google: no offline_access, the access_type=offline and prompt=consent parameters, client_secret_post, no groups claim', () => {
    const stack = newStack();
    gateway(stack, { provider: 'google', issuer: 'https://accounts.google.com', endSession: 'off', groupsSource: 'none' });
    const env = authEnvironment(stack);
    expect(env).toMatchObject({ LG_IDP_PROVIDER: 'google', LG_IDP_END_SESSION: 'off', LG_IDP_GROUPS_SOURCE: 'none' });
    // The defaults are the profile's, read at run time: nothing about them is spent on the 4 KB environment.
    expect(env).not.toHaveProperty('LG_IDP_SCOPES');
    expect(env).not.toHaveProperty('LG_IDP_AUTHORIZATION_PARAMS');
    const idp = parsedIdp(stack);
    expect(idp.settings.scopes).toEqual(['openid', 'email', 'profile']);
    expect(idp.settings.authorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });
    expect(idp.settings.tokenEndpointAuthMethod).toBe('client_secret_post');
  });

  test('overrides: scopes, authorization parameters, a groups claim pointer, the auth method', () => {
    const stack = newStack();
    gateway(stack, {
      provider: 'keycloak',
      issuer: 'https://keycloak.example.com/realms/corp',
      scopes: ['openid', 'email', 'profile', 'groups'],
      authorizationParams: { kc_idp_hint: 'corp-saml' },
      groupsClaim: '/groups',
      tokenEndpointAuthMethod: 'client_secret_post',
    });
    const idp = parsedIdp(stack);
    expect(idp.settings).toMatchObject({
      scopes: ['openid', 'email', 'profile', 'groups'],
      authorizationParams: { kc_idp_hint: 'corp-saml' },
      groupsClaim: '/groups',
      tokenEndpointAuthMethod: 'client_secret_post',
    });
  });

  test.each<[string, Partial<LookerGatewayProps['identityProvider']>, RegExp]>([
    [
      'google refuses offline_access',
      { provider: 'google', issuer: 'https://accounts.google.com', scopes: ['openid', 'email', 'offline_access'] },
      /identityProvider\.scopes include "offline_access", which Google Workspace refuses with invalid_scope/,
    ],
    ['an unknown provider', { provider: 'azure' }, /identityProvider\.provider "azure" is not known: use one of okta, entra, google/],
    [
      'Entra /organizations without allowedTenants',
      { provider: 'entra', issuer: 'https://login.microsoftonline.com/organizations/v2.0' },
      /lets users of any Entra ID tenant sign in: use your tenant's issuer .* or list the tenants that may sign in in allowedTenants/,
    ],
    [
      'a tenant that is no GUID',
      { provider: 'entra', issuer: 'https://login.microsoftonline.com/organizations/v2.0', allowedTenants: ['contoso.com'] },
      /allowedTenants entry "contoso.com" is not a tenant id/,
    ],
    ['a malformed groups pointer', { groupsClaim: '/a~2' }, /The claim path "\/a~2" is not a JSON pointer/],
    [
      'a method the IdP does not support',
      { provider: 'google', issuer: 'https://accounts.google.com', tokenEndpointAuthMethod: 'private_key_jwt' },
      /tokenEndpointAuthMethod "private_key_jwt" is not supported by Google Workspace/,
    ],
    [
      'private_key_jwt without the key',
      { tokenEndpointAuthMethod: 'private_key_jwt' },
      /identityProvider\.clientKey is not set: private_key_jwt signs the client assertion/,
    ],
    [
      'google-directory without the service account',
      { provider: 'google', issuer: 'https://accounts.google.com', groupsSource: 'google-directory' },
      /identityProvider\.googleDirectory is not set/,
    ],
    [
      'Cognito logout left to discovery',
      { provider: 'cognito', issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123' },
      /endSession "auto" cannot find Cognito's logout endpoint/,
    ],
    [
      'an endSession template with an unknown placeholder',
      { endSession: 'https://idp.example.com/logout?u={user}' },
      /endSession uses \{user\}: the placeholders are \{clientId\}/,
    ],
    [
      'a groups cache over a day',
      { groupsCacheDuration: Duration.days(2) },
      /identityProvider\.groupsCacheDuration is 2 days; it must be from 1 minute to 1 day/,
    ],
  ])('%s fails at synth with the value and the fix', (_label, identityProvider, message) => {
    expect(() => gateway(newStack(), identityProvider)).toThrow(message);
  });

  test('several problems are reported together', () => {
    expect(() => gateway(newStack(), { provider: 'google', issuer: 'https://accounts.google.com', scopes: ['email', 'offline_access'] })).toThrow(
      /the identity provider settings are invalid:\n- identityProvider\.scopes "email offline_access" lack "openid".*\n- identityProvider\.scopes include "offline_access"/s,
    );
  });

  test('working but surprising settings are CDK warnings: Okta without offline_access, Google without a logout', () => {
    const okta = newStack();
    gateway(okta, { provider: 'okta', scopes: ['openid', 'email', 'profile', 'groups'] });
    Annotations.fromStack(okta).hasWarning(
      '*',
      Match.stringLikeRegexp('identityProvider\\.scopes "openid email profile groups" lack "offline_access", so Okta issues no refresh token'),
    );
    const google = newStack();
    gateway(google, { provider: 'google', issuer: 'https://accounts.google.com' });
    Annotations.fromStack(google).hasWarning('*', Match.stringLikeRegexp('Google Workspace has no RP-initiated logout'));
  });
});

describe('credentials and group sources', () => {
  test('private_key_jwt: no client secret needed; the function may read the key secret, and the Google service account secret', () => {
    const stack = newStack();
    const clientKey = secretsmanager.Secret.fromSecretCompleteArn(stack, 'Key', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:idp-client-key-AbCdEf');
    const serviceAccountKey = secretsmanager.Secret.fromSecretCompleteArn(stack, 'Sa', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:google-sa-AbCdEf');
    gateway(stack, {
      provider: 'entra',
      issuer: 'https://login.microsoftonline.com/3c2f8b1e-7d4a-4e6b-9a1c-5f0e2d8b7a64/v2.0',
      clientSecret: undefined,
      tokenEndpointAuthMethod: 'private_key_jwt',
      clientKey,
      groupsSource: 'microsoft-graph',
    });
    const env = authEnvironment(stack);
    expect(env).not.toHaveProperty('LG_IDP_CLIENT_SECRET_ARN');
    expect(env).toMatchObject({
      LG_IDP_CLIENT_KEY_SECRET_ARN: clientKey.secretArn,
      LG_IDP_TOKEN_AUTH_METHOD: 'private_key_jwt',
      LG_IDP_GROUPS_SOURCE: 'microsoft-graph',
    });
    const policies = JSON.stringify(Template.fromStack(stack).findResources('AWS::IAM::Policy'));
    expect(policies).toContain('idp-client-key-AbCdEf');

    const google = newStack();
    gateway(google, {
      provider: 'google',
      issuer: 'https://accounts.google.com',
      groupsSource: 'google-directory',
      googleDirectory: {
        serviceAccountKey: secretsmanager.Secret.fromSecretCompleteArn(google, 'Sa', serviceAccountKey.secretArn),
        adminEmail: 'admin@example.com',
      },
      groupsCacheDuration: Duration.minutes(30),
    });
    expect(authEnvironment(google)).toMatchObject({ LG_GOOGLE_ADMIN_EMAIL: 'admin@example.com', LG_IDP_GROUPS_CACHE_SECONDS: '1800' });
    expect(JSON.stringify(Template.fromStack(google).findResources('AWS::IAM::Policy'))).toContain('google-sa-AbCdEf');
    expect(parsedIdp(google).google).toMatchObject({ adminEmail: 'admin@example.com', directoryUrl: 'https://admin.googleapis.com/admin/directory/v1' });
  });
});

describe('invalid_client has its own alarm (issue 16 item 7)', () => {
  test('the metric filter matches the audit line the service writes for idp-client-auth-failed, and nothing else', () => {
    const { stack } = newGatewayStack();
    const template = Template.fromStack(stack);
    const filters = Object.values(template.findResources('AWS::Logs::MetricFilter')) as Array<{
      Properties: { FilterPattern: string; MetricTransformations: Array<{ MetricName: string }> };
    }>;
    const filter = filters.find((f) => f.Properties.MetricTransformations[0].MetricName === 'IdpClientAuthFailures')!;
    const line = (reason: string) => {
      const lines: string[] = [];
      new Logger({ write: (l) => lines.push(l) }).audit({ event: 'login', outcome: 'failure', reason, requestId: 'r', route: '/oauth2/callback', status: 502 });
      return lines[0];
    };
    expect(matchesJsonFilterPattern(filter.Properties.FilterPattern, line(AUDIT_EVENTS.idpClientAuthFailed))).toBe(true);
    expect(matchesJsonFilterPattern(filter.Properties.FilterPattern, line('code-rejected:invalid_grant'))).toBe(false);
    // The alarm's runbook description holds the audit log group's name (a deploy-time value: an Fn::Join).
    const alarm = Object.values(template.findResources('AWS::CloudWatch::Alarm')).find((a) => a.Properties.MetricName === 'IdpClientAuthFailures')!;
    expect(alarm.Properties).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    expect(JSON.stringify(alarm.Properties.AlarmDescription)).toContain('invalid_client');
  });
});

describe('userClaim through LookerGateway (issue 16 item 11)', () => {
  test('UserClaim.EMAIL makes haproxy.cfg send the e-mail claim as X-Forwarded-User', () => {
    const configOf = (userClaim?: UserClaim) => {
      const stack = newStack();
      gateway(stack, {}, userClaim ? { userClaim } : {});
      const json = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Metadata?: Record<string, unknown> }> };
      const launchTemplate = Object.values(json.Resources).find((r) => r.Type === 'AWS::EC2::LaunchTemplate')!;
      const { files } = resolveIntrinsics(launchTemplate.Metadata![FILES_METADATA_KEY], FAKE_DEPLOYMENT, json) as {
        files: Array<{ path: string; content: string }>;
      };
      return files.find((f) => f.path.endsWith('haproxy.cfg'))!.content;
    };
    expect(configOf(UserClaim.EMAIL)).toMatch(/set-var\(txn\.user\) var\(txn\.session_claims\),json_query\('\$\.email'\)/);
    expect(configOf()).toMatch(/set-var\(txn\.user\) var\(txn\.session_claims\),json_query\('\$\.sub'\)/);
  });
});

describe('cdk.json settings', () => {
  test('idpProvider, idpAuthorizationParams (JSON from -c), idpAllowedTenants, idpEndSession and userClaim reach the function and the fleet', () => {
    const { stack } = newGatewayStack({
      context: {
        idpProvider: 'entra',
        idpIssuer: 'https://login.microsoftonline.com/organizations/v2.0',
        idpAllowedTenants: '3c2f8b1e-7d4a-4e6b-9a1c-5f0e2d8b7a64,11111111-2222-4333-8444-555555555555',
        idpAuthorizationParams: '{"domain_hint":"example.com"}',
        idpEndSession: 'off',
        userClaim: 'email',
        idpScopes: undefined,
        idpGroupsClaim: undefined,
      },
    });
    const env = authEnvironment(stack);
    expect(env).toMatchObject({
      LG_IDP_PROVIDER: 'entra',
      LG_IDP_ALLOWED_TENANTS: '3c2f8b1e-7d4a-4e6b-9a1c-5f0e2d8b7a64,11111111-2222-4333-8444-555555555555',
      LG_IDP_AUTHORIZATION_PARAMS: '{"domain_hint":"example.com"}',
      LG_IDP_END_SESSION: 'off',
    });
  });

  test('idpClientKeySecretArn alone means private_key_jwt: no placeholder client secret', () => {
    const { stack } = newGatewayStack({
      context: { idpClientKeySecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:idp-client-key-AbCdEf', idpClientSecretArn: undefined },
    });
    const env = authEnvironment(stack);
    expect(env).toMatchObject({ LG_IDP_TOKEN_AUTH_METHOD: 'private_key_jwt' });
    expect(env).not.toHaveProperty('LG_IDP_CLIENT_SECRET_ARN');
    expect(Template.fromStack(stack).findOutputs('IdpClientSecretArn')).toEqual({});
  });

  test.each<[Record<string, unknown>, RegExp]>([
    [{ userClaim: 'upn' }, /userClaim "upn" is not a claim HAProxy can send as X-Forwarded-User: use "sub" \(the IdP subject\) or "email"/],
    [{ idpAuthorizationParams: '["access_type"]' }, /"idpAuthorizationParams" is \["access_type"\]; give a JSON object of strings/],
    [{ idpGoogleAdminEmail: 'admin@example.com' }, /needs both idpGoogleServiceAccountSecretArn .* and idpGoogleAdminEmail/],
  ])('%j is refused with the fix', (context, message) => {
    expect(() => newGatewayStack({ context })).toThrow(message);
  });
});
