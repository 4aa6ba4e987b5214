/**
 * The deployable stack with hostedZoneId/hostedZoneName in cdk.json (issue 15): an
 * exportable public ACM certificate validated in the zone, alias records for the gateway's
 * names, the instance role's narrow export permission, key-sync configured for ACM, the
 * outputs; and the parts every stack has: port 80 to the redirect frontend, the expiry
 * alarm at 14 days, the synth warning for a self-signed certificate.
 */
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { ClientCertificateAuthority } from '../../lib/fleet/machine-clients';
import { FILES_METADATA_KEY } from '../../core/instance/user-data';
import { SECRET_KIND_TAG, SECRET_KINDS } from '../../core/key-material';
import { FrontendCertificate } from '../../lib/keys/frontend-certificate';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGateway } from '../../lib/looker-gateway';
import { createCa } from '../../dev/pki';
import { newEmptyStack, newGatewayStack } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

const ZONE = { hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' };
const MACHINE_HOST = 'agents.looker.example.com';

type Resources = Record<string, { Type: string; Properties: any; Metadata?: any }>;

function synth(context: Record<string, unknown>): {
  template: Template;
  json: { Resources: Resources; Outputs: Record<string, any> };
  annotations: Annotations;
} {
  const { stack } = newGatewayStack({ context });
  const template = Template.fromStack(stack);
  return { template, json: template.toJSON() as never, annotations: Annotations.fromStack(stack) };
}

function ofType(json: { Resources: Resources }, type: string): Array<[string, Resources[string]]> {
  return Object.entries(json.Resources).filter(([, r]) => r.Type === type);
}

/** Every IAM statement of the template that grants an ACM action, with the policy's path. */
function acmStatements(json: { Resources: Resources }): Array<{ path: string; statement: any }> {
  return ofType(json, 'AWS::IAM::Policy').flatMap(([, policy]) =>
    (policy.Properties.PolicyDocument.Statement as any[])
      .filter((statement) => [statement.Action].flat().some((action: string) => action.startsWith('acm:')))
      .map((statement) => ({ path: policy.Metadata?.['aws:cdk:path'] as string, statement })),
  );
}

function expectAliasRecords(json: { Resources: Resources }, names: string[]): void {
  const loadBalancer = ofType(json, 'AWS::ElasticLoadBalancingV2::LoadBalancer')[0][0];
  const records = ofType(json, 'AWS::Route53::RecordSet').map(([, r]) => r.Properties);
  expect(records.map((r) => `${r.Type} ${r.Name}`).sort()).toEqual(names.flatMap((name) => [`A ${name}.`, `AAAA ${name}.`]).sort());
  for (const record of records) {
    expect(record.HostedZoneId).toBe(ZONE.hostedZoneId);
    expect(record.AliasTarget).toEqual({
      DNSName: { 'Fn::Join': ['', ['dualstack.', { 'Fn::GetAtt': [loadBalancer, 'DNSName'] }]] },
      HostedZoneId: { 'Fn::GetAtt': [loadBalancer, 'CanonicalHostedZoneID'] },
      EvaluateTargetHealth: true,
    });
  }
}

function keySyncConfig(json: { Resources: Resources }): string {
  const [[, launchTemplate]] = ofType(json, 'AWS::EC2::LaunchTemplate');
  const { files } = resolveIntrinsics(launchTemplate.Metadata[FILES_METADATA_KEY], FAKE_DEPLOYMENT, json as never) as {
    files: Array<{ path: string; content: string }>;
  };
  return files.find((f) => f.path === '/etc/lg-key-sync/key-sync.conf')!.content;
}

describe('with hostedZoneId and hostedZoneName in cdk.json', () => {
  const { template, json, annotations } = synth(ZONE);
  const certificateId = ofType(json, 'AWS::CertificateManager::Certificate')[0]?.[0];

  test('an exportable public certificate for the domain, validated by DNS in the zone', () => {
    template.resourceCountIs('AWS::CertificateManager::Certificate', 1);
    template.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'looker.example.com',
      SubjectAlternativeNames: Match.absent(),
      ValidationMethod: 'DNS',
      DomainValidationOptions: [{ DomainName: 'looker.example.com', HostedZoneId: ZONE.hostedZoneId }],
      CertificateExport: 'ENABLED',
      KeyAlgorithm: 'RSA_2048',
      CertificateAuthorityArn: Match.absent(),
    });
  });

  test('alias A and AAAA records for the domain point at the load balancer, in the zone', () => {
    expectAliasRecords(json, ['looker.example.com']);
  });

  test('the instance role may describe and export that one certificate, and nothing else may touch ACM', () => {
    const statements = acmStatements(json);
    expect(statements).toEqual([
      {
        path: expect.stringMatching(/\/Fleet\/InstanceRole\/DefaultPolicy\/Resource$/),
        statement: expect.objectContaining({ Effect: 'Allow', Action: ['acm:DescribeCertificate', 'acm:ExportCertificate'], Resource: { Ref: certificateId } }),
      },
    ]);
  });

  test('no frontend-certificate secret and no rotation of one: the certificate is in ACM, renewed by ACM', () => {
    const kinds = ofType(json, 'AWS::SecretsManager::Secret').map(([, r]) => r.Properties.Tags?.find((t: { Key: string }) => t.Key === SECRET_KIND_TAG)?.Value);
    expect(kinds).not.toContain(SECRET_KINDS.frontendCertificate);
    template.resourceCountIs('AWS::SecretsManager::RotationSchedule', 3);
  });

  test('key-sync exports the ACM certificate: its ARN in the config, no frontend certificate secret', () => {
    const config = keySyncConfig(json);
    expect(config).toContain("FRONTEND_CERTIFICATE_SOURCE='acm'");
    // The certificate's ARN as CloudFormation substitutes it (resolve.ts fakes a Ref as "<logical id>-ref").
    expect(config).toMatch(new RegExp(`^FRONTEND_CERTIFICATE_ARN='${certificateId.toLowerCase()}-ref'$`, 'm'));
    expect(config).not.toContain('FRONTEND_CERTIFICATE_SECRET_ARN');
    expect(config).toMatch(/^METRIC_NAMESPACE='LookerGateway\/LookerGateway'$/m);
  });

  test('the outputs: the URL and the redirect URI to register at the IdP', () => {
    expect(json.Outputs.Url.Value).toBe('https://looker.example.com');
    expect(json.Outputs.RedirectUri.Value).toBe('https://looker.example.com/oauth2/callback');
    expect(json.Outputs.Url.Description).toMatch(/DNS record in example\.com/);
  });

  test('no self-signed warning', () => {
    annotations.hasNoWarning('*', Match.stringLikeRegexp('self-signed'));
  });
});

