/**
 * GatewayFleet: HAProxy on an Auto Scaling group of Debian 13 (arm64) instances behind a
 * Network Load Balancer that passes TLS through (PROXY protocol v2 to the instances).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Annotations, Aws, CfnElement, Duration, Lazy, Stack, Token } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { GatewayKeys } from '../keys/gateway-keys';
import { LookerBackend } from '../looker/looker-backend';
import { acknowledge, acknowledgeDefaultPolicy } from '../private/nag-acknowledgements';
import { clientCaProblems, clientCrlProblems } from '../private/client-certificates';
import { assertIntegerInRange, assertPort, GatewayPropsError } from '../private/validation';
import type { UserClaim } from './gateway-options';
import { GatewayConfigError } from './validate';
import { assertNamesInZone, certificateExpiryMetric, defaultMetricNamespace, grantCertificateExpiryMetric, grantExportCertificate, newFrontendAcmCertificate } from './certificate';
import { addLoadBalancerAliasRecords } from './dns';
import { addHttpRedirectListener } from './http-listener';
import { KEY_SYNC_METRIC_LABELS, keySyncMetric } from './key-sync-metrics';
import { KEY_SYNC_METRICS } from './key-sync/run-metrics';
import { CLOUDWATCH_AGENT_CONFIG_PATH, CLOUDWATCH_AGENT_METRIC_NAMESPACE, DeployTimeValues, FILES_METADATA_KEY, filesMetadata, INSTANCE_PACKAGES, InstanceFilesInput, InstanceMachineClients, renderBootstrapScript, renderInstanceFiles, startCommands } from './user-data';

/** The public SSM parameter with the newest official Debian 13 arm64 AMI. */
export const DEBIAN_13_ARM64_AMI_PARAMETER = '/aws/service/debian/release/13/latest/arm64';
/** The same for x86_64 instance types. */
export const DEBIAN_13_AMD64_AMI_PARAMETER = '/aws/service/debian/release/13/latest/amd64';

/**
 * Graviton types on the AWS Nitro System that encrypt traffic between instances in hardware
 * (what Control Tower's CT.AUTOSCALING.PR.10/PR.11 ask of a group's types); m7g.medium is a
 * full vCPU without burst credits, c7g.medium the fallback of the same size.
 */
const DEFAULT_INSTANCE_TYPE = ec2.InstanceType.of(ec2.InstanceClass.M7G, ec2.InstanceSize.MEDIUM);
const DEFAULT_FALLBACK_INSTANCE_TYPE = ec2.InstanceType.of(ec2.InstanceClass.C7G, ec2.InstanceSize.MEDIUM);

/**
 * A script or AI agent that calls Looker with a client certificate instead of a browser
 * session. HAProxy looks the certificate up by its SHA-256 fingerprint and sends `name` to
 * Looker as `X-Forwarded-User`.
 */
export interface MachineClient {
  /** Identity sent as `X-Forwarded-User`: letters, digits, ".", "_", "@" and "-" (at most 128). */
  readonly name: string;
  /**
   * SHA-256 of the client certificate's DER, 64 hex digits, colons allowed
   * (`openssl x509 -in client.crt -noout -fingerprint -sha256`).
   */
  readonly certificateSha256: string;
  /**
   * Upper-case HTTP methods this client may use.
   * @default ["GET"]
   */
  readonly allowedMethods?: string[];
  /** Path prefixes this client may call; each must lie inside one of `MachineRoutes.pathPrefixes` (unless the routes are a host name of their own). */
  readonly allowedPathPrefixes: string[];
}

/** Where a client certificate, not a session, is required. */
export interface MachineRoutes {
  /**
   * Path prefixes on the gateway's host name reserved for machine clients, for example
   * "/api/4.0/". They must not overlap /oauth2/. Browsers that hold client certificates
   * may show a certificate picker on this host; use `hostName` alone to avoid that.
   * @default - none: give `hostName`
   */
  readonly pathPrefixes?: string[];
  /**
   * A host name of its own for machine clients, on which every path is a machine route and
   * the only one where HAProxy asks for a client certificate (when `pathPrefixes` is
   * empty). Point it at the load balancer too; the frontend certificate must carry it.
   * @default - none: give `pathPrefixes`
   */
  readonly hostName?: string;
}

