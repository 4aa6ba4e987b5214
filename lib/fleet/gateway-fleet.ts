/**
 * GatewayFleet: HAProxy on an Auto Scaling group of Debian 13 (arm64) instances behind a
 * Network Load Balancer that passes TLS through (PROXY protocol v2 to the instances).
 * Its parts live next to it: security groups, the instance role, the launch template and
 * its files, the group and its scaling, the load balancer, machine clients, validation, the
 * frontend certificate from ACM, the port 80 redirect listener and the DNS records.
 */
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import type { UserClaim } from '../../core/haproxy/options';
import { IGatewayKeys } from '../keys/gateway-keys';
import { LookerBackend } from '../looker/looker-backend';
import { acknowledgeDefaultPolicy } from '../private/nag-acknowledgements';
import { assertNamesInZone, certificateExpiryMetric, defaultMetricNamespace, newFrontendAcmCertificate } from './certificate';
import { addLoadBalancerAliasRecords } from './dns';
import { addHttpRedirectListener } from './http-listener';
import { grantReadFilesAndSignal, newInstanceRole } from './instance-role';
import { DEFAULT_FALLBACK_INSTANCE_TYPE, DEFAULT_INSTANCE_TYPE, newGatewayLaunchTemplate } from './launch-template';
import { newFleetLoadBalancer } from './load-balancer';
import { ClientCertificateAuthority, MachineClient, MachineRoutes } from './machine-clients';
import { addGatewayScaling, newGatewayGroup } from './scaling';
import { newFleetSecurityGroups } from './security-groups';
import { checkInstanceTypes, validateFleetProps } from './validation';
import { KEY_SYNC_METRICS } from '../../core/instance/run-metrics';
import { keySyncMetric } from '../observability/key-sync-metrics';
import { GatewayHaproxyProps, haproxySettingsFrom } from './haproxy-props';

