/**
 * AuthService: the auth Lambda (OIDC login, refresh, claim mapping) behind a PRIVATE
 * REST API that only the gateway fleet can reach, through an interface VPC endpoint
 * whose security group admits the fleet's security group and nothing else.
 *
 * Size: one construct, and about half of it is the TSDoc of its public props
 * (IdentityProviderSettings and the rest), which jsii and API.md read from here.
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
import { resolveIdpSettings, validateIdpSettings, type IdpProblem, type IdpSettings } from '../../core/auth/idp-profiles';
import { MappingRuleSet, validateMappingRules } from '../../core/auth/mapping-rules';
import { REVOCATION_TABLE } from '../../core/auth/revocation-table';

/** The IdP the gateway logs users in with (OpenID Connect, authorization code + PKCE). */
export interface IdentityProviderSettings {
  /**
   * Which IdP this is: `okta`, `entra`, `google`, `auth0`, `keycloak`, `ping`, `cognito`, or
   * `generic` for any other OpenID provider. The profile (docs/idps.md) gives the default of
   * every setting below (scopes, authorization parameters, groups claim, client
   * authentication, logout); each stays overridable, and synth checks the combination.
   * @default "generic"
   */
  readonly provider?: string;
  /** Issuer URL, https, exactly as in the IdP's discovery document. */
  readonly issuer: string;
  /** Client id of the gateway's application at the IdP. */
  readonly clientId: string;
  /**
   * Client secret, stored in Secrets Manager as a plain string (or `{"clientSecret": "..."}`).
   * Read by the auth service only, again after at most a minute, and at once when the IdP
   * answers `invalid_client`: rotate it at the IdP, then put the new value in the secret.
   * @default - none: required unless tokenEndpointAuthMethod is private_key_jwt
   */
  readonly clientSecret?: secretsmanager.ISecret;
  /**
   * How the auth service authenticates at the token endpoint: `client_secret_basic`,
   * `client_secret_post` (Auth0 and Ping accept only the method registered for the
   * application), or `private_key_jwt` with `clientKey` (Entra ID certificate credentials).
   * @default - the profile's
   */
  readonly tokenEndpointAuthMethod?: string;
  /**
   * For private_key_jwt: a secret holding JSON `{"privateKeyPem": "<private key, PEM>",
   * "certificatePem": "<certificate, PEM>", "alg": "RS256"}` (any unencrypted PEM private key; the
   * certificate registered at the IdP gives Entra ID its `x5t#S256`). You rotate it: see
   * docs/idps.md "Rotating a private_key_jwt key".
   * @default - none
   */
  readonly clientKey?: secretsmanager.ISecret;
  /**
   * Scopes requested at login.
   * @default - the profile's (Google and Cognito refuse offline_access; Okta, Entra and Auth0 need it for refresh tokens)
   */
  readonly scopes?: string[];
  /**
   * Extra authorization request parameters, merged over the profile's (Google's:
   * `access_type=offline`, `prompt=consent`, without which it issues no refresh token); a
   * value of "" removes a profile parameter.
   * @default - the profile's
   */
  readonly authorizationParams?: { [name: string]: string };
  /**
   * Where the user's groups are: a JSON pointer (RFC 6901) such as `/groups`,
   * `/realm_access/roles` or `/https:~1~1example.com~1groups`, or the name of one top-level claim.
   * @default - the profile's
   */
  readonly groupsClaim?: string;
  /**
   * Where groups come from: `token` (the groups claim), `microsoft-graph` (the claim, or
   * Microsoft Graph on an Entra overage), `google-directory` (with `googleDirectory`), or `none`.
   * @default - "none" for google, "token" otherwise
   */
  readonly groupsSource?: string;
  /**
   * How long groups read from Microsoft Graph or the Directory API are reused for a session.
   * @default Duration.minutes(15)
   */
  readonly groupsCacheDuration?: Duration;
  /**
   * Microsoft Graph's base URL, for groupsSource microsoft-graph (national clouds differ).
   * @default "https://graph.microsoft.com"
   */
  readonly microsoftGraphUrl?: string;
  /**
   * The Google Workspace Directory API, for groupsSource google-directory.
   * @default - none
   */
  readonly googleDirectory?: GoogleDirectorySettings;
  /**
   * RP-initiated logout: `auto` (the IdP's end_session_endpoint, with id_token_hint), `off`
   * (the gateway session only), or an https URL template with {clientId},
   * {postLogoutRedirectUri}, {idTokenHint} and {state} (Cognito's `/logout`, Auth0's `/v2/logout`).
   * @default "auto"
   */
  readonly endSession?: string;
  /**
   * Entra ID with a multi-tenant issuer (`/organizations` or `/common`): the tenant ids whose
   * users may sign in (the `tid` claim is checked).
   * @default - only the tenant in the issuer
   */
  readonly allowedTenants?: string[];
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

/** A Google service account with domain-wide delegation that reads users' groups. */
export interface GoogleDirectorySettings {
  /** The service account's JSON key file, as a secret (client_email, private_key, token_uri). */
  readonly serviceAccountKey: secretsmanager.ISecret;
  /**
   * A Workspace administrator allowed to read groups: the service account acts as this
   * user (delegated scope https://www.googleapis.com/auth/admin.directory.group.readonly).
   */
  readonly adminEmail: string;
  /** @default "https://admin.googleapis.com/admin/directory/v1" */
  readonly apiUrl?: string;
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
    for (const warning of idpWarnings(props.identityProvider)) {
      Annotations.of(this).addWarningV2(`cdk-looker-gateway:idp-${warning.setting}`, `identityProvider.${warning.message}`);
    }
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
    const idp = props.identityProvider;
    for (const secret of [idp.clientSecret, idp.clientKey, idp.googleDirectory?.serviceAccountKey]) secret?.grantRead(this.function);
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

