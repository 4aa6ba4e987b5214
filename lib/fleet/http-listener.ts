/**
 * Port 80 of the load balancer: a TCP listener that passes plain HTTP (with the PROXY v2
 * header, like 443) to HAProxy's redirect frontend, which answers every request with a
 * redirect to the same host and path on HTTPS. A typed `looker.example.com` then works;
 * nothing is served in clear text.
 */
import { Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { acknowledge } from '../private/nag-acknowledgements';

export interface HttpRedirectListenerOptions {
  readonly vpc: ec2.IVpc;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly loadBalancerSecurityGroup: ec2.SecurityGroup;
  readonly instanceSecurityGroup: ec2.SecurityGroup;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  readonly clientCidrs: readonly string[];
  /** HAProxy's plain HTTP port on the instances. */
  readonly instancePort: number;
  /** The health check of the HTTPS target group: the same instances, the same check. */
  readonly healthCheck: elbv2.HealthCheck;
}

export function addHttpRedirectListener(
  scope: Construct,
  o: HttpRedirectListenerOptions,
): { listener: elbv2.NetworkListener; targetGroup: elbv2.NetworkTargetGroup } {
  for (const cidr of o.clientCidrs) {
    o.loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(80), 'HTTP from clients (redirected to HTTPS)');
  }
  o.loadBalancerSecurityGroup.addEgressRule(o.instanceSecurityGroup, ec2.Port.tcp(o.instancePort), 'HTTP (redirects only) to the gateway instances');
  o.instanceSecurityGroup.addIngressRule(
    o.loadBalancerSecurityGroup,
    ec2.Port.tcp(o.instancePort),
    'HTTP (PROXY protocol, redirects only) from the load balancer',
  );
  const targetGroup = new elbv2.NetworkTargetGroup(scope, 'HttpTargets', {
    vpc: o.vpc,
    port: o.instancePort,
    protocol: elbv2.Protocol.TCP,
    targetType: elbv2.TargetType.INSTANCE,
    proxyProtocolV2: true,
    preserveClientIp: false,
    deregistrationDelay: Duration.seconds(10),
    healthCheck: o.healthCheck,
    targets: [o.autoScalingGroup],
  });
  const listener = o.loadBalancer.addListener('Http', { port: 80, protocol: elbv2.Protocol.TCP, defaultTargetGroups: [targetGroup] });
  acknowledge(
    listener,
    ['NIST.800.53.R5-ELBv2ACMCertificateRequired', 'HIPAA.Security-ELBv2ACMCertificateRequired', 'PCI.DSS.321-ELBv2ACMCertificateRequired'],
    'Plain HTTP on port 80 only redirects to HTTPS: HAProxy answers every request with a 301 to the same host and path on port 443 and serves nothing else; no certificate is involved.',
  );
  return { listener, targetGroup };
}
