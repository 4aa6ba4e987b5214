/**
 * One test per synth-time validation error: each asserts that the message names the bad
 * value and the fix.
 */
import { App, Duration, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AttributeConflictPolicy, MappingRuleSet } from '../../core/auth/mapping-rules';
import { GatewayKeys } from '../../lib/keys/gateway-keys';
import { FrontendCertificate } from '../../lib/keys/frontend-certificate';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGatewayStack, settingsFromContext } from '../../lib/stack';
import { environmentSize, LAMBDA_ENVIRONMENT_LIMIT_BYTES } from '../../lib/private/lambda-environment';
import { defaultContext, newEmptyStack, newTestGateway, RULES } from './fixtures';

describe('LookerGateway props', () => {
  test('a valid gateway synthesizes (the baseline of the tests below)', () => {
    expect(() => newTestGateway()).not.toThrow();
  });

  test('issuer not HTTPS', () => {
    const stack = newEmptyStack();
    expect(() =>
      newTestGateway(
        {
          identityProvider: { issuer: 'http://login.example.com', clientId: 'gateway', clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'S', 'x') },
        },
        stack,
      ),
    ).toThrow(/identityProvider\.issuer "http:\/\/login\.example\.com" must use https:.*Use the https:\/\/ issuer URL/);
  });

  test('issuer not a URL', () => {
    const stack = newEmptyStack();
    expect(() =>
      newTestGateway(
        { identityProvider: { issuer: 'login.example.com', clientId: 'gateway', clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'S', 'x') } },
        stack,
      ),
    ).toThrow(/identityProvider\.issuer "login\.example\.com" is not a URL/);
  });

  test('scopes without openid', () => {
    const stack = newEmptyStack();
    expect(() =>
      newTestGateway(
        {
          identityProvider: {
            issuer: 'https://login.example.com',
            clientId: 'gateway',
            scopes: ['email'],
            clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'S', 'x'),
          },
        },
        stack,
      ),
    ).toThrow(/identityProvider\.scopes "email" lack "openid": OpenID Connect login needs it/);
  });

  test('empty client id', () => {
    const stack = newEmptyStack();
    expect(() =>
      newTestGateway(
        { identityProvider: { issuer: 'https://login.example.com', clientId: ' ', clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'S', 'x') } },
        stack,
      ),
    ).toThrow(/identityProvider\.clientId is empty/);
  });

  test.each([
    [Duration.seconds(30), '30 seconds'],
    [Duration.minutes(61), '1 hour 1 minute'],
  ])('session lifetime of %s is outside 1 to 60 minutes', (sessionLifetime, shown) => {
    expect(() => newTestGateway({ sessionLifetime })).toThrow(
      new RegExp(`sessionLifetime is ${shown}; it must be from 1 minute to 1 hour\\. Sessions are refreshed inline`),
    );
  });

  test('fewer than 2 Availability Zones', () => {
    const stack = newEmptyStack();
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-1',
      availabilityZones: ['eu-west-1a'],
      privateSubnetIds: ['subnet-1'],
      publicSubnetIds: ['subnet-2'],
      vpcCidrBlock: '10.0.0.0/16',
    });
    expect(() => newTestGateway({ vpc }, stack)).toThrow(
      /the VPC spans 1 Availability Zone\(s\) \(eu-west-1a\); the gateway needs at least 2.*Give a VPC with subnets in 2 or more AZs/,
    );
  });

  test('mapping rules that grant nothing', () => {
    const rules = { rules: [{ name: 'nothing', match: { groups: ['g'] }, grant: {} }] } as MappingRuleSet;
    expect(() => newTestGateway({ mappingRules: rules })).toThrow(
      /mappingRules: .*grants nothing: give at least one of grant\.roles, grant\.groups or grant\.attributes/,
    );
  });

  test('no mapping rules at all', () => {
    expect(() => newTestGateway({ mappingRules: { rules: [] } })).toThrow(/mappingRules: .*non-empty list of rules/);
  });

  test.each(['https://looker.example.com', 'looker', 'looker.example.com/path', '10.0.0.1'])('bad domain name %s', (domainName) => {
    expect(() => newTestGateway({ domainName })).toThrow(
      new RegExp(`domainName "${domainName.replace(/[./]/g, '\\$&')}" is not a fully qualified domain name.*for example "looker\\.example\\.com"`),
    );
  });

  test('a domain name that is a token is not checked at synth', () => {
    expect(() => newTestGateway({ domainName: Token.asString({ Ref: 'DomainParameter' }) })).not.toThrow();
  });

  test('min capacity above max capacity', () => {
    expect(() => newTestGateway({ minCapacity: 5, maxCapacity: 4 })).toThrow(
      /minCapacity \(5\) must be less than maxCapacity \(4\).*Raise maxCapacity to at least 6/,
    );
  });

  test('min capacity equal to max capacity leaves rolling updates no room', () => {
    expect(() => newTestGateway({ minCapacity: 3, maxCapacity: 3 })).toThrow(/minCapacity \(3\) must be less than maxCapacity \(3\)/);
  });

  test('fewer than 2 instances', () => {
    expect(() => newTestGateway({ minCapacity: 1 })).toThrow(
      /minCapacity is 1; it must be a whole number from 2 to 100. The gateway runs at least 2 instances/,
    );
  });

  test('listener ports that collide', () => {
    expect(() => newTestGateway({ healthCheckPort: 443 })).toThrow(
      /instancePort, healthCheckPort, readinessPort, metricsPort and httpRedirectPort must differ, got 443, 443, 8081, 8405, 80: each is a listener of its own/,
    );
    expect(() => newTestGateway({ httpRedirectPort: 8080 })).toThrow(
      /instancePort, healthCheckPort, readinessPort, metricsPort and httpRedirectPort must differ, got 443, 8080, 8081, 8405, 8080/,
    );
  });

  test('fallback instance types of another architecture, or listed twice', () => {
    expect(() => newTestGateway({ fallbackInstanceTypes: [new ec2.InstanceType('m7i.large')] })).toThrow(
      /fallbackInstanceTypes has m7i\.large \(x86_64\) but instanceType m7g\.medium is arm64: the group launches one AMI, so every type must have the same architecture\. Pick fallbacks of the same family, for example c7g\.medium for m7g\.medium\./,
    );
    expect(() => newTestGateway({ instanceType: new ec2.InstanceType('c7g.medium'), fallbackInstanceTypes: [new ec2.InstanceType('c7g.medium')] })).toThrow(
      /instance type c7g\.medium is listed twice/,
    );
  });

  test('a client CIDR that is not one', () => {
    expect(() => newTestGateway({ clientCidrs: ['10.0.0.0'] })).toThrow(
      /clientCidrs entry "10\.0\.0\.0" is not an IPv4 CIDR\. Write it like "203\.0\.113\.0\/24"/,
    );
  });

  test('NAT gateways out of range', () => {
    expect(() => newTestGateway({ natGateways: 0 })).toThrow(/natGateways is 0; it must be a whole number from 1 to 2/);
  });

  test('Looker reached by IP address without the name in its certificate', () => {
    expect(() => newTestGateway({ looker: LookerBackend.fromHosts(['10.0.1.10']) })).toThrow(
      /Looker hosts are IP addresses \(10\.0\.1\.10\) and no serverName is set.*serverName: "looker\.internal\.example\.com"/,
    );
  });
});

