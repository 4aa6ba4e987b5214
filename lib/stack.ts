/**
 * LookerGatewayStack: the deployable stack of bin/app.ts, configured from cdk.json
 * context (or `-c key=value` on the command line). Environment-agnostic: no lookups, so
 * `cdk synth` works without an AWS account.
 *
 * Size: most of it is the cdk.json contract (one setting, its TSDoc, its key and its reader
 * per context key, about 60), kept in one file so a setting is added in one place and
 * docs/deployable-app.md can be checked against CONTEXT_KEYS; the stack itself is short.
 */
import { Annotations, CfnOutput, Duration, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct, Node } from 'constructs';
import type { GoogleDirectorySettings } from './auth/auth-service';
import { MappingRuleSet } from '../core/auth/mapping-rules';
import { UserClaim } from '../core/haproxy/options';
import { ClientCertificateAuthority, MachineClient } from './fleet/machine-clients';
import { newGatewayEncryptionKey } from './keys/encryption-key';
import { FrontendCertificate } from './keys/frontend-certificate';
import { LookerBackend } from './looker/looker-backend';
import { LookerGroupRoles, LookerOidcSettings } from './looker/looker-oidc-configuration';
import { LookerGateway, LookerGatewayProps } from './looker-gateway';
import { SiemDestination } from './observability/siem-destination';
import { acknowledge } from './private/nag-acknowledgements';
import { GatewayPropsError } from './private/validation';

