/**
 * GatewayObservability: the log groups (HAProxy access log, auth audit, rotation), metric
 * filters on their JSON fields, alarms, an optional encrypted SNS topic for alarm
 * actions, a dashboard and saved Logs Insights queries.
 *
 * Made first (the other constructs write into its log groups), then told what to watch:
 * monitorFleet(), monitorAuthService(), monitorRotation().
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { newGatewayEncryptionKey } from '../keys/encryption-key';
import { newEncryptedLogGroup } from '../private/log-group';
import { assertIntegerInRange } from '../private/validation';
import { ROTATION_EVENTS, ROTATION_LOG_FIELDS } from '../../core/rotation-contract';
import { ACCESS_LOG_FIELDS, AUDIT_EVENT_FIELDS, AUDIT_EVENTS, LOOKER_UNAVAILABLE_DECISION, PUBLIC_FRONTEND } from '../../core/log-fields';

export interface GatewayObservabilityProps {
  /**
   * KMS key of the log groups and the alarm topic.
   * @default - a new customer-managed key with yearly rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Retention of the access, audit and rotation logs.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly retention?: logs.RetentionDays;
  /**
   * Topic that alarms notify.
   * @default - a new topic encrypted with the key when `createAlarmTopic` is true
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Make an encrypted SNS topic for alarm actions when no `alarmTopic` is given.
   * @default true
   */
  readonly createAlarmTopic?: boolean;
  /**
   * Alarm when more than this percentage of requests end in a 5xx over 5 minutes.
   * @default 5
   */
  readonly serverErrorRatePercent?: number;
  /**
   * Alarm when more than this percentage of requests are denied (401/403) over 5 minutes.
   * @default 25
   */
  readonly deniedRatePercent?: number;
  /**
   * Alarm when more logins than this fail in 5 minutes.
   * @default 10
   */
  readonly loginFailureThreshold?: number;
  /**
   * Alarm when more inline refreshes than this fail in 5 minutes.
   * @default 20
   */
  readonly refreshFailureThreshold?: number;
  /**
   * Namespace of the gateway's custom metrics.
   * @default "LookerGateway/<stack name>"
   */
  readonly metricNamespace?: string;
  /**
   * Alarm when the frontend certificate that some instance serves expires in fewer days
   * than this (ACM renews exportable certificates well before that; the self-signed one is
   * renewed halfway through its 90 days).
   * @default 14
   */
  readonly certificateExpiryAlarmDays?: number;
}

/** Anything the observability can watch as the fleet: its load balancer's target group. */
export interface MonitoredFleet {
  readonly targetGroup: elbv2.INetworkTargetGroup;
  readonly loadBalancer: elbv2.INetworkLoadBalancer;
}

export class GatewayObservability extends Construct {
  public readonly encryptionKey: kms.IKey;
  /** HAProxy's JSON access log, shipped by the CloudWatch agent. */
  public readonly accessLogGroup: logs.LogGroup;
  /** The auth service's function log: its JSON audit events. */
  public readonly auditLogGroup: logs.LogGroup;
  /** The rotation function's log. */
  public readonly rotationLogGroup: logs.LogGroup;
  public readonly alarmTopic?: sns.ITopic;
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly metricNamespace: string;
  /** Every alarm made, by name. */
  public readonly alarms: Record<string, cloudwatch.Alarm> = {};

  private readonly props: GatewayObservabilityProps;

