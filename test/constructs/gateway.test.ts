/**
 * Template assertions for every construct of the full stack (as bin/app.ts makes it from
 * the example context), plus IAM least privilege over every policy statement.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parseAuthServiceEnvironment } from '../../core/auth/environment';
import { DEBIAN_13_ARM64_AMI_PARAMETER } from '../../lib/fleet/launch-template';
import { CLOUDWATCH_AGENT_CONFIG_PATH, FILES_METADATA_KEY } from '../../core/instance/user-data';
import { SECRET_KIND_TAG, SECRET_KINDS, seedSecretValue } from '../../core/key-material';
import { CLEAR_ABANDONED_ROTATIONS, readRotationSettings } from '../../core/rotation-contract';
import { newGatewayStack } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

const { stack } = newGatewayStack();
const template = Template.fromStack(stack);
const json = template.toJSON() as {
  Resources: Record<string, { Type: string; Properties: any; Metadata?: any; UpdatePolicy?: any; CreationPolicy?: any }>;
  Parameters: Record<string, any>;
};

function resourcesOfType(type: string): Array<[string, { Properties: any; Metadata?: any; UpdatePolicy?: any; CreationPolicy?: any }]> {
  return Object.entries(json.Resources).filter(([, r]) => r.Type === type);
}

function logicalIdOf(pathSuffix: string): string {
  const match = Object.entries(json.Resources).find(([, r]) => (r.Metadata?.['aws:cdk:path'] as string | undefined)?.endsWith(pathSuffix));
  if (!match) throw new Error(`no resource at ${pathSuffix}`);
  return match[0];
}

describe('GatewayFleet', () => {
  test('launches Debian 13 arm64 from the public SSM parameter, without a lookup', () => {
    const parameter = Object.values(json.Parameters).find((p) => p.Default === DEBIAN_13_ARM64_AMI_PARAMETER);
    expect(parameter).toMatchObject({ Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>' });
    expect(DEBIAN_13_ARM64_AMI_PARAMETER).toBe('/aws/service/debian/release/13/latest/arm64');
  });

  test('launch template: IMDSv2 only, encrypted gp3, detailed monitoring, Graviton, no key pair, no public IP', () => {
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        InstanceType: 'm7g.medium',
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'disabled' },
        Monitoring: { Enabled: true },
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: Match.objectLike({ Encrypted: true, VolumeType: 'gp3' }) }],
        NetworkInterfaces: [Match.objectLike({ AssociatePublicIpAddress: false, DeviceIndex: 0 })],
        KeyName: Match.absent(),
      }),
    });
  });

  test('the group spans its zones and launches several instance types (mixed instances policy, on demand, in order)', () => {
    const [, group] = resourcesOfType('AWS::AutoScaling::AutoScalingGroup')[0];
    expect(group.Properties.LaunchTemplate).toBeUndefined();
    expect(group.Properties.MixedInstancesPolicy).toMatchObject({
      LaunchTemplate: {
        LaunchTemplateSpecification: { LaunchTemplateId: { Ref: logicalIdOf('/Fleet/LaunchTemplate/Resource') } },
        Overrides: [{ InstanceType: 'm7g.medium' }, { InstanceType: 'c7g.medium' }],
      },
      InstancesDistribution: { OnDemandAllocationStrategy: 'prioritized', OnDemandPercentageAboveBaseCapacity: 100 },
    });
    // Both the zones and the subnets: the zones are those of the private subnets.
    expect(group.Properties.AvailabilityZones).toHaveLength(2);
    expect(group.Properties.VPCZoneIdentifier).toHaveLength(2);
  });

  test('instances use Session Manager and no port 22 is open anywhere', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })] }),
      ManagedPolicyArns: [Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('AmazonSSMManagedInstanceCore')])] })],
    });
    const ingressRules = [
      ...resourcesOfType('AWS::EC2::SecurityGroup').flatMap(([, r]) => r.Properties.SecurityGroupIngress ?? []),
      ...resourcesOfType('AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties),
    ];
    expect(ingressRules.length).toBeGreaterThan(0);
    for (const rule of ingressRules) expect(rule.FromPort <= 22 && rule.ToPort >= 22).toBe(false);
  });

  test('the group keeps at least 2 instances across AZs, updates one at a time and waits for signals', () => {
    const [, group] = resourcesOfType('AWS::AutoScaling::AutoScalingGroup')[0];
    expect(group.Properties).toMatchObject({ MinSize: '2', MaxSize: '6', HealthCheckType: 'ELB', HealthCheckGracePeriod: 600 });
    expect(group.Properties.VPCZoneIdentifier).toHaveLength(2);
    expect(group.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({
      MinInstancesInService: 2,
      MaxBatchSize: 1,
      WaitOnResourceSignals: true,
      PauseTime: 'PT15M',
    });
    expect(group.CreationPolicy.ResourceSignal).toMatchObject({ Count: 2, Timeout: 'PT15M' });
  });

  test('instances and the auth function start after the first rotations replaced the seed values', () => {
    const schedules = resourcesOfType('AWS::SecretsManager::RotationSchedule').map(([id]) => id);
    const dependsOn = (id: string) => (json.Resources[id] as { DependsOn?: string[] }).DependsOn ?? [];
    expect(dependsOn(resourcesOfType('AWS::AutoScaling::AutoScalingGroup')[0][0])).toEqual(expect.arrayContaining(schedules));
    expect(dependsOn(logicalIdOf('/AuthService/Function/Resource'))).toEqual(expect.arrayContaining(schedules));
  });

  test('scales on CPU (target tracking) and on connections per instance (step scaling)', () => {
    template.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingConfiguration: Match.objectLike({ PredefinedMetricSpecification: { PredefinedMetricType: 'ASGAverageCPUUtilization' }, TargetValue: 60 }),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'flows / MAX([instances, 1])' })]),
      Threshold: 5000,
    });
  });

  test('NLB: internet-facing, cross-zone, TCP 443 passthrough; no access-log bucket (a TCP listener writes no access logs)', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'network',
      Scheme: 'internet-facing',
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'load_balancing.cross_zone.enabled', Value: 'true' }]),
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 443, Protocol: 'TCP' });
    // ELB user guide, "Access logs for your Network Load Balancer": logs are created only for TLS listeners.
    expect(resourcesOfType('AWS::ElasticLoadBalancingV2::Listener').every(([, r]) => r.Properties.Protocol !== 'TLS')).toBe(true);
    const attributes = resourcesOfType('AWS::ElasticLoadBalancingV2::LoadBalancer')[0][1].Properties.LoadBalancerAttributes as Array<{ Key: string }>;
    expect(attributes.map((a) => a.Key)).not.toContain('access_logs.s3.enabled');
    expect(resourcesOfType('AWS::S3::Bucket')).toEqual([]);
  });

  test('the CloudWatch agent may publish its metrics (into its namespace only) and read the tags its dimensions need', () => {
    const files = resolveIntrinsics(json.Resources[logicalIdOf('/Fleet/LaunchTemplate/Resource')].Metadata[FILES_METADATA_KEY], FAKE_DEPLOYMENT, json) as {
      files: Array<{ path: string; content: string }>;
    };
    const agentConfig = JSON.parse(files.files.find((f) => f.path === CLOUDWATCH_AGENT_CONFIG_PATH)!.content);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalIdOf('/Fleet/InstanceRole/Resource') }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'CloudWatchAgentMetrics',
            Effect: 'Allow',
            Action: 'cloudwatch:PutMetricData',
            Resource: '*',
            Condition: { StringEquals: { 'cloudwatch:namespace': agentConfig.metrics.namespace } },
          }),
          Match.objectLike({ Sid: 'CloudWatchAgentDimensions', Effect: 'Allow', Action: 'ec2:DescribeTags', Resource: '*' }),
        ]),
      },
    });
    expect(agentConfig.metrics.append_dimensions.AutoScalingGroupName).toBe('${aws:AutoScalingGroupName}');
  });

  test('target group: PROXY protocol v2 on the TLS port, health check on the plain port', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 443,
      Protocol: 'TCP',
      HealthCheckProtocol: 'HTTP',
      HealthCheckPort: '8080',
      TargetGroupAttributes: Match.arrayWith([{ Key: 'proxy_protocol_v2.enabled', Value: 'true' }]),
    });
  });

  test('instances admit only the load balancer security group: HTTPS, the plain HTTP redirect and the health check', () => {
    const fleetSg = logicalIdOf('/Fleet/SecurityGroup/Resource');
    const lbSg = logicalIdOf('/Fleet/LoadBalancerSecurityGroup/Resource');
    const intoFleet = resourcesOfType('AWS::EC2::SecurityGroupIngress').filter(([, r]) => JSON.stringify(r.Properties.GroupId).includes(fleetSg));
    expect(intoFleet.map(([, r]) => r.Properties.FromPort).sort((a, b) => a - b)).toEqual([80, 443, 8080]);
    for (const [, rule] of intoFleet) expect(rule.Properties.SourceSecurityGroupId).toEqual({ 'Fn::GetAtt': [lbSg, 'GroupId'] });
  });

  test('the launch template carries the rendered files; the user data fetches them and signals', () => {
    const [, launchTemplate] = resourcesOfType('AWS::EC2::LaunchTemplate')[0];
    const files = (resolveIntrinsics(launchTemplate.Metadata[FILES_METADATA_KEY], FAKE_DEPLOYMENT, json) as { files: Array<{ path: string; content: string }> })
      .files;
    const paths = files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['/etc/haproxy/gateway/haproxy.cfg', '/etc/haproxy/gateway/lua/gateway-refresh.lua']));
    const config = files.find((f) => f.path.endsWith('haproxy.cfg'))!.content;
    const apiId = logicalIdOf('/AuthService/Api/Resource');
    expect(config).toContain(`${apiId.toLowerCase()}-ref.execute-api.eu-west-1.amazonaws.com`);
    expect(config).not.toMatch(/placeholder\.invalid|\$\{Token/);
    const userData = Buffer.from(resolveIntrinsics(launchTemplate.Properties.LaunchTemplateData.UserData, FAKE_DEPLOYMENT, json) as string, 'base64').toString(
      'utf8',
    );
    expect(userData.length).toBeLessThan(16 * 1024);
    expect(userData).toContain(`--logical-resource-id "$LG_FILES_RESOURCE"`);
    expect(userData).toContain(`LG_SIGNAL_RESOURCE='${logicalIdOf('/Fleet/Group/ASG')}'`);
  });
});

describe('AuthService', () => {
  const functionId = logicalIdOf('/AuthService/Function/Resource');
  const fn = json.Resources[functionId];

  test('Node.js 24 on arm64, JSON logs into an encrypted log group with retention, in the VPC, traced', () => {
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', LogGroup: expect.anything() },
      TracingConfig: { Mode: 'Active' },
      VpcConfig: expect.anything(),
    });
    const logGroupId = fn.Properties.LoggingConfig.LogGroup.Ref as string;
    expect(json.Resources[logGroupId].Properties).toMatchObject({ RetentionInDays: 365, KmsKeyId: expect.anything() });
  });

  test('its environment is what the auth service itself accepts', () => {
    const env = resolveIntrinsics(fn.Properties.Environment.Variables, FAKE_DEPLOYMENT, json) as Record<string, string>;
    const config = parseAuthServiceEnvironment(env);
    expect(config.publicBaseUrl).toBe('https://looker.example.com');
    expect(config.session.issuer).toBe('https://looker.example.com');
    expect(config.session.ttlSeconds).toBe(600);
    expect(config.mappingRules.rules.map((r) => r.name)).toEqual(['looker-admins', 'analysts-eu', 'analysts-us']);
    expect(config.signingKeysSecretId).toContain(':secret:');
  });

  test('a PRIVATE REST API whose resource policy admits only the gateway VPC endpoint', () => {
    const endpointId = logicalIdOf('/AuthService/ApiEndpoint/Resource');
    template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['PRIVATE'], VpcEndpointIds: [{ Ref: endpointId }] },
      Policy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { StringNotEquals: { 'aws:SourceVpce': { Ref: endpointId } } } }),
          Match.objectLike({ Effect: 'Allow', Condition: { StringEquals: { 'aws:SourceVpce': { Ref: endpointId } } } }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Interface', PrivateDnsEnabled: true, ServiceName: Match.objectLike({}) });
  });

  test('the endpoint admits HTTPS from the fleet security group and nothing else', () => {
    const endpointSg = logicalIdOf('/AuthService/ApiEndpoint/SecurityGroup/Resource');
    const fleetSg = logicalIdOf('/Fleet/SecurityGroup/Resource');
    expect(json.Resources[endpointSg].Properties.SecurityGroupIngress).toBeUndefined();
    const rules = resourcesOfType('AWS::EC2::SecurityGroupIngress').filter(([, r]) => JSON.stringify(r.Properties.GroupId).includes(endpointSg));
    expect(rules.map(([, r]) => r.Properties)).toEqual([
      expect.objectContaining({ FromPort: 443, ToPort: 443, IpProtocol: 'tcp', SourceSecurityGroupId: { 'Fn::GetAtt': [fleetSg, 'GroupId'] } }),
    ]);
  });

  test('stage: access log, tracing, throttling, execution logs without bodies', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'gateway',
      TracingEnabled: true,
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') }),
      MethodSettings: [Match.objectLike({ DataTraceEnabled: false, LoggingLevel: 'ERROR', ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 })],
    });
  });
});

describe('GatewayKeys', () => {
  test('a KMS key with rotation', () => {
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  test('six secrets of the six kinds, encrypted with the key, tagged with their kind', () => {
    const secrets = resourcesOfType('AWS::SecretsManager::Secret').filter(([, r]) => r.Properties.Tags);
    const kinds = secrets.map(([, r]) => r.Properties.Tags.find((t: { Key: string }) => t.Key === SECRET_KIND_TAG)?.Value).sort();
    expect(kinds).toEqual(Object.values(SECRET_KINDS).sort());
    for (const [, secret] of secrets) {
      expect(secret.Properties.KmsKeyId).toBeTruthy();
      const seed = JSON.parse(secret.Properties.SecretString);
      expect(seed.kind).toBe(secret.Properties.Tags.find((t: { Key: string }) => t.Key === SECRET_KIND_TAG).Value);
    }
  });

  test('rotation schedules seed on deploy: signing keys 7 days, cookie keys 30, client certificate 7, self-signed frontend 30', () => {
    const schedules = resourcesOfType('AWS::SecretsManager::RotationSchedule').map(([, r]) => r.Properties);
    expect(schedules).toHaveLength(4);
    for (const schedule of schedules) expect(schedule.RotateImmediatelyOnUpdate).toBe(true);
    const rateOf = (kind: string) => {
      const secretId = resourcesOfType('AWS::SecretsManager::Secret').find(([, r]) => r.Properties.Tags?.some((t: { Value: string }) => t.Value === kind))![0];
      return schedules.find((s) => s.SecretId.Ref === secretId)?.RotationRules.ScheduleExpression;
    };
    expect(rateOf(SECRET_KINDS.signingKeys)).toBe('rate(7 days)');
    expect(rateOf(SECRET_KINDS.cookieKeys)).toBe('rate(30 days)');
    expect(rateOf(SECRET_KINDS.backendClientCertificate)).toBe('rate(7 days)');
    expect(rateOf(SECRET_KINDS.frontendCertificate)).toBe('rate(30 days)');
    expect(rateOf(SECRET_KINDS.verificationKeys)).toBeUndefined();
  });

  test("the rotation function's environment is what the rotation Lambda reads", () => {
    const fn = json.Resources[logicalIdOf('/Keys/RotationFunction/Resource')];
    expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], LoggingConfig: expect.objectContaining({ LogFormat: 'JSON' }) });
    const env = resolveIntrinsics(fn.Properties.Environment.Variables, FAKE_DEPLOYMENT, json) as Record<string, string>;
    const settings = readRotationSettings(env);
    expect(settings.frontendDomainName).toBe('looker.example.com');
    expect(settings.verificationKeysSecretArn).toContain(logicalIdOf('/Keys/VerificationKeys/Resource'));
    // 300 + 60 s of key-sync, 600 s sessions, 30 s skew, 300 s auth cache: a rotation sooner than that keeps the signing key.
    expect(settings.signingKeyMinAgeSeconds).toBe(1290);
    expect(settings.rotatedSecretArns.map((arn) => arn.split(':').pop()).sort()).toEqual(
      ['SigningKeys', 'CookieKeys', 'BackendClientCertificate', 'FrontendCertificate'].map((name) => `${logicalIdOf(`/Keys/${name}/Resource`)}-AbCdEf`).sort(),
    );
  });

  test('seeds are the frozen texts of core/key-material.ts, whatever the settings: a later deploy never rewrites them', () => {
    for (const [, secret] of resourcesOfType('AWS::SecretsManager::Secret').filter(([, r]) => r.Properties.Tags)) {
      const kind = secret.Properties.Tags.find((t: { Key: string }) => t.Key === SECRET_KIND_TAG).Value;
      expect(secret.Properties.SecretString).toBe(seedSecretValue(kind));
    }
  });

  test('once an hour the rotation function looks for abandoned rotations, and may list the versions of the rotated secrets', () => {
    const fnId = logicalIdOf('/Keys/RotationFunction/Resource');
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] }, Input: JSON.stringify({ action: CLEAR_ABANDONED_ROTATIONS }) })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', { FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] }, Principal: 'events.amazonaws.com' });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'FindAbandonedRotations',
            Action: 'secretsmanager:ListSecretVersionIds',
            Resource: Match.arrayWith([{ Ref: logicalIdOf('/Keys/SigningKeys/Resource') }]),
          }),
        ]),
      },
    });
  });
});

describe('grants', () => {
  type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
  function statementsOfRole(rolePathSuffix: string): Statement[] {
    const roleId = logicalIdOf(rolePathSuffix);
    return resourcesOfType('AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
  }
  function secretsReadBy(rolePathSuffix: string): string[] {
    return statementsOfRole(rolePathSuffix)
      .filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'))
      .flatMap((s) => [s.Resource].flat())
      .map((r) => (r as { Ref?: string }).Ref ?? JSON.stringify(r));
  }
  const secret = (name: string) => logicalIdOf(`/Keys/${name}/Resource`);

  test('instances read the verification keys and their certificates, never the private keys', () => {
    expect(secretsReadBy('/Fleet/InstanceRole/Resource').sort()).toEqual(
      [secret('VerificationKeys'), secret('BackendClientCertificate'), secret('FrontendCertificate')].sort(),
    );
  });

  test('the auth service reads the signing keys, cookie keys and the IdP client secret only', () => {
    expect(secretsReadBy('/AuthService/Function/ServiceRole/Resource').sort()).toEqual(
      [secret('SigningKeys'), secret('CookieKeys'), logicalIdOf('LookerGateway/IdpClientSecret/Resource')].sort(),
    );
  });

  test('key use is limited to Secrets Manager (kms:ViaService)', () => {
    const keyPolicy = resourcesOfType('AWS::KMS::Key')[0][1].Properties.KeyPolicy.Statement as Array<Statement & { Principal: unknown }>;
    for (const role of ['/Fleet/InstanceRole/Resource', '/AuthService/Function/ServiceRole/Resource', '/Keys/RotationFunction/ServiceRole/Resource']) {
      const roleId = logicalIdOf(role);
      const kmsStatements = [
        ...statementsOfRole(role).filter((s) => [s.Action].flat().some((a) => a.startsWith('kms:'))),
        ...keyPolicy.filter((s) => JSON.stringify(s.Principal).includes(`"${roleId}"`)),
      ];
      expect(kmsStatements.length).toBeGreaterThan(0);
      for (const s of kmsStatements) expect(JSON.stringify(s.Condition)).toContain('kms:ViaService');
    }
  });
});

describe('least privilege', () => {
  /** Actions that support no resource-level permissions: "*" is the narrowest resource they take. */
  const ACTIONS_WITHOUT_RESOURCES = new Set([
    'xray:PutTraceSegments',
    'xray:PutTelemetryRecords',
    'secretsmanager:GetRandomPassword',
    'ec2:CreateNetworkInterface',
    'ec2:DescribeNetworkInterfaces',
    'ec2:DeleteNetworkInterface',
    'ec2:AssignPrivateIpAddresses',
    'ec2:UnassignPrivateIpAddresses',
    'cloudwatch:PutMetricData',
    'ec2:DescribeTags',
  ]);

  function everyIdentityStatement(): Array<{ where: string; statement: { Effect: string; Action: string | string[]; Resource: unknown } }> {
    const out: Array<{ where: string; statement: any }> = [];
    for (const [id, resource] of Object.entries(json.Resources)) {
      const documents =
        resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy'
          ? [resource.Properties.PolicyDocument]
          : resource.Type === 'AWS::IAM::Role'
            ? (resource.Properties.Policies ?? []).map((p: { PolicyDocument: unknown }) => p.PolicyDocument)
            : [];
      for (const document of documents) for (const statement of document.Statement) out.push({ where: id, statement });
    }
    return out;
  }

  test('no identity policy grants "*" on resources where the actions allow narrower ones, and no action wildcards', () => {
    const statements = everyIdentityStatement();
    expect(statements.length).toBeGreaterThan(10);
    const offenders: string[] = [];
    for (const { where, statement } of statements) {
      if (statement.Effect !== 'Allow') continue;
      const actions = [statement.Action].flat();
      for (const action of actions) if (action === '*' || action.endsWith(':*')) offenders.push(`${where}: action ${action}`);
      if ([statement.Resource].flat().includes('*')) {
        for (const action of actions) if (!ACTIONS_WITHOUT_RESOURCES.has(action)) offenders.push(`${where}: ${action} on "*"`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

describe('GatewayObservability', () => {
  test('access, audit and rotation log groups: one year, encrypted', () => {
    for (const name of ['AccessLogs', 'AuditLogs', 'RotationLogs']) {
      expect(json.Resources[logicalIdOf(`/Observability/${name}/Resource`)].Properties).toMatchObject({ RetentionInDays: 365, KmsKeyId: expect.anything() });
    }
  });

  test('metric filters read the fields the access log and audit events carry', () => {
    const patterns = resourcesOfType('AWS::Logs::MetricFilter').map(([, r]) => r.Properties.FilterPattern as string);
    expect(patterns).toEqual(
      expect.arrayContaining([
        // Users' requests only: the public listener (health checks, relay calls and Lua events are logged too).
        '{ $.frontend = "gateway" && $.status >= 500 }',
        '{ $.frontend = "gateway" && ($.status = 401 || $.status = 403) }',
        '{ $.frontend = "gateway" && $.status = * }',
        '{ $.decision = "looker-unavailable" }',
        expect.stringContaining('$.event = "login"'),
        expect.stringContaining('$.event = "refresh"'),
      ]),
    );
  });

  test('alarms notify an encrypted topic: 5xx, denied, logins, refreshes, rotation, unhealthy hosts, no healthy node', () => {
    const alarms = resourcesOfType('AWS::CloudWatch::Alarm').map(([id, r]) => ({ id, ...r.Properties }));
    const topicId = logicalIdOf('/Observability/AlarmTopic/Resource');
    expect(json.Resources[topicId].Properties.KmsMasterKeyId).toBeTruthy();
    for (const name of [
      'ServerErrorRate',
      'DeniedRate',
      'LoginFailures',
      'RefreshFailures',
      'RotationFailure',
      'UnhealthyHosts',
      'NoHealthyGatewayHost',
      'NoHealthyLookerNode',
      'AuthServiceErrors',
    ]) {
      const alarm = alarms.find((a) => a.id.includes(name));
      expect(alarm).toBeDefined();
      expect(alarm!.AlarmActions).toEqual([{ Ref: topicId }]);
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'UnHealthyHostCount',
      Namespace: 'AWS/NetworkELB',
    });
  });

  test('a stuck rotation alarms: the hourly check logged that it cleared an abandoned rotation', () => {
    const rotationLogs = logicalIdOf('/Observability/RotationLogs/Resource');
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: rotationLogs },
      FilterPattern: '{ $.event = "abandoned-rotation-cleared" }',
      MetricTransformations: [Match.objectLike({ MetricName: 'AbandonedRotations', MetricValue: '1' })],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'AbandonedRotations', Threshold: 1, Period: 3600 });
    // The runbook's description names the rotation log group (a deploy-time value) and the docs section.
    const [, stuck] = resourcesOfType('AWS::CloudWatch::Alarm').find(([, r]) => r.Properties.MetricName === 'AbandonedRotations')!;
    expect(JSON.stringify(stuck.Properties.AlarmDescription)).toContain('docs/keys-and-rotation.md: When a rotation fails');
  });

  test('a dashboard and saved Logs Insights queries', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    expect(resourcesOfType('AWS::Logs::QueryDefinition').length).toBeGreaterThanOrEqual(4);
  });
});