describe('LookerBackend', () => {
  test('empty list of hosts', () => {
    expect(() => LookerBackend.fromHosts([])).toThrow(
      /LookerBackend\.fromHosts: the list of Looker hosts is empty\. Give at least one host name or IPv4 address/,
    );
  });

  test('a host with a scheme or port', () => {
    expect(() => LookerBackend.fromHosts(['https://looker:9999'])).toThrow(
      /Looker host "https:\/\/looker:9999" is neither a host name nor an IPv4 address.*ports go in webPort\/apiPort/,
    );
  });

  test('a host listed twice', () => {
    expect(() => LookerBackend.fromHosts(['10.0.0.1', '10.0.0.1'])).toThrow(/Looker host "10\.0\.0\.1" is listed twice/);
  });

  test('a DNS name that is not one', () => {
    expect(() => LookerBackend.fromDnsName('looker internal')).toThrow(/LookerBackend\.fromDnsName: "looker internal" is not a DNS name/);
  });

  test('a port out of range', () => {
    expect(() => LookerBackend.fromDnsName('looker.example.com', { webPort: 70000 })).toThrow(/webPort is 70000; use a TCP port from 1 to 65535/);
  });

  test('a CA that is not PEM', () => {
    expect(() => LookerBackend.fromDnsName('looker.example.com', { caCertificatePem: 'MIIB...' })).toThrow(/caCertificatePem is not a PEM certificate/);
  });

  test("the fleet is let into Looker's security group on the web port only (it never routes to the API port)", () => {
    const stack = newEmptyStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2 });
    const lookerSg = new ec2.SecurityGroup(stack, 'Looker', { vpc });
    const fleetSg = new ec2.SecurityGroup(stack, 'Fleet', { vpc });
    LookerBackend.fromHosts(['10.0.1.10'], { peer: lookerSg, serverName: 'looker.internal' }).allowFrom(fleetSg);
    const ingress = Object.values(stack.resolve((stack as any)._toCloudFormation().Resources) as Record<string, { Type: string; Properties: any }>)
      .filter((r) => r.Type === 'AWS::EC2::SecurityGroupIngress')
      .map((r) => r.Properties.FromPort)
      .sort((a, b) => a - b);
    expect(ingress).toEqual([9999]);
  });
});

