/**
 * The one way the gateway makes its Lambda functions: the prebuilt asset of the handler
 * (core/lambda-assets.ts; built by `npm run build`, shipped in the package), Node.js 24 on
 * arm64, JSON logs into an explicit, encrypted log group.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { LAMBDA_ASSET_HANDLER, LambdaAsset } from '../../core/lambda-assets';

export interface GatewayFunctionOptions {
  readonly asset: LambdaAsset;
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

/**
 * The directory of a built asset. The package has it next to its compiled code
 * (`dist/lib/private/` -> `dist/assets/`); run from this repository's sources
 * (`lib/private/` under ts-jest or tsx) it is the build's `dist/assets/`.
 */
export function lambdaAssetDirectory(asset: LambdaAsset): string {
  const candidates = [path.join(__dirname, '..', '..', 'assets', asset.directory), path.join(__dirname, '..', '..', 'dist', 'assets', asset.directory)];
  const found = candidates.find((directory) => existsSync(path.join(directory, 'index.js')));
  if (!found) {
    throw new Error(
      `The Lambda asset of ${asset.entry} is missing: no index.js in ${candidates.join(' or ')}. In a checkout of cdk-looker-gateway run \`npm run build\`; an installed package ships it in dist/assets (reinstall the package).`,
    );
  }
  return found;
}

export function newGatewayFunction(scope: Construct, id: string, options: GatewayFunctionOptions): lambda.Function {
  return new lambda.Function(scope, id, {
    code: lambda.Code.fromAsset(lambdaAssetDirectory(options.asset)),
    handler: LAMBDA_ASSET_HANDLER,
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
  });
}
