/**
 * GatewayObservability: the log groups (HAProxy access log, auth audit, rotation, and the
 * instances' key-sync, HAProxy messages and agent logs), metric filters on their JSON fields,
 * alarms with runbooks (core/observability/runbook.ts), an optional encrypted SNS topic for
 * alarm actions, optional forwarding to a SIEM, a dashboard in the order the person on call
 * asks (are users getting in, is it fast, is every instance current, is Looker up) and saved
 * Logs Insights queries.
 *
 * Made first (the other constructs write into its log groups), then told what to watch:
 * monitorFleet(), monitorKeySync(), monitorLookerServers(), monitorAuthService(), monitorAuthApi(), monitorRotation(),
 * monitorFrontendCertificate(). Its log-based metrics are public (metricRequests(), metricDenied(),
 * ...) and are what its own alarms and dashboard read; each alarm is a named property.
 *
 * Size: one construct whose public API is most of it (20 named alarms, 11 metric methods and 7
 * monitor methods, each with its TSDoc), plus the metric filters and queries those read. The
 * filters and queries could move to functions of their own; the alarms and metrics stay here,
 * beside the log groups they are defined on.
 */
import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import { Construct } from 'constructs';
import { KEY_SYNC_STALE_AFTER_SECONDS } from '../../core/instance/key-sync-metrics';
import { KEY_SYNC_METRICS } from '../../core/instance/run-metrics';
import { AlarmName, runbookDescription, RunbookNames } from '../../core/observability/runbook';
import { SiemDestination } from './siem-destination';
import { newGatewayEncryptionKey } from '../keys/encryption-key';
import { newEncryptedLogGroup } from '../private/log-group';
import { assertIntegerInRange } from '../private/validation';
import { ROTATION_EVENTS, ROTATION_LOG_FIELDS } from '../../core/rotation-contract';
import {
  ACCESS_LOG_FIELDS,
  AUDIT_EVENT_FIELDS,
  AUDIT_EVENTS,
  INLINE_REFRESH_FAILURES,
  LOOKER_UNAVAILABLE_DECISION,
  PUBLIC_FRONTEND,
} from '../../core/log-fields';

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
  /**
   * Where the access, audit and rotation logs are forwarded as well (a SIEM): a subscription
   * filter on each group, with the role CloudWatch Logs needs to write to the destination.
   * @default - no forwarding: the logs stay in CloudWatch
   */
  readonly siemDestination?: SiemDestination;
}

/** Anything the observability can watch as the fleet: its load balancer's target group. */
export interface MonitoredFleet {
  readonly targetGroup: elbv2.INetworkTargetGroup;
  readonly loadBalancer: elbv2.INetworkLoadBalancer;
}