export interface ClientCertificateAuthorityPemOptions {
  /**
   * A certificate revocation list in PEM, checked on every handshake. OpenSSL treats a
   * CRL past its nextUpdate as a verification error, so redeploy a fresh CRL before then.
   * @default - no CRL: remove a client from `machineClients` to revoke it
   */
  readonly crlPem?: string;
}

export interface ClientCertificateAuthorityFileOptions {
  /**
   * A file with a certificate revocation list in PEM, read at synth (see `crlPem`).
   * @default - no CRL: remove a client from `machineClients` to revoke it
   */
  readonly crlFile?: string;
}

/**
 * The CA(s) that machine clients' certificates must chain to, and an optional CRL. Both are
 * public data: they travel in the launch template with the rest of HAProxy's files, are
 * checked at synth, and a change rolls the fleet.
 */
export class ClientCertificateAuthority {
  /**
   * From PEM text: one or more CA certificates. A token (for example an SSM parameter's
   * value) is accepted but not checked at synth, and changing its value later does not
   * roll the fleet.
   */
  public static fromPem(caPem: string, options: ClientCertificateAuthorityPemOptions = {}): ClientCertificateAuthority {
    return new ClientCertificateAuthority('ClientCertificateAuthority.fromPem', caPem, options.crlPem);
  }

  /** From files read at synth (relative paths from the directory `cdk` runs in), for example a CA bundle kept in the repository. */
  public static fromFile(caFile: string, options: ClientCertificateAuthorityFileOptions = {}): ClientCertificateAuthority {
    const read = (what: string, file: string): string => {
      try {
        return readFileSync(file, 'utf8');
      } catch (error) {
        throw new GatewayPropsError('ClientCertificateAuthority.fromFile', `${what} ${JSON.stringify(file)} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): give the path of a PEM file, relative to the directory cdk runs in or absolute.`);
      }
    };
    return new ClientCertificateAuthority(`ClientCertificateAuthority.fromFile(${JSON.stringify(caFile)})`, read('caFile', caFile), options.crlFile === undefined ? undefined : read('crlFile', options.crlFile));
  }

  /** The CA certificates, PEM (rendered as tls/client-ca.pem on instances). */
  public readonly caPem: string;
  /** The CRL, PEM (rendered as tls/client-crl.pem). */
  public readonly crlPem?: string;

  private constructor(where: string, caPem: string, crlPem: string | undefined) {
    if (!Token.isUnresolved(caPem)) {
      const problems = clientCaProblems(caPem);
      if (problems.length > 0) throw new GatewayPropsError(where, `the client CA PEM is not usable: ${problems.join(' ')}`);
    }
    if (crlPem !== undefined && !Token.isUnresolved(crlPem)) {
      const problems = clientCrlProblems(crlPem);
      if (problems.length > 0) throw new GatewayPropsError(where, `the client CRL PEM is not usable: ${problems.join(' ')}`);
    }
    this.caPem = caPem;
    this.crlPem = crlPem;
  }
}

