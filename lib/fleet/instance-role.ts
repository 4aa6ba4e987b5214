/**
 * The instances' role: read the instance key material (and export the ACM certificate), ship
 * the logs, publish the agent's metrics and the certificate expiry, fetch the launch template's files and signal readiness, and Session
 * Manager instead of SSH.
 */
import { Stack } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { CLOUDWATCH_AGENT_METRIC_NAMESPACE } from '../../core/instance/user-data';
import { IGatewayKeys } from '../keys/gateway-keys';
import { acknowledge } from '../private/nag-acknowledgements';
import { grantCertificateExpiryMetric, grantExportCertificate } from './certificate';

/** The frontend certificate as the instances handle it: an ACM one to export, and the namespace of its expiry metric. */
export interface InstanceCertificateAccess {
  /** The exportable ACM certificate, with `FrontendCertificate.acmExportable()`. */
  readonly certificate?: acm.ICertificate;
  readonly metricNamespace: string;
}

/** `logGroups`: the access log group and the groups of the instances' other logs (each granted once). */
export function newInstanceRole(scope: Construct, keys: IGatewayKeys, logGroups: readonly logs.ILogGroup[], frontend: InstanceCertificateAccess): iam.Role {
  const role = new iam.Role(scope, 'InstanceRole', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description: 'Looker gateway instances: read instance key material, ship logs, Session Manager',
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
  });
  acknowledge(
    role,
    ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]'],
    'Session Manager replaces SSH (no key pair, no port 22); AWS maintains this policy with the exact actions the SSM agent needs.',
  );
  keys.grantReadInstanceMaterial(role);
  if (frontend.certificate) grantExportCertificate(role, frontend.certificate);
  grantCertificateExpiryMetric(role, frontend.metricNamespace);
  for (const group of new Set(logGroups)) group.grant(role, 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams');
  grantCloudWatchAgentMetrics(role);
  return role;
}

/** The user data reads its files from the launch template's Metadata and signals the group (cfn-init and cfn-signal are not packaged on Debian). */
export function grantReadFilesAndSignal(role: iam.Role): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ReadFilesAndSignalReadiness',
      actions: ['cloudformation:DescribeStackResource', 'cloudformation:SignalResource'],
      resources: [Stack.of(role).stackId],
    }),
  );
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
    "cloudwatch:PutMetricData and ec2:DescribeTags support no resource-level permissions (Service Authorization Reference); PutMetricData is limited to the agent's namespace by the cloudwatch:namespace condition.",
  );
}
