/**
 * LookerOidcConfiguration: configures Looker's own OpenID Connect login to use the
 * gateway's broker, through Looker's API, at deploy time, so nobody has to click it in.
 *
 * A Lambda-backed custom resource (lambda/looker-oidc) in the VPC: it logs in with API3
 * credentials from a secret (`POST /api/4.0/login`), resolves role and user attribute
 * names to Looker's ids, and `PATCH`es `/api/4.0/oidc_config` with the broker's URLs, the
 * client credentials (a client secret this construct creates), the group-to-role mapping
 * and the attribute mapping, keeping `alternate_email_login_allowed` on so Looker admins
 * are never locked out. Deleting it switches Looker's OIDC login off if it still points at
 * this broker. Facts and sources: docs/looker-oidc.md.
 */
import { CustomResource, Duration, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Annotations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { DEFAULT_LOOKER_CLIENT_ID, lookerRedirectUri } from '../../core/auth/looker-broker';
import type { MappingRuleSet } from '../../core/auth/mapping-rules';
import { newGatewayEncryptionKey } from '../keys/encryption-key';
import { newGatewayFunction } from '../private/gateway-function';
import { LAMBDA_ASSETS } from '../../core/lambda-assets';
import { newEncryptedLogGroup } from '../private/log-group';
import { acknowledge, acknowledgeLambdaFindings } from '../private/nag-acknowledgements';
import { assertDomainName, GatewayPropsError } from '../private/validation';
import { ATTRIBUTE_NAME_PATTERN } from '../../core/session-contract';
import { LookerBackend } from './looker-backend';
import { DEFAULT_LOOKER_REQUEST_TIMEOUT_SECONDS, LOOKER_MIGRATION_TYPES, LookerOidcResourceSettings } from '../../core/looker/oidc-config';

/** One Looker group the mapping rules grant, and the Looker roles it gives. */
export interface LookerGroupRoles {
  /** Name of the Looker group, exactly as the mapping rules grant it (`grant.groups`). */
  readonly group: string;
  /** Names of the Looker roles the group gives, for example ["Viewer"]; resolved to Looker's role ids at deploy time. */
  readonly roles: string[];
}

/** One user attribute of the mapping rules and the Looker user attribute it sets. */
export interface LookerUserAttributeMapping {
  /** Attribute name in the mapping rules (`grant.attributes`), for example "region". */
  readonly attribute: string;
  /**
   * Name of the Looker user attribute it sets.
   * @default - the same name as `attribute`
   */
  readonly lookerUserAttribute?: string;
  /**
   * Looker refuses a login whose answer lacks the attribute.
   * @default false
   */
  readonly required?: boolean;
}

/** How Looker's OpenID Connect login is pointed at the gateway's broker. */
export interface LookerOidcSettings {
  /**
   * Secret with the API3 credentials of a Looker admin, as JSON
   * `{"client_id": "...", "client_secret": "..."}` (Admin > Users > Edit API keys).
   * Read by the custom resource only.
   */
  readonly apiCredentials: secretsmanager.ISecret;
  /** The Looker groups the mapping rules grant and the roles each gives: Looker's `groups_with_role_ids`. */
  readonly groupRoles: LookerGroupRoles[];
  /**
   * The user attributes Looker takes from the broker: Looker's `user_attributes_with_ids`.
   * @default - every attribute the mapping rules set, each into the Looker user attribute of the same name, not required
   */
  readonly userAttributes?: LookerUserAttributeMapping[];
  /**
   * Looker's client id at the broker (Looker's `identifier` and `audience`).
   * @default "looker"
   */
  readonly clientId?: string;
  /**
   * Looker refuses a login when no role is found for the user (`auth_requires_role`).
   * @default true
   */
  readonly requireRole?: boolean;
  /**
   * Existing Looker accounts a first OIDC login is merged into, by e-mail address:
   * "email", "ldap", "google", "saml" (`new_user_migration_types`). Empty: every first
   * login makes a new Looker user.
   * @default ["email"]
   */
  readonly mergeExistingUsersBy?: string[];
  /**
   * Base URL of Looker's API as the function reaches it from the VPC, without `/api/4.0`.
   * @default - https://<the first Looker host>:<the backend's apiPort>, checked against the backend's serverName and CA
   */
  readonly apiUrl?: string;
  /**
   * Deadline of each call to Looker's API, 1 to 30 seconds.
   * @default Duration.seconds(10)
   */
  readonly requestTimeout?: Duration;
}

export interface LookerOidcConfigurationProps extends LookerOidcSettings {
  /** The Looker backend of the gateway: where its API is, the CA and name of its certificate, its security group. */
  readonly looker: LookerBackend;
  /** The gateway's host name: the broker's issuer is https://<domainName>. */
  readonly domainName: string;
  /** VPC the function runs in (Looker's API is reached from inside it). */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets of the function.
   * @default - private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * KMS key of the client secret and the log group.
   * @default - a new key with yearly rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Log group of the function.
   * @default - a new log group encrypted with the key, one year retention
   */
  readonly logGroup?: logs.ILogGroup;
  /**
   * The gateway's mapping rules: the groups and attributes they grant are checked against
   * `groupRoles` and `userAttributes` at synth (warnings), and give `userAttributes` its default.
   * @default - no checks; `userAttributes` defaults to none
   */
  readonly mappingRules?: MappingRuleSet;
}

const MIN_TIMEOUT = 1;
const MAX_TIMEOUT = 30;
/** Client ids travel in URLs and Basic authentication: letters, digits and `-._~`. */
const CLIENT_ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;

export class LookerOidcConfiguration extends Construct {
  /** The client secret Looker authenticates with at the broker's token endpoint (a plain string); the auth service reads it. */
  public readonly clientSecret: secretsmanager.Secret;
  /** Looker's client id at the broker. */
  public readonly clientId: string;
  /** Looker's redirect URI, https://<domainName>/openidconnect: the only one the broker may send codes to. */
  public readonly lookerRedirectUri: string;
  public readonly function: lambda.Function;
  public readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: LookerOidcConfigurationProps) {
    super(scope, id);
    const where = `LookerOidcConfiguration ${this.node.path}`;
    assertDomainName(where, 'domainName', props.domainName);
    validateSettings(where, props);
    warnAboutUnmappedGroups(this, props);

    const origin = `https://${props.domainName}`;
    const encryptionKey = props.encryptionKey ?? newGatewayEncryptionKey(this, 'Key');
    this.clientId = props.clientId ?? DEFAULT_LOOKER_CLIENT_ID;
    this.lookerRedirectUri = lookerRedirectUri(origin);
    this.clientSecret = new secretsmanager.Secret(this, 'ClientSecret', {
      description: "cdk-looker-gateway: the client secret Looker authenticates with at the gateway's OpenID provider (broker mode)",
      encryptionKey,
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    acknowledge(
      this.clientSecret,
      ['AwsSolutions-SMG4', 'NIST.800.53.R5-SecretsManagerRotationEnabled', 'HIPAA.Security-SecretsManagerRotationEnabled'],
      'Looker holds a copy of this secret in its OIDC configuration: a rotation has to write the new value to Looker (PATCH oidc_config) and to the broker together. Until that rotation exists, change it by updating the secret and redeploying (the custom resource writes it to Looker).',
    );

    const timeoutSeconds = props.requestTimeout?.toSeconds() ?? DEFAULT_LOOKER_REQUEST_TIMEOUT_SECONDS;
    const backend = props.looker.config;
    const apiUrl = props.apiUrl ?? `https://${backend.hosts[0]}:${backend.apiPort}`;
    const settings: LookerOidcResourceSettings = {
      apiUrl,
      serverName: props.apiUrl ? undefined : backend.serverName,
      caCertificatePem: backend.caCertificatePem,
      apiCredentialsSecretArn: props.apiCredentials.secretArn,
      clientSecretArn: this.clientSecret.secretArn,
      clientId: this.clientId,
      gatewayOrigin: origin,
      groupRoles: props.groupRoles.map((g) => ({ group: g.group, roleNames: [...g.roles] })),
      userAttributes: userAttributesOf(props).map((a) => ({
        attribute: a.attribute,
        lookerUserAttribute: a.lookerUserAttribute ?? a.attribute,
        required: a.required ?? false,
      })),
      authRequiresRole: props.requireRole ?? true,
      migrationTypes: props.mergeExistingUsersBy ?? ['email'],
      requestTimeoutSeconds: timeoutSeconds,
    };

    this.function = newGatewayFunction(this, 'Function', {
      asset: LAMBDA_ASSETS.lookerOidc,
      description: "cdk-looker-gateway: points Looker's OpenID Connect login at the gateway's broker (custom resource)",
      environment: {},
      logGroup: props.logGroup ?? newEncryptedLogGroup(this, 'Logs', encryptionKey, logs.RetentionDays.ONE_YEAR),
      // Four calls to Looker at most (login, roles, user attributes, PATCH), each with its deadline, plus secrets and the answer.
      timeout: Duration.seconds(Math.min(900, 4 * timeoutSeconds + 20)),
      memorySize: 256,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
    });
    props.apiCredentials.grantRead(this.function);
    this.clientSecret.grantRead(this.function);
    props.looker.allowApiAccessFrom(this.function, apiPortOf(apiUrl, backend.apiPort));
    acknowledgeLambdaFindings(this.function, {
      inVpc: true,
      deadLetterReason:
        'Invoked synchronously by CloudFormation as a custom resource: the answer goes to CloudFormation, which fails the deployment with the reason; there is no event to park.',
    });

    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: this.function.functionArn,
      resourceType: 'Custom::LookerOidcConfiguration',
      properties: { Settings: Stack.of(this).toJsonString(settings) },
    });
  }
}

