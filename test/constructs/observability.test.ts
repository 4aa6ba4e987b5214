/**
 * Template tests of issue 18 on the deployable stack (as bin/app.ts makes it from the example
 * context): every log file the CloudWatch agent collects and its log group, every alarm with a
 * runbook description and a row in the runbook (docs/observability.md) and the README's
 * alarm table (both ways), the named alarm properties and the metric*() methods they watch,
 * SIEM forwarding with the destination set, and the dashboard, whose every widget must read a
 * metric that something in the template (or key-sync) publishes.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CfnElement, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { CERTIFICATE_EXPIRY_METRIC } from '../../core/instance/certificate-expiry';
import { KEY_SYNC_METRICS } from '../../core/instance/run-metrics';
import {
  ACCESS_LOG_PATH,
  BOOTSTRAP_LOG_PATH,
  CLOUDWATCH_AGENT_LOG_PATH,
  HAPROXY_MESSAGES_LOG_PATH,
  KEY_SYNC_LOG_PATH,
  SSM_AGENT_ERROR_LOG_PATH,
} from '../../core/instance/instance-logs';
import { CLOUDWATCH_AGENT_CONFIG_PATH, FILES_METADATA_KEY } from '../../core/instance/user-data';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGateway } from '../../lib/looker-gateway';
import { RUNBOOK } from '../../core/observability/runbook';
import { SiemDestination } from '../../lib/observability/siem-destination';
import { gatewayAlarms, singleMetricAlarm } from '../../dev/aws/alarm';
import { newGatewayStack, newTestApp, newTestGateway, REPO_ROOT } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

type Resources = Record<string, { Type: string; Properties: any; Metadata?: any }>;

const { stack } = newGatewayStack();
const template = Template.fromStack(stack);
const resources = (template.toJSON() as { Resources: Resources }).Resources;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const resolve = (value: unknown) => resolveIntrinsics(value, FAKE_DEPLOYMENT, { Resources: resources });
const instanceFiles = (
  resolve(Object.values(resources).find((r) => r.Type === 'AWS::EC2::LaunchTemplate')!.Metadata[FILES_METADATA_KEY]) as {
    files: Array<{ path: string; content: string }>;
  }
).files;
/** The namespace key-sync publishes in, as deployed (from its config file on the instances). */
const namespace = /^METRIC_NAMESPACE='([^']+)'$/m.exec(instanceFiles.find((f) => f.path === '/etc/lg-key-sync/key-sync.conf')!.content)![1];
const idAt = (pathSuffix: string) => {
  const found = Object.entries(resources).find(([, r]) => (r.Metadata?.['aws:cdk:path'] as string | undefined)?.endsWith(pathSuffix));
  if (!found) throw new Error(`no resource at ${pathSuffix}`);
  return found[0];
};