export interface GatewayFleetProps extends GatewayHaproxyProps {
  readonly vpc: ec2.IVpc;
  /** Where the instances run. @default - private subnets with egress */
  readonly instanceSubnets?: ec2.SubnetSelection;
  /** Where the load balancer's nodes are. @default - public subnets when internet-facing, private otherwise */
  readonly loadBalancerSubnets?: ec2.SubnetSelection;
  /** The gateway's keys: instances read the verification keys and certificates. */
  readonly keys: IGatewayKeys;
  readonly looker: LookerBackend;
  /** Host name users open. */
  readonly domainName: string;
  /** How HAProxy reaches the auth service. */
  readonly authService: FleetAuthServiceTarget;
  /** Log group HAProxy's JSON access log is shipped to. */
  readonly accessLogGroup: logs.ILogGroup;
  /**
   * Log groups of the instances' other logs: key-sync's runs, HAProxy's own messages, the
   * bootstrap and the agents' errors (GatewayObservability makes them).
   * @default - each goes to accessLogGroup, in a stream of its own
   */
  readonly instanceLogGroups?: InstanceLogGroups;
  /**
   * Session settings HAProxy checks.
   * @default - issuer and audience https://<domainName>, 10 minute sessions
   */
  readonly session?: FleetSessionSettings;
  /**
   * Instance type; arm64 (Graviton) types use the arm64 AMI, others the amd64 one.
   * @default m7g.medium
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * More instance types the group may launch when `instanceType` has no capacity in an
   * Availability Zone (a mixed instances policy, on-demand only, launched in this order).
   * All must have the architecture of `instanceType` (one AMI serves them all).
   * @default - c7g.medium when instanceType is left at its default; none otherwise
   */
  readonly fallbackInstanceTypes?: ec2.InstanceType[];
  /** @default 2 */
  readonly minCapacity?: number;
  /** Must exceed minCapacity: rolling updates add an instance before they remove one. @default 6 */
  readonly maxCapacity?: number;
  /**
   * Instances to start with, from minCapacity to maxCapacity. Each deployment sets the group
   * back to it, overriding what scaling chose: leave it unset unless you need it.
   * @default - minCapacity at creation, then what scaling chooses
   */
  readonly desiredCapacity?: number;
  /** Scale out above this average CPU, percent (10-90). @default 60 */
  readonly targetCpuUtilizationPercent?: number;
  /** Scale out above this many active connections per instance. @default 5000 */
  readonly connectionsPerInstance?: number;
  /** @default true */
  readonly internetFacing?: boolean;
  /**
   * Client CIDRs admitted on port 443.
   * @default - 0.0.0.0/0 when internet-facing, the VPC CIDR when internal
   */
  readonly clientCidrs?: string[];
  /** Port HAProxy serves TLS on (the NLB forwards 443 to it). @default 443 */
  readonly instancePort?: number;
  /** Port of the health-check listener (HTTP behind the PROXY v2 header the load balancer sends). @default 8080 */
  readonly healthCheckPort?: number;
  /** Loopback port of the instance's own readiness probe (plain HTTP, no PROXY header). @default 8081 */
  readonly readinessPort?: number;
  /** Port of HAProxy's local metrics listener (127.0.0.1 only). @default 8405 */
  readonly metricsPort?: number;
  /** Size of the encrypted gp3 root volume. @default 16 */
  readonly rootVolumeGiB?: number;
  /** Protect the load balancer against deletion. @default false */
  readonly deletionProtection?: boolean;
  /**
   * Scripts and AI agents admitted by client certificate on `machineRoutes`, each with the
   * methods and path prefixes it may call. Needs `machineRoutes` and `clientCertificateAuthority`.
   * @default - none
   */
  readonly machineClients?: MachineClient[];
  /**
   * Where a client certificate is required instead of a session.
   * @default - no machine routes: HAProxy never asks for a client certificate
   */
  readonly machineRoutes?: MachineRoutes;
  /**
   * The CA that machine clients' certificates must chain to, and an optional CRL.
   * Required with `machineRoutes`.
   * @default - none (only allowed without machine routes)
   */
  readonly clientCertificateAuthority?: ClientCertificateAuthority;
  /**
   * The Route 53 hosted zone of `domainName` (and of `machineRoutes.hostName`): alias A and
   * AAAA records point them at the load balancer, and an ACM certificate
   * (`FrontendCertificate.acmExportable()` on the keys) is validated there.
   * @default - no DNS records: point the names at `loadBalancer` yourself
   */
  readonly hostedZone?: route53.IHostedZone;
  /** Port HAProxy answers plain HTTP on (the NLB forwards 80 to it) with a redirect to HTTPS. @default 80 */
  readonly httpRedirectPort?: number;
  /**
   * CloudWatch namespace of the gateway's own metrics (key-sync's days until the frontend
   * certificate expires).
   * @default "LookerGateway/<stack name>" (GatewayObservability's default too)
   */
  readonly metricNamespace?: string;
}

/** Where the instances' logs other than the access log go. */
export interface InstanceLogGroups {
  /**
   * key-sync's JSON lines, one per run.
   * @default - the access log group
   */
  readonly keySync?: logs.ILogGroup;
  /**
   * HAProxy's own messages: ALERTs, server state changes, reloads.
   * @default - the access log group
   */
  readonly haproxy?: logs.ILogGroup;
  /**
   * The bootstrap log and the CloudWatch and SSM agents' errors.
   * @default - the access log group
   */
  readonly instance?: logs.ILogGroup;
}

/** Where the auth service answers, as the fleet needs it. */
export interface FleetAuthServiceTarget {
  /** Host name (Host header, SNI, certificate name, DNS name). */
  readonly hostName: string;
  /** Path prefix (the API stage), for example "/gateway". */
  readonly pathPrefix: string;
}

