/**
 * The gateway's names in the hosted zone: alias A and AAAA records that point the domain
 * name (and the machine clients' host name) at the load balancer. Alias records cost
 * nothing per query and follow the load balancer's addresses. The AAAA records answer once
 * the load balancer is dual-stack; until then an AAAA query gets no address, as without them.
 */
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';

export interface GatewayName {
  /** Construct id prefix, for example "Domain". */
  readonly id: string;
  readonly name: string;
}

export function addLoadBalancerAliasRecords(
  scope: Construct,
  zone: route53.IHostedZone,
  loadBalancer: elbv2.ILoadBalancerV2,
  names: readonly GatewayName[],
): route53.RecordSet[] {
  const target = route53.RecordTarget.fromAlias(new targets.LoadBalancerTarget(loadBalancer, { evaluateTargetHealth: true }));
  return names.flatMap(({ id, name }) => [
    new route53.ARecord(scope, `${id}Alias`, { zone, recordName: name, target, comment: 'cdk-looker-gateway: the gateway load balancer' }),
    new route53.AaaaRecord(scope, `${id}AliasIpv6`, { zone, recordName: name, target, comment: 'cdk-looker-gateway: the gateway load balancer' }),
  ]);
}
