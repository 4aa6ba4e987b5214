import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/**
 * The gateway's customer-managed KMS key: encrypts the secrets, the log groups and the
 * alarm topic. Yearly automatic rotation; CloudWatch Logs may use it only for log groups
 * of this account and region.
 */
export function newGatewayEncryptionKey(scope: Construct, id: string): kms.Key {
  const key = new kms.Key(scope, id, {
    description: 'cdk-looker-gateway: secrets, log groups and alarm topic',
    enableKeyRotation: true,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  allowCloudWatchLogs(key);
  denyGrantsExceptForAwsServices(key);
  return key;
}

/**
 * Grants on the key only for AWS services acting for a resource (Control Tower
 * CT.KMS.PR.3): nothing in the gateway creates grants itself, and a grant outlives the
 * policy that allowed it, so no principal may make one on its own account.
 */
export function denyGrantsExceptForAwsServices(key: kms.IKey): void {
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DenyGrantsExceptForAwsServices',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:CreateGrant'],
      resources: ['*'],
      conditions: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
    }),
  );
}

/** Lets CloudWatch Logs encrypt log groups of this account and region with `key`. */
export function allowCloudWatchLogs(key: kms.IKey): void {
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowCloudWatchLogsOfThisAccount',
      principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      // In a key policy "*" means this key.
      resources: ['*'],
      conditions: {
        ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` },
      },
    }),
  );
}