export interface GatewayFleetProps {
  readonly vpc: ec2.IVpc;
  /** Where the instances run. @default - private subnets with egress */
  readonly instanceSubnets?: ec2.SubnetSelection;
  /** Where the load balancer's nodes are. @default - public subnets when internet-facing, private otherwise */
  readonly loadBalancerSubnets?: ec2.SubnetSelection;
  /** The gateway's keys: instances read the verification keys and certificates. */
  readonly keys: GatewayKeys;
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
  /** Scale out above this average CPU. @default 60 */
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
  /** key-sync's JSON lines, one per run. @default - the access log group */
  readonly keySync?: logs.ILogGroup;
  /** HAProxy's own messages: ALERTs, server state changes, reloads. @default - the access log group */
  readonly haproxy?: logs.ILogGroup;
  /** The bootstrap log and the CloudWatch and SSM agents' errors. @default - the access log group */
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
    const arm64 = instanceType.architecture === ec2.InstanceArchitecture.ARM_64;
    checkInstanceTypes(where, instanceTypes);

    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: 'Looker gateway load balancer: HTTPS from clients',
      allowAllOutbound: false,
    });
    const clientCidrs = props.clientCidrs ?? [internetFacing ? '0.0.0.0/0' : props.vpc.vpcCidrBlock];
    for (const cidr of clientCidrs) {
      this.loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), 'HTTPS from clients');
    }
    if (clientCidrs.some((cidr) => Token.isUnresolved(cidr))) {
      // The rule cannot read a CIDR that CloudFormation resolves (the VPC's own, by default for internal gateways).
      acknowledge(
        this.loadBalancerSecurityGroup,
        [
          'AwsSolutions-EC23',
          ...['NIST.800.53.R5', 'HIPAA.Security', 'PCI.DSS.321'].flatMap((pack) => [`${pack}-EC2RestrictedCommonPorts`, `${pack}-EC2RestrictedSSH`]),
        ],
        'The rules cannot read a client CIDR that CloudFormation resolves (by default the VPC CIDR of an internal gateway). The group admits TCP 443 and 80 (redirects to HTTPS) only, from that CIDR; no SSH or other common port.',
      );
    } else if (clientCidrs.includes('0.0.0.0/0')) {
      acknowledge(this.loadBalancerSecurityGroup, ['AwsSolutions-EC23'], 'The internet-facing entry point of the gateway: HTTPS (443) from anywhere is its purpose, every request authenticated by HAProxy; HTTP (80) only redirects to HTTPS. Set clientCidrs to narrow it.');
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Looker gateway instances (HAProxy)',
      allowAllOutbound: true,
    });
    this.connections = this.securityGroup.connections;
    this.securityGroup.addIngressRule(this.loadBalancerSecurityGroup, ec2.Port.tcp(instancePort), 'TLS (PROXY protocol) from the load balancer');
    this.securityGroup.addIngressRule(this.loadBalancerSecurityGroup, ec2.Port.tcp(healthCheckPort), 'Health checks from the load balancer');
    this.loadBalancerSecurityGroup.addEgressRule(this.securityGroup, ec2.Port.tcp(instancePort), 'TLS to the gateway instances');
    this.loadBalancerSecurityGroup.addEgressRule(this.securityGroup, ec2.Port.tcp(healthCheckPort), 'Health checks to the gateway instances');
    props.looker.allowFrom(this);

    this.role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'Looker gateway instances: read instance key material, ship logs, Session Manager',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    acknowledge(
      this.role,
      ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]'],
      'Session Manager replaces SSH (no key pair, no port 22); AWS maintains this policy with the exact actions the SSM agent needs.',
    );
    props.keys.grantReadInstanceMaterial(this.role);
    if (props.hostedZone) {
      assertNamesInZone(where, props.hostedZone, [['domainName', props.domainName], ...(props.machineRoutes?.hostName ? [['machineRoutes.hostName', props.machineRoutes.hostName] as const] : [])]);
    }
    this.certificate = newFrontendAcmCertificate(this, 'Certificate', where, {
      choice: props.keys.frontendCertificateSource,
      hostedZone: props.hostedZone,
      domainName: props.domainName,
      machineHostName: props.machineRoutes?.hostName,
    });
    if (this.certificate) grantExportCertificate(this.role, this.certificate);
    grantCertificateExpiryMetric(this.role, this.metricNamespace);
    const logGroups = props.instanceLogGroups ?? {};
    for (const group of new Set([props.accessLogGroup, logGroups.keySync, logGroups.haproxy, logGroups.instance])) {
      group?.grant(this.role, 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams');
    }
    grantCloudWatchAgentMetrics(this.role);

    const deployTime = new DeployTimeValues();
    const token = (value: string) => Token.isUnresolved(value);
    const filesInput: InstanceFilesInput = {
      region: deployTime.placeholderFor(Aws.REGION, token),
      domainName: deployTime.placeholderFor(props.domainName, token),
      session: {
        issuer: deployTime.placeholderFor(props.session?.issuer ?? `https://${props.domainName}`, token),
        audience: deployTime.placeholderFor(props.session?.audience ?? `https://${props.domainName}`, token),
        algorithm: props.session?.algorithm ?? props.keys.sessionAlgorithm,
        attributeNames: props.session?.attributeNames ?? [],
        userClaim: props.session?.userClaim,
      },
      authService: {
        hostName: deployTime.placeholderFor(props.authService.hostName, token),
        pathPrefix: props.authService.pathPrefix,
      },
      looker: {
        ...props.looker.config,
        hosts: props.looker.config.hosts.map((host) => deployTime.placeholderFor(host, token)),
      },
      instancePort,
      healthCheckPort,
      readinessPort,
      metricsPort,
      accessLogGroupName: deployTime.placeholderFor(props.accessLogGroup.logGroupName, token),
      logGroupNames: {
        keySync: logGroups.keySync && deployTime.placeholderFor(logGroups.keySync.logGroupName, token),
        haproxy: logGroups.haproxy && deployTime.placeholderFor(logGroups.haproxy.logGroupName, token),
        instance: logGroups.instance && deployTime.placeholderFor(logGroups.instance.logGroupName, token),
      },
      secrets: {
        verificationKeys: deployTime.placeholderFor(props.keys.verificationKeys.secretArn, token),
        backendClientCertificate: deployTime.placeholderFor(props.keys.backendClientCertificate.secretArn, token),
        frontendCertificate: props.keys.frontendCertificate && deployTime.placeholderFor(props.keys.frontendCertificate.secretArn, token),
      },
      frontendAcmCertificateArn: this.certificate && deployTime.placeholderFor(this.certificate.certificateArn, token),
      metricNamespace: deployTime.placeholderFor(this.metricNamespace, token),
      httpRedirectPort,
      machineClients: machineClientsInput(where, props, (value) => deployTime.placeholderFor(value, token)),
    };
    if (props.machineRoutes?.hostName && props.keys.frontendCertificateIsSelfSigned && props.machineRoutes.hostName !== props.domainName) {
      Annotations.of(this).addWarningV2(
        'cdk-looker-gateway:machine-host-certificate',
        `machineRoutes.hostName ${JSON.stringify(props.machineRoutes.hostName)} is not in the self-signed frontend certificate (it names ${props.domainName} only): machine clients will fail to verify the server. Give a frontendCertificate that carries both names.`,
      );
    }
    // Rendered with placeholders for deploy-time values, which then go back in as tokens
    // that CloudFormation resolves in the launch template Metadata. The renderer checks the
    // gateway options (machine clients included): its errors name the prop and the fix.
    const rendered = withPropsErrors(where, () => ({ files: renderInstanceFiles(filesInput), start: startCommands(filesInput) }));
    const files = rendered.files.map((file) => ({ ...file, content: deployTime.restore(file.content) }));
    const metadata = filesMetadata(files);
    const stack = Stack.of(this);
    const logicalId = (id: string) => Lazy.string({ produce: () => stack.getLogicalId(this.node.findChild(id).node.defaultChild as CfnElement) });
    this.userDataScript = renderBootstrapScript({
      region: Aws.REGION,
      stackName: Aws.STACK_NAME,
      filesResourceId: logicalId('LaunchTemplate'),
      signalResourceId: logicalId('Group'),
      filesDigest: Lazy.string({ produce: () => createHash('sha256').update(JSON.stringify(stack.resolve(metadata))).digest('hex') }),
      packages: INSTANCE_PACKAGES,
      cloudWatchAgentConfigPath: CLOUDWATCH_AGENT_CONFIG_PATH,
      startCommands: rendered.start,
      readinessUrl: `http://127.0.0.1:${readinessPort}/`,
    });
    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.fromSsmParameter(arm64 ? DEBIAN_13_ARM64_AMI_PARAMETER : DEBIAN_13_AMD64_AMI_PARAMETER, { os: ec2.OperatingSystemType.LINUX }),
      instanceType,
      role: this.role,
      securityGroup: this.securityGroup,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      instanceMetadataTags: false,
      detailedMonitoring: true,
      associatePublicIpAddress: false,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB ?? 16, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3, deleteOnTermination: true }),
        },
      ],
      userData: ec2.UserData.custom(this.userDataScript),
    });
    (this.launchTemplate.node.defaultChild as ec2.CfnLaunchTemplate).addMetadata(FILES_METADATA_KEY, metadata);

    const instanceSubnets = props.instanceSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: props.vpc,
      vpcSubnets: instanceSubnets,
      // Several instance types (launched in this order, on demand), so that a shortage of one
      // type in an Availability Zone does not stop a scale-out or a rolling update.
      mixedInstancesPolicy: {
        launchTemplate: this.launchTemplate,
        launchTemplateOverrides: instanceTypes.map((type) => ({ instanceType: type })),
        instancesDistribution: {
          onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
          onDemandBaseCapacity: 0,
          onDemandPercentageAboveBaseCapacity: 100,
        },
      },
      minCapacity,
      maxCapacity,
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.minutes(10),
      }),
      // Each new instance tells CloudFormation it serves (cfn signal from the user data
      // through the AWS CLI: cfn-signal is not packaged on Debian).
      signals: autoscaling.Signals.waitForMinCapacity({ timeout: Duration.minutes(15) }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        minInstancesInService: minCapacity,
        maxBatchSize: 1,
        waitOnResourceSignals: true,
        pauseTime: Duration.minutes(15),
      }),
      groupMetrics: [autoscaling.GroupMetrics.all()],
    });
    // The zones as well as the subnets: the group then names the zones it must span (they are
    // the subnets' own zones, as CloudFormation requires when both are given).
    const zones = props.vpc.selectSubnets(instanceSubnets).availabilityZones;
    (this.autoScalingGroup.node.defaultChild as autoscaling.CfnAutoScalingGroup).availabilityZones = [...new Set(zones)];
    if (!zones.some((zone) => Token.isUnresolved(zone))) {
      acknowledge(
        this.autoScalingGroup,
        ['CloudFormation-Validate::W3010'],
        'The zones are those of the VPC\'s subnets as given (an imported VPC names its zones); the group must name the same zones as its subnets.',
      );
    }

    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadFilesAndSignalReadiness',
        actions: ['cloudformation:DescribeStackResource', 'cloudformation:SignalResource'],
        resources: [Stack.of(this).stackId],
      }),
    );

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing,
      vpcSubnets: props.loadBalancerSubnets ?? { subnetType: internetFacing ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_WITH_EGRESS },
      crossZoneEnabled: true,
      securityGroups: [this.loadBalancerSecurityGroup],
      deletionProtection: props.deletionProtection ?? false,
    });
    // No access logs: the load balancer writes them only for TLS listeners, and this one is TCP
    // (TLS passes through to HAProxy). Each connection is in HAProxy's JSON access log instead.
    acknowledge(
      this.loadBalancer,
      ['AwsSolutions-ELB2', 'NIST.800.53.R5-ELBLoggingEnabled', 'PCI.DSS.321-ELBLoggingEnabled', 'HIPAA.Security-ELBLoggingEnabled'],
      'Network Load Balancer access logs are written only for TLS listeners (ELB user guide, "Access logs for your Network Load Balancer"); this listener is TCP passthrough. HAProxy logs every request and client address (PROXY v2) to the access log group.',
    );
    if (!(props.deletionProtection ?? false)) {
      acknowledge(
        this.loadBalancer,
        ['NIST.800.53.R5-ELBDeletionProtectionEnabled', 'HIPAA.Security-ELBDeletionProtectionEnabled', 'PCI.DSS.321-ELBDeletionProtectionEnabled'],
        'Off by default so that `cdk destroy` of a trial works; set deletionProtection: true for production.',
      );
    }

    this.targetGroup = new elbv2.NetworkTargetGroup(this, 'Targets', {
      vpc: props.vpc,
      port: instancePort,
      protocol: elbv2.Protocol.TCP,
      targetType: elbv2.TargetType.INSTANCE,
      proxyProtocolV2: true,
      preserveClientIp: false,
      deregistrationDelay: Duration.seconds(60),
      healthCheck: {
        protocol: elbv2.Protocol.HTTP,
        port: String(healthCheckPort),
        path: '/',
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
      targets: [this.autoScalingGroup],
    });
    this.listener = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.Protocol.TCP,
      defaultTargetGroups: [this.targetGroup],
    });

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
    const names = [{ id: 'Domain', name: props.domainName }, ...(props.machineRoutes?.hostName && props.machineRoutes.hostName !== props.domainName ? [{ id: 'MachineHost', name: props.machineRoutes.hostName }] : [])];
    this.records = props.hostedZone ? addLoadBalancerAliasRecords(this, props.hostedZone, this.loadBalancer, names) : [];

    acknowledge(
      this.listener,
      ['NIST.800.53.R5-ELBv2ACMCertificateRequired', 'HIPAA.Security-ELBv2ACMCertificateRequired', 'PCI.DSS.321-ELBv2ACMCertificateRequired'],
      'TLS passthrough by design: HAProxy terminates TLS (it must see client certificates and cookies) with the certificate kept in Secrets Manager; the load balancer never holds a certificate.',
    );
    acknowledgeDefaultPolicy(this.role);
    this.autoScalingGroup.scaleOnCpuUtilization('ScaleOnCpu', {
      targetUtilizationPercent: props.targetCpuUtilizationPercent ?? 60,
      estimatedInstanceWarmup: Duration.minutes(5),
    });
    const connectionsPerInstance = props.connectionsPerInstance ?? 5000;
    this.autoScalingGroup.scaleOnMetric('ScaleOnConnections', {
      metric: new cloudwatch.MathExpression({
        expression: 'flows / MAX([instances, 1])',
        usingMetrics: {
          flows: this.loadBalancer.metrics.activeFlowCount({ period: Duration.minutes(1), statistic: 'Average' }),
          instances: new cloudwatch.Metric({
            namespace: 'AWS/AutoScaling',
            metricName: 'GroupInServiceInstances',
            dimensionsMap: { AutoScalingGroupName: this.autoScalingGroup.autoScalingGroupName },
            period: Duration.minutes(1),
            statistic: 'Average',
          }),
        },
        label: 'Active connections per instance',
        period: Duration.minutes(1),
      }),
      adjustmentType: autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
      scalingSteps: [
        { upper: connectionsPerInstance * 0.3, change: -1 },
        { lower: connectionsPerInstance, change: +1 },
        { lower: connectionsPerInstance * 1.5, change: +2 },
      ],
      estimatedInstanceWarmup: Duration.minutes(5),
    });
    acknowledge(
      this.autoScalingGroup,
      ['AwsSolutions-EC26', 'NIST.800.53.R5-EC2IMDSv2Enabled', 'HIPAA.Security-EC2IMDSv2Enabled'],
      'The group launches the LaunchTemplate through its mixed instances policy; that launch template requires IMDSv2 (HttpTokens required, hop limit 1) and an encrypted gp3 root volume. cdk-nag reads only a group\'s LaunchTemplate or LaunchConfigurationName property, not MixedInstancesPolicy.LaunchTemplate.',
    );
    acknowledge(
      this.autoScalingGroup,
      ['AwsSolutions-AS3'],
      'Scaling and health events are visible in the GatewayObservability alarms (unhealthy hosts, no healthy host) and in the Auto Scaling activity history; add notifications to your own topic if you need them.',
    );
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
    return keySyncMetric(this.metricNamespace, KEY_SYNC_METRICS.secondsSinceSuccess, 'Maximum', KEY_SYNC_METRIC_LABELS[KEY_SYNC_METRICS.secondsSinceSuccess], props);
  }

  /** 1 when an instance's installed current session key is the secret's, 0 when not; by default the worst instance (Minimum). */
  public metricKeySyncCurrentKidMatches(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return keySyncMetric(this.metricNamespace, KEY_SYNC_METRICS.currentKidMatches, 'Minimum', KEY_SYNC_METRIC_LABELS[KEY_SYNC_METRICS.currentKidMatches], props);
  }

  /** Failed key-sync runs over all instances (Sum). */
  public metricKeySyncRunFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return keySyncMetric(this.metricNamespace, KEY_SYNC_METRICS.runFailed, 'Sum', KEY_SYNC_METRIC_LABELS[KEY_SYNC_METRICS.runFailed], props);
  }
}

