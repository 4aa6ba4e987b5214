/**
 * LookerGateway: the whole gateway from one small props object. Composes the keys, the
 * observability, the auth service and the HAProxy fleet, and keeps each reachable.
 *
 * Size: the props interface is the package's front door, and each prop carries its TSDoc and
 * its @default; the composition itself is about a hundred lines.
 */
import { Annotations, Duration, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { AuthService, gatewayOrigin, IdentityProviderSettings } from './auth/auth-service';
import { MappingRuleSet } from '../core/auth/mapping-rules';
import { UserClaim } from '../core/haproxy/options';
import { GatewayFleet } from './fleet/gateway-fleet';
import { GatewayHaproxyProps } from './fleet/haproxy-props';
import { ClientCertificateAuthority, MachineClient, MachineRoutes } from './fleet/machine-clients';
import { newGatewayEncryptionKey } from './keys/encryption-key';
import { FrontendCertificate, FrontendCertificateSource } from './keys/frontend-certificate';
import { GatewayKeys } from './keys/gateway-keys';
import { LookerBackend } from './looker/looker-backend';
import { LookerOidcConfiguration, LookerOidcSettings } from './looker/looker-oidc-configuration';
import { GatewayObservability } from './observability/gateway-observability';
import { SiemDestination } from './observability/siem-destination';
import { newEncryptedLogGroup } from './private/log-group';
import { acknowledge, acknowledgeDefaultPolicy } from './private/nag-acknowledgements';
import { assertDomainName, assertIntegerInRange, GatewayPropsError } from './private/validation';

export interface LookerGatewayProps extends GatewayHaproxyProps {
  /**
   * Host name users open, for example "looker.example.com". With `hostedZone` the gateway
   * makes its DNS record; otherwise point it (CNAME/alias) at the load balancer.
   */
  readonly domainName: string;
  /** The company IdP (OpenID Connect). */
  readonly identityProvider: IdentityProviderSettings;
  /** Rules from IdP groups and claims to Looker roles, groups and user attributes; deny by default. */
  readonly mappingRules: MappingRuleSet;
  /**
   * The session claim HAProxy sends as X-Forwarded-User: the IdP subject, or the e-mail
   * address (only one the IdP marks verified reaches the session).
   * @default UserClaim.SUBJECT
   */
  readonly userClaim?: UserClaim;
  /** How the fleet reaches Looker: LookerBackend.fromHosts(...) or LookerBackend.fromDnsName(...). */
  readonly looker: LookerBackend;
  /**
   * VPC to run in; needs at least 2 Availability Zones, public subnets (internet-facing)
   * and private subnets with egress.
   * @default - a new VPC: 2 AZs, public and private subnets, one NAT gateway, flow logs
   */
  readonly vpc?: ec2.IVpc;
  /**
   * NAT gateways of the new VPC (ignored with `vpc`). One per AZ survives an AZ outage.
   * @default 1
   */
  readonly natGateways?: number;
  /**
   * Session token lifetime, 1 to 60 minutes.
   * @default Duration.minutes(10)
   */
  readonly sessionLifetime?: Duration;
  /**
   * The Route 53 public hosted zone that holds `domainName` (and `machineRoutes.hostName`):
   * the gateway makes alias A/AAAA records for its names there, and validates its ACM
   * certificate through it. Import it without a lookup:
   * `route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', { hostedZoneId, zoneName })`.
   * @default - no DNS records (point the names at the load balancer yourself)
   */
  readonly hostedZone?: route53.IHostedZone;
  /**
   * Where the public TLS certificate comes from: `FrontendCertificate.acmExportable()` (ACM,
   * renewed by ACM and exported by the instances; needs `hostedZone`; ACM charges each
   * issuance and renewal), `.fromSecret(secret)` (yours, in a secret), or `.selfSigned()`
   * (browsers refuse it: local runs and tests; a synth warning says so).
   * @default - FrontendCertificate.acmExportable() with `hostedZone`, FrontendCertificate.selfSigned() without
   */
  readonly frontendCertificate?: FrontendCertificate;
  /**
   * KMS key for secrets, logs and the alarm topic.
   * @default - a new key with yearly rotation
   */
  readonly encryptionKey?: kms.IKey;
  /** @default true */
  readonly internetFacing?: boolean;
  /**
   * Client networks admitted on 443.
   * @default - anywhere when internet-facing, the VPC when internal
   */
  readonly clientCidrs?: string[];
  /** @default m7g.medium (Graviton, AWS Nitro with encryption in transit) */
  readonly instanceType?: ec2.InstanceType;
  /**
   * More instance types of the same architecture, launched in this order when `instanceType` has no capacity.
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
  /** Where the instances run. @default - the private subnets with egress */
  readonly instanceSubnets?: ec2.SubnetSelection;
  /** Where the load balancer's nodes are. @default - the public subnets when internet-facing, the private ones otherwise */
  readonly loadBalancerSubnets?: ec2.SubnetSelection;
  /** Size of each instance's encrypted gp3 root volume, GiB (8-1024). @default 16 */
  readonly rootVolumeGiB?: number;
  /** Port HAProxy serves TLS on. @default 443 */
  readonly instancePort?: number;
  /** Port of the load balancer health check listener. @default 8080 */
  readonly healthCheckPort?: number;
  /** Loopback port of the instances' own readiness probe. @default 8081 */
  readonly readinessPort?: number;
  /** Port of HAProxy's local metrics listener. @default 8405 */
  readonly metricsPort?: number;
  /** Port HAProxy answers plain HTTP on (the load balancer forwards 80 to it) with a redirect to HTTPS. @default 80 */
  readonly httpRedirectPort?: number;
  /**
   * Where alarms notify.
   * @default - a new encrypted SNS topic (subscribe to it)
   */
  readonly alarmTopic?: sns.ITopic;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** Protect the load balancer against deletion. @default false */
  readonly deletionProtection?: boolean;
  /**
   * Scripts and AI agents admitted by client certificate instead of a browser session:
   * an identity per certificate SHA-256 with the methods and path prefixes it may call
   * (sent to Looker as `X-Forwarded-User`). Needs `machineRoutes` and `clientCertificateAuthority`.
   * @default - none
   */
  readonly machineClients?: MachineClient[];
  /**
   * Where a client certificate is required instead of a session: path prefixes (such as
   * "/api/4.0/") and/or a host name of their own.
   * @default - no machine routes: HAProxy never asks for a client certificate
   */
  readonly machineRoutes?: MachineRoutes;
  /**
   * The CA that machine clients' certificates must chain to, and an optional CRL
   * (`ClientCertificateAuthority.fromFile(...)` or `.fromPem(...)`). Required with `machineRoutes`.
   * @default - none (only allowed without machine routes)
   */
  readonly clientCertificateAuthority?: ClientCertificateAuthority;
  /**
   * Configure Looker's own OpenID Connect login to use the gateway as its OpenID provider
   * (broker mode), through Looker's API at deploy time: API3 credentials, the Looker groups
   * the rules grant with their roles, and the attributes Looker takes. The only way Looker
   * applies the mapped roles and attributes: it reads no identity headers.
   * @default - Looker's authentication is left as it is (the gateway only gates access)
   */
  readonly lookerOidc?: LookerOidcSettings;
  /**
   * Forward the access, audit and rotation logs to a SIEM as well: SiemDestination.kinesisStream(stream),
   * .firehose(arn) (Splunk, Datadog, Elastic: docs/observability.md, Forwarding logs to a SIEM) or
   * .logsDestination(arn) (a central logging account).
   * @default - the logs stay in CloudWatch
   */
  readonly siemDestination?: SiemDestination;
}

export class LookerGateway extends Construct {
  public readonly vpc: ec2.IVpc;
  public readonly encryptionKey: kms.IKey;
  public readonly keys: GatewayKeys;
  public readonly observability: GatewayObservability;
  public readonly authService: AuthService;
  public readonly fleet: GatewayFleet;
  /** DNS name of the load balancer: point `domainName` at it. */
  public readonly loadBalancerDnsName: string;
  /** `https://<domainName>`. */
  public readonly url: string;
  /** The custom resource that points Looker's OpenID Connect login at the broker, when `lookerOidc` is given. */
  public readonly lookerOidc?: LookerOidcConfiguration;

  constructor(scope: Construct, id: string, props: LookerGatewayProps) {
    super(scope, id);
    const where = `LookerGateway ${this.node.path}`;
    assertDomainName(where, 'domainName', props.domainName);
    if (props.natGateways !== undefined)
      assertIntegerInRange(
        where,
        'natGateways',
        props.natGateways,
        1,
        2,
        'Instances install packages at boot and the Lambdas call the IdP: the private subnets need egress.',
      );
    this.encryptionKey = props.encryptionKey ?? newGatewayEncryptionKey(this, 'Key');
    this.vpc = props.vpc ?? this.newVpc(props.natGateways ?? 1);
    assertTwoZones(where, this.vpc);
    this.observability = new GatewayObservability(this, 'Observability', {
      encryptionKey: this.encryptionKey,
      retention: props.logRetention,
      alarmTopic: props.alarmTopic,
      siemDestination: props.siemDestination,
    });
    const frontendCertificate = props.frontendCertificate ?? (props.hostedZone ? FrontendCertificate.acmExportable() : FrontendCertificate.selfSigned());
    this.keys = new GatewayKeys(this, 'Keys', {
      encryptionKey: this.encryptionKey,
      frontendCertificate,
      domainName: props.domainName,
      vpc: this.vpc,
      rotationLogGroup: this.observability.rotationLogGroup,
      // The rotation's timing depends on how long the sessions it signs live.
      sessionLifetime: props.sessionLifetime,
    });
    this.authService = new AuthService(this, 'AuthService', {
      vpc: this.vpc,
      keys: this.keys,
      domainName: props.domainName,
      identityProvider: props.identityProvider,
      mappingRules: props.mappingRules,
      sessionLifetime: props.sessionLifetime,
      auditLogGroup: this.observability.auditLogGroup,
    });
    const origin = gatewayOrigin(props.domainName);
    this.fleet = new GatewayFleet(this, 'Fleet', {
      vpc: this.vpc,
      keys: this.keys,
      looker: props.looker,
      domainName: props.domainName,
      authService: { hostName: this.authService.hostName, pathPrefix: this.authService.stagePath },
      accessLogGroup: this.observability.accessLogGroup,
      instanceLogGroups: {
        keySync: this.observability.keySyncLogGroup,
        haproxy: this.observability.haproxyLogGroup,
        instance: this.observability.instanceLogGroup,
      },
      session: {
        issuer: origin,
        audience: origin,
        algorithm: this.keys.sessionAlgorithm,
        attributeNames: attributeNamesOf(props.mappingRules),
        userClaim: props.userClaim,
      },
      instanceType: props.instanceType,
      fallbackInstanceTypes: props.fallbackInstanceTypes,
      minCapacity: props.minCapacity,
      maxCapacity: props.maxCapacity,
      desiredCapacity: props.desiredCapacity,
      targetCpuUtilizationPercent: props.targetCpuUtilizationPercent,
      connectionsPerInstance: props.connectionsPerInstance,
      instanceSubnets: props.instanceSubnets,
      loadBalancerSubnets: props.loadBalancerSubnets,
      rootVolumeGiB: props.rootVolumeGiB,
      frameAncestors: props.frameAncestors,
      authRateLimit: props.authRateLimit,
      authRateLimitPeriod: props.authRateLimitPeriod,
      verificationCacheSize: props.verificationCacheSize,
      maxConnections: props.maxConnections,
      listenerMaxConnections: props.listenerMaxConnections,
      internetFacing: props.internetFacing,
      clientCidrs: props.clientCidrs,
      instancePort: props.instancePort,
      healthCheckPort: props.healthCheckPort,
      readinessPort: props.readinessPort,
      metricsPort: props.metricsPort,
      httpRedirectPort: props.httpRedirectPort,
      hostedZone: props.hostedZone,
      metricNamespace: this.observability.metricNamespace,
      deletionProtection: props.deletionProtection,
      machineClients: props.machineClients,
      machineRoutes: props.machineRoutes,
      clientCertificateAuthority: props.clientCertificateAuthority,
    });
    this.authService.connections.allowDefaultPortFrom(this.fleet, 'Gateway fleet to the auth service API');
    // Instances (key-sync at boot) and the auth service read key material that the first
    // rotations write: start those rotations before either comes up.
    // Only the group and the function resources: their roles are named in the key policy.
    for (const schedule of this.keys.rotationSchedules) {
      this.fleet.autoScalingGroup.node.defaultChild!.node.addDependency(schedule);
      this.authService.function.node.defaultChild!.node.addDependency(schedule);
    }

    if (props.lookerOidc) {
      this.lookerOidc = new LookerOidcConfiguration(this, 'LookerOidc', {
        ...props.lookerOidc,
        looker: props.looker,
        domainName: props.domainName,
        vpc: this.vpc,
        encryptionKey: this.encryptionKey,
        mappingRules: props.mappingRules,
      });
      // Looker switches to the broker only once the gateway instances answer.
      this.lookerOidc.resource.node.addDependency(this.fleet.autoScalingGroup);
      // The auth service serves the broker for the client the custom resource registers in Looker.
      this.authService.serveLookerBroker(this.lookerOidc.clientId, this.lookerOidc.clientSecret);
      warnAboutBrokerMode(this.lookerOidc, props);
    }

    this.observability.monitorFleet(this.fleet);
    this.observability.monitorKeySync(this.fleet);
    this.observability.monitorLookerServers(this.fleet, expectedLookerServers(props.looker));
    this.observability.monitorAuthService(this.authService.function);
    this.observability.monitorAuthApi(this.authService.api.deploymentStage, this.authService.accessLogGroup);
    this.observability.monitorRotation(this.keys.rotationFunction);
    this.observability.monitorFrontendCertificate(this.fleet.metricFrontendCertificateDaysToExpiry());
    if (frontendCertificate.source === FrontendCertificateSource.SELF_SIGNED) {
      Annotations.of(this).addWarningV2(
        'cdk-looker-gateway:self-signed-certificate',
        `The frontend certificate is self-signed: browsers and machine clients refuse it, so ${gatewayOrigin(props.domainName)} is not usable as deployed. Give hostedZone (an exportable ACM certificate and the DNS records are then made; in cdk.json: hostedZoneId and hostedZoneName), or frontendCertificate: FrontendCertificate.fromSecret(secret) with your own certificate. A self-signed certificate is for local runs and tests.`,
      );
    }

    this.loadBalancerDnsName = this.fleet.loadBalancer.loadBalancerDnsName;
    this.url = origin;
  }

  private newVpc(natGateways: number): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways,
      subnetConfiguration: [
        // Public subnets hold only the load balancer and the NAT gateway: no public IPs on launch.
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
      ],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    // A year, as Control Tower's CT.CLOUDWATCH.PR.2 asks of every log group.
    const flowLogs = newEncryptedLogGroup(this, 'VpcFlowLogs', this.encryptionKey, logs.RetentionDays.ONE_YEAR);
    for (const subnet of vpc.publicSubnets) {
      const route = subnet.node.tryFindChild('DefaultRoute');
      if (route) {
        acknowledge(
          route,
          ['NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW', 'HIPAA.Security-VPCNoUnrestrictedRouteToIGW', 'PCI.DSS.321-VPCNoUnrestrictedRouteToIGW'],
          'The public subnets hold only the internet-facing load balancer and the NAT gateway, which need the route to the internet gateway; instances and functions run in private subnets.',
        );
      }
    }
    acknowledge(
      vpc,
      ['NIST.800.53.R5-VPCDefaultSecurityGroupClosed', 'HIPAA.Security-VPCDefaultSecurityGroupClosed', 'PCI.DSS.321-VPCDefaultSecurityGroupClosed'],
      'Nothing uses the default security group: every instance, function and endpoint has its own. Closing it needs a custom-resource Lambda; set the CDK flag @aws-cdk/aws-ec2:restrictDefaultSecurityGroup if your policy requires it.',
    );
    const flowLog = vpc.addFlowLog('FlowLogs', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL });
    acknowledgeDefaultPolicy(flowLog.node.findChild('IAMRole'));
    return vpc;
  }
}