/** The settings of the deployable app, as read from context. */
export interface GatewayAppSettings {
  readonly domainName: string;
  /**
   * ID of the Route 53 public hosted zone that holds domainName (and machineHostName), for
   * example "Z0123456789ABCDEFGHIJ": the stack makes the DNS records and an exportable ACM
   * certificate validated there. Give hostedZoneName with it (no lookup at synth).
   * @default - no DNS records, a self-signed certificate unless frontendCertificateSecretArn is set
   */
  readonly hostedZoneId?: string;
  /** The zone's name, for example "example.com". @default - required with hostedZoneId */
  readonly hostedZoneName?: string;
  readonly idpIssuer: string;
  readonly idpClientId: string;
  /** @default - a placeholder secret is created (put the real client secret in it) */
  readonly idpClientSecretArn?: string;
  /** @default "openid email profile offline_access" */
  readonly idpScopes?: string[];
  /** @default "groups" */
  readonly idpGroupsClaim?: string;
  /**
   * Count an e-mail address the IdP sends without `email_verified` as verified (Entra ID).
   * @default false
   */
  readonly idpTrustUnverifiedEmail?: boolean;
  /** The IdP's profile: okta, entra, google, auth0, keycloak, ping, cognito or generic (docs/idps.md). @default "generic" */
  readonly idpProvider?: string;
  /** Extra authorization parameters, a JSON object of strings merged over the profile's. @default - the profile's */
  readonly idpAuthorizationParams?: { [name: string]: string };
  /** client_secret_basic, client_secret_post or private_key_jwt. @default - the profile's; private_key_jwt when idpClientKeySecretArn is set */
  readonly idpTokenEndpointAuthMethod?: string;
  /** Full ARN of the secret with the private_key_jwt key ({"privateKeyPem", "certificatePem"}). @default - none */
  readonly idpClientKeySecretArn?: string;
  /** auto, off, or an https URL template with {clientId}, {postLogoutRedirectUri}, {idTokenHint}, {state}. @default "auto" */
  readonly idpEndSession?: string;
  /** Entra ID with a multi-tenant issuer: the tenant ids that may sign in. @default - the issuer's tenant only */
  readonly idpAllowedTenants?: string[];
  /** token, microsoft-graph, google-directory or none. @default - "none" for google, "token" otherwise */
  readonly idpGroupsSource?: string;
  /** How long groups read from Graph or the Directory API are reused for a session, minutes. @default 15 */
  readonly idpGroupsCacheMinutes?: number;
  /** Microsoft Graph's base URL (national clouds). @default "https://graph.microsoft.com" */
  readonly idpMicrosoftGraphUrl?: string;
  /** Full ARN of the secret with the Google service account key file (groupsSource google-directory). @default - none */
  readonly idpGoogleServiceAccountSecretArn?: string;
  /** The Workspace administrator the service account acts as. @default - none */
  readonly idpGoogleAdminEmail?: string;
  /** The claim sent as X-Forwarded-User: "sub" or "email". @default "sub" */
  readonly userClaim?: string;
  readonly mappingRules: MappingRuleSet;
  /** Looker nodes (host names or IPv4 addresses); or lookerDnsName. */
  readonly lookerHosts?: string[];
  readonly lookerDnsName?: string;
  /** Name in Looker's certificate. @default - lookerDnsName */
  readonly lookerServerName?: string;
  /** PEM of the CA of Looker's certificate. @default - the system trust store */
  readonly lookerCaCertificatePem?: string;
  /** @default 9999 */
  readonly lookerWebPort?: number;
  /** @default 10 */
  readonly sessionLifetimeMinutes?: number;
  /** @default "m7g.medium" */
  readonly instanceType?: string;
  /** More instance types of the same architecture, launched when instanceType has no capacity. @default - ["c7g.medium"] with the default instanceType, none otherwise */
  readonly fallbackInstanceTypes?: string[];
  /** @default 2 */
  readonly minCapacity?: number;
  /** @default 6 */
  readonly maxCapacity?: number;
  /** Instances to start with (each deployment sets it again). @default - minCapacity, then what scaling chooses */
  readonly desiredCapacity?: number;
  /** Scale out above this average CPU, percent. @default 60 */
  readonly targetCpuUtilizationPercent?: number;
  /** Root volume of each instance, GiB. @default 16 */
  readonly rootVolumeGiB?: number;
  /** Origins that may frame Looker (Looker embedding), e.g. ["https://portal.example.com"]. @default - Looker's X-Frame-Options, or SAMEORIGIN */
  readonly frameAncestors?: string[];
  /** Requests to /oauth2/* per client address and authRateLimitPeriodSeconds. @default 60 */
  readonly authRateLimit?: number;
  /** @default 10 */
  readonly authRateLimitPeriodSeconds?: number;
  /** Entries of HAProxy's verified-signature cache. @default 100000 */
  readonly verificationCacheSize?: number;
  /** Concurrent connections per instance (HAProxy's global maxconn). @default - from the file-descriptor limit */
  readonly maxConnections?: number;
  /** Concurrent connections of the public listener per instance. @default - maxConnections */
  readonly listenerMaxConnections?: number;
  /** @default true */
  readonly internetFacing?: boolean;
  /** @default - 0.0.0.0/0 */
  readonly clientCidrs?: string[];
  /** NAT gateways of the new VPC (not with vpcId). @default 1 */
  readonly natGateways?: number;
  /**
   * An existing VPC to deploy into (no lookups at synth: give its subnets and zones too).
   * @default - a new VPC
   */
  readonly vpcId?: string;
  /** The existing VPC's IPv4 CIDR, for example "10.20.0.0/16". @default - required with vpcId */
  readonly vpcCidrBlock?: string;
  /** The Availability Zones of the subnets below, in the same order, at least 2. @default - required with vpcId */
  readonly availabilityZones?: string[];
  /** Private subnets with egress (NAT or Transit Gateway), one per zone: instances, functions, the API endpoint. @default - required with vpcId */
  readonly privateSubnetIds?: string[];
  /** Public subnets, one per zone, for an internet-facing load balancer. @default - required with vpcId when internetFacing */
  readonly publicSubnetIds?: string[];
  /** Your own certificate in a secret (frontend-certificate JSON format). @default - an ACM certificate with hostedZoneId, a self-signed one without */
  readonly frontendCertificateSecretArn?: string;
  /** @default - no e-mail subscription to the alarm topic */
  readonly alarmEmail?: string;
  /**
   * ARN of a Kinesis data stream, a Firehose stream or a CloudWatch Logs destination that gets
   * the access, audit and rotation logs too (a SIEM: docs/observability.md, Forwarding logs to a SIEM).
   * @default - the logs stay in CloudWatch
   */
  readonly siemDestinationArn?: string;
  /** Protect the load balancer against deletion (turn off before `cdk destroy`). @default true */
  readonly deletionProtection?: boolean;
  /** Scripts and agents admitted by client certificate: `[{ name, certificateSha256, allowedMethods?, allowedPathPrefixes }]`. @default - none */
  readonly machineClients?: MachineClient[];
  /** Path prefixes where a client certificate is required, for example ["/api/4.0/"]. @default - none */
  readonly machineRoutePathPrefixes?: string[];
  /** A host name of its own for machine clients. @default - none */
  readonly machineHostName?: string;
  /** PEM file (read at synth, relative to the directory cdk runs in) with the CA of the machine clients' certificates. @default - none; required with machine routes */
  readonly machineClientCaFile?: string;
  /** PEM file with a CRL of that CA. @default - no CRL */
  readonly machineClientCrlFile?: string;
  /**
   * Full ARN of the secret with a Looker admin's API3 credentials (`{"client_id", "client_secret"}`):
   * set it to configure Looker's OpenID Connect login to use the broker at deploy time.
   * @default - Looker's authentication is left as it is
   */
  readonly lookerApiCredentialsSecretArn?: string;
  /** The Looker groups the rules grant and the roles each gives, `[{ group, roles }]`; required with lookerApiCredentialsSecretArn. @default - none */
  readonly lookerGroupRoles?: LookerGroupRoles[];
  /** Base URL of Looker's API from inside the VPC. @default - https://<first Looker host>:19999 */
  readonly lookerApiUrl?: string;
}

