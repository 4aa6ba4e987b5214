/**
 * What the custom resource does for each CloudFormation request:
 * - Create and Update: log in to Looker's API with the API3 credentials, resolve the role
 *   and user attribute names to Looker's ids, and PATCH `oidc_config` so Looker's OpenID
 *   Connect login uses the gateway's broker (core/looker/oidc-config.ts brokerOidcConfig).
 *   PATCH writes the whole desired state every time, so repeating it changes nothing.
 * - Delete: switch Looker's OpenID Connect login off (`enabled: false`) if it still points
 *   at this gateway's broker, and leave it alone if someone has pointed it elsewhere since.
 *   The rest of the configuration stays, so the admin's Looker page shows what it was; the
 *   alternate e-mail login and Looker's own e-mail login take over.
 * - A Create that failed answers with a physical id that marks "never configured", so the
 *   Delete of its rollback returns at once instead of failing on the same cause.
 * Nothing here logs or returns a secret: every text that leaves is passed through redact().
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import {
  brokerOidcConfig,
  LOOKER_API_PATHS,
  LookerNamedObject,
  LookerOidcResourceSettings,
  OidcConfigRead,
  parseLookerApiCredentials,
  parseLookerOidcResourceSettings,
  pointsAtBroker,
  resolveLookerIds,
} from '../../core/looker/oidc-config';
import type { SecretSource } from '../shared/secrets';
import type { CustomResourceAnswer } from './cfn-response';
import { LookerApi } from './looker-api';

/** The physical id of a resource whose Create failed: its Delete has nothing to undo. */
export const NOT_CONFIGURED_ID = 'looker-oidc-not-configured';

/** One physical id per Looker: pointing the resource at another Looker replaces it (and the Delete switches the old one off). */
export function physicalIdFor(settings: Pick<LookerOidcResourceSettings, 'apiUrl'>): string {
  return `looker-oidc:${settings.apiUrl}`;
}

export interface ConfigureDependencies {
  readonly secrets: SecretSource;
  readonly log: (entry: Record<string, unknown>) => void;
}

/** Replaces every secret value in `text` (a reason or log line) by `[redacted]`. */
export function redact(text: string, secrets: readonly string[]): string {
  return secrets.filter((s) => s.length >= 4).reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

export async function handleRequest(event: CloudFormationCustomResourceEvent, deps: ConfigureDependencies): Promise<CustomResourceAnswer> {
  const secrets: string[] = [];
  const currentId = event.RequestType === 'Create' ? undefined : event.PhysicalResourceId;
  const failedId = currentId ?? NOT_CONFIGURED_ID;
  const log = (entry: Record<string, unknown>) => deps.log(JSON.parse(redact(JSON.stringify(entry), secrets)) as Record<string, unknown>);
  try {
    if (event.RequestType === 'Delete' && currentId === NOT_CONFIGURED_ID) {
      log({ step: 'delete', outcome: 'nothing-to-undo', message: 'The Create of this resource failed, so Looker was never configured by it.' });
      return { Status: 'SUCCESS', PhysicalResourceId: NOT_CONFIGURED_ID, Reason: 'Looker was never configured by this resource.' };
    }
    const settings = parseLookerOidcResourceSettings(event.ResourceProperties.Settings);
    const credentials = parseLookerApiCredentials(await deps.secrets.getSecretString(settings.apiCredentialsSecretArn), settings.apiCredentialsSecretArn);
    secrets.push(credentials.client_secret);
    const looker = new LookerApi({
      apiUrl: settings.apiUrl,
      serverName: settings.serverName,
      caCertificatePem: settings.caCertificatePem,
      timeoutMs: settings.requestTimeoutSeconds * 1000,
    });
    await looker.login(credentials);
    log({ step: 'login', outcome: 'success', apiUrl: settings.apiUrl });

    if (event.RequestType === 'Delete') return await switchOff(looker, settings, currentId!, log);

    const clientSecret = await deps.secrets.getSecretString(settings.clientSecretArn);
    secrets.push(clientSecret);
    if (!clientSecret) throw new Error(`The Looker OIDC client secret ${settings.clientSecretArn} is empty.`);
    const roleNames = settings.groupRoles.flatMap((g) => g.roleNames);
    const roleIds =
      roleNames.length > 0 ? resolveLookerIds('role', roleNames, await looker.get<LookerNamedObject[]>(LOOKER_API_PATHS.roles)) : new Map<string, string>();
    const attributeNames = settings.userAttributes.map((a) => a.lookerUserAttribute);
    const attributeIds =
      attributeNames.length > 0
        ? resolveLookerIds('user attribute', attributeNames, await looker.get<LookerNamedObject[]>(LOOKER_API_PATHS.userAttributes))
        : new Map<string, string>();
    const applied = await looker.patch<OidcConfigRead>(LOOKER_API_PATHS.oidcConfig, brokerOidcConfig(settings, clientSecret, roleIds, attributeIds));
    if (!applied?.enabled || !pointsAtBroker(applied, settings)) {
      throw new Error(
        `Looker accepted the OIDC configuration but reads back enabled=${applied?.enabled} issuer=${JSON.stringify(applied?.issuer)}: check Looker's OpenID Connect page.`,
      );
    }
    const physicalId = physicalIdFor(settings);
    log({
      step: 'configure',
      outcome: 'success',
      requestType: event.RequestType,
      issuer: applied.issuer,
      groups: settings.groupRoles.map((g) => `${g.group}=${g.roleNames.join('+')}`),
      attributes: settings.userAttributes.map((a) => a.lookerUserAttribute),
      replaced: currentId !== undefined && currentId !== physicalId,
    });
    return { Status: 'SUCCESS', PhysicalResourceId: physicalId, Data: { Issuer: applied.issuer ?? '', ClientId: settings.clientId } };
  } catch (error) {
    const reason = redact((error as Error).message, secrets);
    log({ step: event.RequestType.toLowerCase(), outcome: 'error', error: (error as Error).name, message: reason });
    return { Status: 'FAILED', PhysicalResourceId: failedId, Reason: reason };
  }
}

async function switchOff(
  looker: LookerApi,
  settings: LookerOidcResourceSettings,
  physicalId: string,
  log: (entry: Record<string, unknown>) => void,
): Promise<CustomResourceAnswer> {
  const current = await looker.get<OidcConfigRead>(LOOKER_API_PATHS.oidcConfig);
  if (!current.enabled || !pointsAtBroker(current, settings)) {
    log({
      step: 'delete',
      outcome: 'left-alone',
      message: "Looker's OpenID Connect login is off or points at another provider: left as it is.",
      issuer: current.issuer ?? null,
    });
    return { Status: 'SUCCESS', PhysicalResourceId: physicalId, Reason: 'Looker no longer used this broker; left as it is.' };
  }
  await looker.patch<OidcConfigRead>(LOOKER_API_PATHS.oidcConfig, { enabled: false });
  log({ step: 'delete', outcome: 'disabled', message: "Looker's OpenID Connect login is switched off; e-mail logins take over." });
  return { Status: 'SUCCESS', PhysicalResourceId: physicalId, Reason: "Looker's OpenID Connect login switched off." };
}
