/**
 * Where the audit trail goes beyond CloudWatch: a subscription filter on the access, audit and
 * rotation log groups sends every event to one destination (CloudWatch Logs User Guide,
 * "Real-time processing of log data with subscriptions"):
 *   - a Kinesis data stream, or a Firehose stream (Firehose delivers to Splunk, Datadog,
 *     Elastic, OpenSearch, S3 or any HTTP endpoint), written with one role that CloudWatch Logs
 *     assumes (logs.amazonaws.com, limited to this account's log groups by aws:SourceArn);
 *   - a CloudWatch Logs destination in another account (the central logging account owns the
 *     stream and the destination policy that lets this account subscribe; no role here).
 */
import { ArnFormat, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The kinds of destination a subscription filter can send to. */
export enum SiemDestinationKind {
  KINESIS_STREAM = 'kinesis-stream',
  FIREHOSE = 'firehose',
  LOGS_DESTINATION = 'logs-destination',
}

/** A destination for the gateway's logs outside CloudWatch (a SIEM). */
export class SiemDestination {
  /** A Kinesis data stream (its KMS key, if any, is granted too). */
  public static kinesisStream(stream: kinesis.IStream): SiemDestination {
    return new SiemDestination(SiemDestinationKind.KINESIS_STREAM, stream.streamArn, stream);
  }

  /** A Firehose stream, by ARN (arn:aws:firehose:<region>:<account>:deliverystream/<name>). */
  public static firehose(deliveryStreamArn: string): SiemDestination {
    return new SiemDestination(SiemDestinationKind.FIREHOSE, checkedArn(deliveryStreamArn, SiemDestinationKind.FIREHOSE), undefined);
  }

  /** A CloudWatch Logs destination, usually in a central logging account (arn:aws:logs:<region>:<account>:destination:<name>). */
  public static logsDestination(destinationArn: string): SiemDestination {
    return new SiemDestination(SiemDestinationKind.LOGS_DESTINATION, checkedArn(destinationArn, SiemDestinationKind.LOGS_DESTINATION), undefined);
  }

  /** Any of the three by its ARN, as the app's cdk.json gives it (`siemDestinationArn`). */
  public static fromArn(arn: string): SiemDestination {
    const kind = kindOfArn(arn);
    if (kind === undefined) {
      throw new Error(
        `siemDestinationArn ${JSON.stringify(arn)} is not a Kinesis data stream (arn:aws:kinesis:<region>:<account>:stream/<name>), a Firehose stream (arn:aws:firehose:<region>:<account>:deliverystream/<name>) or a CloudWatch Logs destination (arn:aws:logs:<region>:<account>:destination:<name>).`,
      );
    }
    return new SiemDestination(kind, arn, undefined);
  }

  private constructor(
    /** What the ARN names. */
    public readonly kind: SiemDestinationKind,
    /** The destination's ARN. */
    public readonly arn: string,
    private readonly stream: kinesis.IStream | undefined,
  ) {}

  /**
   * The subscription destination for the log groups of `scope`: one role for all of them
   * (none for a CloudWatch Logs destination, whose own policy admits this account).
   * @internal
   */
  public _bind(scope: Construct): logs.ILogSubscriptionDestination {
    if (this.kind === SiemDestinationKind.LOGS_DESTINATION) return { bind: () => ({ arn: this.arn }) };
    const stack = Stack.of(scope);
    const role = new iam.Role(scope, 'SiemForwardingRole', {
      description: "CloudWatch Logs writes the gateway's access, audit and rotation logs to the SIEM destination",
      assumedBy: new iam.ServicePrincipal('logs.amazonaws.com', {
        conditions: { StringLike: { 'aws:SourceArn': stack.formatArn({ service: 'logs', resource: '*', arnFormat: ArnFormat.NO_RESOURCE_NAME }) } },
      }),
    });
    if (this.stream) {
      this.stream.grantWrite(role);
    } else if (this.kind === SiemDestinationKind.KINESIS_STREAM) {
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kinesis:PutRecord', 'kinesis:PutRecords'], resources: [this.arn] }));
    } else {
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['firehose:PutRecord', 'firehose:PutRecordBatch'], resources: [this.arn] }));
    }
    return { bind: () => ({ arn: this.arn, role }) };
  }
}

function kindOfArn(arn: string): SiemDestinationKind | undefined {
  if (Token.isUnresolved(arn)) return undefined;
  const match = /^arn:aws[a-z-]*:(kinesis|firehose|logs):[a-z0-9-]+:\d{12}:(stream\/|deliverystream\/|destination:)[A-Za-z0-9._/-]+$/.exec(arn);
  if (!match) return undefined;
  const [, service, resource] = match;
  if (service === 'kinesis' && resource === 'stream/') return SiemDestinationKind.KINESIS_STREAM;
  if (service === 'firehose' && resource === 'deliverystream/') return SiemDestinationKind.FIREHOSE;
  if (service === 'logs' && resource === 'destination:') return SiemDestinationKind.LOGS_DESTINATION;
  return undefined;
}

function checkedArn(arn: string, kind: SiemDestinationKind): string {
  if (Token.isUnresolved(arn)) return arn;
  if (kindOfArn(arn) !== kind) {
    const example =
      kind === SiemDestinationKind.FIREHOSE
        ? 'arn:aws:firehose:<region>:<account>:deliverystream/<name>'
        : 'arn:aws:logs:<region>:<account>:destination:<name>';
    throw new Error(`SiemDestination ${kind}: ${JSON.stringify(arn)} is not an ARN of that kind; expected ${example}.`);
  }
  return arn;
}
