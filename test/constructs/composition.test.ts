/**
 * The constructs composed by hand, as aws-cdk-lib users compose theirs: keys made in one
 * stack and imported in another (IGatewayKeys), the auth service let in through its
 * `connections` (ec2.IConnectable), and the fleet reading only what it needs.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AuthService } from '../../lib/auth/auth-service';
import { GatewayFleet } from '../../lib/fleet/gateway-fleet';
import { FrontendCertificate } from '../../lib/keys/frontend-certificate';
import { GatewayKeys } from '../../lib/keys/gateway-keys';
import { LookerBackend } from '../../lib/looker/looker-backend';

const ENV = { account: '123456789012', region: 'eu-west-1' };
const ARN = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;

function gatewayStackWithImportedKeys() {
  const app = new App();
  const stack = new Stack(app, 'Gateway', { env: ENV });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  const secret = (id: string) => secretsmanager.Secret.fromSecretCompleteArn(stack, id, ARN(id));
  const keys = GatewayKeys.fromGatewayKeysAttributes(stack, 'Keys', {
    encryptionKey: new (require('aws-cdk-lib/aws-kms').Key)(stack, 'SharedKey'),
    signingKeys: secret('signing'),
    verificationKeys: secret('verification'),
    cookieKeys: secret('cookie'),
    backendClientCertificate: secret('backend-client'),
    frontendCertificate: FrontendCertificate.fromSecret(secret('frontend')),
    sessionAlgorithm: 'RS256',
  });
  const authService = new AuthService(stack, 'AuthService', {
    vpc,
    keys,
    domainName: 'looker.example.com',
    identityProvider: { issuer: 'https://login.example.com', clientId: 'gateway', clientSecret: secret('idp') },
    mappingRules: { rules: [{ name: 'everyone', match: { groups: ['staff'] }, grant: { roles: ['Viewer'] } }] },
  });
  const fleet = new GatewayFleet(stack, 'Fleet', {
    vpc,
    keys,
    looker: LookerBackend.fromDnsName('looker.internal.example.com'),
    domainName: 'looker.example.com',
    authService: { hostName: authService.hostName, pathPrefix: authService.stagePath },
    accessLogGroup: new logs.LogGroup(stack, 'AccessLogs'),
  });
  return { stack, keys, authService, fleet };
}

function statementsOf(template: Template, rolePathPart: string): Array<{ Action: string | string[]; Resource: unknown }> {
  const policies = Object.values(template.toJSON().Resources as Record<string, { Type: string; Properties: any }>).filter(
    (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(rolePathPart),
  );
  return policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
}

describe('IGatewayKeys', () => {
  test('keys imported from their attributes serve the auth service and the fleet: each reads only its own secrets', () => {
    const { stack } = gatewayStackWithImportedKeys();
    const template = Template.fromStack(stack);
    const readsOf = (role: string) =>
      statementsOf(template, role)
        .filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'))
        .map((s) => s.Resource)
        .flat()
        .sort();
    expect(readsOf('AuthServiceFunction')).toEqual([ARN('cookie'), ARN('idp'), ARN('signing')].sort());
    expect(readsOf('FleetInstanceRole')).toEqual([ARN('backend-client'), ARN('frontend'), ARN('verification')].sort());
  });

  test("the fleet's instances check sessions with the imported keys' algorithm and fetch the imported secrets", () => {
    const { fleet } = gatewayStackWithImportedKeys();
    const files = JSON.stringify((fleet.launchTemplate.node.defaultChild as ec2.CfnLaunchTemplate).getMetadata('cdk-looker-gateway:files'));
    expect(files).toContain('jwt_verify(\\"RS256\\"');
    for (const name of ['verification', 'backend-client', 'frontend']) expect(files).toContain(ARN(name));
  });

  test('an algorithm the gateway does not sign with is refused at synth, naming the fix', () => {
    const stack = new Stack(new App(), 'Test');
    const secret = (id: string) => secretsmanager.Secret.fromSecretCompleteArn(stack, id, ARN(id));
    expect(() =>
      GatewayKeys.fromGatewayKeysAttributes(stack, 'Keys', {
        encryptionKey: new (require('aws-cdk-lib/aws-kms').Key)(stack, 'Key'),
        signingKeys: secret('s'),
        verificationKeys: secret('v'),
        cookieKeys: secret('c'),
        backendClientCertificate: secret('b'),
        frontendCertificate: FrontendCertificate.fromSecret(secret('f')),
        sessionAlgorithm: 'HS256',
      }),
    ).toThrow(/sessionAlgorithm "HS256" is not supported; use one of ES256, RS256/);
  });
});

describe('AuthService.connections', () => {
  /** The ingress rules of the auth service's endpoint group, with or without the fleet let in. */
  function endpointIngress(letFleetIn: boolean) {
    const { stack, authService, fleet } = gatewayStackWithImportedKeys();
    if (letFleetIn) authService.connections.allowDefaultPortFrom(fleet, 'Gateway fleet to the auth service API');
    const endpointGroup = stack.resolve(authService.connections.securityGroups[0].securityGroupId);
    const rules = Object.values(Template.fromStack(stack).toJSON().Resources as Record<string, { Type: string; Properties: any }>).filter(
      (r) => r.Type === 'AWS::EC2::SecurityGroupIngress' && JSON.stringify(r.Properties.GroupId) === JSON.stringify(endpointGroup),
    );
    return {
      rules: rules.map((r) => r.Properties),
      fleetGroup: stack.resolve(fleet.securityGroup.securityGroupId),
      defaultPort: authService.connections.defaultPort,
    };
  }

  test('admits nothing until told, on HTTPS by default', () => {
    const { rules, defaultPort } = endpointIngress(false);
    expect(defaultPort?.toRuleJson()).toEqual({ ipProtocol: 'tcp', fromPort: 443, toPort: 443 });
    expect(rules).toEqual([]);
  });

  test('allowDefaultPortFrom(fleet) opens HTTPS from the fleet only', () => {
    const { rules, fleetGroup } = endpointIngress(true);
    expect(rules).toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, SourceSecurityGroupId: fleetGroup })]);
  });
});