describe('every stack', () => {
  const { template, json, annotations } = synth({});

  test('port 80 of the load balancer: TCP with PROXY v2 to the redirect frontend on the instances, health-checked like 443', () => {
    const [[httpsGroupId, httpsGroup]] = ofType(json, 'AWS::ElasticLoadBalancingV2::TargetGroup').filter(([, g]) => g.Properties.Port === 443);
    const [[httpGroupId, httpGroup]] = ofType(json, 'AWS::ElasticLoadBalancingV2::TargetGroup').filter(([, g]) => g.Properties.Port === 80);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'TCP',
      DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: httpGroupId } }],
    });
    expect(httpGroup.Properties).toMatchObject({ Protocol: 'TCP', TargetType: 'instance' });
    expect(httpGroup.Properties.TargetGroupAttributes).toEqual(
      expect.arrayContaining([
        { Key: 'proxy_protocol_v2.enabled', Value: 'true' },
        { Key: 'preserve_client_ip.enabled', Value: 'false' },
      ]),
    );
    for (const key of [
      'HealthCheckPort',
      'HealthCheckProtocol',
      'HealthCheckPath',
      'HealthCheckIntervalSeconds',
      'HealthyThresholdCount',
      'UnhealthyThresholdCount',
    ]) {
      expect([key, httpGroup.Properties[key]]).toEqual([key, httpsGroup.Properties[key]]);
    }
    const groups = ofType(json, 'AWS::AutoScaling::AutoScalingGroup')[0][1].Properties.TargetGroupARNs;
    expect(groups).toEqual(expect.arrayContaining([{ Ref: httpsGroupId }, { Ref: httpGroupId }]));
  });

  test('the instances render the redirect frontend on port 80', () => {
    const [[, launchTemplate]] = ofType(json, 'AWS::EC2::LaunchTemplate');
    const { files } = resolveIntrinsics(launchTemplate.Metadata[FILES_METADATA_KEY], FAKE_DEPLOYMENT, json as never) as {
      files: Array<{ path: string; content: string }>;
    };
    const config = files.find((f) => f.path.endsWith('/haproxy.cfg'))!.content;
    expect(config).toMatch(/bind 0\.0\.0\.0:80 accept-proxy/);
  });

  test('an alarm when an instance serves a certificate that expires in less than 14 days', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [
        Match.objectLike({
          MetricStat: { Metric: { MetricName: 'FrontendCertificateDaysToExpiry', Namespace: 'LookerGateway/LookerGateway' }, Period: 3600, Stat: 'Minimum' },
        }),
      ],
      Threshold: 14,
      ComparisonOperator: 'LessThanThreshold',
      AlarmActions: [Match.anyValue()],
    });
  });

  test('the instance role may put metrics into the gateway namespace only', () => {
    const statements = ofType(json, 'AWS::IAM::Policy')
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as any[])
      .filter((s) => [s.Action].flat().includes('cloudwatch:PutMetricData'));
    expect(statements.length).toBeGreaterThanOrEqual(1);
    for (const statement of statements) expect(statement.Condition?.StringEquals?.['cloudwatch:namespace']).toBeDefined();
    expect(statements.map((s) => s.Condition.StringEquals['cloudwatch:namespace'])).toContain('LookerGateway/LookerGateway');
  });

  test('a self-signed certificate (no hosted zone, no certificate of your own) warns at synth, with the fix', () => {
    annotations.hasWarning(
      '*',
      Match.stringLikeRegexp(
        'The frontend certificate is self-signed: browsers and machine clients refuse it.*Give hostedZone.*FrontendCertificate.fromSecret',
      ),
    );
    expect(acmStatements(json)).toEqual([]);
  });

  test('your own certificate secret: no warning, no ACM certificate, key-sync reads the secret', () => {
    const { stack } = newGatewayStack({ context: { frontendCertificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:frontend-AbCdEf' } });
    const own = Template.fromStack(stack);
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('self-signed'));
    own.resourceCountIs('AWS::CertificateManager::Certificate', 0);
    expect(keySyncConfig(own.toJSON() as never)).toContain(
      "FRONTEND_CERTIFICATE_SECRET_ARN='arn:aws:secretsmanager:eu-west-1:123456789012:secret:frontend-AbCdEf'",
    );
  });
});