function userAttributesOf(props: LookerOidcConfigurationProps): LookerUserAttributeMapping[] {
  if (props.userAttributes) return props.userAttributes;
  const names = new Set<string>();
  for (const rule of props.mappingRules?.rules ?? []) for (const name of Object.keys(rule.grant?.attributes ?? {})) names.add(name);
  return [...names].sort().map((attribute) => ({ attribute }));
}

/** The port the function reaches Looker's API on (the security group rule): from apiUrl when given, else the backend's. */
function apiPortOf(apiUrl: string, apiPort: number): number {
  if (Token.isUnresolved(apiUrl)) return apiPort;
  const url = new URL(apiUrl);
  return url.port ? Number(url.port) : 443;
}

function validateSettings(where: string, props: LookerOidcConfigurationProps): void {
  const groups = props.groupRoles;
  if (!Token.isUnresolved(groups) && groups.length === 0) {
    throw new GatewayPropsError(
      where,
      'groupRoles is empty: Looker takes roles from the groups the broker sends, so with no group mapped nobody gets a role. Map each Looker group your rules grant to its roles, for example [{ group: "Analysts", roles: ["Viewer"] }].',
    );
  }
  const seen = new Set<string>();
  for (const entry of groups) {
    if (Token.isUnresolved(entry.group)) continue;
    // eslint-disable-next-line no-control-regex -- control characters are what this rejects
    if (entry.group.trim() === '' || entry.group.trim() !== entry.group || /[,\u0000-\u001f]/.test(entry.group)) {
      throw new GatewayPropsError(
        where,
        `groupRoles group ${JSON.stringify(entry.group)} must be a non-empty name without leading or trailing spaces, commas or control characters (the name the mapping rules grant).`,
      );
    }
    if (seen.has(entry.group))
      throw new GatewayPropsError(where, `groupRoles lists group ${JSON.stringify(entry.group)} twice: give each group once, with all its roles.`);
    seen.add(entry.group);
    if (entry.roles.length === 0 || entry.roles.some((role) => !Token.isUnresolved(role) && role.trim() === '')) {
      throw new GatewayPropsError(
        where,
        `groupRoles group ${JSON.stringify(entry.group)} has no role names: give the names of Looker roles, for example ["Viewer"].`,
      );
    }
  }
  const attributes = new Set<string>();
  for (const entry of props.userAttributes ?? []) {
    if (!ATTRIBUTE_NAME_PATTERN.test(entry.attribute)) {
      throw new GatewayPropsError(
        where,
        `userAttributes attribute ${JSON.stringify(entry.attribute)} is not an attribute name of the mapping rules: lower case letters, digits and "_", starting with a letter, at most 32 characters.`,
      );
    }
    if (attributes.has(entry.attribute)) throw new GatewayPropsError(where, `userAttributes lists ${JSON.stringify(entry.attribute)} twice.`);
    attributes.add(entry.attribute);
  }
  const clientId = props.clientId;
  if (clientId !== undefined && !Token.isUnresolved(clientId) && !CLIENT_ID_PATTERN.test(clientId)) {
    throw new GatewayPropsError(
      where,
      `clientId ${JSON.stringify(clientId)} must be 1 to 128 letters, digits or "-._~" (it travels in URLs and HTTP Basic authentication), for example "looker".`,
    );
  }
  for (const type of props.mergeExistingUsersBy ?? []) {
    if (!(LOOKER_MIGRATION_TYPES as readonly string[]).includes(type)) {
      throw new GatewayPropsError(where, `mergeExistingUsersBy ${JSON.stringify(type)} is not one of Looker's: ${LOOKER_MIGRATION_TYPES.join(', ')}.`);
    }
  }
  if (props.apiUrl !== undefined && !Token.isUnresolved(props.apiUrl)) {
    let url: URL | undefined;
    try {
      url = new URL(props.apiUrl);
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== 'https:' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
      throw new GatewayPropsError(
        where,
        `apiUrl ${JSON.stringify(props.apiUrl)} must be an https URL without a path, for example "https://looker.internal.example.com:19999" (the function adds /api/4.0/...).`,
      );
    }
  }
  const timeout = props.requestTimeout;
  if (timeout && !timeout.isUnresolved() && (timeout.toSeconds() < MIN_TIMEOUT || timeout.toSeconds() > MAX_TIMEOUT)) {
    throw new GatewayPropsError(
      where,
      `requestTimeout is ${timeout.toHumanString()}; it must be from ${MIN_TIMEOUT} to ${MAX_TIMEOUT} seconds (each call to Looker's API).`,
    );
  }
}