describe('the logs an operator needs leave the instance', () => {
  const files = { files: instanceFiles };
  const agent = JSON.parse(files.files.find((f) => f.path === CLOUDWATCH_AGENT_CONFIG_PATH)!.content);
  const collected: Array<{ file_path: string; log_group_name: unknown; log_stream_name: string; filters?: unknown }> =
    agent.logs.logs_collected.files.collect_list;
  const groupOf = (file: string) => collected.find((entry) => entry.file_path === file)?.log_group_name;
  const groupName = (id: string) => resolveIntrinsics({ Ref: idAt(`/Observability/${id}/Resource`) }, FAKE_DEPLOYMENT, { Resources: resources });

  test('each file goes to the log group of its kind: access, HAProxy messages, key-sync, instance (bootstrap and agents)', () => {
    expect(collected.map((entry) => entry.file_path)).toEqual([
      ACCESS_LOG_PATH,
      HAPROXY_MESSAGES_LOG_PATH,
      KEY_SYNC_LOG_PATH,
      BOOTSTRAP_LOG_PATH,
      CLOUDWATCH_AGENT_LOG_PATH,
      SSM_AGENT_ERROR_LOG_PATH,
    ]);
    expect(groupOf(ACCESS_LOG_PATH)).toEqual(groupName('AccessLogs'));
    expect(groupOf(HAPROXY_MESSAGES_LOG_PATH)).toEqual(groupName('HaproxyLogs'));
    expect(groupOf(KEY_SYNC_LOG_PATH)).toEqual(groupName('KeySyncLogs'));
    for (const file of [BOOTSTRAP_LOG_PATH, CLOUDWATCH_AGENT_LOG_PATH, SSM_AGENT_ERROR_LOG_PATH]) expect(groupOf(file)).toEqual(groupName('InstanceLogs'));
    // Streams are unique per instance and file.
    const streams = collected.map((entry) => `${JSON.stringify(entry.log_group_name)} ${entry.log_stream_name}`);
    expect(new Set(streams).size).toBe(streams.length);
    // Only JSON lines enter the access log group; only the agent's errors and warnings its own log.
    expect(collected[0].filters).toEqual([{ type: 'include', expression: '^\\{' }]);
    expect(collected[4].filters).toEqual([{ type: 'include', expression: ' [EW]! ' }]);
  });

  test('every log group is encrypted with the gateway key and kept as long as the access log', () => {
    const groups = ['AccessLogs', 'AuditLogs', 'RotationLogs', 'KeySyncLogs', 'HaproxyLogs', 'InstanceLogs'].map(
      (id) => resources[idAt(`/Observability/${id}/Resource`)].Properties,
    );
    for (const group of groups) {
      expect(group.KmsKeyId).toEqual(groups[0].KmsKeyId);
      expect(group.RetentionInDays).toBe(groups[0].RetentionInDays);
    }
  });

  test('the instance role may write to exactly these log groups', () => {
    const role = idAt('/Fleet/InstanceRole/Resource');
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles?.some((r: { Ref: string }) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((s: { Action: string | string[] }) => ([] as string[]).concat(s.Action).includes('logs:PutLogEvents'));
    const targets = statements.map((s: { Resource: unknown }) => JSON.stringify(s.Resource)).join(' ');
    for (const id of ['AccessLogs', 'KeySyncLogs', 'HaproxyLogs', 'InstanceLogs']) expect(targets).toContain(idAt(`/Observability/${id}/Resource`));
    for (const id of ['AuditLogs', 'RotationLogs']) expect(targets).not.toContain(idAt(`/Observability/${id}/Resource`));
  });

  test('key-sync writes its file under systemd sandboxing (LogsDirectory) and haproxy its stderr to the messages file', () => {
    const unit = files.files.find((f) => f.path === '/etc/systemd/system/lg-key-sync.service')!.content;
    expect(unit).toContain('LogsDirectory=lg-key-sync\n');
    expect(files.files.find((f) => f.path === '/etc/lg-key-sync/key-sync.conf')!.content).toContain(`LOG_FILE='${KEY_SYNC_LOG_PATH}'`);
    const dropIn = files.files.find((f) => f.path === '/etc/systemd/system/haproxy.service.d/looker-gateway.conf')!.content;
    expect(dropIn).toContain(`StandardError=append:${HAPROXY_MESSAGES_LOG_PATH}\n`);
    expect(files.files.find((f) => f.path === '/etc/logrotate.d/looker-gateway')!.content).toContain(KEY_SYNC_LOG_PATH);
  });
});

describe('alarms with runbooks', () => {
  // The observability's alarms (the scaling policies make alarms of their own, for scaling only).
  const alarms = gatewayAlarms(resources);

  test('every alarm of the template is in the runbook, and its description names likely causes and a first command', () => {
    expect(alarms.map((a) => a.name).sort()).toEqual(Object.keys(RUNBOOK).sort());
    for (const alarm of alarms) {
      const description = JSON.stringify(alarm.props.AlarmDescription);
      expect([alarm.name, description]).toEqual([alarm.name, expect.stringMatching(/Likely causes: .+\. First: aws /)]);
    }
  });

  /** The first column of a markdown table's rows between two markers of a file. */
  const tableRows = (file: string, from: string, to: string) => {
    const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
    const start = text.indexOf(from);
    expect([file, from, start]).not.toEqual([file, from, -1]);
    return text
      .slice(start, text.indexOf(to, start))
      .split('\n')
      .filter((line) => /^\| [A-Z]\w+ \|/.test(line))
      .map((line) => line.split('|')[1].trim());
  };

  test("the runbook (docs/observability.md) has one row per alarm of the template, and no other; so has the README's alarm table", () => {
    expect(tableRows('docs/observability.md', '## Alarms (the runbook)', 'What fires in a test').sort()).toEqual(alarms.map((a) => a.name).sort());
    expect(tableRows('README.md', '#### Alarms', 'Saved queries (').sort()).toEqual(alarms.map((a) => a.name).sort());
  });

  test("what an operator sees for each fault (docs/resilience.md, the README's fault table) names only alarms of the template, and each of those tables names some", () => {
    /** The names in backticks in the last column of a table's rows, between two markers of a file. */
    const alarmsNamed = (file: string, from: string, to: string) => {
      const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
      const start = text.indexOf(from);
      expect([file, from, start]).not.toEqual([file, from, -1]);
      const rows = text
        .slice(start, text.indexOf(to, start))
        .split('\n')
        .filter((line) => line.startsWith('| ') && !line.startsWith('| fault |') && !line.startsWith('| ---'));
      expect([file, rows.length]).not.toEqual([file, 0]);
      return rows.flatMap((row) =>
        [
          ...row
            .split('|')
            .at(-2)!
            .matchAll(/`(\w+)`/g),
        ].map((m) => m[1]),
      );
    };
    const names = alarms.map((a) => a.name);
    for (const named of [
      alarmsNamed('docs/resilience.md', '## Operations: what an operator sees for each fault', '\n## '),
      alarmsNamed('README.md', '### When a part fails', '\n## '),
    ]) {
      expect(named.length).toBeGreaterThan(5);
      expect(named.filter((name) => !names.includes(name))).toEqual([]);
    }
  });

  test('key-sync: stale past one interval, the random delay and a minute; a failed run; a key mismatch for 10 minutes', () => {
    const alarm = (name: string) =>
      singleMetricAlarm(resolve(alarms.find((a) => a.name === name)!.props) as Record<string, unknown>) as unknown as Record<string, unknown>;
    expect(namespace).toBe(`LookerGateway/${FAKE_DEPLOYMENT.stackName}`);
    expect(alarm('KeySyncStale')).toMatchObject({
      Namespace: namespace,
      MetricName: KEY_SYNC_METRICS.secondsSinceSuccess,
      Statistic: 'Maximum',
      Threshold: 420,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'breaching',
    });
    expect(alarm('KeySyncStale').Dimensions).toBeUndefined();
    expect(alarm('KeySyncFailed')).toMatchObject({
      Namespace: namespace,
      MetricName: KEY_SYNC_METRICS.runFailed,
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(alarm('KeySyncKeyMismatch')).toMatchObject({
      Namespace: namespace,
      MetricName: KEY_SYNC_METRICS.currentKidMatches,
      Statistic: 'Minimum',
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 2,
    });
  });

  test("LookerNodesLow: the fewest Looker servers UP any instance's HAProxy sees, below the static hosts' count; below 1 for a DNS name", () => {
    const lookerNodesLow = (properties: Record<string, unknown>) =>
      singleMetricAlarm(resolve(properties) as Record<string, unknown>) as unknown as Record<string, unknown>;
    // The example stack lists two Looker hosts (cdk.json lookerHosts).
    expect(lookerNodesLow(alarms.find((a) => a.name === 'LookerNodesLow')!.props)).toMatchObject({
      Namespace: namespace,
      MetricName: KEY_SYNC_METRICS.lookerServersUp,
      Statistic: 'Minimum',
      Threshold: 2,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
    expect(lookerNodesLow(alarms.find((a) => a.name === 'LookerNodesLow')!.props).Dimensions).toBeUndefined();
    // Behind a DNS name the gateway does not know how many nodes there are: at least one.
    const dns = newTestGateway();
    const [dnsAlarm] = Object.entries(Template.fromStack(Stack.of(dns)).findResources('AWS::CloudWatch::Alarm')).filter(([id]) =>
      /ObservabilityLookerNodesLowAlarm[0-9A-F]{8}$/.test(id),
    );
    expect(dnsAlarm[1].Properties).toMatchObject({ Threshold: 1, ComparisonOperator: 'LessThanThreshold' });
    // Three static hosts: three.
    const three = newTestGateway({ looker: LookerBackend.fromHosts(['10.0.0.10', '10.0.0.11', '10.0.0.12'], { serverName: 'looker.internal' }) });
    expect(three.observability.lookerNodesLowAlarm).toBeDefined();
    Template.fromStack(Stack.of(three)).hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: KEY_SYNC_METRICS.lookerServersUp }) }) })],
      Threshold: 3,
    });
  });

  test('monitorLookerServers refuses an expected count that is no whole number of servers, with the value and the fix', () => {
    const gateway = newTestGateway();
    expect(() => gateway.observability.monitorLookerServers(gateway.fleet, 0)).toThrow(
      /expectedServers is 0; it must be a whole number from 1 to 1000\. Give the number of Looker nodes the gateway is configured with \(1 for a DNS name\)\./,
    );
  });

  test('the auth API: 5xx from API Gateway, 429 from its access log; the function: throttles, duration near its 15 s time-out', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5XXError',
      Dimensions: Match.arrayWith([Match.objectLike({ Name: 'Stage', Value: Match.anyValue() })]),
    });
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: idAt('/AuthService/ApiAccessLogs/Resource') },
      FilterPattern: '{ $.status = "429" }',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/Lambda', MetricName: 'Throttles', Threshold: 1 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/Lambda', MetricName: 'Duration', Statistic: 'Maximum', Threshold: 12000 });
  });

  test("the instance role may publish key-sync's metrics in the gateway namespace only", () => {
    const role = idAt('/Fleet/InstanceRole/Resource');
    const statement = ofType('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles?.some((r: { Ref: string }) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .find(
        (s: { Action: unknown; Condition?: any }) =>
          s.Action === 'cloudwatch:PutMetricData' && resolve(s.Condition?.StringEquals?.['cloudwatch:namespace']) === namespace,
      );
    expect(statement).toBeDefined();
  });
});

