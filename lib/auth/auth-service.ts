/**
 * AuthService: the auth Lambda (OIDC login, refresh, claim mapping) behind a PRIVATE
 * REST API that only the gateway fleet can reach, through an interface VPC endpoint
 * whose security group admits the fleet's security group and nothing else.
 */
import { Annotations, Aws, Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { IGatewayKeys } from '../keys/gateway-keys';
import { lambdaEnvironmentProblems } from '../private/lambda-environment';
import { newGatewayFunction } from '../private/gateway-function';
import { LAMBDA_ASSETS } from '../../core/lambda-assets';
import { newEncryptedLogGroup } from '../private/log-group';
import { acknowledge, acknowledgeLambdaFindings } from '../private/nag-acknowledgements';
import { assertDomainName, assertDurationInRange, assertHttpsUrl, assertIntegerInRange, assertNonEmptyString, GatewayPropsError } from '../private/validation';
import { DEFAULT_SESSION_TTL_SECONDS } from '../../core/session-contract';
import { AuthServiceConfigError, AuthServiceEnvironment, parseAuthServiceEnvironment } from '../../core/auth/environment';
import { MappingRuleSet, validateMappingRules } from '../../core/auth/mapping-rules';
import { REVOCATION_TABLE } from '../../core/auth/revocation-table';

/** The IdP the gateway logs users in with (OpenID Connect, authorization code + PKCE). */
export interface IdentityProviderSettings {
  /** Issuer URL, https, exactly as in the IdP's discovery document. */
  readonly issuer: string;
  /** Client id of the gateway's application at the IdP. */
  readonly clientId: string;
  /** Client secret, stored in Secrets Manager as a plain string. Read by the auth service only. */
  readonly clientSecret: secretsmanager.ISecret;
  /**
   * Scopes requested at login.
   * @default ["openid", "email", "profile", "offline_access"]
   */
  readonly scopes?: string[];
  /**
   * Claim that holds the user's IdP groups.
   * @default "groups"
   */
  readonly groupsClaim?: string;
  /**
   * Treat an e-mail address that comes WITHOUT an `email_verified` claim as verified.
   * Only for IdPs that never send the claim and where users cannot set their own address
   * (Microsoft Entra ID with admin-managed mail). By default only `email_verified: true`
   * counts; an explicit `false` never counts. Unverified addresses are ignored by
   * `emailDomains` rules, by `claims` conditions on `email`, and are left out of the
   * session (so never X-Forwarded-Email or an e-mail X-Forwarded-User).
   * @default false
   */
  readonly trustUnverifiedEmail?: boolean;
}

export interface AuthServiceProps {
  /** VPC of the fleet: the API's interface endpoint is made in it. */
  readonly vpc: ec2.IVpc;
  /** Subnets for the interface endpoint and the Lambda. @default - private subnets with egress */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** The gateway's keys: the service reads the signing and cookie keys. */
  readonly keys: IGatewayKeys;
  /** Host name users open (the gateway's own origin), for example "looker.example.com". */
  readonly domainName: string;
  readonly identityProvider: IdentityProviderSettings;
  /** Rules from IdP groups and claims to Looker roles, groups and attributes. Deny by default. */
  readonly mappingRules: MappingRuleSet;
  /**
   * Lifetime of a session token; HAProxy refreshes it inline when it expires.
   * @default Duration.minutes(10)
   */
  readonly sessionLifetime?: Duration;
  /**
   * Log group of the function (its JSON audit events land here).
   * @default - a new log group encrypted with the keys' KMS key, one year retention
   */
  readonly auditLogGroup?: logs.ILogGroup;
  /**
   * Steady-state request rate limit of the API (requests per second).
   * @default 200
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst limit of the API (requests).
   * @default 400
   */
  readonly throttlingBurstLimit?: number;
  /**
   * Reserved concurrency of the function.
   * @default - none (unreserved account concurrency)
   */
  readonly reservedConcurrency?: number;
  /**
   * Retention of the API's access log.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly accessLogRetention?: logs.RetentionDays;
}

const MIN_SESSION = Duration.minutes(1);
const MAX_SESSION = Duration.minutes(60);
const STAGE_NAME = 'gateway';

/**
 * The auth service: the auth Lambda behind a PRIVATE REST API that only what is let in
 * through `connections` (the gateway fleet) can reach, through its interface VPC endpoint.
 */
export class AuthService extends Construct implements ec2.IConnectable {
  public readonly function: lambda.Function;
  public readonly api: apigateway.LambdaRestApi;
  public readonly endpoint: ec2.InterfaceVpcEndpoint;
  public readonly auditLogGroup: logs.ILogGroup;
  public readonly accessLogGroup: logs.ILogGroup;
  /** Host name HAProxy connects to (resolves to the interface endpoint inside the VPC). */
  public readonly hostName: string;
  /** Path prefix of the stage that HAProxy puts before /oauth2/... */
  public readonly stagePath: string;
  public readonly sessionLifetime: Duration;
  /**
   * Revoked sessions (logout): read and written by the function, listed to the fleet
   * through `/oauth2/revocations`. On demand, encrypted with the gateway's key,
   * point-in-time recovery on, items expire through TTL.
   */
  public readonly revocationTable: dynamodb.Table;
  /**
   * The API's interface endpoint, on HTTPS (443): nothing is let in by default. The gateway
   * fleet is, with `authService.connections.allowDefaultPortFrom(fleet)`.
   */
  public readonly connections: ec2.Connections;

  constructor(scope: Construct, id: string, props: AuthServiceProps) {
    super(scope, id);
    const where = `AuthService ${this.node.path}`;
    validateAuthServiceProps(where, props);
    this.sessionLifetime = props.sessionLifetime ?? Duration.seconds(DEFAULT_SESSION_TTL_SECONDS);
    const encryptionKey: kms.IKey = props.keys.encryptionKey;
    const subnets = props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
    this.revocationTable = newRevocationTable(this, encryptionKey);
    const environment = authFunctionEnvironment({
      domainName: props.domainName,
      identityProvider: props.identityProvider,
      mappingRules: props.mappingRules,
      sessionLifetime: this.sessionLifetime,
      keys: props.keys,
      revocationTable: this.revocationTable,
    });
    checkEnvironmentWithTheServiceParser(where, environment);
    if (props.identityProvider.trustUnverifiedEmail === true) {
      Annotations.of(this).addWarningV2(
        'cdk-looker-gateway:trust-unverified-email',
        'identityProvider.trustUnverifiedEmail is true: an e-mail address without an email_verified claim counts as verified for emailDomains rules and the session. Use it only with an IdP whose users cannot set their own address.',
      );
    }

    this.auditLogGroup = props.auditLogGroup ?? newEncryptedLogGroup(this, 'AuditLogs', encryptionKey, logs.RetentionDays.ONE_YEAR);
    this.function = newGatewayFunction(this, 'Function', {
      asset: LAMBDA_ASSETS.auth,
      description: 'cdk-looker-gateway: OIDC login, refresh and claim mapping',
      environment: { ...environment },
      logGroup: this.auditLogGroup,
      timeout: Duration.seconds(15),
      memorySize: 512,
      vpc: props.vpc,
      vpcSubnets: subnets,
      reservedConcurrentExecutions: props.reservedConcurrency,
    });
    // Checked on the final environment (whatever else is added to it later) when the app synthesizes.
    this.node.addValidation({ validate: () => lambdaEnvironmentProblems(this.function) });
    props.keys.grantReadAuthServiceMaterial(this.function);
    props.identityProvider.clientSecret.grantRead(this.function);
    grantRevocationTableUse(this.revocationTable, encryptionKey, this.function);
    acknowledgeLambdaFindings(this.function, {
      inVpc: true,
      deadLetterReason: 'Invoked synchronously by API Gateway: a failed request is answered (502) and retried by the browser, there is no event to park.',
      hasReservedConcurrency: props.reservedConcurrency !== undefined,
    });

    this.endpoint = new ec2.InterfaceVpcEndpoint(this, 'ApiEndpoint', {
      vpc: props.vpc,
      service: ec2.InterfaceVpcEndpointAwsService.APIGATEWAY,
      subnets: subnets,
      privateDnsEnabled: true,
      // No rule by default: only the fleet is let in (through connections).
      open: false,
    });
    this.connections = new ec2.Connections({ securityGroups: this.endpoint.connections.securityGroups, defaultPort: ec2.Port.tcp(443) });

    this.accessLogGroup = newEncryptedLogGroup(this, 'ApiAccessLogs', encryptionKey, props.accessLogRetention ?? logs.RetentionDays.ONE_YEAR);
    const throttlingRateLimit = props.throttlingRateLimit ?? 200;
    const throttlingBurstLimit = props.throttlingBurstLimit ?? 400;
    this.api = new apigateway.LambdaRestApi(this, 'Api', {
      handler: this.function,
      proxy: true,
      description: 'cdk-looker-gateway auth service (private: reachable only through the VPC endpoint)',
      endpointConfiguration: { types: [apigateway.EndpointType.PRIVATE], vpcEndpoints: [this.endpoint] },
      policy: privateApiPolicy(this.endpoint),
      cloudWatchRole: true,
      deployOptions: {
        stageName: STAGE_NAME,
        tracingEnabled: true,
        // Execution logs at ERROR only and never request/response bodies: they carry cookies.
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        throttlingRateLimit,
        throttlingBurstLimit,
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields({
          caller: false,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: false,
        }),
      },
    });
    this.hostName = `${this.api.restApiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`;
    this.stagePath = `/${STAGE_NAME}`;
    this.acknowledgeApiFindings();
  }

  private acknowledgeApiFindings(): void {
    const api = this.api;
    const cloudWatchRole = api.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      acknowledge(
        cloudWatchRole,
        ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]'],
        'The AWS-maintained role policy API Gateway needs to write execution logs (account setting); it grants log writing only.',
      );
    }
    acknowledge(
      api,
      ['AwsSolutions-APIG2'],
      'A Lambda proxy API: the auth service validates every request itself and answers bad ones with a 4xx and a reason.',
    );
    for (const method of api.methods) {
      acknowledge(
        method,
        ['AwsSolutions-APIG4', 'AwsSolutions-COG4'],
        'This API is the authentication service itself (login, callback, refresh): it cannot require the session it issues. It is private and its resource policy admits only the VPC endpoint that only the fleet can reach.',
      );
    }
    acknowledge(
      api.deploymentStage,
      ['AwsSolutions-APIG3', 'NIST.800.53.R5-APIGWAssociatedWithWAF', 'PCI.DSS.321-APIGWAssociatedWithWAF'],
      'Private API reachable only from the gateway fleet through the VPC endpoint; client traffic is filtered at the fleet. Associate a web ACL yourself if policy requires one.',
    );
    acknowledge(
      api.deploymentStage,
      ['NIST.800.53.R5-APIGWCacheEnabledAndEncrypted', 'HIPAA.Security-APIGWCacheEnabledAndEncrypted', 'PCI.DSS.321-APIGWCacheEnabledAndEncrypted'],
      'Caching is deliberately off: every answer is per user (cookies, one-time login state) and must never be served from a cache.',
    );
    acknowledge(
      api.deploymentStage,
      ['NIST.800.53.R5-APIGWSSLEnabled', 'HIPAA.Security-APIGWSSLEnabled', 'PCI.DSS.321-APIGWSSLEnabled'],
      'The integration is a Lambda function (AWS_PROXY), not an HTTP backend: a stage client certificate authenticates API Gateway to HTTP backends only.',
    );
  }
}

