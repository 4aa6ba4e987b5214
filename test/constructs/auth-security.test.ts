/**
 * The auth service's share of issue 11 in the template: the session revocation table
 * (on demand, the gateway's KMS key, point-in-time recovery, TTL), the function's least
 * privilege on it, its name in the environment the service parses, the API route that
 * HAProxy polls, and the `trustUnverifiedEmail` setting (prop, cdk.json key, synth check).
 */
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { parseAuthServiceEnvironment } from '../../core/auth/environment';
import { REVOCATION_TABLE } from '../../core/auth/revocation-table';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGateway } from '../../lib/looker-gateway';
import { AUTH_PATHS } from '../../core/session-contract';
import { LookerGatewayStack, settingsFromContext } from '../../lib/stack';
import { resolveRoute } from '../../lambda/auth/service';
import { defaultContext, newEmptyStack, newGatewayStack } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

const { stack } = newGatewayStack();
const template = Template.fromStack(stack);
const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: any; DeletionPolicy?: string; Metadata?: any }> };

function logicalIdOf(pathSuffix: string): string {
  const match = Object.entries(json.Resources).find(([, r]) => (r.Metadata?.['aws:cdk:path'] as string | undefined)?.endsWith(pathSuffix));
  if (!match) throw new Error(`no resource at ${pathSuffix}`);
  return match[0];
}

const tableId = logicalIdOf('/AuthService/RevocationTable/Resource');
const keyId = Object.entries(json.Resources).find(([, r]) => r.Type === 'AWS::KMS::Key')![0];

test('the revocation table: on demand, encrypted with the gateway key, point-in-time recovery, TTL on expiresAt, pk/sk strings, destroyed with the stack', () => {
  const table = json.Resources[tableId];
  expect(table.Properties).toMatchObject({
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: [
      { AttributeName: REVOCATION_TABLE.partitionKey, KeyType: 'HASH' },
      { AttributeName: REVOCATION_TABLE.sortKey, KeyType: 'RANGE' },
    ],
    AttributeDefinitions: expect.arrayContaining([
      { AttributeName: REVOCATION_TABLE.partitionKey, AttributeType: 'S' },
      { AttributeName: REVOCATION_TABLE.sortKey, AttributeType: 'S' },
    ]),
    SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } },
    PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    TimeToLiveSpecification: { AttributeName: REVOCATION_TABLE.timeToLive, Enabled: true },
  });
  expect(table.Properties.TableName).toBeUndefined();
  expect(table.DeletionPolicy).toBe('Delete');
});