/** Context keys, in the order docs/deployable-app.md documents them. */
export const CONTEXT_KEYS: ReadonlyArray<keyof GatewayAppSettings> = [
  'domainName',
  'hostedZoneId',
  'hostedZoneName',
  'idpIssuer',
  'idpClientId',
  'idpClientSecretArn',
  'idpScopes',
  'idpGroupsClaim',
  'idpTrustUnverifiedEmail',
  'idpProvider',
  'idpAuthorizationParams',
  'idpTokenEndpointAuthMethod',
  'idpClientKeySecretArn',
  'idpEndSession',
  'idpAllowedTenants',
  'idpGroupsSource',
  'idpGroupsCacheMinutes',
  'idpMicrosoftGraphUrl',
  'idpGoogleServiceAccountSecretArn',
  'idpGoogleAdminEmail',
  'userClaim',
  'mappingRules',
  'lookerHosts',
  'lookerDnsName',
  'lookerServerName',
  'lookerCaCertificatePem',
  'lookerWebPort',
  'sessionLifetimeMinutes',
  'instanceType',
  'fallbackInstanceTypes',
  'minCapacity',
  'maxCapacity',
  'desiredCapacity',
  'targetCpuUtilizationPercent',
  'rootVolumeGiB',
  'frameAncestors',
  'authRateLimit',
  'authRateLimitPeriodSeconds',
  'verificationCacheSize',
  'maxConnections',
  'listenerMaxConnections',
  'internetFacing',
  'clientCidrs',
  'natGateways',
  'vpcId',
  'vpcCidrBlock',
  'availabilityZones',
  'privateSubnetIds',
  'publicSubnetIds',
  'frontendCertificateSecretArn',
  'alarmEmail',
  'siemDestinationArn',
  'deletionProtection',
  'machineClients',
  'machineRoutePathPrefixes',
  'machineHostName',
  'machineClientCaFile',
  'machineClientCrlFile',
  'lookerApiCredentialsSecretArn',
  'lookerGroupRoles',
  'lookerApiUrl',
];

/**
 * Reads the settings from context. Values given with `-c key=value` arrive as strings:
 * lists and rules may then be JSON, numbers and booleans their text.
 */
