/**
 * The instances' launch template: the Debian 13 AMI, IMDSv2, an encrypted gp3 root volume,
 * and the user data. The files HAProxy and key-sync need are rendered at synth by core/
 * (with placeholders for deploy-time values, put back as tokens) and travel in the launch
 * template's Metadata; the small user data fetches them (core/instance/user-data.ts says why).
 */
import { createHash } from 'node:crypto';
import { Annotations, Aws, CfnElement, Lazy, Stack, Token } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { UserClaim } from '../../core/haproxy/options';
import {
  CLOUDWATCH_AGENT_CONFIG_PATH,
  DeployTimeValues,
  FILES_METADATA_KEY,
  filesMetadata,
  INSTANCE_PACKAGES,
  InstanceFilesInput,
  InstanceHaproxySettings,
  renderBootstrapScript,
  renderInstanceFiles,
  startCommands,
} from '../../core/instance/user-data';
import { IGatewayKeys } from '../keys/gateway-keys';
import { LookerBackend } from '../looker/looker-backend';
import type { InstanceLogGroups } from './gateway-fleet';
import { machineClientsInput, MachineClientSettings } from './machine-clients';
import { withPropsErrors } from './validation';

/** The public SSM parameter with the newest official Debian 13 arm64 AMI. */
export const DEBIAN_13_ARM64_AMI_PARAMETER = '/aws/service/debian/release/13/latest/arm64';
/** The same for x86_64 instance types. */
export const DEBIAN_13_AMD64_AMI_PARAMETER = '/aws/service/debian/release/13/latest/amd64';

/**
 * Graviton types on the AWS Nitro System that encrypt traffic between instances in hardware
 * (what Control Tower's CT.AUTOSCALING.PR.10/PR.11 ask of a group's types); m7g.medium is a
 * full vCPU without burst credits, c7g.medium the fallback of the same size.
 */
export const DEFAULT_INSTANCE_TYPE = ec2.InstanceType.of(ec2.InstanceClass.M7G, ec2.InstanceSize.MEDIUM);
export const DEFAULT_FALLBACK_INSTANCE_TYPE = ec2.InstanceType.of(ec2.InstanceClass.C7G, ec2.InstanceSize.MEDIUM);

export interface InstanceSettings extends MachineClientSettings {
  readonly keys: IGatewayKeys;
  readonly looker: LookerBackend;
  readonly domainName: string;
  readonly authService: { readonly hostName: string; readonly pathPrefix: string };
  readonly accessLogGroup: logs.ILogGroup;
  readonly instanceLogGroups?: InstanceLogGroups;
  readonly session?: {
    readonly issuer: string;
    readonly audience: string;
    readonly algorithm?: string;
    readonly attributeNames?: string[];
    readonly userClaim?: UserClaim;
  };
  readonly instancePort: number;
  readonly healthCheckPort: number;
  readonly readinessPort: number;
  readonly metricsPort: number;
  readonly httpRedirectPort: number;
  /** The exportable ACM certificate key-sync exports, with `FrontendCertificate.acmExportable()`. */
  readonly certificate?: acm.ICertificate;
  /** Namespace of key-sync's metrics. */
  readonly metricNamespace: string;
  /** HAProxy settings from the props. @default - the renderer's defaults */
  readonly haproxy?: InstanceHaproxySettings;
}

export interface GatewayLaunchTemplateOptions {
  readonly settings: InstanceSettings;
  readonly instanceType: ec2.InstanceType;
  readonly role: iam.IRole;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly rootVolumeGiB: number;
  /** Id of the Auto Scaling group (a sibling construct) that instances signal. */
  readonly groupId: string;
}

export interface GatewayLaunchTemplate {
  readonly launchTemplate: ec2.LaunchTemplate;
  /** The bootstrap script as rendered (with CloudFormation tokens where deploy-time values go). */
  readonly userDataScript: string;
}

