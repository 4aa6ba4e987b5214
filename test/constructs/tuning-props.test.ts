/**
 * The props that tune HAProxy and the group reach the instances and the template: each one,
 * given to LookerGateway, shows in the haproxy.cfg the launch template carries (resolved as
 * CloudFormation would) or in the synthesized resources; a bad value fails at synth with the
 * value and the fix.
 */
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { FILES_METADATA_KEY } from '../../core/instance/user-data';
import { LookerGatewayProps } from '../../lib/looker-gateway';
import { newEmptyStack, newGatewayStack, newTestGateway } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

/** The template, and the haproxy.cfg its launch template carries (resolved with fake deployment values). */
function synth(overrides: Partial<LookerGatewayProps>): { template: Template; haproxyCfg: string } {
  const stack = newEmptyStack();
  newTestGateway(overrides, stack);
  const template = Template.fromStack(stack);
  return { template, haproxyCfg: haproxyCfgOf(template) };
}

function haproxyCfgOf(template: Template): string {
  const json = template.toJSON() as { Resources: Record<string, { Type: string; Metadata?: Record<string, unknown> }> };
  const [launchTemplate] = Object.values(json.Resources).filter((r) => r.Type === 'AWS::EC2::LaunchTemplate');
  const files = (resolveIntrinsics(launchTemplate.Metadata![FILES_METADATA_KEY], FAKE_DEPLOYMENT, json) as { files: Array<{ path: string; content: string }> })
    .files;
  return files.find((file) => file.path === '/etc/haproxy/gateway/haproxy.cfg')!.content;
}

/** The lines of one section (`frontend gateway`, `global`, ...) of a haproxy.cfg. */
function section(cfg: string, header: string): string[] {
  const lines = cfg.split('\n');
  const start = lines.indexOf(header);
  if (start < 0) throw new Error(`haproxy.cfg has no section "${header}"`);
  const end = lines.findIndex((line, index) => index > start && /^\S/.test(line) && !line.startsWith('#'));
  return lines.slice(start + 1, end < 0 ? undefined : end).map((line) => line.trim());
}

describe('HAProxy props reach haproxy.cfg on the instances', () => {
  const defaults = synth({}).haproxyCfg;

  test('by default: no maxconn on the process or the public listener, SAMEORIGIN unless Looker framed, 60 per 10 s, 100000 cache entries', () => {
    expect(section(defaults, 'global').some((line) => line.startsWith('maxconn'))).toBe(false);
    expect(section(defaults, 'frontend gateway').some((line) => line.startsWith('maxconn'))).toBe(false);
    expect(defaults).toContain('http-after-response set-header X-Frame-Options SAMEORIGIN unless { res.hdr_cnt(x-frame-options) gt 0 }');
    expect(defaults).toContain('acl auth_rate_exceeded sc_http_req_rate(1,auth_rate_limit) gt 60');
    expect(defaults).toContain('store http_req_rate(10s)');
    expect(defaults).toMatch(/stick-table type binary len 32 size 100000 expire 15m store gpt0/);
  });

  test('frameAncestors: CSP frame-ancestors with the origins, X-Frame-Options removed', () => {
    const { haproxyCfg } = synth({ frameAncestors: ['https://portal.example.com', 'https://*.example.org'] });
    expect(haproxyCfg).toContain(
      `http-after-response add-header Content-Security-Policy "frame-ancestors 'self' https://portal.example.com https://*.example.org"`,
    );
    expect(haproxyCfg).toContain('http-after-response del-header X-Frame-Options');
    expect(haproxyCfg).not.toContain('set-header X-Frame-Options');
  });

  test('authRateLimit and authRateLimitPeriod: the limit, its period, and Retry-After', () => {
    const { haproxyCfg } = synth({ authRateLimit: 200, authRateLimitPeriod: Duration.seconds(30) });
    expect(haproxyCfg).toContain('acl auth_rate_exceeded sc_http_req_rate(1,auth_rate_limit) gt 200');
    expect(haproxyCfg).toContain('stick-table type ipv6 size 100k expire 60s store http_req_rate(30s)');
    expect(haproxyCfg).toContain('hdr Retry-After 30');
  });

  test('verificationCacheSize: the size of the verification cache', () => {
    expect(synth({ verificationCacheSize: 250_000 }).haproxyCfg).toMatch(/stick-table type binary len 32 size 250000 expire 15m store gpt0/);
  });

  test('maxConnections and listenerMaxConnections: global and public-listener maxconn', () => {
    const { haproxyCfg } = synth({ maxConnections: 40_000, listenerMaxConnections: 30_000 });
    expect(section(haproxyCfg, 'global')).toContain('maxconn 40000');
    expect(section(haproxyCfg, 'frontend gateway')).toContain('maxconn 30000');
    expect(section(haproxyCfg, 'frontend nlb_health')).toContain('maxconn 100');
  });
});