/** Groups the rules grant but Looker maps to no role, and mapped groups no rule grants: both deploy, neither does what was meant. */
function warnAboutUnmappedGroups(scope: Construct, props: LookerOidcConfigurationProps): void {
  if (!props.mappingRules) return;
  const granted = new Set(props.mappingRules.rules.flatMap((rule) => rule.grant?.groups ?? []));
  const mapped = new Set(props.groupRoles.map((g) => g.group));
  const withoutRole = [...granted].filter((g) => !mapped.has(g));
  const neverGranted = [...mapped].filter((g) => !Token.isUnresolved(g) && !granted.has(g));
  if (withoutRole.length > 0) {
    Annotations.of(scope).addWarningV2(
      'cdk-looker-gateway:looker-group-without-role',
      `The mapping rules grant the Looker group(s) ${withoutRole.map((g) => JSON.stringify(g)).join(', ')}, which groupRoles maps to no role: users who get only these groups get no role in Looker${props.requireRole === false ? '' : ' and are refused by Looker'}. Add them to groupRoles.`,
    );
  }
  if (neverGranted.length > 0) {
    Annotations.of(scope).addWarningV2(
      'cdk-looker-gateway:looker-group-never-granted',
      `groupRoles maps ${neverGranted.map((g) => JSON.stringify(g)).join(', ')}, which no mapping rule grants (grant.groups): nobody will be in it. Grant it in a rule or remove it.`,
    );
  }
  for (const attribute of props.userAttributes ?? []) {
    const set = props.mappingRules.rules.some((rule) => attribute.attribute in (rule.grant?.attributes ?? {}));
    if (!set) {
      Annotations.of(scope).addWarningV2(
        'cdk-looker-gateway:looker-attribute-never-set',
        `userAttributes maps ${JSON.stringify(attribute.attribute)}, which no mapping rule sets (grant.attributes)${attribute.required ? ': it is required, so every login would be refused' : ''}.`,
      );
    }
  }
}
