/**
 * Broker mode of the local gateway: the stand-in Looker is configured to log users in at
 * the gateway's broker by the custom resource's own code (lambda/looker-oidc/configure.ts:
 * API3 login, role and user attribute names resolved to ids, `PATCH /api/4.0/oidc_config`),
 * called in process with the settings the LookerOidcConfiguration construct would write,
 * against the stand-in's API port as the function reaches Looker's from the VPC.
 */
import { randomBytes } from 'node:crypto';
import type { CloudFormationCustomResourceCreateEvent } from 'aws-lambda';
import { DEFAULT_LOOKER_CLIENT_ID } from '../core/auth/looker-broker';
import type { LookerApiCredentials, LookerOidcResourceSettings } from '../core/looker/oidc-config';
import { handleRequest } from '../lambda/looker-oidc/configure';
import { StaticSecretSource } from '../lambda/shared/secrets';
import { DEV_ATTRIBUTE_NAMES, DEV_LOOKER_GROUP_ROLES } from '../dev/stand-ins/idp/dev-users';

const SECRET_IDS = { apiCredentials: 'local/looker-api-credentials', clientSecret: 'local/looker-client-secret' } as const;

/** The secrets broker mode needs: Looker's API3 key (for the configuration) and Looker's client secret at the broker. */
export interface LocalBrokerSecrets {
  readonly apiCredentials: LookerApiCredentials;
  readonly clientSecret: string;
}

export function newLocalBrokerSecrets(): LocalBrokerSecrets {
  return {
    apiCredentials: { client_id: randomBytes(10).toString('hex'), client_secret: randomBytes(24).toString('base64url') },
    clientSecret: randomBytes(32).toString('base64url'),
  };
}

export interface ConfigureLocalLookerOptions {
  readonly secrets: LocalBrokerSecrets;
  /** The gateway's origin: the broker's issuer, and the URL users open Looker at. */
  readonly gatewayOrigin: string;
  /** The stand-in's API port on 127.0.0.1. */
  readonly lookerApiPort: number;
  /** Name in the stand-in's certificate, and the CA it chains to. */
  readonly lookerServerName: string;
  readonly caPem: string;
}

/** Runs the custom resource's Create against the stand-in; throws with the resource's reason when it fails. */
export async function configureLocalLooker(options: ConfigureLocalLookerOptions): Promise<void> {
  const settings: LookerOidcResourceSettings = {
    apiUrl: `https://127.0.0.1:${options.lookerApiPort}`,
    serverName: options.lookerServerName,
    caCertificatePem: options.caPem,
    apiCredentialsSecretArn: SECRET_IDS.apiCredentials,
    clientSecretArn: SECRET_IDS.clientSecret,
    clientId: DEFAULT_LOOKER_CLIENT_ID,
    gatewayOrigin: options.gatewayOrigin,
    groupRoles: DEV_LOOKER_GROUP_ROLES.map((g) => ({ group: g.group, roleNames: [...g.roleNames] })),
    userAttributes: DEV_ATTRIBUTE_NAMES.map((name) => ({ attribute: name, lookerUserAttribute: name, required: false })),
    authRequiresRole: true,
    migrationTypes: ['email'],
    requestTimeoutSeconds: 10,
  };
  const event = {
    RequestType: 'Create',
    ServiceToken: 'local',
    ResponseURL: 'https://127.0.0.1/unused',
    StackId: 'local',
    RequestId: randomBytes(8).toString('hex'),
    LogicalResourceId: 'LookerOidc',
    ResourceType: 'Custom::LookerOidcConfiguration',
    ResourceProperties: { ServiceToken: 'local', Settings: JSON.stringify(settings) },
  } satisfies CloudFormationCustomResourceCreateEvent;
  const secrets = new StaticSecretSource({
    [SECRET_IDS.apiCredentials]: options.secrets.apiCredentials,
    [SECRET_IDS.clientSecret]: options.secrets.clientSecret,
  });
  const answer = await handleRequest(event, { secrets, log: () => undefined });
  if (answer.Status !== 'SUCCESS') throw new Error(`Configuring the Looker stand-in's OpenID Connect login failed: ${answer.Reason}`);
}