function privateApiPolicy(endpoint: ec2.IInterfaceVpcEndpoint): iam.PolicyDocument {
  return new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'DenyOutsideTheGatewayEndpoint',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['execute-api:Invoke'],
        resources: ['execute-api:/*'],
        conditions: { StringNotEquals: { 'aws:SourceVpce': endpoint.vpcEndpointId } },
      }),
      new iam.PolicyStatement({
        sid: 'AllowThroughTheGatewayEndpoint',
        principals: [new iam.AnyPrincipal()],
        actions: ['execute-api:Invoke'],
        resources: ['execute-api:/*'],
        conditions: { StringEquals: { 'aws:SourceVpce': endpoint.vpcEndpointId } },
      }),
    ],
  });
}

function validateAuthServiceProps(where: string, props: AuthServiceProps): void {
  assertDomainName(where, 'domainName', props.domainName);
  const trust: unknown = props.identityProvider.trustUnverifiedEmail;
  if (trust !== undefined && typeof trust !== 'boolean') {
    throw new GatewayPropsError(
      where,
      `identityProvider.trustUnverifiedEmail is ${JSON.stringify(trust)}: use true or false (default false: only addresses the IdP marks email_verified count).`,
    );
  }
  assertHttpsUrl(where, 'identityProvider.issuer', props.identityProvider.issuer);
  assertNonEmptyString(where, 'identityProvider.clientId', props.identityProvider.clientId);
  if (props.sessionLifetime) {
    assertDurationInRange(
      where,
      'sessionLifetime',
      props.sessionLifetime,
      MIN_SESSION,
      MAX_SESSION,
      'Sessions are refreshed inline when they expire; 10 minutes is the default and a good balance between revocation delay and refresh calls.',
    );
  }
  for (const [prop, value] of [
    ['throttlingRateLimit', props.throttlingRateLimit],
    ['throttlingBurstLimit', props.throttlingBurstLimit],
  ] as const) {
    if (value !== undefined)
      assertIntegerInRange(where, prop, value, 1, 10_000, 'Size it for logins and refreshes: about one refresh per user per session lifetime.');
  }
  if (props.reservedConcurrency !== undefined)
    assertIntegerInRange(where, 'reservedConcurrency', props.reservedConcurrency, 1, 1000, 'Or leave it unset to use the unreserved account concurrency.');
  const scopes = props.identityProvider.scopes;
  if (scopes && !scopes.some((s) => Token.isUnresolved(s)) && !scopes.includes('openid')) {
    throw new GatewayPropsError(
      where,
      `identityProvider.scopes ${JSON.stringify(scopes)} lacks "openid": OpenID Connect needs it. Add "openid" (and "offline_access" for refresh tokens).`,
    );
  }
  try {
    validateMappingRules(props.mappingRules);
  } catch (error) {
    throw new GatewayPropsError(where, `mappingRules: ${(error as Error).message}`);
  }
}