describe('GatewayKeys', () => {
  test('a frontend certificate you provide is never rotated: no schedule, not in the hourly check, no write permission on it', () => {
    const stack = newEmptyStack();
    const provided = new secretsmanager.Secret(stack, 'MyCertificate');
    new GatewayKeys(stack, 'Keys', { frontendCertificate: FrontendCertificate.fromSecret(provided) });
    const template = Template.fromStack(stack);
    const providedId = stack.getLogicalId(provided.node.defaultChild as secretsmanager.CfnSecret);
    const schedules = Object.values(template.findResources('AWS::SecretsManager::RotationSchedule'));
    expect(schedules).toHaveLength(3);
    expect(schedules.map((schedule) => schedule.Properties.SecretId.Ref)).not.toContain(providedId);
    const rotationFunction = Object.values(template.findResources('AWS::Lambda::Function')).find(
      (fn) => fn.Properties.Environment?.Variables?.LG_ROTATED_SECRET_ARNS,
    );
    expect(JSON.stringify(rotationFunction!.Properties.Environment.Variables.LG_ROTATED_SECRET_ARNS)).not.toContain(providedId);
    const writes = Object.values(template.findResources('AWS::IAM::Policy'))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[])
      .filter((statement) => [statement.Action].flat().some((action) => /PutSecretValue|UpdateSecretVersionStage/.test(action)));
    expect(JSON.stringify(writes)).not.toContain(providedId);
  });

  test('a signing-key schedule whose rotations can land closer than a key needs (rate(1 day): 23:59, then 00:01)', () => {
    expect(() => new GatewayKeys(newEmptyStack(), 'Keys', { signingKeyRotation: Duration.days(1) })).toThrow(
      'signingKeyRotation 1 day ("rate(1 day)") lets two rotations land 0 min apart (one at the end of its window (the default: the rest of the UTC day for daily schedules, one hour for hourly ones), the next at the start of the following one), but a signing key needs 22 min between rotations',
    );
    // Longer sessions raise the need: 2-hour sessions do not fit between 4-hourly windows of 3 hours.
    expect(
      () =>
        new GatewayKeys(newEmptyStack(), 'Keys', {
          signingKeyRotationSchedule: 'cron(0 0/4 * * ? *)',
          signingKeyRotationWindow: Duration.hours(3),
          sessionLifetime: Duration.hours(2),
        }),
    ).toThrow(/lets two rotations land 60 min apart .* needs 132 min between rotations: .* session lifetime 7200 s/);
  });

  test('signing-key schedules that leave room are accepted, and an explicit window goes into the template', () => {
    expect(() => new GatewayKeys(newEmptyStack(), 'Keys', { signingKeyRotation: Duration.days(2) })).not.toThrow();
    expect(() => new GatewayKeys(newEmptyStack(), 'Keys', { signingKeyRotation: Duration.hours(6) })).not.toThrow();
    const stack = newEmptyStack();
    new GatewayKeys(stack, 'Keys', { signingKeyRotationSchedule: 'cron(0 3 ? * MON *)', signingKeyRotationWindow: Duration.hours(2) });
    Template.fromStack(stack).hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      SecretId: { Ref: Match.stringLikeRegexp('^KeysSigningKeys') },
      RotationRules: { ScheduleExpression: 'cron(0 3 ? * MON *)', Duration: '2h' },
      RotateImmediatelyOnUpdate: true,
    });
  });

  test.each([
    [{ signingKeyRotationWindow: Duration.hours(2) }, 'signingKeyRotationWindow is the window of signingKeyRotationSchedule: give the schedule too'],
    [
      { signingKeyRotation: Duration.days(7), signingKeyRotationSchedule: 'rate(7 days)' },
      'give either signingKeyRotation (a period) or signingKeyRotationSchedule',
    ],
    [
      { signingKeyRotationSchedule: 'cron(0 3 ? * MON *)', signingKeyRotationWindow: Duration.minutes(90) },
      'signingKeyRotationWindow is 1 hour 30 minutes; Secrets Manager takes a window of whole hours from 1 to 24',
    ],
    [{ signingKeyRotationSchedule: 'weekly' }, 'signingKeyRotationSchedule: Schedule expression "weekly" is neither rate(...) nor cron(...)'],
    [{ signingKeyRotationSchedule: 'cron(0 23 ? * MON *)', signingKeyRotationWindow: Duration.hours(2) }, 'runs past the end of the UTC day'],
  ] as const)('an invalid signing-key schedule %j', (props, message) => {
    expect(() => new GatewayKeys(newEmptyStack(), 'Keys', props)).toThrow(message);
  });

  test('an unsupported session algorithm', () => {
    expect(() => new GatewayKeys(newEmptyStack(), 'Keys', { sessionAlgorithm: 'HS256' })).toThrow(
      /sessionAlgorithm "HS256" is not supported; use one of ES256, RS256/,
    );
  });

  test('a certificate rotation slower than half its validity', () => {
    expect(() => new GatewayKeys(newEmptyStack(), 'Keys', { backendClientCertificateRotation: Duration.days(10) })).toThrow(
      /backendClientCertificateRotation rotates every 10 days but each certificate is valid for 14 days: rotate at most every 7 days/,
    );
  });

  test('a rotation faster than Secrets Manager allows', () => {
    expect(() => new GatewayKeys(newEmptyStack(), 'Keys', { cookieKeyRotation: Duration.hours(1) })).toThrow(
      /rotation of CookieKeys every 1 hour is too often: Secrets Manager rotates at most every 4 hours/,
    );
  });

  test('a frontend domain that is not a DNS name', () => {
    expect(() => new GatewayKeys(newEmptyStack(), 'Keys', { domainName: 'not a name' })).toThrow(/frontendDomainName "not a name" is not a DNS name/);
  });
});