test('the function may GetItem, PutItem and Query that table only (no Scan, no delete), and use the key only through DynamoDB', () => {
  const roleId = logicalIdOf('/AuthService/Function/ServiceRole/Resource');
  const statements = Object.values(json.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(`"${roleId}"`))
    .flatMap((r) => r.Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown; Condition?: unknown }>);
  const dynamo = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('dynamodb:')));
  expect(dynamo).toEqual([
    expect.objectContaining({ Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'], Resource: { 'Fn::GetAtt': [tableId, 'Arn'] } }),
  ]);
  const viaDynamo = statements.filter((s) => JSON.stringify(s.Condition ?? {}).includes('dynamodb.'));
  expect(viaDynamo).toEqual([
    expect.objectContaining({
      Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
      Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
      Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['dynamodb.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
    }),
  ]);
});

test('the function environment names the table, and the service parses it', () => {
  const fn = json.Resources[logicalIdOf('/AuthService/Function/Resource')];
  expect(fn.Properties.Environment.Variables.LG_REVOCATION_TABLE_NAME).toEqual({ Ref: tableId });
  const env = resolveIntrinsics(fn.Properties.Environment.Variables, FAKE_DEPLOYMENT, json) as Record<string, string>;
  const config = parseAuthServiceEnvironment(env);
  expect(config.revocationTableName).toBe(`${tableId.toLowerCase()}-ref`);
  expect(config.idp.trustUnverifiedEmail).toBe(false);
  expect(env.LG_IDP_TRUST_UNVERIFIED_EMAIL).toBeUndefined();
});

test('the REST API routes /oauth2/revocations to the function: a greedy {proxy+} resource with ANY, under the stage HAProxy calls', () => {
  const apiId = logicalIdOf('/AuthService/Api/Resource');
  const proxy = Object.entries(json.Resources).find(
    ([, r]) => r.Type === 'AWS::ApiGateway::Resource' && r.Properties.PathPart === '{proxy+}' && JSON.stringify(r.Properties.RestApiId).includes(apiId),
  );
  expect(proxy).toBeDefined();
  expect(proxy![1].Properties.ParentId).toEqual({ 'Fn::GetAtt': [apiId, 'RootResourceId'] });
  template.hasResourceProperties('AWS::ApiGateway::Method', {
    HttpMethod: 'ANY',
    ResourceId: { Ref: proxy![0] },
    Integration: Match.objectLike({ Type: 'AWS_PROXY' }),
  });
  // The event API Gateway makes of GET /gateway/oauth2/revocations reaches the revocation route.
  expect(
    resolveRoute({
      resource: '/{proxy+}',
      path: '/oauth2/revocations',
      pathParameters: { proxy: 'oauth2/revocations' },
      requestContext: { path: '/gateway/oauth2/revocations' } as never,
    }),
  ).toBe(AUTH_PATHS.revocations);
});

test('trustUnverifiedEmail: true sets the variable and warns at synth; a non-boolean fails with the value and the fix', () => {
  const stack = newEmptyStack();
  const clientSecret = secretsmanager.Secret.fromSecretNameV2(stack, 'ClientSecret', 'idp-client-secret');
  const props = {
    domainName: 'looker.example.com',
    mappingRules: { rules: [{ name: 'r', match: { groups: ['g'] }, grant: { roles: ['Viewer'] } }] },
    looker: LookerBackend.fromDnsName('looker.internal.example.com'),
  };
  const gateway = new LookerGateway(stack, 'Gateway', {
    ...props,
    identityProvider: { issuer: 'https://login.example.com', clientId: 'gateway', clientSecret, trustUnverifiedEmail: true },
  });
  const fn = Template.fromStack(stack).toJSON().Resources[stack.getLogicalId(gateway.authService.function.node.defaultChild as never)];
  expect(fn.Properties.Environment.Variables.LG_IDP_TRUST_UNVERIFIED_EMAIL).toBe('true');
  Annotations.fromStack(stack).hasWarning('/Test/Gateway/AuthService', Match.stringLikeRegexp('trustUnverifiedEmail is true'));

  const other = newEmptyStack();
  const otherSecret = secretsmanager.Secret.fromSecretNameV2(other, 'ClientSecret', 'idp-client-secret');
  expect(
    () =>
      new LookerGateway(other, 'Gateway', {
        ...props,
        identityProvider: {
          issuer: 'https://login.example.com',
          clientId: 'gateway',
          clientSecret: otherSecret,
          trustUnverifiedEmail: 'yes' as unknown as boolean,
        },
      }),
  ).toThrow(/identityProvider\.trustUnverifiedEmail is "yes": use true or false \(default false/);
});

test('cdk.json key idpTrustUnverifiedEmail: true/false or their text, anything else fails naming the key', () => {
  const settings = (value: unknown) =>
    settingsFromContext(new App({ context: { ...defaultContext(), idpTrustUnverifiedEmail: value } }).node).idpTrustUnverifiedEmail;
  expect(settings(true)).toBe(true);
  expect(settings('false')).toBe(false);
  expect(settings(undefined)).toBeUndefined();
  expect(() => settings('maybe')).toThrow(/"idpTrustUnverifiedEmail" is "maybe"; use true or false/);
  const app = new App({ context: { ...defaultContext(), 'aws:cdk:bundling-stacks': [], idpTrustUnverifiedEmail: 'true' } });
  const trusting = new LookerGatewayStack(app, 'Trusting', { settings: settingsFromContext(app.node) });
  const fn = Object.values(Template.fromStack(trusting).toJSON().Resources as Record<string, { Type: string; Properties: any }>).find(
    (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.LG_MAPPING_RULES,
  );
  expect(fn!.Properties.Environment.Variables.LG_IDP_TRUST_UNVERIFIED_EMAIL).toBe('true');
});