describe('settings that cannot work fail at synth with the fix', () => {
  test('hostedZoneId without hostedZoneName, and the other way round', () => {
    expect(() => newGatewayStack({ context: { hostedZoneId: ZONE.hostedZoneId } })).toThrow(/hostedZoneId is set without hostedZoneName: give both/);
    expect(() => newGatewayStack({ context: { hostedZoneName: 'example.com' } })).toThrow(/hostedZoneName is set without hostedZoneId: give both/);
  });

  test('a hosted zone id that is not one', () => {
    expect(() => newGatewayStack({ context: { ...ZONE, hostedZoneId: 'example.com' } })).toThrow(/hostedZoneId "example.com" is not a Route 53 hosted zone ID/);
  });

  test('a domain name outside the hosted zone', () => {
    expect(() => newGatewayStack({ context: { ...ZONE, hostedZoneName: 'example.org' } })).toThrow(
      /domainName "looker.example.com" is not in the hosted zone "example.org"/,
    );
  });

  test('an exportable ACM certificate without a hosted zone', () => {
    const stack = newEmptyStack();
    expect(
      () =>
        new LookerGateway(stack, 'Gateway', {
          domainName: 'looker.example.com',
          identityProvider: {
            issuer: 'https://login.example.com',
            clientId: 'gateway',
            clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'IdpSecret', 'idp'),
          },
          mappingRules: { rules: [{ name: 'all', match: { emailDomains: ['example.com'] }, grant: { roles: ['Viewer'] } }] },
          looker: LookerBackend.fromHosts(['10.0.8.10'], { serverName: 'looker.internal.example.com' }),
          frontendCertificate: FrontendCertificate.acmExportable(),
        }),
    ).toThrow(/FrontendCertificate.acmExportable\(\) needs hostedZone: ACM validates the certificate through DNS records in that zone/);
  });

  test('a key algorithm ACM does not issue public certificates with', () => {
    expect(() => FrontendCertificate.acmExportable({ keyAlgorithm: acm.KeyAlgorithm.RSA_4096 })).toThrow(
      /keyAlgorithm RSA_4096 is not one ACM issues public certificates with/,
    );
  });
});