describe('group props reach the template', () => {
  test('desiredCapacity, targetCpuUtilizationPercent, connectionsPerInstance', () => {
    const { template } = synth({ minCapacity: 3, maxCapacity: 9, desiredCapacity: 4, targetCpuUtilizationPercent: 45, connectionsPerInstance: 8000 });
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '3', MaxSize: '9', DesiredCapacity: '4' });
    template.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      TargetTrackingConfiguration: Match.objectLike({ PredefinedMetricSpecification: { PredefinedMetricType: 'ASGAverageCPUUtilization' }, TargetValue: 45 }),
    });
    // The connections policy steps: scale in below 30 % of the target, out above it.
    template.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      PolicyType: 'StepScaling',
      StepAdjustments: Match.arrayWith([Match.objectLike({ MetricIntervalLowerBound: 0, MetricIntervalUpperBound: 4000, ScalingAdjustment: 1 })]),
    });
  });

  test('rootVolumeGiB: the launch template root volume', () => {
    synth({ rootVolumeGiB: 40 }).template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ VolumeSize: 40 }) })] }),
    });
  });

  test('instanceSubnets and loadBalancerSubnets: the group and the load balancer in the subnets chosen', () => {
    const stack = newEmptyStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', {
      maxAzs: 2,
      subnetConfiguration: [
        { name: 'edge', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'app', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
        { name: 'gateway', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
      ],
    });
    newTestGateway({ vpc, instanceSubnets: { subnetGroupName: 'gateway' }, loadBalancerSubnets: { subnetGroupName: 'edge' } }, stack);
    const template = Template.fromStack(stack);
    const ids = (group: string) => vpc.selectSubnets({ subnetGroupName: group }).subnetIds.map((id) => stack.resolve(id));
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { VPCZoneIdentifier: ids('gateway') });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Subnets: ids('edge') });
  });
});

describe('bad values fail at synth with the value and the fix', () => {
  test.each<[string, Partial<LookerGatewayProps>, RegExp]>([
    [
      'a frame ancestor with a path',
      { frameAncestors: ['https://portal.example.com/embed'] },
      /frameAncestors has "https:\/\/portal\.example\.com\/embed": give https origins without a path/,
    ],
    ['a plain-HTTP frame ancestor', { frameAncestors: ['http://portal.example.com'] }, /frameAncestors has "http:\/\/portal\.example\.com"/],
    ['an auth rate limit of 0', { authRateLimit: 0 }, /authRateLimit is 0; it must be a whole number from 1 to 100000/],
    ['an auth rate period of 2 hours', { authRateLimitPeriod: Duration.hours(2) }, /authRateLimitPeriod is 2 hours; it must be from 1 second to 1 hour/],
    ['an auth rate period in milliseconds', { authRateLimitPeriod: Duration.millis(1500) }, /authRateLimitPeriod is 1 second 500 millis; give whole seconds/],
    ['a verification cache of 10', { verificationCacheSize: 10 }, /verificationCacheSize is 10; it must be a whole number from 100 to 10000000/],
    ['maxConnections of 50', { maxConnections: 50 }, /maxConnections is 50; it must be a whole number from 100 to 1000000/],
    [
      'a listener above the process',
      { maxConnections: 1000, listenerMaxConnections: 2000 },
      /listenerMaxConnections \(2000\) is above maxConnections \(1000\)/,
    ],
    ['desiredCapacity above maxCapacity', { desiredCapacity: 8 }, /desiredCapacity \(8\) is outside minCapacity\.\.maxCapacity \(2\.\.6\)/],
    ['a CPU target of 95', { targetCpuUtilizationPercent: 95 }, /targetCpuUtilizationPercent is 95; it must be a whole number from 10 to 90/],
    ['a root volume of 4 GiB', { rootVolumeGiB: 4 }, /rootVolumeGiB is 4; it must be a whole number from 8 to 1024. Debian 13 needs at least 8 GiB/],
  ])('%s', (_name, props, message) => {
    expect(() => newTestGateway(props)).toThrow(message);
  });
});

describe('the deployable app reads them from cdk.json context', () => {
  test('strings as `-c key=value` gives them: lists as JSON, numbers as text', () => {
    const { stack } = newGatewayStack({
      context: {
        frameAncestors: '["https://portal.example.com"]',
        authRateLimit: '120',
        authRateLimitPeriodSeconds: '20',
        verificationCacheSize: '50000',
        maxConnections: '20000',
        listenerMaxConnections: '15000',
        desiredCapacity: '3',
        targetCpuUtilizationPercent: '50',
        rootVolumeGiB: '24',
      },
    });
    const template = Template.fromStack(stack);
    const haproxyCfg = haproxyCfgOf(template);
    expect(haproxyCfg).toContain(`frame-ancestors 'self' https://portal.example.com`);
    expect(haproxyCfg).toContain('acl auth_rate_exceeded sc_http_req_rate(1,auth_rate_limit) gt 120');
    expect(haproxyCfg).toContain('store http_req_rate(20s)');
    expect(haproxyCfg).toMatch(/size 50000 expire 15m store gpt0/);
    expect(section(haproxyCfg, 'global')).toContain('maxconn 20000');
    expect(section(haproxyCfg, 'frontend gateway')).toContain('maxconn 15000');
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { DesiredCapacity: '3' });
    template.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', { TargetTrackingConfiguration: Match.objectLike({ TargetValue: 50 }) });
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ VolumeSize: 24 }) })] }),
    });
  });

  test('a bad value names the context key', () => {
    expect(() => newGatewayStack({ context: { maxConnections: 'many' } })).toThrow(/"maxConnections" is "many"; it must be a whole number/);
    expect(() => newGatewayStack({ context: { authRateLimitPeriodSeconds: '7200' } })).toThrow(
      /authRateLimitPeriod is 2 hours; it must be from 1 second to 1 hour/,
    );
  });
});