/** Makes the launch template `LaunchTemplate` in `scope` (the fleet), with the files in its Metadata. */
export function newGatewayLaunchTemplate(scope: Construct, where: string, options: GatewayLaunchTemplateOptions): GatewayLaunchTemplate {
  const s = options.settings;
  const deployTime = new DeployTimeValues();
  const token = (value: string) => Token.isUnresolved(value);
  const filesInput: InstanceFilesInput = {
    region: deployTime.placeholderFor(Aws.REGION, token),
    domainName: deployTime.placeholderFor(s.domainName, token),
    session: {
      issuer: deployTime.placeholderFor(s.session?.issuer ?? `https://${s.domainName}`, token),
      audience: deployTime.placeholderFor(s.session?.audience ?? `https://${s.domainName}`, token),
      algorithm: s.session?.algorithm ?? s.keys.sessionAlgorithm,
      attributeNames: s.session?.attributeNames ?? [],
      userClaim: s.session?.userClaim,
    },
    authService: {
      hostName: deployTime.placeholderFor(s.authService.hostName, token),
      pathPrefix: s.authService.pathPrefix,
    },
    looker: {
      ...s.looker.config,
      hosts: s.looker.config.hosts.map((host) => deployTime.placeholderFor(host, token)),
    },
    instancePort: s.instancePort,
    healthCheckPort: s.healthCheckPort,
    readinessPort: s.readinessPort,
    metricsPort: s.metricsPort,
    accessLogGroupName: deployTime.placeholderFor(s.accessLogGroup.logGroupName, token),
    logGroupNames: {
      keySync: s.instanceLogGroups?.keySync && deployTime.placeholderFor(s.instanceLogGroups.keySync.logGroupName, token),
      haproxy: s.instanceLogGroups?.haproxy && deployTime.placeholderFor(s.instanceLogGroups.haproxy.logGroupName, token),
      instance: s.instanceLogGroups?.instance && deployTime.placeholderFor(s.instanceLogGroups.instance.logGroupName, token),
    },
    secrets: {
      verificationKeys: deployTime.placeholderFor(s.keys.verificationKeys.secretArn, token),
      backendClientCertificate: deployTime.placeholderFor(s.keys.backendClientCertificate.secretArn, token),
      frontendCertificate: s.keys.frontendCertificate && deployTime.placeholderFor(s.keys.frontendCertificate.secretArn, token),
    },
    frontendAcmCertificateArn: s.certificate && deployTime.placeholderFor(s.certificate.certificateArn, token),
    metricNamespace: deployTime.placeholderFor(s.metricNamespace, token),
    httpRedirectPort: s.httpRedirectPort,
    machineClients: machineClientsInput(where, s, (value) => deployTime.placeholderFor(value, token)),
    haproxy: s.haproxy,
  };
  if (s.machineRoutes?.hostName && s.keys.frontendCertificateIsSelfSigned && s.machineRoutes.hostName !== s.domainName) {
    Annotations.of(scope).addWarningV2(
      'cdk-looker-gateway:machine-host-certificate',
      `machineRoutes.hostName ${JSON.stringify(s.machineRoutes.hostName)} is not in the self-signed frontend certificate (it names ${s.domainName} only): machine clients will fail to verify the server. Give a frontendCertificate that carries both names.`,
    );
  }
  // Rendered with placeholders for deploy-time values, which then go back in as tokens
  // that CloudFormation resolves in the launch template Metadata. The renderer checks the
  // gateway options (machine clients included): its errors name the prop and the fix.
  const rendered = withPropsErrors(where, () => ({ files: renderInstanceFiles(filesInput), start: startCommands(filesInput) }));
  const files = rendered.files.map((file) => ({ ...file, content: deployTime.restore(file.content) }));
  const metadata = filesMetadata(files);
  const stack = Stack.of(scope);
  const logicalId = (id: string) => Lazy.string({ produce: () => stack.getLogicalId(scope.node.findChild(id).node.defaultChild as CfnElement) });
  const userDataScript = renderBootstrapScript({
    region: Aws.REGION,
    stackName: Aws.STACK_NAME,
    filesResourceId: logicalId('LaunchTemplate'),
    signalResourceId: logicalId(options.groupId),
    filesDigest: Lazy.string({
      produce: () =>
        createHash('sha256')
          .update(JSON.stringify(stack.resolve(metadata)))
          .digest('hex'),
    }),
    packages: INSTANCE_PACKAGES,
    cloudWatchAgentConfigPath: CLOUDWATCH_AGENT_CONFIG_PATH,
    startCommands: rendered.start,
    readinessUrl: `http://127.0.0.1:${s.readinessPort}/`,
  });
  const arm64 = options.instanceType.architecture === ec2.InstanceArchitecture.ARM_64;
  const launchTemplate = new ec2.LaunchTemplate(scope, 'LaunchTemplate', {
    machineImage: ec2.MachineImage.fromSsmParameter(arm64 ? DEBIAN_13_ARM64_AMI_PARAMETER : DEBIAN_13_AMD64_AMI_PARAMETER, {
      os: ec2.OperatingSystemType.LINUX,
    }),
    instanceType: options.instanceType,
    role: options.role,
    securityGroup: options.securityGroup,
    requireImdsv2: true,
    httpPutResponseHopLimit: 1,
    instanceMetadataTags: false,
    detailedMonitoring: true,
    associatePublicIpAddress: false,
    blockDevices: [
      {
        deviceName: '/dev/xvda',
        volume: ec2.BlockDeviceVolume.ebs(options.rootVolumeGiB, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3, deleteOnTermination: true }),
      },
    ],
    userData: ec2.UserData.custom(userDataScript),
  });
  (launchTemplate.node.defaultChild as ec2.CfnLaunchTemplate).addMetadata(FILES_METADATA_KEY, metadata);
  return { launchTemplate, userDataScript };
}