describe('app settings from context', () => {
  function stackWith(context: Record<string, unknown>): LookerGatewayStack {
    const app = new App({ context: { ...defaultContext(), 'aws:cdk:bundling-stacks': [], ...context } });
    return new LookerGatewayStack(app, 'S', { settings: settingsFromContext(app.node) });
  }

  test('missing domain name', () => {
    expect(() => stackWith({ domainName: '' })).toThrow(/"domainName" is not set\. Add it to cdk\.json "context" or pass -c domainName=/);
  });

  test('both Looker hosts and a Looker DNS name', () => {
    expect(() => stackWith({ lookerDnsName: 'looker.internal.example.com' })).toThrow(/both lookerHosts and lookerDnsName are set: give one of them/);
  });

  test('no Looker backend', () => {
    expect(() => stackWith({ lookerHosts: [] })).toThrow(/no Looker backend: set lookerHosts .* or lookerDnsName/);
  });

  test('mapping rules that are not JSON', () => {
    expect(() => stackWith({ mappingRules: '{rules: oops' })).toThrow(/"mappingRules" is not valid JSON/);
  });

  test('a number that is not one', () => {
    expect(() => stackWith({ minCapacity: 'two' })).toThrow(/"minCapacity" is "two"; it must be a whole number/);
  });

  test('settings given on the command line as strings are parsed', () => {
    const stack = stackWith({
      lookerHosts: '10.1.0.1,10.1.0.2',
      minCapacity: '3',
      maxCapacity: '5',
      internetFacing: 'false',
      mappingRules: JSON.stringify(RULES),
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '3', MaxSize: '5' });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal' });
  });
});

