/**
 * The deployable app in an existing VPC (cdk.json context vpcId, vpcCidrBlock,
 * availabilityZones, privateSubnetIds, publicSubnetIds): imported without lookups, every
 * resource placed in the given subnets, and every mistake reported at synth with the fix.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { newGatewayStack } from './fixtures';

const EXISTING = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  vpcCidrBlock: '10.20.0.0/16',
  availabilityZones: ['eu-west-1a', 'eu-west-1b'],
  privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
  publicSubnetIds: ['subnet-0bbbbbbbbbbbbbbb1', 'subnet-0bbbbbbbbbbbbbbb2'],
};

function synth(context: Record<string, unknown>): Template {
  // The example cdk.json sets natGateways for its new VPC; an existing VPC has its own egress.
  const { stack } = newGatewayStack({ context: { natGateways: undefined, ...context } });
  return Template.fromStack(stack);
}

describe('an existing VPC from context', () => {
  let template: Template;
  beforeAll(() => {
    template = synth(EXISTING);
  });

  test('no VPC, subnet or NAT gateway is made', () => {
    for (const type of ['AWS::EC2::VPC', 'AWS::EC2::Subnet', 'AWS::EC2::NatGateway', 'AWS::EC2::InternetGateway', 'AWS::EC2::FlowLog'])
      template.resourceCountIs(type, 0);
  });

  test('instances run in the private subnets of the given zones; the load balancer sits in the public subnets', () => {
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      VPCZoneIdentifier: EXISTING.privateSubnetIds,
      AvailabilityZones: EXISTING.availabilityZones,
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Subnets: EXISTING.publicSubnetIds, Scheme: 'internet-facing' });
  });

  test('the functions and the auth service endpoint use the private subnets; every security group is in the VPC', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcId: EXISTING.vpcId, SubnetIds: EXISTING.privateSubnetIds, VpcEndpointType: 'Interface' });
    const functions = Object.values(template.findResources('AWS::Lambda::Function')).filter((f) => f.Properties.VpcConfig);
    expect(functions.length).toBeGreaterThanOrEqual(1);
    for (const fn of functions) expect(fn.Properties.VpcConfig.SubnetIds).toEqual(EXISTING.privateSubnetIds);
    for (const group of Object.values(template.findResources('AWS::EC2::SecurityGroup'))) expect(group.Properties.VpcId).toBe(EXISTING.vpcId);
  });

  test('an internal gateway needs no public subnets and admits the VPC CIDR by default (HTTPS, and plain HTTP that only redirects)', () => {
    const internal = synth({ ...EXISTING, publicSubnetIds: undefined, internetFacing: false });
    internal.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Subnets: EXISTING.privateSubnetIds, Scheme: 'internal' });
    internal.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [
        { CidrIp: EXISTING.vpcCidrBlock, FromPort: 443, ToPort: 443, IpProtocol: 'tcp', Description: 'HTTPS from clients' },
        { CidrIp: EXISTING.vpcCidrBlock, FromPort: 80, ToPort: 80, IpProtocol: 'tcp', Description: 'HTTP from clients (redirected to HTTPS)' },
      ],
    });
  });
});

describe('existing VPC settings that cannot work fail at synth with the fix', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a VPC id that is not one', { vpcId: 'my-vpc' }, /vpcId "my-vpc" is not a VPC id \(vpc- and 8 or 17 hex digits/],
    [
      'one zone',
      { availabilityZones: ['eu-west-1a'], privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1'], publicSubnetIds: ['subnet-0bbbbbbbbbbbbbbb1'] },
      /availabilityZones \["eu-west-1a"\] must list at least 2 zones/,
    ],
    [
      'fewer private subnets than zones',
      { privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1'] },
      /privateSubnetIds has 1 subnet\(s\) for 2 zone\(s\): give one subnet per zone, in the order of availabilityZones/,
    ],
    ['an internet-facing gateway without public subnets', { publicSubnetIds: undefined }, /publicSubnetIds is not set: give one subnet id per zone/],
    [
      'a subnet id that is not one',
      { privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'private-b'] },
      /privateSubnetIds has \["private-b"\]: give subnet ids such as "subnet-0123456789abcdef0"/,
    ],
    [
      'a subnet both private and public',
      { publicSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'] },
      /\["subnet-0aaaaaaaaaaaaaaa1"\] is both a private and a public subnet/,
    ],
    ['no VPC CIDR', { vpcCidrBlock: undefined }, /vpcCidrBlock undefined must be the VPC's IPv4 CIDR/],
    ['NAT gateways for an existing VPC', { natGateways: 2 }, /natGateways applies to a new VPC only/],
  ];
  test.each(cases)('%s', (_, override, message) => {
    expect(() => synth({ ...EXISTING, ...override })).toThrow(message);
  });

  test('subnets or zones without a vpcId', () => {
    expect(() => synth({ privateSubnetIds: EXISTING.privateSubnetIds })).toThrow(
      /privateSubnetIds set without vpcId: they describe an existing VPC\. Set vpcId too, or remove them to get a new VPC\./,
    );
  });

  test('every problem is reported at once', () => {
    expect(() => synth({ ...EXISTING, vpcId: 'vpc-1', publicSubnetIds: undefined })).toThrow(/vpcId "vpc-1" is not a VPC id[\s\S]*publicSubnetIds is not set/);
  });
});
