/**
 * Lambda refuses a function whose environment variables exceed 4 KB in aggregate (Lambda
 * quotas, "Function environment variables": 4 KB, https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
 * CloudFormation would only fail at deploy; this finds it at synth, with the size and the fix.
 *
 * The size counted is the JSON of the variables map (names, values, quotes and separators):
 * at least what Lambda counts. A value CloudFormation fills in at deploy (a secret ARN, a
 * table name) is counted as DEPLOY_TIME_VALUE_BYTES, more than any such ARN or name.
 */
import { Stack, Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';

export const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;
const DEPLOY_TIME_VALUE_BYTES = 256;

/** The byte size of the environment as counted here, and of each variable. */
export function environmentSize(variables: Record<string, unknown>): { total: number; byVariable: Record<string, number> } {
  const byVariable: Record<string, number> = {};
  let total = 2; // {}
  for (const [name, value] of Object.entries(variables)) {
    const valueBytes = typeof value === 'string' && !Token.isUnresolved(value) ? Buffer.byteLength(JSON.stringify(value)) : DEPLOY_TIME_VALUE_BYTES;
    byVariable[name] = Buffer.byteLength(JSON.stringify(name)) + 1 + valueBytes;
    total += byVariable[name] + 1;
  }
  return { total: Object.keys(variables).length > 0 ? total - 1 : total, byVariable };
}

/** Validation of a function's final environment: one message naming the size, the biggest variables and the fix, or none. */
export function lambdaEnvironmentProblems(fn: lambda.Function): string[] {
  const resolved = Stack.of(fn).resolve((fn.node.defaultChild as lambda.CfnFunction).environment) as { variables?: Record<string, unknown> } | undefined;
  const variables = resolved?.variables ?? {};
  const { total, byVariable } = environmentSize(variables);
  if (total <= LAMBDA_ENVIRONMENT_LIMIT_BYTES) return [];
  const biggest = Object.entries(byVariable)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([name, bytes]) => `${name} ${bytes} bytes`)
    .join(', ');
  return [
    `the environment of function ${fn.node.path} is ${total} bytes, over Lambda's ${LAMBDA_ENVIRONMENT_LIMIT_BYTES}-byte limit for all variables together (largest: ${biggest}); the deploy would fail. ` +
      'If it is the mapping rules: fewer, broader rules fit (one rule may match several groups and grant several roles), shorter rule and group names too; only the rules travel in LG_MAPPING_RULES.',
  ];
}