interface AuthEnvironmentInput {
  readonly domainName: string;
  readonly identityProvider: IdentityProviderSettings;
  readonly mappingRules: MappingRuleSet;
  readonly sessionLifetime: Duration;
  readonly keys: IGatewayKeys;
  readonly revocationTable: dynamodb.ITable;
}

/** The gateway's public origin; also the `iss` and `aud` of its session tokens. */
export function gatewayOrigin(domainName: string): string {
  return `https://${domainName}`;
}

/** The auth Lambda's environment, typed by the auth service's own description of it. */
export function authFunctionEnvironment(input: AuthEnvironmentInput): AuthServiceEnvironment {
  const origin = gatewayOrigin(input.domainName);
  const idp = input.identityProvider;
  return {
    LG_IDP_ISSUER: idp.issuer,
    LG_IDP_CLIENT_ID: idp.clientId,
    LG_IDP_CLIENT_SECRET_ARN: idp.clientSecret.secretArn,
    ...(idp.scopes ? { LG_IDP_SCOPES: idp.scopes.join(' ') } : {}),
    ...(idp.groupsClaim ? { LG_IDP_GROUPS_CLAIM: idp.groupsClaim } : {}),
    ...(idp.trustUnverifiedEmail === true ? { LG_IDP_TRUST_UNVERIFIED_EMAIL: 'true' } : {}),
    LG_PUBLIC_BASE_URL: origin,
    LG_SESSION_ISSUER: origin,
    LG_SESSION_AUDIENCE: origin,
    LG_SESSION_TTL_SECONDS: String(input.sessionLifetime.toSeconds()),
    LG_MAPPING_RULES: JSON.stringify(input.mappingRules),
    LG_SIGNING_KEYS_SECRET_ARN: input.keys.signingKeys.secretArn,
    LG_COOKIE_KEYS_SECRET_ARN: input.keys.cookieKeys.secretArn,
    LG_REVOCATION_TABLE_NAME: input.revocationTable.tableName,
  };
}