describe('the public API: metric*() methods and named alarms', () => {
  const { observability, fleet, keys } = stack.gateway;
  /** A metric as CloudWatch gets it: namespace, name, dimensions, statistic and period, deploy-time values resolved. */
  const stat = (metric: cloudwatch.IMetric): Record<string, any> => {
    const metricStat = metric.toMetricConfig().metricStat!;
    const config: Record<string, any> = {
      ...(stack.resolve({ ...metricStat, period: undefined }) as Record<string, any>),
      period: metricStat.period.toSeconds(),
    };
    return resolve({
      namespace: config.namespace,
      metricName: config.metricName,
      dimensions: config.dimensions ?? [],
      statistic: config.statistic,
      period: config.period,
    }) as Record<string, any>;
  };
  const logicalIdOf = (construct: Construct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);

  test('every alarm is a named property that returns the alarm of that name in the template, and allAlarms has them all', () => {
    const named: Record<string, cloudwatch.Alarm | undefined> = {
      ServerErrorRate: observability.serverErrorRateAlarm,
      DeniedRate: observability.deniedRateAlarm,
      NoHealthyLookerNode: observability.noHealthyLookerNodeAlarm,
      InlineRefreshFailures: observability.inlineRefreshFailuresAlarm,
      LoginFailures: observability.loginFailuresAlarm,
      RefreshFailures: observability.refreshFailuresAlarm,
      IdpClientAuthFailed: observability.idpClientAuthFailedAlarm,
      UnhealthyHosts: observability.unhealthyHostsAlarm,
      NoHealthyGatewayHost: observability.noHealthyGatewayHostAlarm,
      KeySyncStale: observability.keySyncStaleAlarm,
      KeySyncFailed: observability.keySyncFailedAlarm,
      KeySyncKeyMismatch: observability.keySyncKeyMismatchAlarm,
      LookerNodesLow: observability.lookerNodesLowAlarm,
      AuthServiceErrors: observability.authServiceErrorsAlarm,
      AuthServiceThrottles: observability.authServiceThrottlesAlarm,
      AuthServiceDurationNearTimeout: observability.authServiceDurationAlarm,
      AuthApiServerErrors: observability.authApiServerErrorsAlarm,
      AuthApiThrottled: observability.authApiThrottledAlarm,
      FrontendCertificateExpiry: observability.frontendCertificateExpiryAlarm,
      RotationFailure: observability.rotationFailureAlarm,
      RotationStuck: observability.rotationStuckAlarm,
    };
    expect(Object.keys(named).sort()).toEqual(Object.keys(RUNBOOK).sort());
    for (const [name, alarm] of Object.entries(named)) {
      expect([name, alarm && logicalIdOf(alarm)]).toEqual([name, expect.stringMatching(new RegExp(`Observability${name}Alarm[0-9A-F]{8}$`))]);
    }
    expect(observability.allAlarms.map(logicalIdOf).sort()).toEqual(
      Object.values(named)
        .map((alarm) => logicalIdOf(alarm!))
        .sort(),
    );
    // No string-keyed record any more: the alarms are read-only properties.
    expect((observability as unknown as Record<string, unknown>).alarms).toBeUndefined();
    expect(() => {
      (observability as unknown as Record<string, unknown>).keySyncStaleAlarm = undefined;
    }).toThrow(TypeError);
  });

  test("the construct's alarms watch the metrics its metric*() methods and the fleet's and keys' return", () => {
    const watched = (alarm: cloudwatch.Alarm | undefined) => stat(alarm!.metric);
    expect(watched(observability.noHealthyLookerNodeAlarm)).toEqual(stat(observability.metricLookerUnavailable()));
    expect(watched(observability.inlineRefreshFailuresAlarm)).toEqual(stat(observability.metricInlineRefreshFailures()));
    expect(watched(observability.loginFailuresAlarm)).toEqual(stat(observability.metricLoginFailures()));
    expect(watched(observability.refreshFailuresAlarm)).toEqual(stat(observability.metricRefreshFailures()));
    expect(watched(observability.idpClientAuthFailedAlarm)).toEqual(stat(observability.metricIdpClientAuthFailures()));
    expect(watched(observability.rotationStuckAlarm)).toEqual(stat(observability.metricAbandonedRotations()));
    expect(watched(observability.rotationFailureAlarm)).toEqual(stat(keys.metricRotationFailures()));
    expect(watched(observability.keySyncStaleAlarm)).toEqual(stat(fleet.metricKeySyncSecondsSinceSuccess()));
    expect(watched(observability.keySyncFailedAlarm)).toEqual(stat(fleet.metricKeySyncRunFailed()));
    expect(watched(observability.keySyncKeyMismatchAlarm)).toEqual(stat(fleet.metricKeySyncCurrentKidMatches()));
    expect(watched(observability.lookerNodesLowAlarm)).toEqual(stat(fleet.metricLookerServersUp()));
    expect(stat(fleet.metricLookerServersConfigured())).toMatchObject({
      metricName: KEY_SYNC_METRICS.lookerServersConfigured,
      statistic: 'Maximum',
      period: 300,
    });
    // The rates: metric math over the requests and the 5xx or denied requests.
    const inputs = (alarm: cloudwatch.Alarm) => Object.values((alarm.metric as cloudwatch.MathExpression).usingMetrics).map(stat);
    expect(inputs(observability.serverErrorRateAlarm)).toEqual([stat(observability.metricRequests()), stat(observability.metricServerErrors())]);
    expect(inputs(observability.deniedRateAlarm)).toEqual([stat(observability.metricRequests()), stat(observability.metricDenied())]);
  });

  test("every log metric the construct offers is published by a metric filter of the template, in the construct's namespace", () => {
    const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(observability)).filter((name) => /^metric[A-Z]/.test(name));
    expect(methods.length).toBeGreaterThanOrEqual(11);
    const published = ofType('AWS::Logs::MetricFilter').map(([, r]) => resolve(r.Properties.MetricTransformations[0]) as Record<string, unknown>);
    for (const method of methods) {
      const metric = stat((observability as unknown as Record<string, () => cloudwatch.Metric>)[method]());
      expect([method, metric.namespace]).toEqual([method, namespace]);
      const filter = published.find((t) => t.MetricName === metric.metricName && t.MetricNamespace === metric.namespace);
      expect([method, filter]).toEqual([method, expect.objectContaining({ MetricName: metric.metricName })]);
    }
    // Props override the defaults (period, statistic), as on AWS's own metric*() methods.
    expect(stat(observability.metricDenied({ period: Duration.minutes(1), statistic: 'Maximum' }))).toMatchObject({ period: 60, statistic: 'Maximum' });
    expect(stat(observability.metricRequestTime())).toMatchObject({ metricName: 'RequestTime', statistic: 'p99', period: 300 });
  });
});