export interface FleetSessionSettings {
  readonly issuer: string;
  readonly audience: string;
  /** @default "ES256" */
  readonly algorithm?: string;
  /** Names of the user attributes forwarded as X-Looker-Attr-* headers. @default - none */
  readonly attributeNames?: string[];
  /** The claim sent as X-Forwarded-User. @default UserClaim.SUBJECT */
  readonly userClaim?: UserClaim;
}
export class GatewayFleet extends Construct implements ec2.IConnectable {
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  public readonly loadBalancer: elbv2.NetworkLoadBalancer;
  public readonly targetGroup: elbv2.NetworkTargetGroup;
  public readonly listener: elbv2.NetworkListener;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly loadBalancerSecurityGroup: ec2.SecurityGroup;
  public readonly role: iam.Role;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly connections: ec2.Connections;
  /** The bootstrap script as rendered (with CloudFormation tokens where deploy-time values go). */
  public readonly userDataScript: string;
  /** The exportable ACM certificate, with `FrontendCertificate.acmExportable()`. */
  public readonly certificate?: acm.ICertificate;
  /** Port 80 of the load balancer: plain HTTP to HAProxy's redirect frontend. */
  public readonly httpListener: elbv2.NetworkListener;
  public readonly httpTargetGroup: elbv2.NetworkTargetGroup;
  /** The alias records of the gateway's names, with `hostedZone`. */
  public readonly records: route53.RecordSet[];
  /** Namespace of key-sync's metrics. */
  public readonly metricNamespace: string;

  constructor(scope: Construct, id: string, props: GatewayFleetProps) {
    super(scope, id);
    const where = `GatewayFleet ${this.node.path}`;
    const minCapacity = props.minCapacity ?? 2;
    const maxCapacity = props.maxCapacity ?? 6;
    validateFleetProps(where, props, minCapacity, maxCapacity);
    const instancePort = props.instancePort ?? 443;
    const healthCheckPort = props.healthCheckPort ?? 8080;
    const readinessPort = props.readinessPort ?? 8081;
    const metricsPort = props.metricsPort ?? 8405;
    const httpRedirectPort = props.httpRedirectPort ?? 80;
    this.metricNamespace = props.metricNamespace ?? defaultMetricNamespace(this);
    const internetFacing = props.internetFacing ?? true;
    const instanceType = props.instanceType ?? DEFAULT_INSTANCE_TYPE;
    const instanceTypes = [instanceType, ...(props.fallbackInstanceTypes ?? (props.instanceType ? [] : [DEFAULT_FALLBACK_INSTANCE_TYPE]))];
    checkInstanceTypes(where, instanceTypes);

    const clientCidrs = props.clientCidrs ?? [internetFacing ? '0.0.0.0/0' : props.vpc.vpcCidrBlock];
    const securityGroups = newFleetSecurityGroups(this, {
      vpc: props.vpc,
      clientCidrs,
      instancePort,
      healthCheckPort,
    });
    this.loadBalancerSecurityGroup = securityGroups.loadBalancer;
    this.securityGroup = securityGroups.instances;
    this.connections = this.securityGroup.connections;
    props.looker.allowFrom(this);

    if (props.hostedZone) {
      assertNamesInZone(where, props.hostedZone, [
        ['domainName', props.domainName],
        ...(props.machineRoutes?.hostName ? [['machineRoutes.hostName', props.machineRoutes.hostName] as const] : []),
      ]);
    }
    this.certificate = newFrontendAcmCertificate(this, 'Certificate', where, {
      choice: props.keys.frontendCertificateSource,
      hostedZone: props.hostedZone,
      domainName: props.domainName,
      machineHostName: props.machineRoutes?.hostName,
    });
    this.role = newInstanceRole(this, props.keys, [props.accessLogGroup, ...Object.values(props.instanceLogGroups ?? {})], {
      certificate: this.certificate,
      metricNamespace: this.metricNamespace,
    });
    const launch = newGatewayLaunchTemplate(this, where, {
      settings: {
        ...props,
        instancePort,
        healthCheckPort,
        readinessPort,
        metricsPort,
        httpRedirectPort,
        certificate: this.certificate,
        metricNamespace: this.metricNamespace,
        haproxy: haproxySettingsFrom(where, props),
      },
      instanceType,
      role: this.role,
      securityGroup: this.securityGroup,
      rootVolumeGiB: props.rootVolumeGiB ?? 16,
      groupId: 'Group',
    });
    this.launchTemplate = launch.launchTemplate;
    this.userDataScript = launch.userDataScript;

    this.autoScalingGroup = newGatewayGroup(this, {
      vpc: props.vpc,
      subnets: props.instanceSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate: this.launchTemplate,
      instanceTypes,
      minCapacity,
      maxCapacity,
      desiredCapacity: props.desiredCapacity,
    });
    grantReadFilesAndSignal(this.role);

    const balancer = newFleetLoadBalancer(this, {
      vpc: props.vpc,
      internetFacing,
      subnets: props.loadBalancerSubnets,
      securityGroup: this.loadBalancerSecurityGroup,
      deletionProtection: props.deletionProtection ?? false,
      group: this.autoScalingGroup,
      instancePort,
      healthCheckPort,
    });
    this.loadBalancer = balancer.loadBalancer;
    this.targetGroup = balancer.targetGroup;
    this.listener = balancer.listener;
    ({ listener: this.httpListener, targetGroup: this.httpTargetGroup } = addHttpRedirectListener(this, {
      vpc: props.vpc,
      loadBalancer: this.loadBalancer,
      loadBalancerSecurityGroup: this.loadBalancerSecurityGroup,
      instanceSecurityGroup: this.securityGroup,
      autoScalingGroup: this.autoScalingGroup,
      clientCidrs,
      instancePort: httpRedirectPort,
      healthCheck: this.targetGroup.healthCheck,
    }));
    const names = [
      { id: 'Domain', name: props.domainName },
      ...(props.machineRoutes?.hostName && props.machineRoutes.hostName !== props.domainName
        ? [{ id: 'MachineHost', name: props.machineRoutes.hostName }]
        : []),
    ];
    this.records = props.hostedZone ? addLoadBalancerAliasRecords(this, props.hostedZone, this.loadBalancer, names) : [];
    acknowledgeDefaultPolicy(this.role);
    addGatewayScaling(this.autoScalingGroup, {
      loadBalancer: this.loadBalancer,
      targetCpuUtilizationPercent: props.targetCpuUtilizationPercent ?? 60,
      connectionsPerInstance: props.connectionsPerInstance ?? 5000,
    });
  }