/**
 * The session revocation table. Its items matter for at most the refresh-cookie lifetime
 * (they expire through TTL), so it is destroyed with the stack: nothing in it outlives
 * the gateway that reads it.
 */
function newRevocationTable(scope: Construct, encryptionKey: kms.IKey): dynamodb.Table {
  const table = new dynamodb.Table(scope, 'RevocationTable', {
    partitionKey: { name: REVOCATION_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
    sortKey: { name: REVOCATION_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
    encryptionKey,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    timeToLiveAttribute: REVOCATION_TABLE.timeToLive,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  acknowledge(
    table,
    ['NIST.800.53.R5-DynamoDBInBackupPlan', 'HIPAA.Security-DynamoDBInBackupPlan'],
    'Short-lived revocation records (each expires within the refresh-cookie lifetime): point-in-time recovery is on; an AWS Backup plan would keep copies of records that are void by the time they could be restored.',
  );
  return table;
}

/**
 * The function reads and writes items (GetItem, PutItem, Query: no Scan, no delete) and
 * may use the table's key only through DynamoDB.
 */
function grantRevocationTableUse(table: dynamodb.ITable, key: kms.IKey, grantee: iam.IGrantable): void {
  iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'], resourceArns: [table.tableArn] });
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Aws.REGION}.amazonaws.com` } },
    }),
  );
}

/** Runs the auth service's own parser at synth, so what the Lambda would refuse at cold start fails here. */
function checkEnvironmentWithTheServiceParser(where: string, environment: AuthServiceEnvironment): void {
  if (Token.isUnresolved(environment.LG_IDP_ISSUER) || Token.isUnresolved(environment.LG_PUBLIC_BASE_URL)) return;
  // The table's name is CloudFormation's to choose: a token here, a valid name at deploy.
  const tableName = environment.LG_REVOCATION_TABLE_NAME;
  try {
    parseAuthServiceEnvironment({
      ...environment,
      LG_REVOCATION_TABLE_NAME: tableName && Token.isUnresolved(tableName) ? 'named-by-cloudformation' : tableName,
    });
  } catch (error) {
    if (error instanceof AuthServiceConfigError) {
      throw new GatewayPropsError(where, `the auth service would refuse this configuration:\n- ${error.problems.join('\n- ')}`);
    }
    throw error;
  }
}