function gatewayWithZone(stack: ReturnType<typeof newEmptyStack>, extra: Partial<ConstructorParameters<typeof LookerGateway>[2]> = {}): LookerGateway {
  return new LookerGateway(stack, 'Gateway', {
    domainName: 'looker.example.com',
    hostedZone: route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', { hostedZoneId: ZONE.hostedZoneId, zoneName: ZONE.hostedZoneName }),
    identityProvider: {
      issuer: 'https://login.example.com',
      clientId: 'gateway',
      clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'IdpSecret', 'idp'),
    },
    mappingRules: { rules: [{ name: 'all', match: { emailDomains: ['example.com'] }, grant: { roles: ['Viewer'] } }] },
    looker: LookerBackend.fromHosts(['10.0.8.10'], { serverName: 'looker.internal.example.com' }),
    ...extra,
  });
}

describe('LookerGateway with hostedZone (imported by attributes, no lookup) and a host name for machine clients', () => {
  test('the certificate names both; both get alias records', async () => {
    const ca = await createCa('Machine Clients CA');
    const stack = newEmptyStack();
    gatewayWithZone(stack, {
      machineRoutes: { hostName: MACHINE_HOST },
      machineClients: [{ name: 'bot', certificateSha256: 'a'.repeat(64), allowedMethods: ['GET'], allowedPathPrefixes: ['/api/4.0/'] }],
      clientCertificateAuthority: ClientCertificateAuthority.fromPem(ca.cert),
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'looker.example.com',
      SubjectAlternativeNames: [MACHINE_HOST],
      DomainValidationOptions: [
        { DomainName: 'looker.example.com', HostedZoneId: ZONE.hostedZoneId },
        { DomainName: MACHINE_HOST, HostedZoneId: ZONE.hostedZoneId },
      ],
      CertificateExport: 'ENABLED',
    });
    expectAliasRecords(template.toJSON() as never, ['looker.example.com', MACHINE_HOST]);
    // The certificate covers the machine host: no warning that it does not.
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('is not in the self-signed frontend certificate'));
  });

  test('a machine host outside the zone fails at synth with the fix', async () => {
    const ca = await createCa('Machine Clients CA');
    expect(() =>
      gatewayWithZone(newEmptyStack(), {
        machineRoutes: { hostName: 'agents.example.org' },
        machineClients: [{ name: 'bot', certificateSha256: 'a'.repeat(64), allowedMethods: ['GET'], allowedPathPrefixes: ['/api/4.0/'] }],
        clientCertificateAuthority: ClientCertificateAuthority.fromPem(ca.cert),
      }),
    ).toThrow(/machineRoutes.hostName "agents.example.org" is not in the hosted zone "example.com"/);
  });
});
