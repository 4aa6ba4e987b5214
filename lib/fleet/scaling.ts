/**
 * The Auto Scaling group: several instance types of one architecture (on demand, in order),
 * ELB health checks, a rolling update that waits for each new instance's signal, and
 * scaling on CPU and on active connections per instance.
 */
import { Duration, Token } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { acknowledge } from '../private/nag-acknowledgements';

export interface GatewayGroupOptions {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly launchTemplate: ec2.ILaunchTemplate;
  readonly instanceTypes: ec2.InstanceType[];
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly desiredCapacity?: number;
}

/** The group `Group` in `scope` (the fleet). */
export function newGatewayGroup(scope: Construct, options: GatewayGroupOptions): autoscaling.AutoScalingGroup {
  const group = new autoscaling.AutoScalingGroup(scope, 'Group', {
    vpc: options.vpc,
    vpcSubnets: options.subnets,
    // Several instance types (launched in this order, on demand), so that a shortage of one
    // type in an Availability Zone does not stop a scale-out or a rolling update.
    mixedInstancesPolicy: {
      launchTemplate: options.launchTemplate,
      launchTemplateOverrides: options.instanceTypes.map((type) => ({ instanceType: type })),
      instancesDistribution: {
        onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
        onDemandBaseCapacity: 0,
        onDemandPercentageAboveBaseCapacity: 100,
      },
    },
    minCapacity: options.minCapacity,
    maxCapacity: options.maxCapacity,
    desiredCapacity: options.desiredCapacity,
    healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
      additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
      gracePeriod: Duration.minutes(10),
    }),
    // Each new instance tells CloudFormation it serves (cfn signal from the user data
    // through the AWS CLI: cfn-signal is not packaged on Debian).
    signals: autoscaling.Signals.waitForMinCapacity({ timeout: Duration.minutes(15) }),
    updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
      minInstancesInService: options.minCapacity,
      maxBatchSize: 1,
      waitOnResourceSignals: true,
      pauseTime: Duration.minutes(15),
    }),
    groupMetrics: [autoscaling.GroupMetrics.all()],
  });
  // The zones as well as the subnets: the group then names the zones it must span (they are
  // the subnets' own zones, as CloudFormation requires when both are given).
  const zones = options.vpc.selectSubnets(options.subnets).availabilityZones;
  (group.node.defaultChild as autoscaling.CfnAutoScalingGroup).availabilityZones = [...new Set(zones)];
  if (!zones.some((zone) => Token.isUnresolved(zone))) {
    acknowledge(
      group,
      ['CloudFormation-Validate::W3010'],
      "The zones are those of the VPC's subnets as given (an imported VPC names its zones); the group must name the same zones as its subnets.",
    );
  }
  return group;
}

export interface GatewayScalingOptions {
  readonly loadBalancer: elbv2.INetworkLoadBalancer;
  readonly targetCpuUtilizationPercent: number;
  readonly connectionsPerInstance: number;
}

/** Scales on CPU and on the load balancer's active connections per in-service instance. */
export function addGatewayScaling(group: autoscaling.AutoScalingGroup, options: GatewayScalingOptions): void {
  group.scaleOnCpuUtilization('ScaleOnCpu', {
    targetUtilizationPercent: options.targetCpuUtilizationPercent,
    estimatedInstanceWarmup: Duration.minutes(5),
  });
  const connectionsPerInstance = options.connectionsPerInstance;
  group.scaleOnMetric('ScaleOnConnections', {
    metric: new cloudwatch.MathExpression({
      expression: 'flows / MAX([instances, 1])',
      usingMetrics: {
        flows: options.loadBalancer.metrics.activeFlowCount({ period: Duration.minutes(1), statistic: 'Average' }),
        instances: new cloudwatch.Metric({
          namespace: 'AWS/AutoScaling',
          metricName: 'GroupInServiceInstances',
          dimensionsMap: { AutoScalingGroupName: group.autoScalingGroupName },
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
    group,
    ['AwsSolutions-EC26', 'NIST.800.53.R5-EC2IMDSv2Enabled', 'HIPAA.Security-EC2IMDSv2Enabled'],
    "The group launches the LaunchTemplate through its mixed instances policy; that launch template requires IMDSv2 (HttpTokens required, hop limit 1) and an encrypted gp3 root volume. cdk-nag reads only a group's LaunchTemplate or LaunchConfigurationName property, not MixedInstancesPolicy.LaunchTemplate.",
  );
  acknowledge(
    group,
    ['AwsSolutions-AS3'],
    'Scaling and health events are visible in the GatewayObservability alarms (unhealthy hosts, no healthy host) and in the Auto Scaling activity history; add notifications to your own topic if you need them.',
  );
}