/** The machine-client part of the instance files, after the checks only the construct can make (the renderer checks the rest). */
function machineClientsInput(where: string, props: GatewayFleetProps, placeholder: (value: string) => string): InstanceMachineClients | undefined {
  const routes = props.machineRoutes;
  const clients = props.machineClients ?? [];
  const ca = props.clientCertificateAuthority;
  const hasRoutes = routes !== undefined && ((routes.pathPrefixes?.length ?? 0) > 0 || routes.hostName !== undefined);
  if (routes !== undefined && !hasRoutes) {
    throw new GatewayPropsError(where, 'machineRoutes has neither pathPrefixes nor hostName: give one of them, or leave machineRoutes unset.');
  }
  // Clients without routes: the renderer rejects them with its own message.
  if (clients.length > 0 && !hasRoutes) return { clients, routes: {} };
  if (!hasRoutes) {
    if (ca) throw new GatewayPropsError(where, 'clientCertificateAuthority is set but there are no machineRoutes: add machineRoutes and machineClients, or leave clientCertificateAuthority unset.');
    return undefined;
  }
  if (!ca) {
    throw new GatewayPropsError(
      where,
      'machineRoutes are set but clientCertificateAuthority is not: HAProxy needs the CA that client certificates chain to. Give clientCertificateAuthority: ClientCertificateAuthority.fromFile("certs/machine-ca.pem") (or .fromPem(pem)).',
    );
  }
  return {
    clients,
    routes: { pathPrefixes: routes!.pathPrefixes, hostName: routes!.hostName === undefined ? undefined : placeholder(routes!.hostName) },
    caPem: placeholder(ca.caPem),
    crlPem: ca.crlPem === undefined ? undefined : placeholder(ca.crlPem),
  };
}