describe('SIEM forwarding', () => {
  test('without a destination: no subscription filter', () => {
    template.resourceCountIs('AWS::Logs::SubscriptionFilter', 0);
  });

  test('siemDestinationArn (a Firehose stream): access, audit and rotation logs, every event, with one role CloudWatch Logs assumes', () => {
    const arn = 'arn:aws:firehose:eu-west-1:123456789012:deliverystream/splunk';
    const withSiem = Template.fromStack(newGatewayStack({ settings: { siemDestinationArn: arn } }).stack);
    const json = withSiem.toJSON() as { Resources: Resources };
    const filters = Object.values(json.Resources).filter((r) => r.Type === 'AWS::Logs::SubscriptionFilter');
    const groups = filters.map((f) => f.Properties.LogGroupName.Ref).sort();
    const groupId = (id: string) =>
      Object.entries(json.Resources).find(([, r]) => (r.Metadata?.['aws:cdk:path'] as string | undefined)?.endsWith(`/Observability/${id}/Resource`))![0];
    expect(groups).toEqual(['AccessLogs', 'AuditLogs', 'RotationLogs'].map(groupId).sort());
    for (const filter of filters) expect(filter.Properties).toMatchObject({ DestinationArn: arn, FilterPattern: '' });
    const roles = new Set(filters.map((f) => JSON.stringify(f.Properties.RoleArn)));
    expect(roles.size).toBe(1);
    withSiem.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'logs.amazonaws.com' }, Condition: { StringLike: { 'aws:SourceArn': Match.anyValue() } } })],
      },
    });
    withSiem.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: [Match.objectLike({ Action: ['firehose:PutRecord', 'firehose:PutRecordBatch'], Resource: arn })] },
    });
  });

  test('a Kinesis stream (the construct prop): the role may write to it; a CloudWatch Logs destination: no role', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Siem');
    const stream = new kinesis.Stream(stack, 'Stream');
    const gateway = (siemDestination: SiemDestination, scope: Stack) =>
      new LookerGateway(scope, 'Gateway', {
        domainName: 'looker.example.com',
        identityProvider: {
          issuer: 'https://login.example.com',
          clientId: 'gateway',
          clientSecret: secretsmanager.Secret.fromSecretNameV2(scope, 'IdpSecret', 'idp'),
        },
        mappingRules: { rules: [{ name: 'all', match: { groups: ['staff'] }, grant: { roles: ['Viewer'] } }] },
        looker: LookerBackend.fromHosts(['10.0.0.10'], { serverName: 'looker.internal' }),
        siemDestination,
      });
    gateway(SiemDestination.kinesisStream(stream), stack);
    const central = new Stack(app, 'Central');
    const destination = 'arn:aws:logs:eu-west-1:210987654321:destination:siem';
    gateway(SiemDestination.logsDestination(destination), central);
    const kinesisTemplate = Template.fromStack(stack);
    kinesisTemplate.resourceCountIs('AWS::Logs::SubscriptionFilter', 3);
    kinesisTemplate.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['kinesis:PutRecord', 'kinesis:PutRecords']) })]) },
    });

    const centralTemplate = Template.fromStack(central);
    centralTemplate.allResourcesProperties('AWS::Logs::SubscriptionFilter', { DestinationArn: destination, RoleArn: Match.absent() });
  });

  test('a wrong ARN fails at synth with the value and the accepted forms', () => {
    expect(() => newGatewayStack({ settings: { siemDestinationArn: 'arn:aws:sqs:eu-west-1:123456789012:queue' } })).toThrow(
      /siemDestinationArn "arn:aws:sqs:eu-west-1:123456789012:queue" is not a Kinesis data stream .* a Firehose stream .* or a CloudWatch Logs destination/,
    );
    expect(() => SiemDestination.firehose('arn:aws:kinesis:eu-west-1:123456789012:stream/x')).toThrow(/is not an ARN of that kind; expected arn:aws:firehose:/);
  });
});

