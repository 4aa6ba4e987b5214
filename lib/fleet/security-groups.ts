/**
 * The fleet's two security groups: the load balancer's (HTTPS from the client networks) and
 * the instances' (TLS and health checks from the load balancer only). Port 80 (redirects to
 * HTTPS) is added to both by http-listener.ts.
 */
import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { acknowledge } from '../private/nag-acknowledgements';

export interface FleetSecurityGroups {
  readonly loadBalancer: ec2.SecurityGroup;
  readonly instances: ec2.SecurityGroup;
}

export interface FleetSecurityGroupsOptions {
  readonly vpc: ec2.IVpc;
  readonly clientCidrs: string[];
  readonly instancePort: number;
  readonly healthCheckPort: number;
}

export function newFleetSecurityGroups(scope: Construct, options: FleetSecurityGroupsOptions): FleetSecurityGroups {
  const loadBalancer = new ec2.SecurityGroup(scope, 'LoadBalancerSecurityGroup', {
    vpc: options.vpc,
    description: 'Looker gateway load balancer: HTTPS from clients',
    allowAllOutbound: false,
  });
  const clientCidrs = options.clientCidrs;
  for (const cidr of clientCidrs) {
    loadBalancer.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), 'HTTPS from clients');
  }
  if (clientCidrs.some((cidr) => Token.isUnresolved(cidr))) {
    // The rule cannot read a CIDR that CloudFormation resolves (the VPC's own, by default for internal gateways).
    acknowledge(
      loadBalancer,
      [
        'AwsSolutions-EC23',
        ...['NIST.800.53.R5', 'HIPAA.Security', 'PCI.DSS.321'].flatMap((pack) => [`${pack}-EC2RestrictedCommonPorts`, `${pack}-EC2RestrictedSSH`]),
      ],
      'The rules cannot read a client CIDR that CloudFormation resolves (by default the VPC CIDR of an internal gateway). The group admits TCP 443 and 80 (redirects to HTTPS) only, from that CIDR; no SSH or other common port.',
    );
  } else if (clientCidrs.includes('0.0.0.0/0')) {
    acknowledge(
      loadBalancer,
      ['AwsSolutions-EC23'],
      'The internet-facing entry point of the gateway: HTTPS (443) from anywhere is its purpose, every request authenticated by HAProxy; HTTP (80) only redirects to HTTPS. Set clientCidrs to narrow it.',
    );
  }

  const instances = new ec2.SecurityGroup(scope, 'SecurityGroup', {
    vpc: options.vpc,
    description: 'Looker gateway instances (HAProxy)',
    allowAllOutbound: true,
  });
  instances.addIngressRule(loadBalancer, ec2.Port.tcp(options.instancePort), 'TLS (PROXY protocol) from the load balancer');
  instances.addIngressRule(loadBalancer, ec2.Port.tcp(options.healthCheckPort), 'Health checks from the load balancer');
  loadBalancer.addEgressRule(instances, ec2.Port.tcp(options.instancePort), 'TLS to the gateway instances');
  loadBalancer.addEgressRule(instances, ec2.Port.tcp(options.healthCheckPort), 'Health checks to the gateway instances');
  return { loadBalancer, instances };
}