describe("the auth service environment and Lambda's 4 KB limit", () => {
  /** `count` rules of the usual shape: one IdP group each, a role, a Looker group and a team attribute. */
  function teamRules(count: number): MappingRuleSet {
    return {
      rules: Array.from({ length: count }, (_, i) => ({
        name: `team-${i}-analysts`,
        match: { groups: [`looker-team-${i}-analysts`] },
        grant: { roles: ['Viewer', 'Explorer'], groups: [`Team ${i} Analysts`], attributes: { team: `team-${i}` } },
      })),
      attributeConflicts: AttributeConflictPolicy.JOIN,
    };
  }

  test('a few dozen mapping rules fail at synth with the size, the largest variable and the fix', () => {
    const stack = newEmptyStack();
    newTestGateway({ mappingRules: teamRules(36) }, stack);
    expect(() => Template.fromStack(stack)).toThrow(
      /the environment of function Test\/Gateway\/AuthService\/Function is \d{4,} bytes, over Lambda's 4096-byte limit for all variables together \(largest: LG_MAPPING_RULES \d+ bytes, .*\); the deploy would fail\. If it is the mapping rules: fewer, broader rules fit/,
    );
  });

  test('a dozen rules fit; the size counted is at least that of the environment CloudFormation gets', () => {
    const stack = newEmptyStack();
    newTestGateway({ mappingRules: teamRules(12) }, stack);
    const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function');
    const auth = Object.values(functions).find((f) => JSON.stringify(f.Properties.Environment ?? {}).includes('LG_MAPPING_RULES'))!;
    const variables = auth.Properties.Environment.Variables as Record<string, unknown>;
    const { total } = environmentSize(variables);
    expect(total).toBeLessThanOrEqual(LAMBDA_ENVIRONMENT_LIMIT_BYTES);
    // Deploy-time values (secret ARNs) resolved to real-looking ARNs still fit in the size counted.
    const resolved = Object.fromEntries(
      Object.entries(variables).map(([k, v]) => [
        k,
        typeof v === 'string' ? v : `arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:${'GatewayKeysSigningKeys'.padEnd(40, 'x')}-AbCdEf`,
      ]),
    );
    expect(Buffer.byteLength(JSON.stringify(resolved))).toBeLessThanOrEqual(total);
  });
});
