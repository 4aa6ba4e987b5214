/**
 * Narrow acknowledgements of cdk-nag findings, made right where the resource is made.
 * Each carries the reason a reviewer needs; docs/constructs.md ("cdk-nag findings") lists them all.
 */
import { Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';

/** Acknowledges each rule id on `construct` (and only there) with one reason. */
export function acknowledge(construct: IConstruct, ruleIds: readonly string[], reason: string): void {
  for (const id of ruleIds) Validations.of(construct).acknowledge({ id, reason });
}

export interface LambdaFindingOptions {
  readonly inVpc: boolean;
  readonly deadLetterReason: string;
  /** True when the function has reserved concurrency (the concurrency rules then pass). */
  readonly hasReservedConcurrency?: boolean;
}

const CONCURRENCY_REASON =
  'No reserved concurrency by default: new accounts have a concurrency quota of 10 and reserving part of it fails the deploy. Set reservedConcurrency to bound it.';

/** The findings every gateway Lambda shares, with the reasons that apply to it. */
export function acknowledgeLambdaFindings(fn: lambda.Function, options: LambdaFindingOptions): void {
  acknowledge(fn, ['NIST.800.53.R5-LambdaDLQ', 'HIPAA.Security-LambdaDLQ', 'PCI.DSS.321-LambdaDLQ'], options.deadLetterReason);
  if (!options.hasReservedConcurrency) {
    acknowledge(fn, ['NIST.800.53.R5-LambdaConcurrency', 'HIPAA.Security-LambdaConcurrency', 'PCI.DSS.321-LambdaConcurrency'], CONCURRENCY_REASON);
  }
  const role = fn.role?.node.defaultChild ? fn.role : undefined;
  if (role) {
    acknowledge(
      role,
      [
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        ...(options.inVpc ? ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]'] : []),
      ],
      'The AWS-maintained execution policies Lambda needs to write its logs and (in a VPC) manage its network interfaces; they grant nothing else.',
    );
    acknowledgeDefaultPolicy(role);
    acknowledge(
      role.node.tryFindChild('DefaultPolicy') ?? role,
      ['AwsSolutions-IAM5[Resource::*]'],
      'Only for actions that support no resource-level permissions: X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) and, for the rotation function, secretsmanager:GetRandomPassword that the CDK rotation schedule adds. Every secret and key action names its exact ARN.',
    );
  }
  if (!options.inVpc) {
    acknowledge(
      fn,
      ['NIST.800.53.R5-LambdaInsideVPC', 'HIPAA.Security-LambdaInsideVPC', 'PCI.DSS.321-LambdaInsideVPC'],
      'Given no VPC: the function calls only AWS APIs and the IdP over TLS with IAM-scoped credentials. Pass a VPC to run it inside one.',
    );
  }
}

/** CDK grants write each role's statements to a policy attached to that role only. */
export function acknowledgeDefaultPolicy(role: IConstruct): void {
  const policy = role.node.tryFindChild('DefaultPolicy') ?? role;
  acknowledge(
    policy,
    ['NIST.800.53.R5-IAMNoInlinePolicy', 'HIPAA.Security-IAMNoInlinePolicy', 'PCI.DSS.321-IAMNoInlinePolicy'],
    'The policy CDK grants build for this one role, naming the exact secrets, keys and log groups it may use. A managed policy would be reusable by other principals, which is what least privilege avoids here.',
  );
}