/** Runs the renderer; its GatewayConfigError (which names the option and the fix) becomes a props error of this construct. */
function withPropsErrors<T>(where: string, render: () => T): T {
  try {
    return render();
  } catch (error) {
    if (error instanceof GatewayConfigError) throw new GatewayPropsError(where, error.message);
    throw error;
  }
}

function validateFleetProps(where: string, props: GatewayFleetProps, minCapacity: number, maxCapacity: number): void {
  assertIntegerInRange(where, 'minCapacity', minCapacity, 2, 100, 'The gateway runs at least 2 instances in 2 Availability Zones so that one can fail or be replaced.');
  assertIntegerInRange(where, 'maxCapacity', maxCapacity, 3, 200, 'It must exceed minCapacity: a rolling update adds an instance before it removes one.');
  if (!Token.isUnresolved(minCapacity) && !Token.isUnresolved(maxCapacity) && minCapacity >= maxCapacity) {
    throw new GatewayPropsError(
      where,
      `minCapacity (${minCapacity}) must be less than maxCapacity (${maxCapacity}): rolling updates keep minCapacity instances in service and add one before removing one. Raise maxCapacity to at least ${minCapacity + 1}.`,
    );
  }
  for (const [prop, value] of [['instancePort', props.instancePort], ['healthCheckPort', props.healthCheckPort], ['readinessPort', props.readinessPort], ['metricsPort', props.metricsPort], ['httpRedirectPort', props.httpRedirectPort]] as const) {
    if (value !== undefined) assertPort(where, prop, value);
  }
  const ports = [props.instancePort ?? 443, props.healthCheckPort ?? 8080, props.readinessPort ?? 8081, props.metricsPort ?? 8405, props.httpRedirectPort ?? 80].filter((p) => !Token.isUnresolved(p));
  if (new Set(ports).size !== ports.length) {
    throw new GatewayPropsError(where, `instancePort, healthCheckPort, readinessPort, metricsPort and httpRedirectPort must differ, got ${ports.join(', ')}: each is a listener of its own.`);
  }
  if (props.targetCpuUtilizationPercent !== undefined) assertIntegerInRange(where, 'targetCpuUtilizationPercent', props.targetCpuUtilizationPercent, 10, 90, 'Leave headroom for TLS handshakes in bursts; 60 is the default.');
  if (props.connectionsPerInstance !== undefined) assertIntegerInRange(where, 'connectionsPerInstance', props.connectionsPerInstance, 10, 1_000_000, 'Size it from a load test of your instance type.');
  if (props.rootVolumeGiB !== undefined) assertIntegerInRange(where, 'rootVolumeGiB', props.rootVolumeGiB, 8, 1024, 'Debian 13 needs at least 8 GiB.');
  for (const cidr of props.clientCidrs ?? []) {
    if (!Token.isUnresolved(cidr) && !/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/.test(cidr)) {
      throw new GatewayPropsError(where, `clientCidrs entry ${JSON.stringify(cidr)} is not an IPv4 CIDR. Write it like "203.0.113.0/24".`);
    }
  }
  if (props.clientCidrs && props.clientCidrs.length === 0) {
    throw new GatewayPropsError(where, 'clientCidrs is empty: nobody could connect. Leave it unset for the default or list the client networks.');
  }
}

