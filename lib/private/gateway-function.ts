/**
 * The one way the gateway makes its Lambda functions: NodejsFunction bundled locally by
 * esbuild with the settings in lambda-bundling.ts (the bundle the tests run is the one
 * that deploys), Node.js 24 on arm64, JSON logs into an explicit, encrypted log group.
 */
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { BUNDLING, LambdaBundle, REPO_ROOT } from '../../core/lambda-assets';

export interface GatewayFunctionOptions {
  readonly bundle: LambdaBundle;
  readonly description: string;
  readonly environment: Record<string, string>;
  readonly logGroup: logs.ILogGroup;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly reservedConcurrentExecutions?: number;
  readonly applicationLogLevel?: lambda.ApplicationLogLevel;
}

export function newGatewayFunction(scope: Construct, id: string, options: GatewayFunctionOptions): nodejs.NodejsFunction {
  return new nodejs.NodejsFunction(scope, id, {
    entry: path.join(REPO_ROOT, options.bundle.entry),
    handler: 'handler',
    description: options.description,
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: options.memorySize,
    timeout: options.timeout,
    environment: options.environment,
    logGroup: options.logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    applicationLogLevelV2: options.applicationLogLevel ?? lambda.ApplicationLogLevel.INFO,
    systemLogLevelV2: lambda.SystemLogLevel.WARN,
    tracing: lambda.Tracing.ACTIVE,
    vpc: options.vpc,
    vpcSubnets: options.vpc ? (options.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }) : undefined,
    reservedConcurrentExecutions: options.reservedConcurrentExecutions,
    depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
    projectRoot: REPO_ROOT,
    bundling: {
      forceDockerBundling: false,
      minify: BUNDLING.minify,
      sourceMap: BUNDLING.sourceMap,
      target: BUNDLING.target,
      format: BUNDLING.format === 'cjs' ? nodejs.OutputFormat.CJS : nodejs.OutputFormat.ESM,
      externalModules: [...BUNDLING.externalModules],
      mainFields: [...BUNDLING.mainFields],
    },
  });
}