  /**
   * Days until the frontend certificate that the instances serve expires, as key-sync reports
   * it after every run (every 5 minutes): by default the fleet's minimum over an hour.
   */
  public metricFrontendCertificateDaysToExpiry(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return certificateExpiryMetric(this.metricNamespace, props);
  }

  /** Seconds since the last successful key sync, reported by every run; by default the worst instance (Maximum) over 5 minutes. */
  public metricKeySyncSecondsSinceSuccess(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return keySyncMetric(this.metricNamespace, KEY_SYNC_METRICS.secondsSinceSuccess, props);
  }

  /** 1 when an instance's installed current session key is the secret's, 0 when not; by default the worst instance (Minimum) over 5 minutes. */
  public metricKeySyncCurrentKidMatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return keySyncMetric(this.metricNamespace, KEY_SYNC_METRICS.currentKidMatches, props);
  }

  /** Failed key-sync runs over all instances (Sum over 5 minutes). */
  public metricKeySyncRunFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return keySyncMetric(this.metricNamespace, KEY_SYNC_METRICS.runFailed, props);
  }

  /**
   * Looker servers that an instance's HAProxy counts as UP (its health check), reported by every
   * key-sync run; by default the instance that sees the fewest (Minimum) over 5 minutes.
   */
  public metricLookerServersUp(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return keySyncMetric(this.metricNamespace, KEY_SYNC_METRICS.lookerServersUp, props);
  }

  /**
   * Looker servers in an instance's HAProxy backend (static hosts, or the DNS name's addresses),
   * reported by every key-sync run; by default the most any instance has (Maximum) over 5 minutes.
   */
  public metricLookerServersConfigured(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return keySyncMetric(this.metricNamespace, KEY_SYNC_METRICS.lookerServersConfigured, props);
  }
}
