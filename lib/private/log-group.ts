import { RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** A log group with the gateway's retention and KMS key; kept on stack deletion (it is the audit trail). */
export function newEncryptedLogGroup(scope: Construct, id: string, encryptionKey: kms.IKey, retention: logs.RetentionDays): logs.LogGroup {
  return new logs.LogGroup(scope, id, {
    encryptionKey,
    retention,
    removalPolicy: RemovalPolicy.RETAIN,
  });
}