/** The user attributes the rules can set: each becomes an X-Looker-Attr-* header. */
export function attributeNamesOf(rules: MappingRuleSet): string[] {
  const names = new Set<string>();
  for (const rule of rules.rules ?? []) for (const name of Object.keys(rule.grant?.attributes ?? {})) names.add(name);
  return [...names].sort();
}

function assertTwoZones(where: string, vpc: ec2.IVpc): void {
  const zones = vpc.availabilityZones;
  if (zones.some((zone) => Token.isUnresolved(zone))) return;
  if (zones.length < 2) {
    throw new GatewayPropsError(
      where,
      `the VPC spans ${zones.length} Availability Zone(s) (${zones.join(', ') || 'none'}); the gateway needs at least 2 so that it survives the loss of one. Give a VPC with subnets in 2 or more AZs, or leave vpc unset to get a new one.`,
    );
  }
}

/**
 * Broker mode settings that deploy but do not do what was meant: Looker's servers must trust
 * the certificate of the gateway's token and userinfo URLs (a self-signed one they do not),
 * and only Looker groups become Looker roles (a rule that grants roles but no group admits
 * nobody into Looker).
 */
function warnAboutBrokerMode(scope: Construct, props: LookerGatewayProps): void {
  if (!props.frontendCertificate) {
    Annotations.of(scope).addWarningV2(
      'cdk-looker-gateway:broker-self-signed-certificate',
      "lookerOidc is on but no frontendCertificate is given: Looker's servers call the broker's token and userinfo URLs at https://<domainName> and refuse the self-signed certificate the gateway makes, so Looker's OIDC logins fail. Give a frontendCertificate from a CA Looker trusts (docs/looker-oidc.md, \"The network path\").",
    );
  }
  const roleOnly = props.mappingRules.rules
    .filter((rule) => (rule.grant.roles?.length ?? 0) > 0 && (rule.grant.groups?.length ?? 0) === 0)
    .map((rule) => JSON.stringify(rule.name));
  if (roleOnly.length > 0) {
    Annotations.of(scope).addWarningV2(
      'cdk-looker-gateway:broker-rule-without-looker-group',
      `lookerOidc is on, and the mapping rule(s) ${roleOnly.join(', ')} grant roles but no Looker group: in broker mode Looker takes roles from groups only (groupRoles), so their grant.roles reach Looker only as headers, which it does not read. Grant the Looker group that carries the role instead.`,
    );
  }
}

/**
 * The Looker servers every instance's HAProxy should count as up: each static host, or at least
 * one behind a DNS name (how many addresses it holds is Looker's business, not the gateway's).
 */
function expectedLookerServers(looker: LookerBackend): number {
  const { hosts, resolvesByDns } = looker.config;
  return resolvesByDns || Token.isUnresolved(hosts) ? 1 : hosts.length;
}