describe('the dashboard', () => {
  const [, dashboard] = ofType('AWS::CloudWatch::Dashboard')[0];
  // Deploy-time values as markers: a reference to a resource of the template reads __resource:<logical id>__.
  const parts = (dashboard.Properties.DashboardBody['Fn::Join']?.[1] ?? [dashboard.Properties.DashboardBody]) as unknown[];
  const marked = parts
    .map((part) => {
      if (typeof part === 'string') return part;
      const ref = (part as { Ref?: string }).Ref;
      if (ref === 'AWS::Region') return FAKE_DEPLOYMENT.region;
      if (ref === 'AWS::StackName') return FAKE_DEPLOYMENT.stackName;
      // A reference, or a function of one (Fn::Select over Fn::Split of a load balancer's ARN).
      const referenced = [...JSON.stringify(part).matchAll(/"(?:Ref|Fn::GetAtt)":\[?"([A-Za-z0-9]+)"/g)].map((m) => m[1]);
      if (referenced.length > 0 && referenced.every((id) => resources[id])) return `__resource:${referenced[0]}__`;
      throw new Error(`the dashboard holds a value that is no reference to the template: ${JSON.stringify(part)}`);
    })
    .join('');
  const body = JSON.parse(marked) as { widgets: Array<{ type: string; y: number; properties: any }> };
  test('answers the on-call questions in order: users getting in, speed, every instance current, Looker up', () => {
    const headings = body.widgets
      .filter((w) => w.type === 'text')
      .sort((a, b) => a.y - b.y)
      .map((w) => String(w.properties.markdown).split('\n')[0]);
    expect(headings).toEqual(['## 1. Are users getting in?', '## 2. Is it fast?', '## 3. Is every instance current?', '## 4. Is Looker up?', '## Details']);
    const titlesBetween = (from: string, to: string) => {
      const y = (heading: string) => body.widgets.find((w) => w.type === 'text' && String(w.properties.markdown).startsWith(heading))!.y;
      return body.widgets.filter((w) => w.type === 'metric' && w.y > y(from) && w.y < y(to)).map((w) => w.properties.title);
    };
    expect(titlesBetween('## 1.', '## 2.')).toEqual(expect.arrayContaining(['Logins and refreshes', 'Denied requests at the gateway, by decision']));
    expect(titlesBetween('## 2.', '## 3.')).toEqual(
      expect.arrayContaining(["Through the gateway (ms, users' requests)", 'Auth service function duration (ms)']),
    );
    expect(titlesBetween('## 3.', '## 4.')).toEqual(expect.arrayContaining(['Seconds since the last good key sync, per instance']));
    expect(titlesBetween('## 4.', '## Details')).toEqual(expect.arrayContaining(['Looker unavailable (looker-unavailable)']));
  });

  test('every widget reads a metric that exists: a metric filter, an AWS metric of a resource in the template, or one key-sync publishes', () => {
    const filterMetrics = new Set(
      ofType('AWS::Logs::MetricFilter').flatMap(([, f]) =>
        f.Properties.MetricTransformations.map((t: { MetricNamespace: unknown; MetricName: string }) => `${resolve(t.MetricNamespace)} ${t.MetricName}`),
      ),
    );
    const keySync = new Set([...Object.values(KEY_SYNC_METRICS), CERTIFICATE_EXPIRY_METRIC].map((name) => `${namespace} ${name}`));
    // An AWS metric's dimensions name resources of this template (the API's name and stage are constants of it).
    const apiNames = ofType('AWS::ApiGateway::RestApi').map(([, r]) => r.Properties.Name);
    const stageNames = ofType('AWS::ApiGateway::Stage').map(([, r]) => r.Properties.StageName);
    const awsResourceNames = (value: string) => /__resource:\w+__/.test(value) || apiNames.includes(value) || stageNames.includes(value);
    const problems: string[] = [];
    let count = 0;
    for (const widget of body.widgets.filter((w) => w.type === 'metric')) {
      for (const entry of widget.properties.metrics as unknown[][]) {
        count += 1;
        const last = entry[entry.length - 1] as Record<string, unknown> | string;
        const expression = typeof last === 'object' && last !== null ? (last.expression as string | undefined) : undefined;
        if (expression) {
          // Metrics Insights: SELECT STAT(Metric) FROM SCHEMA("namespace", dims...)
          const insights = /^SELECT \w+\((\w+)\) FROM SCHEMA\("([^"]+)"/.exec(expression);
          if (insights) {
            const key = `${insights[2]} ${insights[1]}`;
            if (!filterMetrics.has(key) && !keySync.has(key)) problems.push(`${widget.properties.title}: ${key}`);
          }
          continue;
        }
        const [ns, name, ...dims] = entry.filter((e) => typeof e === 'string') as string[];
        if (ns === '.' || name === '.') continue;
        const key = `${ns} ${name}`;
        if (ns.startsWith('AWS/')) {
          // An AWS metric: its dimension values must name resources of this template.
          for (let i = 1; i < dims.length; i += 2)
            if (!awsResourceNames(dims[i])) problems.push(`${widget.properties.title}: ${key} ${dims[i - 1]}=${dims[i]}`);
        } else if (!filterMetrics.has(key) && !keySync.has(key)) {
          problems.push(`${widget.properties.title}: ${key}`);
        }
      }
    }
    expect(count).toBeGreaterThan(15);
    expect(problems).toEqual([]);
  });
});
