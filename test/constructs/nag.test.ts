/**
 * The four cdk-nag packs (AWS Solutions, NIST 800-53 rev 5, HIPAA Security, PCI DSS 3.2.1)
 * on the full stack: no unacknowledged finding, and every acknowledgement sits on a
 * resource (never on the stack or the app).
 */
import { Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { GatewayNagPacks } from '../../lib/nag';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGateway } from '../../lib/looker-gateway';
import { newEmptyStack, newGatewayStack } from './fixtures';

function acknowledgementsUnder(scope: IConstruct): Array<{ path: string; id: string; reason: string }> {
  return scope.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  );
}

describe('cdk-nag on the full stack', () => {
  const { app, stack } = newGatewayStack();

  test('no errors and no warnings in any of the four packs', () => {
    const findings = GatewayNagPacks.findings(stack);
    expect(findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect(findings).toEqual([]);
  });

  test('with hostedZoneId/hostedZoneName (ACM certificate, alias records, export permission): no finding either', () => {
    const { stack: withZone } = newGatewayStack({ context: { hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' } });
    expect(GatewayNagPacks.findings(withZone)).toEqual([]);
  });

  test('the packs are really checking: an unacknowledged violation is reported', () => {
    const { stack: other } = newGatewayStack();
    const bucket = new (require('aws-cdk-lib/aws-s3').Bucket)(other, 'PlainBucket');
    const rules = GatewayNagPacks.findings(other)
      .filter((f) => f.resources.some((r) => r.startsWith(bucket.node.path)))
      .map((f) => f.rule);
    expect(rules).toEqual(expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10', 'NIST.800.53.R5-S3BucketLoggingEnabled']));
  });

  test('an internal gateway in a VPC of the user has no finding under the gateway', () => {
    const stack = newEmptyStack();
    const vpc = new ec2.Vpc(stack, 'UserVpc', { maxAzs: 2 });
    const gateway = new LookerGateway(stack, 'Gateway', {
      domainName: 'looker.example.com',
      identityProvider: { issuer: 'https://login.example.com', clientId: 'gateway', clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'S', 'idp') },
      mappingRules: { rules: [{ name: 'all', match: { emailDomains: ['example.com'] }, grant: { roles: ['Viewer'] } }] },
      looker: LookerBackend.fromDnsName('looker.internal.example.com'),
      vpc,
      internetFacing: false,
    });
    const underGateway = GatewayNagPacks.findings(stack).filter((f) => f.resources.some((r) => r.startsWith(`${gateway.node.path}/`)));
    expect(underGateway).toEqual([]);
  });

  test('every acknowledgement is on a resource below the stack, with a real reason', () => {
    // Only cdk-nag rules: aws-cdk-lib acknowledges its own CloudFormation-Validate rules on the stack.
    const acknowledgements = acknowledgementsUnder(app).filter((ack) => /^(AwsSolutions|NIST\.800\.53\.R5|HIPAA\.Security|PCI\.DSS\.321)-/.test(ack.id));
    expect(acknowledgements.length).toBeGreaterThan(20);
    for (const ack of acknowledgements) {
      expect(ack.path).not.toBe(stack.node.path);
      expect(ack.path.startsWith(`${stack.node.path}/`)).toBe(true);
      expect(ack.reason.length).toBeGreaterThan(40);
    }
  });
});
