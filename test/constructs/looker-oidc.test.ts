/**
 * The option that configures Looker's OpenID Connect login to use the broker: off by
 * default; when on, one custom resource whose Settings carry what the function needs, a
 * function in the VPC that may read exactly its two secrets, Looker's security group opened
 * on the API port to that function only, the client secret it creates, synth-time checks
 * with the fix, and no cdk-nag finding.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerOidcConfiguration, LookerOidcConfigurationProps } from '../../lib/looker/looker-oidc-configuration';
import { parseLookerOidcResourceSettings } from '../../core/looker/oidc-config';
import { parseAuthServiceEnvironment } from '../../core/auth/environment';
import { LookerGateway } from '../../lib/looker-gateway';
import { GatewayNagPacks } from '../../lib/nag';
import { newGatewayStack, newTestApp } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

const API_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:looker-api-AbCdEf';
const LOOKER_OIDC_CONTEXT = {
  lookerApiCredentialsSecretArn: API_SECRET_ARN,
  lookerGroupRoles: [
    { group: 'Administrators', roles: ['Admin'] },
    { group: 'Analysts', roles: ['Viewer'] },
  ],
};

type Json = { Resources: Record<string, { Type: string; Properties: any; DependsOn?: string[]; Metadata?: any }> };

function resourcesOfType(template: Json, type: string) {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

describe('off by default', () => {
  test('the default stack has no custom resource and no third function', () => {
    const template = Template.fromStack(newGatewayStack().stack).toJSON() as Json;
    expect(resourcesOfType(template, 'Custom::LookerOidcConfiguration')).toEqual([]);
    expect(resourcesOfType(template, 'AWS::Lambda::Function')).toHaveLength(2);
  });
});

describe("on, through the deployable app's context", () => {
  const { stack } = newGatewayStack({ context: LOOKER_OIDC_CONTEXT });
  const template = Template.fromStack(stack);
  const json = template.toJSON() as Json;
  const [resourceId, resource] = resourcesOfType(json, 'Custom::LookerOidcConfiguration')[0];
  const [functionId, fn] = Object.entries(json.Resources).find(
    ([, r]) => r.Type === 'AWS::Lambda::Function' && String(r.Metadata?.['aws:cdk:path']).endsWith('/LookerOidc/Function/Resource'),
  )!;

  test("the custom resource is the function's, and its Settings resolve to what the function parses", () => {
    expect(resource.Properties.ServiceToken).toEqual({ 'Fn::GetAtt': [functionId, 'Arn'] });
    const settings = parseLookerOidcResourceSettings(resolveIntrinsics(resource.Properties.Settings, FAKE_DEPLOYMENT, json));
    expect(settings).toEqual({
      apiUrl: 'https://10.0.8.10:19999',
      serverName: 'looker.internal.example.com',
      apiCredentialsSecretArn: API_SECRET_ARN,
      clientSecretArn: expect.stringMatching(/^arn:aws:secretsmanager:eu-west-1:123456789012:secret:GatewayLookerOidcClientSecret/),
      clientId: 'looker',
      gatewayOrigin: 'https://looker.example.com',
      groupRoles: [
        { group: 'Administrators', roleNames: ['Admin'] },
        { group: 'Analysts', roleNames: ['Viewer'] },
      ],
      // Every attribute the example rules set, into the Looker user attribute of the same name.
      userAttributes: [{ attribute: 'region', lookerUserAttribute: 'region', required: false }],
      authRequiresRole: true,
      migrationTypes: ['email'],
      requestTimeoutSeconds: 10,
    });
  });

  test('Looker is configured only after the gateway instances answer', () => {
    const [groupId] = resourcesOfType(json, 'AWS::AutoScaling::AutoScalingGroup')[0];
    expect(json.Resources[resourceId].DependsOn).toContain(groupId);
  });

  test('the function: Node.js 24 on arm64, in the private subnets, a timeout that covers four calls to Looker, no environment', () => {
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Timeout: 60,
      MemorySize: 256,
      VpcConfig: { SubnetIds: expect.any(Array), SecurityGroupIds: expect.any(Array) },
    });
    expect(fn.Properties.Environment).toBeUndefined();
  });

  test('its role may read exactly the API credentials and the client secret, nothing else from Secrets Manager', () => {
    const roleId = fn.Properties.Role['Fn::GetAtt'][0];
    const policies = resourcesOfType(json, 'AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId));
    const statements = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    const secretStatements = statements.filter((s: { Action: string | string[] }) => [s.Action].flat().some((a) => a.startsWith('secretsmanager:')));
    const resources = secretStatements
      .flatMap((s: { Resource: unknown }) => [s.Resource].flat())
      .map((r: unknown) => resolveIntrinsics(r, FAKE_DEPLOYMENT, json));
    expect(resources.sort()).toEqual([API_SECRET_ARN, expect.stringMatching(/secret:GatewayLookerOidcClientSecret/)].sort());
    for (const statement of secretStatements)
      expect([statement.Action].flat().sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
  });

  test('the client secret is generated (48 characters, no punctuation) and encrypted with the gateway key', () => {
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('client secret Looker authenticates with'),
      GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true },
      KmsKeyId: Match.anyValue(),
    });
  });

  test('the auth service serves the broker for the client the custom resource registers: its environment names the client and the secret, and its role may read that secret', () => {
    const [, authFn] = Object.entries(json.Resources).find(
      ([, r]) => r.Type === 'AWS::Lambda::Function' && String(r.Metadata?.['aws:cdk:path']).endsWith('/AuthService/Function/Resource'),
    )!;
    const variables = authFn.Properties.Environment.Variables;
    expect(variables.LG_LOOKER_CLIENT_ID).toBe('looker');
    const clientSecretArn = resolveIntrinsics(variables.LG_LOOKER_CLIENT_SECRET_ARN, FAKE_DEPLOYMENT, json);
    expect(clientSecretArn).toBe(parseLookerOidcResourceSettings(resolveIntrinsics(resource.Properties.Settings, FAKE_DEPLOYMENT, json)).clientSecretArn);
    // The service's own parser turns the environment into broker mode for Looker's redirect URI at the gateway's origin.
    const resolved = Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, String(resolveIntrinsics(value, FAKE_DEPLOYMENT, json))]));
    expect(parseAuthServiceEnvironment(resolved).lookerBroker).toEqual({
      issuer: 'https://looker.example.com',
      clientId: 'looker',
      clientSecretId: clientSecretArn,
      redirectUri: 'https://looker.example.com/openidconnect',
    });
    const roleId = authFn.Properties.Role['Fn::GetAtt'][0];
    const statements = resourcesOfType(json, 'AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    const readable = statements
      .filter((st: { Action: string | string[] }) => [st.Action].flat().includes('secretsmanager:GetSecretValue'))
      .flatMap((st: { Resource: unknown }) => [st.Resource].flat())
      .map((r: unknown) => resolveIntrinsics(r, FAKE_DEPLOYMENT, json));
    expect(readable).toContain(clientSecretArn);
  });

  test('no warning that the broker is not served any more; a warning that Looker will not trust the self-signed certificate', () => {
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('does not serve yet'))).toHaveLength(0);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('broker-self-signed-certificate'))).toHaveLength(1);
  });

  test('no cdk-nag finding in any of the four packs', () => {
    expect(GatewayNagPacks.findings(stack)).toEqual([]);
  });
});

describe("Looker's security group", () => {
  test('admits the function on the API port only (and the fleet on both ports, as before)', () => {
    const s = new Stack(newTestApp(), 'Peer');
    const vpc = new ec2.Vpc(s, 'Vpc', { maxAzs: 2 });
    const lookerSg = new ec2.SecurityGroup(s, 'LookerSg', { vpc });
    const gateway = new LookerGateway(s, 'Gateway', {
      domainName: 'looker.example.com',
      identityProvider: { issuer: 'https://login.example.com', clientId: 'gateway', clientSecret: secretsmanager.Secret.fromSecretNameV2(s, 'Idp', 'idp') },
      mappingRules: { rules: [{ name: 'all', match: { emailDomains: ['example.com'] }, grant: { groups: ['Everyone'] } }] },
      looker: LookerBackend.fromDnsName('looker.internal.example.com', { peer: lookerSg }),
      vpc,
      lookerOidc: {
        apiCredentials: secretsmanager.Secret.fromSecretCompleteArn(s, 'Api', API_SECRET_ARN),
        groupRoles: [{ group: 'Everyone', roles: ['Viewer'] }],
      },
    });
    const json = Template.fromStack(s).toJSON() as Json;
    const functionSg = s.resolve((gateway.lookerOidc!.function.connections.securityGroups[0].node.defaultChild as ec2.CfnSecurityGroup).attrGroupId);
    const lookerSgId = s.resolve(lookerSg.securityGroupId);
    const rulesFromFunction = resourcesOfType(json, 'AWS::EC2::SecurityGroupIngress')
      .map(([, r]) => r.Properties)
      .filter((p) => JSON.stringify(p.SourceSecurityGroupId) === JSON.stringify(functionSg));
    expect(rulesFromFunction).toEqual([expect.objectContaining({ GroupId: lookerSgId, FromPort: 19999, ToPort: 19999, IpProtocol: 'tcp' })]);
  });
});

describe('synth-time checks name the value and the fix', () => {
  function construct(overrides: Partial<LookerOidcConfigurationProps>): void {
    const stack = new Stack(new App(), 'Checks');
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2 });
    new LookerOidcConfiguration(stack, 'LookerOidc', {
      apiCredentials: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Api', API_SECRET_ARN),
      groupRoles: [{ group: 'Analysts', roles: ['Viewer'] }],
      looker: LookerBackend.fromDnsName('looker.internal.example.com'),
      domainName: 'looker.example.com',
      vpc,
      ...overrides,
    });
  }

  test.each<[string, Partial<LookerOidcConfigurationProps>, string]>([
    ['no group mapped', { groupRoles: [] }, 'groupRoles is empty: Looker takes roles from the groups the broker sends'],
    [
      'a group twice',
      {
        groupRoles: [
          { group: 'A', roles: ['Viewer'] },
          { group: 'A', roles: ['Admin'] },
        ],
      },
      'groupRoles lists group "A" twice',
    ],
    ['a group without roles', { groupRoles: [{ group: 'A', roles: [] }] }, 'groupRoles group "A" has no role names'],
    ['a group name with a comma', { groupRoles: [{ group: 'A,B', roles: ['Viewer'] }] }, 'groupRoles group "A,B" must be a non-empty name'],
    [
      'an attribute name the rules cannot have',
      { userAttributes: [{ attribute: 'Cost-Center' }] },
      'userAttributes attribute "Cost-Center" is not an attribute name',
    ],
    ['a client id with a space', { clientId: 'looker prod' }, 'clientId "looker prod" must be 1 to 128 letters'],
    [
      'an unknown migration type',
      { mergeExistingUsersBy: ['carrier-pigeon'] },
      'mergeExistingUsersBy "carrier-pigeon" is not one of Looker\'s: email, ldap, google, saml',
    ],
    [
      'an API URL with a path',
      { apiUrl: 'https://looker.internal:19999/api/4.0' },
      'apiUrl "https://looker.internal:19999/api/4.0" must be an https URL without a path',
    ],
    ['an API URL over http', { apiUrl: 'http://looker.internal:19999' }, 'must be an https URL without a path'],
    ['a request timeout of a minute', { requestTimeout: Duration.minutes(1) }, 'requestTimeout is 1 minute; it must be from 1 to 30 seconds'],
    ['a bad domain name', { domainName: 'https://looker.example.com' }, 'domainName "https://looker.example.com" is not a fully qualified domain name'],
  ])('%s', (_case, overrides, message) => {
    expect(() => construct(overrides)).toThrow(message);
  });

  test('groups the rules grant without a role, and mapped groups no rule grants, are warnings', () => {
    const stack = new Stack(new App(), 'Warnings');
    new LookerOidcConfiguration(stack, 'LookerOidc', {
      apiCredentials: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Api', API_SECRET_ARN),
      groupRoles: [
        { group: 'Analysts', roles: ['Viewer'] },
        { group: 'Nobody', roles: ['Viewer'] },
      ],
      userAttributes: [{ attribute: 'team', required: true }],
      looker: LookerBackend.fromDnsName('looker.internal.example.com'),
      domainName: 'looker.example.com',
      vpc: new ec2.Vpc(stack, 'Vpc', { maxAzs: 2 }),
      mappingRules: {
        rules: [
          { name: 'a', match: { groups: ['a'] }, grant: { groups: ['Analysts'] } },
          { name: 'b', match: { groups: ['b'] }, grant: { groups: ['Admins'] } },
        ],
      },
    });
    const messages = Annotations.fromStack(stack)
      .findWarning('*', Match.anyValue())
      .map((w) => String(w.entry.data));
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringContaining('The mapping rules grant the Looker group(s) "Admins", which groupRoles maps to no role'),
        expect.stringContaining('groupRoles maps "Nobody", which no mapping rule grants'),
        expect.stringContaining('userAttributes maps "team", which no mapping rule sets (grant.attributes): it is required, so every login would be refused'),
      ]),
    );
  });

  test.each<[string, Record<string, unknown>, string]>([
    [
      'group roles without the credentials secret',
      { lookerGroupRoles: LOOKER_OIDC_CONTEXT.lookerGroupRoles },
      'lookerGroupRoles or lookerApiUrl is set but lookerApiCredentialsSecretArn is not',
    ],
    [
      'the credentials secret without group roles',
      { lookerApiCredentialsSecretArn: API_SECRET_ARN },
      'lookerApiCredentialsSecretArn is set but lookerGroupRoles is not',
    ],
    [
      'group roles that are not a list of {group, roles}',
      { ...LOOKER_OIDC_CONTEXT, lookerGroupRoles: '{"Analysts":"Viewer"}' },
      '"lookerGroupRoles" is {"Analysts":"Viewer"}; give a JSON list like',
    ],
  ])('app context: %s', (_case, context, message) => {
    expect(() => newGatewayStack({ context })).toThrow(message);
  });

  test('broker mode with a rule that grants roles but no Looker group is a warning (Looker takes roles from groups only)', () => {
    const rules = {
      rules: [
        { name: 'analysts', match: { groups: ['a'] }, grant: { groups: ['Analysts'] } },
        { name: 'viewers-by-header', match: { groups: ['v'] }, grant: { roles: ['Viewer'] } },
      ],
    };
    const { stack } = newGatewayStack({ context: { ...LOOKER_OIDC_CONTEXT, mappingRules: rules } });
    const messages = Annotations.fromStack(stack)
      .findWarning('*', Match.stringLikeRegexp('broker-rule-without-looker-group'))
      .map((w) => String(w.entry.data));
    expect(messages).toEqual([expect.stringContaining('the mapping rule(s) "viewers-by-header" grant roles but no Looker group')]);
  });

  test('app context: group roles given as JSON text on the command line are parsed', () => {
    const { stack } = newGatewayStack({ context: { ...LOOKER_OIDC_CONTEXT, lookerGroupRoles: JSON.stringify(LOOKER_OIDC_CONTEXT.lookerGroupRoles) } });
    expect(resourcesOfType(Template.fromStack(stack).toJSON() as Json, 'Custom::LookerOidcConfiguration')).toHaveLength(1);
  });
});