export function settingsFromContext(node: Node): GatewayAppSettings {
  const raw = (key: keyof GatewayAppSettings): unknown => node.tryGetContext(key);
  const where = 'cdk.json context';
  const text = (key: keyof GatewayAppSettings, required: boolean): string | undefined => {
    const value = raw(key);
    if (value === undefined || value === null || value === '') {
      if (required) throw new GatewayPropsError(where, `"${key}" is not set. Add it to cdk.json "context" or pass -c ${key}=... (see docs/deployable-app.md).`);
      return undefined;
    }
    if (typeof value !== 'string') throw new GatewayPropsError(where, `"${key}" is ${JSON.stringify(value)}; it must be a string.`);
    return value;
  };
  const json = (key: keyof GatewayAppSettings): unknown => {
    const value = raw(key);
    if (typeof value !== 'string') return value;
    const trimmed = value.trim();
    if (!trimmed.startsWith('[') && !trimmed.startsWith('{')) return value;
    try {
      return JSON.parse(trimmed);
    } catch (error) {
      throw new GatewayPropsError(
        where,
        `"${key}" is not valid JSON (${(error as Error).message}). Quote it for your shell, for example -c '${key}=["a","b"]'.`,
      );
    }
  };
  const list = (key: keyof GatewayAppSettings): string[] | undefined => {
    const value = json(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value === 'string') return value.split(/[\s,]+/).filter((item) => item.length > 0);
    if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value;
    throw new GatewayPropsError(where, `"${key}" is ${JSON.stringify(value)}; give a list of strings (JSON array or comma-separated).`);
  };
  const integer = (key: keyof GatewayAppSettings): number | undefined => {
    const value = raw(key);
    if (value === undefined || value === null || value === '') return undefined;
    const number = typeof value === 'number' ? value : Number(value);
    if (!Number.isInteger(number)) throw new GatewayPropsError(where, `"${key}" is ${JSON.stringify(value)}; it must be a whole number.`);
    return number;
  };
  const flag = (key: keyof GatewayAppSettings): boolean | undefined => {
    const value = raw(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw new GatewayPropsError(where, `"${key}" is ${JSON.stringify(value)}; use true or false.`);
  };
  const machineClients = (): MachineClient[] | undefined => {
    const value = json('machineClients');
    if (value === undefined || value === null || value === '') return undefined;
    if (!Array.isArray(value) || !value.every((item) => item !== null && typeof item === 'object' && !Array.isArray(item))) {
      throw new GatewayPropsError(
        where,
        `"machineClients" is ${JSON.stringify(value)}; give a JSON list of objects, for example [{"name":"reporting-bot","certificateSha256":"<64 hex>","allowedMethods":["GET"],"allowedPathPrefixes":["/api/4.0/queries/"]}].`,
      );
    }
    return value as MachineClient[];
  };
  const groupRoles = (): LookerGroupRoles[] | undefined => {
    const value = json('lookerGroupRoles');
    if (value === undefined || value === null || value === '') return undefined;
    const valid =
      Array.isArray(value) &&
      value.every(
        (item) =>
          item !== null &&
          typeof item === 'object' &&
          typeof item.group === 'string' &&
          Array.isArray(item.roles) &&
          item.roles.every((r: unknown) => typeof r === 'string'),
      );
    if (!valid) {
      throw new GatewayPropsError(where, `"lookerGroupRoles" is ${JSON.stringify(value)}; give a JSON list like [{"group":"Analysts","roles":["Viewer"]}].`);
    }
    return value as LookerGroupRoles[];
  };
  const stringMap = (key: keyof GatewayAppSettings): { [name: string]: string } | undefined => {
    const value = json(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
      throw new GatewayPropsError(
        where,
        `"${key}" is ${JSON.stringify(value)}; give a JSON object of strings, for example {"access_type": "offline", "prompt": "consent"}.`,
      );
    }
    return value as { [name: string]: string };
  };
  const rules = json('mappingRules');
  if (rules === undefined || rules === null || typeof rules !== 'object') {
    throw new GatewayPropsError(
      where,
      '"mappingRules" is not set: give a rule set {"rules": [...]} (see docs/deployable-app.md). Without rules every user is denied.',
    );
  }
  return {
    domainName: text('domainName', true)!,
    hostedZoneId: text('hostedZoneId', false),
    hostedZoneName: text('hostedZoneName', false),
    idpIssuer: text('idpIssuer', true)!,
    idpClientId: text('idpClientId', true)!,
    idpClientSecretArn: text('idpClientSecretArn', false),
    idpScopes: list('idpScopes'),
    idpGroupsClaim: text('idpGroupsClaim', false),
    idpTrustUnverifiedEmail: flag('idpTrustUnverifiedEmail'),
    idpProvider: text('idpProvider', false),
    idpAuthorizationParams: stringMap('idpAuthorizationParams'),
    idpTokenEndpointAuthMethod: text('idpTokenEndpointAuthMethod', false),
    idpClientKeySecretArn: text('idpClientKeySecretArn', false),
    idpEndSession: text('idpEndSession', false),
    idpAllowedTenants: list('idpAllowedTenants'),
    idpGroupsSource: text('idpGroupsSource', false),
    idpGroupsCacheMinutes: integer('idpGroupsCacheMinutes'),
    idpMicrosoftGraphUrl: text('idpMicrosoftGraphUrl', false),
    idpGoogleServiceAccountSecretArn: text('idpGoogleServiceAccountSecretArn', false),
    idpGoogleAdminEmail: text('idpGoogleAdminEmail', false),
    userClaim: text('userClaim', false),
    mappingRules: rules as MappingRuleSet,
    lookerHosts: list('lookerHosts'),
    lookerDnsName: text('lookerDnsName', false),
    lookerServerName: text('lookerServerName', false),
    lookerCaCertificatePem: text('lookerCaCertificatePem', false),
    lookerWebPort: integer('lookerWebPort'),
    sessionLifetimeMinutes: integer('sessionLifetimeMinutes'),
    instanceType: text('instanceType', false),
    fallbackInstanceTypes: list('fallbackInstanceTypes'),
    minCapacity: integer('minCapacity'),
    maxCapacity: integer('maxCapacity'),
    desiredCapacity: integer('desiredCapacity'),
    targetCpuUtilizationPercent: integer('targetCpuUtilizationPercent'),
    rootVolumeGiB: integer('rootVolumeGiB'),
    frameAncestors: list('frameAncestors'),
    authRateLimit: integer('authRateLimit'),
    authRateLimitPeriodSeconds: integer('authRateLimitPeriodSeconds'),
    verificationCacheSize: integer('verificationCacheSize'),
    maxConnections: integer('maxConnections'),
    listenerMaxConnections: integer('listenerMaxConnections'),
    internetFacing: flag('internetFacing'),
    clientCidrs: list('clientCidrs'),
    natGateways: integer('natGateways'),
    vpcId: text('vpcId', false),
    vpcCidrBlock: text('vpcCidrBlock', false),
    availabilityZones: list('availabilityZones'),
    privateSubnetIds: list('privateSubnetIds'),
    publicSubnetIds: list('publicSubnetIds'),
    frontendCertificateSecretArn: text('frontendCertificateSecretArn', false),
    alarmEmail: text('alarmEmail', false),
    siemDestinationArn: text('siemDestinationArn', false),
    deletionProtection: flag('deletionProtection'),
    machineClients: machineClients(),
    machineRoutePathPrefixes: list('machineRoutePathPrefixes'),
    machineHostName: text('machineHostName', false),
    machineClientCaFile: text('machineClientCaFile', false),
    machineClientCrlFile: text('machineClientCrlFile', false),
    lookerApiCredentialsSecretArn: text('lookerApiCredentialsSecretArn', false),
    lookerGroupRoles: groupRoles(),
    lookerApiUrl: text('lookerApiUrl', false),
  };
}

export interface LookerGatewayStackProps extends StackProps {
  readonly settings: GatewayAppSettings;
}

export class LookerGatewayStack extends Stack {
  public readonly gateway: LookerGateway;

  constructor(scope: Construct, id: string, props: LookerGatewayStackProps) {
    super(scope, id, props);
    const s = props.settings;
    const where = 'LookerGatewayStack settings';
    const encryptionKey = newGatewayEncryptionKey(this, 'Key');
    const tokenEndpointAuthMethod = s.idpTokenEndpointAuthMethod ?? (s.idpClientKeySecretArn ? 'private_key_jwt' : undefined);
    const clientSecret = s.idpClientSecretArn
      ? secretsmanager.Secret.fromSecretCompleteArn(this, 'IdpClientSecret', s.idpClientSecretArn)
      : tokenEndpointAuthMethod === 'private_key_jwt'
        ? undefined
        : this.placeholderClientSecret(encryptionKey);
    const looker = lookerBackendFrom(where, s);
    const vpc = existingVpcFrom(this, where, s);
    const hostedZone = hostedZoneFrom(this, where, s);

    this.gateway = new LookerGateway(this, 'Gateway', {
      domainName: s.domainName,
      hostedZone,
      identityProvider: {
        issuer: s.idpIssuer,
        clientId: s.idpClientId,
        clientSecret,
        scopes: s.idpScopes,
        groupsClaim: s.idpGroupsClaim,
        trustUnverifiedEmail: s.idpTrustUnverifiedEmail,
        provider: s.idpProvider,
        authorizationParams: s.idpAuthorizationParams,
        tokenEndpointAuthMethod,
        clientKey: s.idpClientKeySecretArn ? secretsmanager.Secret.fromSecretCompleteArn(this, 'IdpClientKey', s.idpClientKeySecretArn) : undefined,
        endSession: s.idpEndSession,
        allowedTenants: s.idpAllowedTenants,
        groupsSource: s.idpGroupsSource,
        groupsCacheDuration: s.idpGroupsCacheMinutes === undefined ? undefined : Duration.minutes(s.idpGroupsCacheMinutes),
        microsoftGraphUrl: s.idpMicrosoftGraphUrl,
        googleDirectory: googleDirectoryFrom(this, where, s),
      },
      userClaim: userClaimFrom(where, s.userClaim),
      mappingRules: s.mappingRules,
      looker,
      encryptionKey,
      vpc,
      natGateways: s.natGateways,
      sessionLifetime: s.sessionLifetimeMinutes === undefined ? undefined : Duration.minutes(s.sessionLifetimeMinutes),
      frontendCertificate: s.frontendCertificateSecretArn
        ? FrontendCertificate.fromSecret(secretsmanager.Secret.fromSecretCompleteArn(this, 'FrontendCertificate', s.frontendCertificateSecretArn))
        : undefined,
      instanceType: s.instanceType ? new ec2.InstanceType(s.instanceType) : undefined,
      fallbackInstanceTypes: s.fallbackInstanceTypes?.map((type) => new ec2.InstanceType(type)),
      minCapacity: s.minCapacity,
      maxCapacity: s.maxCapacity,
      desiredCapacity: s.desiredCapacity,
      targetCpuUtilizationPercent: s.targetCpuUtilizationPercent,
      rootVolumeGiB: s.rootVolumeGiB,
      frameAncestors: s.frameAncestors,
      authRateLimit: s.authRateLimit,
      authRateLimitPeriod: s.authRateLimitPeriodSeconds === undefined ? undefined : Duration.seconds(s.authRateLimitPeriodSeconds),
      verificationCacheSize: s.verificationCacheSize,
      maxConnections: s.maxConnections,
      listenerMaxConnections: s.listenerMaxConnections,
      internetFacing: s.internetFacing,
      clientCidrs: s.clientCidrs,
      // On by default in the deployable app (Control Tower CT.ELASTICLOADBALANCING.PR.5 asks it of
      // load balancers); the library's default stays off so that trials in tests can be destroyed.
      deletionProtection: s.deletionProtection ?? true,
      ...machineClientsFrom(where, s),
      lookerOidc: lookerOidcFrom(this, where, s),
      siemDestination: s.siemDestinationArn === undefined ? undefined : siemDestinationFrom(where, s.siemDestinationArn),
    });
    if (s.alarmEmail) this.gateway.observability.alarmTopic?.addSubscription(new subscriptions.EmailSubscription(s.alarmEmail));

    new CfnOutput(this, 'Url', {
      value: this.gateway.url,
      description: hostedZone
        ? `The gateway (DNS record in ${s.hostedZoneName}; http:// redirects here)`
        : 'Open this once the DNS name points at the load balancer',
    });
    new CfnOutput(this, 'LoadBalancerDnsName', {
      value: this.gateway.loadBalancerDnsName,
      description: hostedZone ? `${s.domainName} points here (alias records in ${s.hostedZoneName})` : `Point ${s.domainName} (CNAME or alias) here`,
    });
    if (s.machineHostName)
      new CfnOutput(this, 'MachineClientUrl', { value: `https://${s.machineHostName}`, description: 'Where machine clients connect with their certificates' });
    new CfnOutput(this, 'RedirectUri', { value: `${this.gateway.url}/oauth2/callback`, description: 'Register this redirect URI at the IdP' });
    new CfnOutput(this, 'FleetSecurityGroupId', {
      value: this.gateway.fleet.securityGroup.securityGroupId,
      description: "Admit this group in Looker's security group on 9999 and 19999",
    });
    if (clientSecret) new CfnOutput(this, 'IdpClientSecretArn', { value: clientSecret.secretArn, description: 'The secret that holds the IdP client secret' });
  }

  private placeholderClientSecret(encryptionKey: kms.IKey): secretsmanager.ISecret {
    const secret = new secretsmanager.Secret(this, 'IdpClientSecret', {
      description: 'cdk-looker-gateway: IdP client secret (PLACEHOLDER: put the real value in it)',
      encryptionKey,
      generateSecretString: { passwordLength: 32, excludePunctuation: true },
    });
    Annotations.of(secret).addWarningV2(
      'cdk-looker-gateway:placeholder-client-secret',
      'No idpClientSecretArn was given: the IdP client secret is a random placeholder and logins fail until you store the real client secret in it (aws secretsmanager put-secret-value --secret-id <IdpClientSecretArn output> --secret-string <secret>), or deploy with -c idpClientSecretArn=<arn of your secret>.',
    );
    acknowledge(
      secret,
      ['AwsSolutions-SMG4', 'NIST.800.53.R5-SecretsManagerRotationEnabled', 'HIPAA.Security-SecretsManagerRotationEnabled'],
      'The IdP client secret is issued and rotated at the IdP; the gateway cannot rotate it. Store the new value when the IdP rotates it.',
    );
    return secret;
  }
}

const HOSTED_ZONE_ID = /^Z[A-Z0-9]{1,31}$/;

/** The hosted zone of hostedZoneId and hostedZoneName, imported without a lookup (synth needs no AWS account). */
function hostedZoneFrom(scope: Construct, where: string, s: GatewayAppSettings): route53.IHostedZone | undefined {
  if (!s.hostedZoneId && !s.hostedZoneName) return undefined;
  if (!s.hostedZoneId || !s.hostedZoneName) {
    throw new GatewayPropsError(
      where,
      `${s.hostedZoneId ? 'hostedZoneId' : 'hostedZoneName'} is set without ${s.hostedZoneId ? 'hostedZoneName' : 'hostedZoneId'}: give both, as "aws route53 list-hosted-zones-by-name --dns-name ${s.hostedZoneName ?? 'example.com'}" prints them (Id without "/hostedzone/", Name without the final dot).`,
    );
  }
  const id = s.hostedZoneId.replace(/^\/hostedzone\//, '');
  if (!HOSTED_ZONE_ID.test(id)) {
    throw new GatewayPropsError(
      where,
      `hostedZoneId ${JSON.stringify(s.hostedZoneId)} is not a Route 53 hosted zone ID: it starts with "Z" followed by upper-case letters and digits, for example "Z0123456789ABCDEFGHIJ".`,
    );
  }
  return route53.HostedZone.fromHostedZoneAttributes(scope, 'HostedZone', { hostedZoneId: id, zoneName: s.hostedZoneName.replace(/\.$/, '') });
}

function googleDirectoryFrom(scope: Construct, where: string, s: GatewayAppSettings): GoogleDirectorySettings | undefined {
  if (!s.idpGoogleServiceAccountSecretArn && !s.idpGoogleAdminEmail) return undefined;
  if (!s.idpGoogleServiceAccountSecretArn || !s.idpGoogleAdminEmail) {
    throw new GatewayPropsError(
      where,
      'the Google Directory groups source needs both idpGoogleServiceAccountSecretArn (the service account key file secret) and idpGoogleAdminEmail (the administrator it acts as); set both, or neither.',
    );
  }
  return {
    serviceAccountKey: secretsmanager.Secret.fromSecretCompleteArn(scope, 'IdpGoogleServiceAccount', s.idpGoogleServiceAccountSecretArn),
    adminEmail: s.idpGoogleAdminEmail,
  };
}

function userClaimFrom(where: string, value: string | undefined): UserClaim | undefined {
  if (value === undefined) return undefined;
  const claim = Object.values(UserClaim).find((c) => c === value);
  if (!claim)
    throw new GatewayPropsError(
      where,
      `userClaim ${JSON.stringify(value)} is not a claim HAProxy can send as X-Forwarded-User: use "sub" (the IdP subject) or "email".`,
    );
  return claim;
}

function lookerBackendFrom(where: string, s: GatewayAppSettings): LookerBackend {
  const options = {
    serverName: s.lookerServerName,
    caCertificatePem: s.lookerCaCertificatePem,
    webPort: s.lookerWebPort,
  };
  if (s.lookerDnsName && s.lookerHosts?.length) {
    throw new GatewayPropsError(where, 'both lookerHosts and lookerDnsName are set: give one of them.');
  }
  if (s.lookerDnsName) return LookerBackend.fromDnsName(s.lookerDnsName, options);
  if (!s.lookerHosts || s.lookerHosts.length === 0) {
    throw new GatewayPropsError(where, 'no Looker backend: set lookerHosts (list of host names or IPv4 addresses) or lookerDnsName.');
  }
  return LookerBackend.fromHosts(s.lookerHosts, options);
}

function lookerOidcFrom(scope: Construct, where: string, s: GatewayAppSettings): LookerOidcSettings | undefined {
  if (!s.lookerApiCredentialsSecretArn) {
    if (s.lookerGroupRoles || s.lookerApiUrl)
      throw new GatewayPropsError(
        where,
        'lookerGroupRoles or lookerApiUrl is set but lookerApiCredentialsSecretArn is not: configuring Looker needs the API3 credentials secret; set it too, or remove the others.',
      );
    return undefined;
  }
  if (!s.lookerGroupRoles)
    throw new GatewayPropsError(
      where,
      'lookerApiCredentialsSecretArn is set but lookerGroupRoles is not: give the Looker groups your rules grant and their roles, for example -c \'lookerGroupRoles=[{"group":"Analysts","roles":["Viewer"]}]\'.',
    );
  return {
    apiCredentials: secretsmanager.Secret.fromSecretCompleteArn(scope, 'LookerApiCredentials', s.lookerApiCredentialsSecretArn),
    groupRoles: s.lookerGroupRoles,
    apiUrl: s.lookerApiUrl,
  };
}

function machineClientsFrom(where: string, s: GatewayAppSettings): Pick<LookerGatewayProps, 'machineClients' | 'machineRoutes' | 'clientCertificateAuthority'> {
  if (s.machineClientCrlFile && !s.machineClientCaFile) {
    throw new GatewayPropsError(
      where,
      'machineClientCrlFile is set but machineClientCaFile is not: a CRL belongs to the CA of the machine clients; set machineClientCaFile too.',
    );
  }
  const hasRoutes = (s.machineRoutePathPrefixes?.length ?? 0) > 0 || s.machineHostName !== undefined;
  return {
    machineClients: s.machineClients,
    machineRoutes: hasRoutes ? { pathPrefixes: s.machineRoutePathPrefixes, hostName: s.machineHostName } : undefined,
    clientCertificateAuthority: s.machineClientCaFile
      ? ClientCertificateAuthority.fromFile(s.machineClientCaFile, { crlFile: s.machineClientCrlFile })
      : undefined,
  };
}

const VPC_ID = /^vpc-[0-9a-f]{8}([0-9a-f]{9})?$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8}([0-9a-f]{9})?$/;
const ZONE_NAME = /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/;
const IPV4_CIDR = /^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/;

/**
 * The VPC of vpcId, imported from the given ids with Vpc.fromVpcAttributes: no lookup, so
 * synth needs no AWS account. Every mistake that would otherwise fail the deploy (or put
 * the fleet in the wrong subnets) is reported here with the setting and the fix.
 */
function existingVpcFrom(scope: Construct, where: string, s: GatewayAppSettings): ec2.IVpc | undefined {
  const vpcOnly = {
    vpcCidrBlock: s.vpcCidrBlock,
    availabilityZones: s.availabilityZones,
    privateSubnetIds: s.privateSubnetIds,
    publicSubnetIds: s.publicSubnetIds,
  };
  if (!s.vpcId) {
    const stray = Object.entries(vpcOnly)
      .filter(([, value]) => value !== undefined)
      .map(([key]) => key);
    if (stray.length > 0)
      throw new GatewayPropsError(
        where,
        `${stray.join(', ')} set without vpcId: they describe an existing VPC. Set vpcId too, or remove them to get a new VPC.`,
      );
    return undefined;
  }
  const problems: string[] = [];
  if (!VPC_ID.test(s.vpcId))
    problems.push(`vpcId ${JSON.stringify(s.vpcId)} is not a VPC id (vpc- and 8 or 17 hex digits, as "aws ec2 describe-vpcs" prints it).`);
  if (s.natGateways !== undefined)
    problems.push("natGateways applies to a new VPC only: remove it (the existing VPC's private subnets need their own egress: NAT or Transit Gateway).");
  if (!s.vpcCidrBlock || !IPV4_CIDR.test(s.vpcCidrBlock))
    problems.push(
      `vpcCidrBlock ${JSON.stringify(s.vpcCidrBlock)} must be the VPC's IPv4 CIDR, for example "10.20.0.0/16" (internal gateways admit it by default).`,
    );
  const zones = s.availabilityZones ?? [];
  if (zones.length < 2)
    problems.push(
      `availabilityZones ${JSON.stringify(zones)} must list at least 2 zones (the fleet spans 2 or more so that it survives the loss of one), in the order of the subnet ids.`,
    );
  const badZones = zones.filter((zone) => !ZONE_NAME.test(zone));
  if (badZones.length > 0) problems.push(`availabilityZones has ${JSON.stringify(badZones)}: give zone names such as "eu-west-1a".`);
  if (new Set(zones).size !== zones.length) problems.push(`availabilityZones ${JSON.stringify(zones)} names a zone twice: one subnet per zone.`);
  const subnetProblems = (key: 'privateSubnetIds' | 'publicSubnetIds', ids: string[] | undefined) => {
    if (!ids || ids.length === 0) return [`${key} is not set: give one subnet id per zone of availabilityZones.`];
    const out: string[] = [];
    const bad = ids.filter((id) => !SUBNET_ID.test(id));
    if (bad.length > 0) out.push(`${key} has ${JSON.stringify(bad)}: give subnet ids such as "subnet-0123456789abcdef0".`);
    if (zones.length >= 2 && ids.length !== zones.length)
      out.push(`${key} has ${ids.length} subnet(s) for ${zones.length} zone(s): give one subnet per zone, in the order of availabilityZones.`);
    return out;
  };
  problems.push(...subnetProblems('privateSubnetIds', s.privateSubnetIds));
  if (s.internetFacing ?? true) problems.push(...subnetProblems('publicSubnetIds', s.publicSubnetIds));
  else if (s.publicSubnetIds)
    problems.push('publicSubnetIds is set but internetFacing is false: an internal load balancer uses the private subnets; remove publicSubnetIds.');
  const overlap = (s.privateSubnetIds ?? []).filter((id) => (s.publicSubnetIds ?? []).includes(id));
  if (overlap.length > 0) problems.push(`${JSON.stringify(overlap)} is both a private and a public subnet: instances belong in private subnets only.`);
  if (problems.length > 0) {
    throw new GatewayPropsError(where, `the existing VPC settings are not usable (see "Deploy" in README.md):\n- ${problems.join('\n- ')}`);
  }
  return ec2.Vpc.fromVpcAttributes(scope, 'ExistingVpc', {
    vpcId: s.vpcId,
    vpcCidrBlock: s.vpcCidrBlock!,
    availabilityZones: zones,
    privateSubnetIds: s.privateSubnetIds,
    ...((s.internetFacing ?? true) ? { publicSubnetIds: s.publicSubnetIds } : {}),
  });
}

function siemDestinationFrom(where: string, arn: string): SiemDestination {
  try {
    return SiemDestination.fromArn(arn);
  } catch (error) {
    throw new GatewayPropsError(where, (error as Error).message);
  }
}