/** One AMI serves the whole group: every type must share the first one's architecture, and appear once. */
function checkInstanceTypes(where: string, types: readonly ec2.InstanceType[]): void {
  const names = types.map((type) => type.toString());
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate) throw new GatewayPropsError(where, `instance type ${duplicate} is listed twice (instanceType and fallbackInstanceTypes): list each type once.`);
  const first = types[0];
  const other = types.find((type) => type.architecture !== first.architecture);
  if (other) {
    throw new GatewayPropsError(
      where,
      `fallbackInstanceTypes has ${other.toString()} (${other.architecture}) but instanceType ${first.toString()} is ${first.architecture}: the group launches one AMI, so every type must have the same architecture. Pick fallbacks of the same family, for example c7g.medium for m7g.medium.`,
    );
  }
}

/**
 * What the CloudWatch agent needs for the metrics of its config: PutMetricData into its own
 * namespace only, and DescribeTags to resolve the Auto Scaling group name dimension
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/create-iam-roles-for-cloudwatch-agent.html).
 */
function grantCloudWatchAgentMetrics(role: iam.Role): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAgentMetrics',
      actions: ['cloudwatch:PutMetricData'],
      resources: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': CLOUDWATCH_AGENT_METRIC_NAMESPACE } },
    }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'CloudWatchAgentDimensions', actions: ['ec2:DescribeTags'], resources: ['*'] }));
  acknowledge(
    role.node.tryFindChild('DefaultPolicy') ?? role,
    ['AwsSolutions-IAM5[Resource::*]'],
    'cloudwatch:PutMetricData and ec2:DescribeTags support no resource-level permissions (Service Authorization Reference); PutMetricData is limited to the agent\'s namespace by the cloudwatch:namespace condition.',
  );
}