  constructor(scope: Construct, id: string, props: GatewayObservabilityProps = {}) {
    super(scope, id);
    const where = `GatewayObservability ${this.node.path}`;
    this.props = props;
    assertIntegerInRange(where, 'serverErrorRatePercent', props.serverErrorRatePercent ?? 5, 1, 100, 'Give a percentage.');
    assertIntegerInRange(where, 'deniedRatePercent', props.deniedRatePercent ?? 25, 1, 100, 'Give a percentage.');
    assertIntegerInRange(
      where,
      'certificateExpiryAlarmDays',
      props.certificateExpiryAlarmDays ?? 14,
      1,
      60,
      'Leave time to act before browsers refuse the certificate; 14 is the default.',
    );
    this.encryptionKey = props.encryptionKey ?? newGatewayEncryptionKey(this, 'Key');
    const retention = props.retention ?? logs.RetentionDays.ONE_YEAR;
    this.accessLogGroup = newEncryptedLogGroup(this, 'AccessLogs', this.encryptionKey, retention);
    this.auditLogGroup = newEncryptedLogGroup(this, 'AuditLogs', this.encryptionKey, retention);
    this.rotationLogGroup = newEncryptedLogGroup(this, 'RotationLogs', this.encryptionKey, retention);
    this.metricNamespace = props.metricNamespace ?? `LookerGateway/${Stack.of(this).stackName}`;

    if (props.alarmTopic) {
      this.alarmTopic = props.alarmTopic;
    } else if (props.createAlarmTopic ?? true) {
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'Looker gateway alarms', masterKey: this.encryptionKey, enforceSSL: true });
      // CloudWatch alarms publish to a KMS-encrypted topic only if the key lets them.
      this.encryptionKey.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'AllowCloudWatchAlarmsToPublish',
          principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
        }),
      );
      this.alarmTopic = topic;
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.addAccessLogMetrics();
    this.addAuditMetrics();
    this.addQueries();
  }

  /** Alarms and widgets on the fleet's load balancer: unhealthy hosts, no healthy host. */
  public monitorFleet(fleet: MonitoredFleet): void {
    const unhealthy = fleet.targetGroup.metrics.unHealthyHostCount({ period: Duration.minutes(1), statistic: 'Maximum' });
    const healthy = fleet.targetGroup.metrics.healthyHostCount({ period: Duration.minutes(1), statistic: 'Minimum' });
    this.alarm('UnhealthyHosts', unhealthy, {
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      alarmDescription: 'At least one gateway instance failed the load balancer health check for 3 minutes.',
    });
    this.alarm('NoHealthyGatewayHost', healthy, {
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: 'No gateway instance passes the load balancer health check: users cannot reach Looker through the gateway.',
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Gateway hosts', left: [healthy, unhealthy], width: 12 }),
      new cloudwatch.GraphWidget({
        title: 'Load balancer flows',
        left: [
          fleet.loadBalancer.metrics.activeFlowCount({ period: Duration.minutes(1) }),
          fleet.loadBalancer.metrics.newFlowCount({ period: Duration.minutes(1) }),
        ],
        width: 12,
      }),
    );
  }

  /** Widgets on the auth service's function. */
  public monitorAuthService(fn: lambda.IFunction): void {
    const errors = fn.metricErrors({ period: Duration.minutes(5) });
    this.alarm('AuthServiceErrors', errors, {
      threshold: 5,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'The auth service function failed more than 5 times in 5 minutes (users cannot log in or refresh).',
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Auth service',
        left: [fn.metricInvocations(), errors, fn.metricThrottles()],
        right: [fn.metricDuration({ statistic: 'p99' })],
        width: 24,
      }),
    );
  }

  /**
   * Alarm when the installed frontend certificate of some instance expires within
   * `certificateExpiryAlarmDays` (the fleet's GatewayFleet.metricFrontendCertificateDaysToExpiry()):
   * a renewal that did not reach the instances pages someone before users see an error.
   */
  public monitorFrontendCertificate(daysToExpiry: cloudwatch.IMetric): void {
    const days = this.props.certificateExpiryAlarmDays ?? 14;
    this.alarm('FrontendCertificateExpiry', daysToExpiry, {
      threshold: days,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      alarmDescription: `A gateway instance serves a frontend certificate that expires in less than ${days} days: its renewal or export did not reach the instances. Read the lg-key-sync journal on an instance (journalctl -u lg-key-sync) and the certificate's status in ACM.`,
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Frontend certificate: days until expiry',
        left: [daysToExpiry],
        leftAnnotations: [{ value: days, label: 'alarm' }],
        width: 24,
      }),
    );
  }

  /**
   * Alarms on rotation failures (the rotation function's errors) and on stuck rotations:
   * a rotation that stopped half-way, whose AWSPENDING label the rotation function's
   * hourly check cleared (it logs `abandoned-rotation-cleared` into the rotation log group).
   */
  public monitorRotation(fn: lambda.IFunction): void {
    const errors = fn.metricErrors({ period: Duration.hours(1) });
    this.alarm('RotationFailure', errors, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      alarmDescription: 'A key or certificate rotation failed: the secret keeps its current value; read the rotation log group.',
    });
    const stuck = this.filterMetric(
      'AbandonedRotations',
      this.rotationLogGroup,
      `{ $.${ROTATION_LOG_FIELDS.event} = "${ROTATION_EVENTS.abandonedRotationCleared}" }`,
    ).with({ period: Duration.hours(1) });
    this.alarm('RotationStuck', stuck, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      alarmDescription:
        'A rotation stopped half-way and sat unfinished (it blocked later rotations and deployments that update the schedule) until the hourly check removed its AWSPENDING label. The secret kept its current value. Find the failed step in the rotation log group, fix the cause, then rotate again (docs/keys-and-rotation.md: When a rotation fails).',
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Rotation', left: [fn.metricInvocations({ period: Duration.hours(1) }), errors, stuck], width: 24 }),
    );
  }

  private addAccessLogMetrics(): void {
    // Users' requests only: the public listener's lines (not health checks, relay calls or Lua events).
    const userRequest = `$.${ACCESS_LOG_FIELDS.frontend} = "${PUBLIC_FRONTEND}"`;
    const requests = this.filterMetric('Requests', this.accessLogGroup, `{ ${userRequest} && $.${ACCESS_LOG_FIELDS.status} = * }`);
    const serverErrors = this.filterMetric('ServerErrors', this.accessLogGroup, `{ ${userRequest} && $.${ACCESS_LOG_FIELDS.status} >= 500 }`);
    const denied = this.filterMetric(
      'Denied',
      this.accessLogGroup,
      `{ ${userRequest} && ($.${ACCESS_LOG_FIELDS.status} = 401 || $.${ACCESS_LOG_FIELDS.status} = 403) }`,
    );
    // The decision code, logged on users' 503s and on every health check while Looker is down.
    const noLooker = this.filterMetric('NoLookerNode', this.accessLogGroup, `{ $.${ACCESS_LOG_FIELDS.decision} = "${LOOKER_UNAVAILABLE_DECISION}" }`);
    const serverErrorRate = new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: { requests, errors: serverErrors },
      period: Duration.minutes(5),
      label: '5xx rate (%)',
    });
    const deniedRate = new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * denied / requests, 0)',
      usingMetrics: { requests, denied },
      period: Duration.minutes(5),
      label: 'Denied rate (%)',
    });
    this.alarm('ServerErrorRate', serverErrorRate, {
      threshold: this.props.serverErrorRatePercent ?? 5,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'More than the allowed share of gateway requests ended in a 5xx for 10 minutes.',
    });
    this.alarm('DeniedRate', deniedRate, {
      threshold: this.props.deniedRatePercent ?? 25,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'An unusual share of requests was denied (401/403) for 10 minutes: an expired IdP setup, key trouble or an attack.',
    });
    this.alarm('NoHealthyLookerNode', noLooker, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      alarmDescription: `No Looker node passes the gateway's health check (decision ${LOOKER_UNAVAILABLE_DECISION}): users get 503. The gateways stay in service (liveness is not Looker's availability).`,
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Requests', left: [requests], right: [serverErrorRate, deniedRate], width: 12 }),
      new cloudwatch.GraphWidget({ title: `Looker unavailable (${LOOKER_UNAVAILABLE_DECISION})`, left: [noLooker], width: 12 }),
    );
  }

  private addAuditMetrics(): void {
    const f = AUDIT_EVENT_FIELDS;
    const loginFailures = this.filterMetric(
      'LoginFailures',
      this.auditLogGroup,
      `{ $.${f.type} = "${AUDIT_EVENTS.audit}" && $.${f.event} = "${AUDIT_EVENTS.login}" && $.${f.outcome} != "${AUDIT_EVENTS.success}" }`,
    );
    const refreshFailures = this.filterMetric(
      'RefreshFailures',
      this.auditLogGroup,
      `{ $.${f.type} = "${AUDIT_EVENTS.audit}" && $.${f.event} = "${AUDIT_EVENTS.refresh}" && $.${f.outcome} != "${AUDIT_EVENTS.success}" }`,
    );
    const logins = this.filterMetric(
      'Logins',
      this.auditLogGroup,
      `{ $.${f.type} = "${AUDIT_EVENTS.audit}" && $.${f.event} = "${AUDIT_EVENTS.login}" && $.${f.outcome} = "${AUDIT_EVENTS.success}" }`,
    );
    this.alarm('LoginFailures', loginFailures, {
      threshold: this.props.loginFailureThreshold ?? 10,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'Many logins failed in 5 minutes: IdP outage, wrong client secret or mapping rules that deny everyone.',
    });
    this.alarm('RefreshFailures', refreshFailures, {
      threshold: this.props.refreshFailureThreshold ?? 20,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: 'Many inline refreshes failed in 5 minutes: users are sent back to the login page.',
    });
    // One refusal is enough to act on: every sign-in and refresh fails until the credential matches the IdP's again.
    const clientAuthFailures = this.filterMetric(
      'IdpClientAuthFailures',
      this.auditLogGroup,
      `{ $.${f.type} = "${AUDIT_EVENTS.audit}" && $.${f.reason} = "${AUDIT_EVENTS.idpClientAuthFailed}" }`,
    );
    this.alarm('IdpClientAuthFailed', clientAuthFailures, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      alarmDescription:
        "The IdP refused the auth service's client credential (invalid_client): no one can sign in or refresh. Put the client secret (or key) registered at the IdP into its Secrets Manager secret, and check tokenEndpointAuthMethod.",
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Logins and refreshes', left: [logins, loginFailures, refreshFailures, clientAuthFailures], width: 24 }),
    );
  }

  private addQueries(): void {
    const a = ACCESS_LOG_FIELDS;
    const f = AUDIT_EVENT_FIELDS;
    new logs.QueryDefinition(this, 'SlowestRequests', {
      queryDefinitionName: `${this.metricNamespace}/slowest-requests`,
      logGroups: [this.accessLogGroup],
      queryString: new logs.QueryString({
        fields: ['@timestamp', a.requestId, a.user, a.method, a.path, a.status, a.totalTime],
        sort: `${a.totalTime} desc`,
        limit: 50,
      }),
    });
    new logs.QueryDefinition(this, 'ErrorsByPath', {
      queryDefinitionName: `${this.metricNamespace}/errors-by-path`,
      logGroups: [this.accessLogGroup],
      queryString: new logs.QueryString({
        filterStatements: [`${a.status} >= 500`],
        statsStatements: [`count(*) as errors by ${a.path}, ${a.status}`],
        sort: 'errors desc',
      }),
    });
    new logs.QueryDefinition(this, 'DeniedUsers', {
      queryDefinitionName: `${this.metricNamespace}/denied-users`,
      logGroups: [this.auditLogGroup],
      queryString: new logs.QueryString({
        filterStatements: [`${f.type} = "${AUDIT_EVENTS.audit}" and ${f.outcome} != "${AUDIT_EVENTS.success}"`],
        statsStatements: [`count(*) as denials by ${f.subject}, ${f.event}, ${f.reason}`],
        sort: 'denials desc',
      }),
    });
    new logs.QueryDefinition(this, 'RequestTrail', {
      queryDefinitionName: `${this.metricNamespace}/request-trail`,
      logGroups: [this.accessLogGroup, this.auditLogGroup],
      queryString: new logs.QueryString({
        fields: ['@timestamp', '@log', a.requestId, f.requestId, f.event, f.outcome, a.status, a.path],
        filterStatements: [`${a.requestId} = "REPLACE-WITH-REQUEST-ID" or ${f.requestId} = "REPLACE-WITH-REQUEST-ID"`],
        sort: '@timestamp asc',
      }),
    });
    new logs.QueryDefinition(this, 'RotationFailures', {
      queryDefinitionName: `${this.metricNamespace}/rotation-failures`,
      logGroups: [this.rotationLogGroup],
      // The rotation Lambda writes one raw JSON line per step: { step, secretArn, outcome, error? }, and events such as abandoned-rotation-cleared.
      queryString: new logs.QueryString({
        fields: ['@timestamp', 'step', 'event', 'secretArn', 'error', 'reason'],
        filterStatements: [`outcome = "error" or ${ROTATION_LOG_FIELDS.event} = "${ROTATION_EVENTS.abandonedRotationCleared}"`],
        sort: '@timestamp desc',
        limit: 100,
      }),
    });
  }

  private filterMetric(name: string, logGroup: logs.LogGroup, pattern: string): cloudwatch.Metric {
    const filter = new logs.MetricFilter(this, `${name}Filter`, {
      logGroup,
      metricNamespace: this.metricNamespace,
      metricName: name,
      filterPattern: logs.FilterPattern.literal(pattern),
      metricValue: '1',
      defaultValue: 0,
      unit: cloudwatch.Unit.COUNT,
    });
    return filter.metric({ statistic: 'Sum', period: Duration.minutes(5) });
  }

  private alarm(name: string, metric: cloudwatch.IMetric, options: Omit<cloudwatch.AlarmProps, 'metric'>): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, `${name}Alarm`, { treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING, ...options, metric });
    if (this.alarmTopic) {
      alarm.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      alarm.addOkAction(new actions.SnsAction(this.alarmTopic));
    }
    this.alarms[name] = alarm;
    return alarm;
  }
}