/** Where key-sync's metrics come from (GatewayFleet): the series over all instances. */
export interface IKeySyncMetrics {
  /** Namespace key-sync publishes in (the per-instance series carry the dimension InstanceId). */
  readonly metricNamespace: string;
  metricKeySyncSecondsSinceSuccess(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  metricKeySyncCurrentKidMatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  metricKeySyncRunFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}

/** Where the Looker server counts come from (GatewayFleet: key-sync reads them from HAProxy on every instance). */
export interface ILookerServerMetrics {
  /** Namespace key-sync publishes in (the per-instance series carry the dimension InstanceId). */
  readonly metricNamespace: string;
  metricLookerServersUp(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  metricLookerServersConfigured(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}

/** The names of the metrics the log groups' metric filters publish (in `metricNamespace`). */
const LOG_METRICS = {
  requests: 'Requests',
  serverErrors: 'ServerErrors',
  denied: 'Denied',
  deniedByDecision: 'DeniedByDecision',
  lookerUnavailable: 'NoLookerNode',
  inlineRefreshFailures: 'InlineRefreshFailures',
  inlineRefreshFailuresByResult: 'InlineRefreshFailuresByResult',
  requestTime: 'RequestTime',
  logins: 'Logins',
  loginFailures: 'LoginFailures',
  refreshFailures: 'RefreshFailures',
  authFailuresByReason: 'AuthFailuresByReason',
  idpClientAuthFailures: 'IdpClientAuthFailures',
  abandonedRotations: 'AbandonedRotations',
  authApiThrottled: 'AuthApiThrottled',
} as const;

/** The dashboard's sections, in the order the person on call asks. */
const SECTIONS = {
  users: "## 1. Are users getting in?\nLogins, and denials by reason (the gateway's decision codes, the auth service's reason codes).",
  speed: '## 2. Is it fast?\np50 and p99 through the gateway and at the auth service.',
  keys: "## 3. Is every instance current?\nkey-sync per instance: seconds since its last good sync, and whether its current session key is the secret's.",
  looker: "## 4. Is Looker up?\nThe gateway's health check of the Looker nodes, and the gateway hosts behind the load balancer.",
  details: "## Details\nTraffic, the auth service's function and API, rotations.",
} as const;
type Section = keyof typeof SECTIONS;

export class GatewayObservability extends Construct {
  public readonly encryptionKey: kms.IKey;
  /** HAProxy's JSON access log, shipped by the CloudWatch agent. */
  public readonly accessLogGroup: logs.LogGroup;
  /** The auth service's function log: its JSON audit events. */
  public readonly auditLogGroup: logs.LogGroup;
  /** The rotation function's log. */
  public readonly rotationLogGroup: logs.LogGroup;
  /** key-sync's JSON lines, one per run and instance (stream: the instance id). */
  public readonly keySyncLogGroup: logs.LogGroup;
  /** HAProxy's own messages: ALERTs, server state changes, reloads. */
  public readonly haproxyLogGroup: logs.LogGroup;
  /** The instances' bootstrap logs and the CloudWatch and SSM agents' errors. */
  public readonly instanceLogGroup: logs.LogGroup;
  public readonly alarmTopic?: sns.ITopic;
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly metricNamespace: string;
  /** Subscription filters that forward logs to the SIEM destination (none without one). */
  public readonly siemSubscriptions: logs.SubscriptionFilter[] = [];

  private readonly props: GatewayObservabilityProps;
  private readonly alarmsByName = new Map<AlarmName, cloudwatch.Alarm>();
  private readonly sections: Record<Section, cloudwatch.Column>;
  private readonly runbookNames: { -readonly [K in keyof RunbookNames]: RunbookNames[K] };

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
    this.keySyncLogGroup = newEncryptedLogGroup(this, 'KeySyncLogs', this.encryptionKey, retention);
    this.haproxyLogGroup = newEncryptedLogGroup(this, 'HaproxyLogs', this.encryptionKey, retention);
    this.instanceLogGroup = newEncryptedLogGroup(this, 'InstanceLogs', this.encryptionKey, retention);
    this.metricNamespace = props.metricNamespace ?? `LookerGateway/${Stack.of(this).stackName}`;
    this.runbookNames = {
      accessLogGroup: this.accessLogGroup.logGroupName,
      auditLogGroup: this.auditLogGroup.logGroupName,
      rotationLogGroup: this.rotationLogGroup.logGroupName,
      keySyncLogGroup: this.keySyncLogGroup.logGroupName,
      haproxyLogGroup: this.haproxyLogGroup.logGroupName,
      instanceLogGroup: this.instanceLogGroup.logGroupName,
    };

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
    this.sections = Object.fromEntries(
      (Object.keys(SECTIONS) as Section[]).map((section) => {
        const column = new cloudwatch.Column(new cloudwatch.TextWidget({ markdown: SECTIONS[section], width: 24, height: 2 }));
        this.dashboard.addWidgets(column);
        return [section, column];
      }),
    ) as Record<Section, cloudwatch.Column>;
    this.addAccessLogMetrics();
    this.addAuditMetrics();
    // The rotation log group is this construct's: its filter exists whether or not monitorRotation() is called.
    this.addMetricFilter(
      LOG_METRICS.abandonedRotations,
      this.rotationLogGroup,
      `{ $.${ROTATION_LOG_FIELDS.event} = "${ROTATION_EVENTS.abandonedRotationCleared}" }`,
    );
    this.addQueries();
    if (props.siemDestination) this.forwardToSiem(props.siemDestination);
  }

  /** The alarm on the share of users' requests through the gateway that end in a 5xx. */
  public get serverErrorRateAlarm(): cloudwatch.Alarm {
    return this.alarmsByName.get('ServerErrorRate')!;
  }

  /** The alarm on the share of users' requests denied (401, 403). */
  public get deniedRateAlarm(): cloudwatch.Alarm {
    return this.alarmsByName.get('DeniedRate')!;
  }

  /** The alarm when no Looker node passes the gateway's health check (decision `looker-unavailable`). */
  public get noHealthyLookerNodeAlarm(): cloudwatch.Alarm {
    return this.alarmsByName.get('NoHealthyLookerNode')!;
  }

  /** The alarm on inline refresh failures at the gateways. */
  public get inlineRefreshFailuresAlarm(): cloudwatch.Alarm {
    return this.alarmsByName.get('InlineRefreshFailures')!;
  }

  /** The alarm on failed logins (audit events). */
  public get loginFailuresAlarm(): cloudwatch.Alarm {
    return this.alarmsByName.get('LoginFailures')!;
  }

  /** The alarm on failed refreshes at the auth service (audit events). */
  public get refreshFailuresAlarm(): cloudwatch.Alarm {
    return this.alarmsByName.get('RefreshFailures')!;
  }

  /** The alarm when the IdP refuses the auth service's client credential. */
  public get idpClientAuthFailedAlarm(): cloudwatch.Alarm {
    return this.alarmsByName.get('IdpClientAuthFailed')!;
  }

  /** The alarm when some instance's HAProxy counts fewer Looker servers up than expected (after monitorLookerServers). */
  public get lookerNodesLowAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('LookerNodesLow');
  }

