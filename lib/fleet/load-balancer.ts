/**
 * The Network Load Balancer in front of the fleet: TCP 443 passed through to HAProxy (which
 * terminates TLS), PROXY protocol v2 so HAProxy knows the client address, and HTTP health
 * checks on the health listener (which answers whenever the gateway itself works).
 */
import { Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { acknowledge } from '../private/nag-acknowledgements';

export interface FleetLoadBalancerOptions {
  readonly vpc: ec2.IVpc;
  readonly internetFacing: boolean;
  readonly subnets?: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly deletionProtection: boolean;
  readonly group: autoscaling.AutoScalingGroup;
  readonly instancePort: number;
  readonly healthCheckPort: number;
}

export interface FleetLoadBalancer {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly targetGroup: elbv2.NetworkTargetGroup;
  readonly listener: elbv2.NetworkListener;
}

export function newFleetLoadBalancer(scope: Construct, options: FleetLoadBalancerOptions): FleetLoadBalancer {
  const loadBalancer = new elbv2.NetworkLoadBalancer(scope, 'LoadBalancer', {
    vpc: options.vpc,
    internetFacing: options.internetFacing,
    vpcSubnets: options.subnets ?? { subnetType: options.internetFacing ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_WITH_EGRESS },
    crossZoneEnabled: true,
    securityGroups: [options.securityGroup],
    deletionProtection: options.deletionProtection,
  });
  // No access logs: the load balancer writes them only for TLS listeners, and this one is TCP
  // (TLS passes through to HAProxy). Each connection is in HAProxy's JSON access log instead.
  acknowledge(
    loadBalancer,
    ['AwsSolutions-ELB2', 'NIST.800.53.R5-ELBLoggingEnabled', 'PCI.DSS.321-ELBLoggingEnabled', 'HIPAA.Security-ELBLoggingEnabled'],
    'Network Load Balancer access logs are written only for TLS listeners (ELB user guide, "Access logs for your Network Load Balancer"); this listener is TCP passthrough. HAProxy logs every request and client address (PROXY v2) to the access log group.',
  );
  if (!options.deletionProtection) {
    acknowledge(
      loadBalancer,
      ['NIST.800.53.R5-ELBDeletionProtectionEnabled', 'HIPAA.Security-ELBDeletionProtectionEnabled', 'PCI.DSS.321-ELBDeletionProtectionEnabled'],
      'Off by default so that `cdk destroy` of a trial works; set deletionProtection: true for production.',
    );
  }

  const targetGroup = new elbv2.NetworkTargetGroup(scope, 'Targets', {
    vpc: options.vpc,
    port: options.instancePort,
    protocol: elbv2.Protocol.TCP,
    targetType: elbv2.TargetType.INSTANCE,
    proxyProtocolV2: true,
    preserveClientIp: false,
    deregistrationDelay: Duration.seconds(60),
    healthCheck: {
      protocol: elbv2.Protocol.HTTP,
      port: String(options.healthCheckPort),
      path: '/',
      interval: Duration.seconds(10),
      healthyThresholdCount: 2,
      unhealthyThresholdCount: 2,
    },
    targets: [options.group],
  });
  const listener = loadBalancer.addListener('Https', {
    port: 443,
    protocol: elbv2.Protocol.TCP,
    defaultTargetGroups: [targetGroup],
  });
  acknowledge(
    listener,
    ['NIST.800.53.R5-ELBv2ACMCertificateRequired', 'HIPAA.Security-ELBv2ACMCertificateRequired', 'PCI.DSS.321-ELBv2ACMCertificateRequired'],
    'TLS passthrough by design: HAProxy terminates TLS (it must see client certificates and cookies) with the certificate kept in Secrets Manager; the load balancer never holds a certificate.',
  );
  return { loadBalancer, targetGroup, listener };
}