  /**
   * Broker mode: the auth service becomes Looker's OpenID provider (the `/oauth2/looker/*`
   * routes, docs/looker-oidc.md), for the client `clientId` authenticating with the secret
   * in `clientSecret` (a plain string). LookerGateway calls it with what its `lookerOidc`
   * option creates; Looker must be configured with the same client (LookerOidcConfiguration).
   */
  public serveLookerBroker(clientId: string, clientSecret: secretsmanager.ISecret): void {
    this.function.addEnvironment('LG_LOOKER_CLIENT_ID' satisfies keyof AuthServiceEnvironment, clientId);
    this.function.addEnvironment('LG_LOOKER_CLIENT_SECRET_ARN' satisfies keyof AuthServiceEnvironment, clientSecret.secretArn);
    clientSecret.grantRead(this.function);
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
  validateIdentityProvider(where, props.identityProvider);
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
  try {
    validateMappingRules(props.mappingRules);
  } catch (error) {
    throw new GatewayPropsError(where, `mappingRules: ${(error as Error).message}`);
  }
}

/** The profile and its overrides as validateIdpSettings takes them (values CloudFormation fills in are not checked). */
function idpSettingsOf(idp: IdentityProviderSettings): IdpSettings {
  return {
    provider: idp.provider,
    issuer: idp.issuer,
    scopes: idp.scopes,
    authorizationParams: idp.authorizationParams,
    groupsClaim: idp.groupsClaim,
    tokenEndpointAuthMethod: idp.tokenEndpointAuthMethod,
    endSession: idp.endSession,
    allowedTenants: idp.allowedTenants,
    groupsSource: idp.groupsSource,
  };
}

function hasUnresolved(idp: IdentityProviderSettings): boolean {
  const values = [
    idp.provider,
    idp.issuer,
    idp.groupsClaim,
    idp.tokenEndpointAuthMethod,
    idp.endSession,
    idp.groupsSource,
    ...(idp.scopes ?? []),
    ...(idp.allowedTenants ?? []),
    ...Object.values(idp.authorizationParams ?? {}),
  ];
  return values.some((value) => value !== undefined && Token.isUnresolved(value));
}

/** Every error of the profile and its overrides (validateIdpSettings), and the credentials they need. */
function validateIdentityProvider(where: string, idp: IdentityProviderSettings): void {
  const problems: string[] = [];
  if (!hasUnresolved(idp)) {
    for (const problem of validateIdpSettings(idpSettingsOf(idp))) if (problem.severity === 'error') problems.push(`identityProvider.${problem.message}`);
  }
  const method =
    idp.tokenEndpointAuthMethod !== undefined && !Token.isUnresolved(idp.tokenEndpointAuthMethod)
      ? idp.tokenEndpointAuthMethod
      : resolveIdpSettings(idpSettingsOf(idp)).tokenEndpointAuthMethod;
  if (method === 'private_key_jwt' && !idp.clientKey) {
    problems.push(
      'identityProvider.clientKey is not set: private_key_jwt signs the client assertion with that key; give the secret holding {"privateKeyPem": ..., "certificatePem": ...}.',
    );
  }
  if (method !== 'private_key_jwt' && !idp.clientSecret) {
    problems.push(
      `identityProvider.clientSecret is not set: ${method} sends the client secret; give the secret that holds it (or set tokenEndpointAuthMethod to private_key_jwt with clientKey).`,
    );
  }
  const source = idp.groupsSource ?? resolveIdpSettings(idpSettingsOf(idp)).groupsSource;
  if (source === 'google-directory' && !idp.googleDirectory) {
    problems.push(
      'identityProvider.googleDirectory is not set: groupsSource google-directory reads groups with a service account key and a Workspace administrator to act as; give both.',
    );
  }
  if (idp.googleDirectory && source !== 'google-directory') {
    problems.push(
      `identityProvider.googleDirectory is set but groupsSource is ${JSON.stringify(source)}: set groupsSource to google-directory, or remove googleDirectory.`,
    );
  }
  if (idp.googleDirectory && !Token.isUnresolved(idp.googleDirectory.adminEmail) && !/^[^@\s]+@[^@\s]+$/.test(idp.googleDirectory.adminEmail)) {
    problems.push(
      `identityProvider.googleDirectory.adminEmail ${JSON.stringify(idp.googleDirectory.adminEmail)} is not an e-mail address: give a Workspace administrator who may read groups.`,
    );
  }
  if (idp.groupsCacheDuration) {
    try {
      assertDurationInRange(
        where,
        'identityProvider.groupsCacheDuration',
        idp.groupsCacheDuration,
        Duration.minutes(1),
        Duration.days(1),
        'Groups read from a directory are reused for a session this long: a removed group takes effect within it.',
      );
    } catch (error) {
      problems.push((error as Error).message.replace(`${where}: `, ''));
    }
  }
  if (problems.length === 1) throw new GatewayPropsError(where, problems[0]);
  if (problems.length > 1) throw new GatewayPropsError(where, `the identity provider settings are invalid:\n- ${problems.join('\n- ')}`);
}

/** The working but surprising combinations (validateIdpSettings' warnings), for addWarningV2. */
function idpWarnings(idp: IdentityProviderSettings): IdpProblem[] {
  if (hasUnresolved(idp)) return [];
  return validateIdpSettings(idpSettingsOf(idp)).filter((problem) => problem.severity === 'warning');
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
    // Only what differs from the defaults travels: the environment's 4 KB are shared with the rules.
    ...(idp.provider ? { LG_IDP_PROVIDER: idp.provider } : {}),
    ...(idp.clientSecret ? { LG_IDP_CLIENT_SECRET_ARN: idp.clientSecret.secretArn } : {}),
    ...(idp.clientKey ? { LG_IDP_CLIENT_KEY_SECRET_ARN: idp.clientKey.secretArn } : {}),
    ...(idp.tokenEndpointAuthMethod ? { LG_IDP_TOKEN_AUTH_METHOD: idp.tokenEndpointAuthMethod } : {}),
    ...(idp.scopes ? { LG_IDP_SCOPES: idp.scopes.join(' ') } : {}),
    ...(idp.authorizationParams && Object.keys(idp.authorizationParams).length > 0
      ? { LG_IDP_AUTHORIZATION_PARAMS: JSON.stringify(idp.authorizationParams) }
      : {}),
    ...(idp.groupsClaim ? { LG_IDP_GROUPS_CLAIM: idp.groupsClaim } : {}),
    ...(idp.groupsSource ? { LG_IDP_GROUPS_SOURCE: idp.groupsSource } : {}),
    ...(idp.groupsCacheDuration ? { LG_IDP_GROUPS_CACHE_SECONDS: String(idp.groupsCacheDuration.toSeconds()) } : {}),
    ...(idp.microsoftGraphUrl ? { LG_GRAPH_BASE_URL: idp.microsoftGraphUrl } : {}),
    ...(idp.googleDirectory
      ? {
          LG_GOOGLE_SERVICE_ACCOUNT_SECRET_ARN: idp.googleDirectory.serviceAccountKey.secretArn,
          LG_GOOGLE_ADMIN_EMAIL: idp.googleDirectory.adminEmail,
          ...(idp.googleDirectory.apiUrl ? { LG_GOOGLE_DIRECTORY_URL: idp.googleDirectory.apiUrl } : {}),
        }
      : {}),
    ...(idp.endSession ? { LG_IDP_END_SESSION: idp.endSession } : {}),
    ...(idp.allowedTenants && idp.allowedTenants.length > 0 ? { LG_IDP_ALLOWED_TENANTS: idp.allowedTenants.join(',') } : {}),
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
  // Secret ARNs and the table's name are CloudFormation's to fill in: tokens here, valid at
  // deploy. Any other value that is a token cannot be checked before the deploy.
  const deployTime = (name: string) => name.endsWith('_ARN') || name === 'LG_REVOCATION_TABLE_NAME';
  const entries = Object.entries(environment) as Array<[string, string | undefined]>;
  if (entries.some(([name, value]) => value !== undefined && !deployTime(name) && Token.isUnresolved(value))) return;
  try {
    parseAuthServiceEnvironment(
      Object.fromEntries(entries.map(([name, value]) => [name, value !== undefined && Token.isUnresolved(value) ? 'filled-in-at-deploy' : value])),
    );
  } catch (error) {
    if (error instanceof AuthServiceConfigError) {
      throw new GatewayPropsError(where, `the auth service would refuse this configuration:\n- ${error.problems.join('\n- ')}`);
    }
    throw error;
  }
}