  /** The alarm on gateway instances failing the load balancer's health check (after monitorFleet). */
  public get unhealthyHostsAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('UnhealthyHosts');
  }

  /** The alarm when no gateway instance passes the load balancer's health check (after monitorFleet). */
  public get noHealthyGatewayHostAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('NoHealthyGatewayHost');
  }

  /** The alarm when an instance's last good key sync is older than one interval and margin (after monitorKeySync). */
  public get keySyncStaleAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('KeySyncStale');
  }

  /** The alarm when a key-sync run fails (after monitorKeySync). */
  public get keySyncFailedAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('KeySyncFailed');
  }

  /** The alarm when an instance's installed current session key is not the secret's (after monitorKeySync). */
  public get keySyncKeyMismatchAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('KeySyncKeyMismatch');
  }

  /** The alarm on the auth service function's errors (after monitorAuthService). */
  public get authServiceErrorsAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('AuthServiceErrors');
  }

  /** The alarm on throttled auth service invocations (after monitorAuthService). */
  public get authServiceThrottlesAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('AuthServiceThrottles');
  }

  /** The alarm on auth service calls close to the function's time-out (after monitorAuthService, when the time-out is known at synth). */
  public get authServiceDurationAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('AuthServiceDurationNearTimeout');
  }

  /** The alarm on 5xx answers of the auth API (after monitorAuthApi). */
  public get authApiServerErrorsAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('AuthApiServerErrors');
  }

  /** The alarm on 429 answers of the auth API (after monitorAuthApi). */
  public get authApiThrottledAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('AuthApiThrottled');
  }

  /** The alarm when an instance serves a frontend certificate close to its expiry (after monitorFrontendCertificate). */
  public get frontendCertificateExpiryAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('FrontendCertificateExpiry');
  }

  /** The alarm on failed rotations (after monitorRotation). */
  public get rotationFailureAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('RotationFailure');
  }

  /** The alarm on rotations that stopped half-way (after monitorRotation). */
  public get rotationStuckAlarm(): cloudwatch.Alarm | undefined {
    return this.alarmsByName.get('RotationStuck');
  }

  /** Every alarm made so far, in the order made (each has a row in the runbook: docs/observability.md). */
  public get allAlarms(): cloudwatch.Alarm[] {
    return [...this.alarmsByName.values()];
  }

  /** Users' requests through the gateway (the public listener's access-log lines; Sum over 5 minutes). */
  public metricRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.requests, props);
  }

  /** Users' requests answered with a 5xx by the gateway (Sum over 5 minutes). */
  public metricServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.serverErrors, props);
  }

  /** Users' requests denied with 401 or 403 by the gateway (Sum over 5 minutes; the dashboard splits them by decision code). */
  public metricDenied(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.denied, props);
  }

  /** Access-log lines with the decision `looker-unavailable`: no Looker node passes the gateway's check (Sum over 5 minutes). */
  public metricLookerUnavailable(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.lookerUnavailable, props);
  }

  /** Inline refreshes at the gateway that failed (`refresh` = failed, refused, busy, rate-limited or mismatch; Sum over 5 minutes). */
  public metricInlineRefreshFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.inlineRefreshFailures, props);
  }

  /** Time through the gateway of users' requests, in milliseconds (p99 over 5 minutes). */
  public metricRequestTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.requestTime, { statistic: 'p99', ...props });
  }

  /** Successful logins (audit events; Sum over 5 minutes). */
  public metricLogins(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.logins, props);
  }

  /** Failed logins (audit events; Sum over 5 minutes). */
  public metricLoginFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.loginFailures, props);
  }

  /** Refreshes the auth service refused or failed (audit events; Sum over 5 minutes). */
  public metricRefreshFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.refreshFailures, props);
  }

  /** The IdP's refusals of the auth service's client credential (audit reason `idp-client-auth-failed`; Sum over 5 minutes). */
  public metricIdpClientAuthFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.idpClientAuthFailures, props);
  }

  /** Rotations that stopped half-way and that the hourly check cleared (rotation log `abandoned-rotation-cleared`; Sum over an hour). */
  public metricAbandonedRotations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.logMetric(LOG_METRICS.abandonedRotations, { period: Duration.hours(1), ...props });
  }

  /** Alarms and widgets on the fleet's load balancer: unhealthy hosts, no healthy host. */
  public monitorFleet(fleet: MonitoredFleet): void {
    const unhealthy = fleet.targetGroup.metrics.unHealthyHostCount({ period: Duration.minutes(1), statistic: 'Maximum' });
    const healthy = fleet.targetGroup.metrics.healthyHostCount({ period: Duration.minutes(1), statistic: 'Minimum' });
    this.alarm('UnhealthyHosts', unhealthy, {
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.alarm('NoHealthyGatewayHost', healthy, {
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.widgets('looker', new cloudwatch.GraphWidget({ title: 'Gateway hosts behind the load balancer', left: [healthy, unhealthy], width: 12 }));
    this.widgets(
      'details',
      new cloudwatch.GraphWidget({
        title: 'Load balancer flows',
        left: [
          fleet.loadBalancer.metrics.activeFlowCount({ period: Duration.minutes(1) }),
          fleet.loadBalancer.metrics.newFlowCount({ period: Duration.minutes(1) }),
        ],
        width: 24,
      }),
    );
  }

  /**
   * Alarms on key-sync (GatewayFleet's metrics, published by every run on every instance):
   * an instance whose last good sync is older than one interval, the timer's random delay and a
   * minute (it keeps old keys and, one rotation later, refuses sessions signed with the new
   * one), a failed run, and an installed current key that is not the secret's for 10 minutes.
   * The dashboard shows each instance's line (Metrics Insights, grouped by InstanceId).
   */
  public monitorKeySync(keySync: IKeySyncMetrics): void {
    const age = keySync.metricKeySyncSecondsSinceSuccess();
    const failed = keySync.metricKeySyncRunFailed();
    const matches = keySync.metricKeySyncCurrentKidMatches();
    this.alarm('KeySyncStale', age, {
      threshold: KEY_SYNC_STALE_AFTER_SECONDS,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      // Every instance reports every few minutes: silence from all of them is a failure too.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.alarm('KeySyncFailed', failed, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.alarm('KeySyncKeyMismatch', matches, {
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    });
    const perInstance = (metricName: string, statistic: 'MAX' | 'MIN', label: string) =>
      this.perInstance(keySync.metricNamespace, metricName, statistic, label);
    this.widgets(
      'keys',
      new cloudwatch.GraphWidget({
        title: 'Seconds since the last good key sync, per instance',
        left: [perInstance(KEY_SYNC_METRICS.secondsSinceSuccess, 'MAX', 'seconds since success')],
        leftAnnotations: [{ value: KEY_SYNC_STALE_AFTER_SECONDS, label: 'stale' }],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: "Current session key is the secret's (1) or not (0), per instance",
        left: [perInstance(KEY_SYNC_METRICS.currentKidMatches, 'MIN', 'current key matches')],
        right: [failed],
        width: 12,
      }),
    );
  }

  /**
   * Alarm when some gateway instance's HAProxy counts fewer Looker servers UP than
   * `expectedServers` (the static hosts' count; 1 for Looker behind a DNS name, whose node count
   * the gateway does not know): a node lost before users feel it, while the others still carry
   * the load. key-sync reads the count from HAProxy's admin socket on every run; an instance
   * that reports nothing does not breach (NoHealthyLookerNode and KeySyncStale cover silence).
   */
  public monitorLookerServers(looker: ILookerServerMetrics, expectedServers: number): void {
    assertIntegerInRange(
      `GatewayObservability ${this.node.path}`,
      'expectedServers',
      expectedServers,
      1,
      1000,
      'Give the number of Looker nodes the gateway is configured with (1 for a DNS name).',
    );
    const up = looker.metricLookerServersUp();
    this.alarm('LookerNodesLow', up, {
      threshold: expectedServers,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    });
    this.widgets(
      'looker',
      new cloudwatch.GraphWidget({
        title: "Looker servers up in each instance's HAProxy",
        left: [this.perInstance(looker.metricNamespace, KEY_SYNC_METRICS.lookerServersUp, 'MIN', 'servers up')],
        right: [looker.metricLookerServersConfigured()],
        leftAnnotations: [{ value: expectedServers, label: 'expected' }],
        width: 12,
      }),
    );
  }

  /** Alarms and widgets on the auth service's function: errors, throttles, calls close to its time-out. */
  public monitorAuthService(fn: lambda.IFunction): void {
    const errors = fn.metricErrors({ period: Duration.minutes(5) });
    const throttles = fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' });
    this.runbookNames.authFunction = fn.functionName;
    this.alarm('AuthServiceErrors', errors, {
      threshold: 5,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.alarm('AuthServiceThrottles', throttles, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    const timeout = fn instanceof lambda.Function ? fn.timeout : undefined;
    if (timeout && !Token.isUnresolved(timeout.toSeconds())) {
      const nearTimeoutMs = Math.round(timeout.toMilliseconds() * 0.8);
      this.alarm('AuthServiceDurationNearTimeout', fn.metricDuration({ period: Duration.minutes(5), statistic: 'Maximum' }), {
        threshold: nearTimeoutMs,
        evaluationPeriods: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      });
    }
    this.widgets(
      'speed',
      new cloudwatch.GraphWidget({
        title: 'Auth service function duration (ms)',
        left: [fn.metricDuration({ statistic: 'p50' }), fn.metricDuration({ statistic: 'p99' })],
        width: 8,
      }),
    );
    this.widgets('details', new cloudwatch.GraphWidget({ title: 'Auth service function', left: [fn.metricInvocations(), errors, throttles], width: 12 }));
  }

  /**
   * Alarms on the auth service's API (API Gateway): 5xx answers (its own metric) and 429
   * answers (the stage's throttling: a metric filter on its JSON access log's status).
   */
  public monitorAuthApi(stage: apigateway.Stage, accessLogGroup: logs.ILogGroup): void {
    this.runbookNames.apiAccessLogGroup = accessLogGroup.logGroupName;
    const serverErrors = stage.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' });
    this.addMetricFilter(LOG_METRICS.authApiThrottled, accessLogGroup, '{ $.status = "429" }');
    const throttled = this.logMetric(LOG_METRICS.authApiThrottled);
    this.alarm('AuthApiServerErrors', serverErrors, {
      threshold: 5,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.alarm('AuthApiThrottled', throttled, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.widgets(
      'speed',
      new cloudwatch.GraphWidget({
        title: 'Auth API latency (ms)',
        left: [stage.metricLatency({ statistic: 'p50' }), stage.metricLatency({ statistic: 'p99' })],
        width: 8,
      }),
    );
    this.widgets(
      'details',
      new cloudwatch.GraphWidget({ title: 'Auth API answers', left: [stage.metricCount(), serverErrors, stage.metricClientError(), throttled], width: 12 }),
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
    });
    this.widgets(
      'keys',
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
    // The same metric as GatewayKeys.metricRotationFailures().
    const errors = fn.metricErrors({ period: Duration.hours(1), statistic: 'Sum' });
    this.alarm('RotationFailure', errors, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    const stuck = this.metricAbandonedRotations();
    this.alarm('RotationStuck', stuck, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.widgets(
      'details',
      new cloudwatch.GraphWidget({ title: 'Rotation', left: [fn.metricInvocations({ period: Duration.hours(1) }), errors, stuck], width: 24 }),
    );
  }

  private addAccessLogMetrics(): void {
    const a = ACCESS_LOG_FIELDS;
    // Users' requests only: the public listener's lines (not health checks, relay calls or Lua events).
    const userRequest = `$.${a.frontend} = "${PUBLIC_FRONTEND}"`;
    this.addMetricFilter(LOG_METRICS.requests, this.accessLogGroup, `{ ${userRequest} && $.${a.status} = * }`);
    this.addMetricFilter(LOG_METRICS.serverErrors, this.accessLogGroup, `{ ${userRequest} && $.${a.status} >= 500 }`);
    const deniedPattern = `{ ${userRequest} && ($.${a.status} = 401 || $.${a.status} = 403) }`;
    this.addMetricFilter(LOG_METRICS.denied, this.accessLogGroup, deniedPattern);
    // The same lines by their decision code, for the dashboard (a bounded set of codes: lib/fleet DECISIONS).
    this.addMetricFilter(LOG_METRICS.deniedByDecision, this.accessLogGroup, deniedPattern, { dimensions: { Decision: `$.${a.decision}` } });
    // The decision code, logged on users' 503s and on every health check while Looker is down.
    this.addMetricFilter(LOG_METRICS.lookerUnavailable, this.accessLogGroup, `{ $.${a.decision} = "${LOOKER_UNAVAILABLE_DECISION}" }`);
    const refreshFailed = `{ ${userRequest} && (${INLINE_REFRESH_FAILURES.map((result) => `$.${a.refresh} = "${result}"`).join(' || ')}) }`;
    this.addMetricFilter(LOG_METRICS.inlineRefreshFailures, this.accessLogGroup, refreshFailed);
    this.addMetricFilter(LOG_METRICS.inlineRefreshFailuresByResult, this.accessLogGroup, refreshFailed, { dimensions: { Result: `$.${a.refresh}` } });
    this.addMetricFilter(LOG_METRICS.requestTime, this.accessLogGroup, `{ ${userRequest} && $.${a.totalTime} >= 0 }`, {
      metricValue: `$.${a.totalTime}`,
      unit: cloudwatch.Unit.MILLISECONDS,
    });
    // What the alarms and widgets below watch: the construct's own metric*() methods.
    const requests = this.metricRequests();
    const serverErrors = this.metricServerErrors();
    const denied = this.metricDenied();
    const noLooker = this.metricLookerUnavailable();
    const inlineRefreshFailures = this.metricInlineRefreshFailures();
    const requestTime = this.metricRequestTime();
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
    });
    this.alarm('DeniedRate', deniedRate, {
      threshold: this.props.deniedRatePercent ?? 25,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.alarm('NoHealthyLookerNode', noLooker, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.alarm('InlineRefreshFailures', inlineRefreshFailures, {
      threshold: this.props.refreshFailureThreshold ?? 20,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.widgets(
      'users',
      new cloudwatch.GraphWidget({
        title: 'Denied requests at the gateway, by decision',
        left: [this.byDimension(LOG_METRICS.deniedByDecision, 'Decision')],
        right: [deniedRate],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Inline refresh failures at the gateway, by result',
        left: [this.byDimension(LOG_METRICS.inlineRefreshFailuresByResult, 'Result')],
        width: 12,
      }),
    );
    this.widgets(
      'speed',
      new cloudwatch.GraphWidget({
        title: "Through the gateway (ms, users' requests)",
        left: [requestTime.with({ statistic: 'p50', label: 'p50' }), requestTime.with({ statistic: 'p99', label: 'p99' })],
        width: 8,
      }),
    );
    this.widgets('looker', new cloudwatch.GraphWidget({ title: `Looker unavailable (${LOOKER_UNAVAILABLE_DECISION})`, left: [noLooker], width: 12 }));
    this.widgets('details', new cloudwatch.GraphWidget({ title: 'Requests', left: [requests], right: [serverErrorRate, deniedRate], width: 12 }));
  }

  private addAuditMetrics(): void {
    const f = AUDIT_EVENT_FIELDS;
    const audit = `$.${f.type} = "${AUDIT_EVENTS.audit}"`;
    this.addMetricFilter(
      LOG_METRICS.loginFailures,
      this.auditLogGroup,
      `{ ${audit} && $.${f.event} = "${AUDIT_EVENTS.login}" && $.${f.outcome} != "${AUDIT_EVENTS.success}" }`,
    );
    this.addMetricFilter(
      LOG_METRICS.refreshFailures,
      this.auditLogGroup,
      `{ ${audit} && $.${f.event} = "${AUDIT_EVENTS.refresh}" && $.${f.outcome} != "${AUDIT_EVENTS.success}" }`,
    );
    this.addMetricFilter(
      LOG_METRICS.logins,
      this.auditLogGroup,
      `{ ${audit} && $.${f.event} = "${AUDIT_EVENTS.login}" && $.${f.outcome} = "${AUDIT_EVENTS.success}" }`,
    );
    const loginFailures = this.metricLoginFailures();
    const refreshFailures = this.metricRefreshFailures();
    const logins = this.metricLogins();
    // Every refusal of the auth service by its reason code (a bounded set: lambda/auth's reasons).
    this.addMetricFilter(LOG_METRICS.authFailuresByReason, this.auditLogGroup, `{ ${audit} && $.${f.outcome} != "${AUDIT_EVENTS.success}" }`, {
      dimensions: { Event: `$.${f.event}`, Reason: `$.${f.reason}` },
    });
    this.alarm('LoginFailures', loginFailures, {
      threshold: this.props.loginFailureThreshold ?? 10,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.alarm('RefreshFailures', refreshFailures, {
      threshold: this.props.refreshFailureThreshold ?? 20,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    // One refusal is enough to act on: every sign-in and refresh fails until the credential matches the IdP's again.
    this.addMetricFilter(LOG_METRICS.idpClientAuthFailures, this.auditLogGroup, `{ ${audit} && $.${f.reason} = "${AUDIT_EVENTS.idpClientAuthFailed}" }`);
    const clientAuthFailures = this.metricIdpClientAuthFailures();
    this.alarm('IdpClientAuthFailed', clientAuthFailures, {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
    this.widgets(
      'users',
      new cloudwatch.GraphWidget({ title: 'Logins and refreshes', left: [logins, loginFailures, refreshFailures, clientAuthFailures], width: 12 }),
      new cloudwatch.GraphWidget({
        title: 'Auth service refusals, by event and reason',
        left: [this.byDimension(LOG_METRICS.authFailuresByReason, 'Event', 'Reason')],
        width: 12,
      }),
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

  /** Forwards the access, audit and rotation logs (every event) to the SIEM destination. */
  private forwardToSiem(destination: SiemDestination): void {
    const target = destination._bind(this);
    for (const [id, logGroup] of [
      ['AccessLogs', this.accessLogGroup],
      ['AuditLogs', this.auditLogGroup],
      ['RotationLogs', this.rotationLogGroup],
    ] as const) {
      this.siemSubscriptions.push(
        new logs.SubscriptionFilter(this, `${id}ToSiem`, { logGroup, destination: target, filterPattern: logs.FilterPattern.allEvents() }),
      );
    }
  }

  private addMetricFilter(
    name: string,
    logGroup: logs.ILogGroup,
    pattern: string,
    options: { dimensions?: Record<string, string>; metricValue?: string; unit?: cloudwatch.Unit } = {},
  ): void {
    new logs.MetricFilter(this, `${name}Filter`, {
      logGroup,
      metricNamespace: this.metricNamespace,
      metricName: name,
      filterPattern: logs.FilterPattern.literal(pattern),
      metricValue: options.metricValue ?? '1',
      // No default value with dimensions (CloudWatch Logs takes one or the other), nor for a measured
      // value (a 0 for every other line would drag the request-time percentiles down).
      ...(options.dimensions || options.metricValue ? {} : { defaultValue: 0 }),
      ...(options.dimensions ? { dimensions: options.dimensions } : {}),
      unit: options.unit ?? cloudwatch.Unit.COUNT,
    });
  }

  /** A metric a metric filter of this construct publishes: Sum over 5 minutes unless `props` say otherwise. */
  private logMetric(metricName: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: this.metricNamespace, metricName, statistic: 'Sum', period: Duration.minutes(5), ...props });
  }

  /** Every series of a metric filter with dimensions, one line per value (Metrics Insights). */
  private byDimension(metricName: string, ...dimensions: string[]): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      expression: `SELECT SUM(${metricName}) FROM SCHEMA("${this.metricNamespace}", ${dimensions.join(', ')}) GROUP BY ${dimensions.join(', ')}`,
      label: metricName,
      period: Duration.minutes(5),
    });
  }

  /** One line per instance of a metric key-sync publishes with the dimension InstanceId (Metrics Insights). */
  private perInstance(namespace: string, metricName: string, statistic: 'MAX' | 'MIN', label: string): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      expression: `SELECT ${statistic}(${metricName}) FROM SCHEMA("${namespace}", InstanceId) GROUP BY InstanceId`,
      label,
      period: Duration.minutes(5),
    });
  }

  private widgets(section: Section, ...widgets: cloudwatch.IWidget[]): void {
    this.sections[section].addWidget(new cloudwatch.Row(...widgets));
  }

  private alarm(name: AlarmName, metric: cloudwatch.IMetric, options: Omit<cloudwatch.AlarmProps, 'metric' | 'alarmDescription'>): cloudwatch.Alarm {
    const alarmDescription = runbookDescription(name, this.runbookNames);
    const alarm = new cloudwatch.Alarm(this, `${name}Alarm`, {
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...options,
      alarmDescription,
      metric,
    });
    if (this.alarmTopic) {
      alarm.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      alarm.addOkAction(new actions.SnsAction(this.alarmTopic));
    }
    this.alarmsByName.set(name, alarm);
    return alarm;
  }
}
