/**
 * The broker contract: what the auth service serves as Looker's OpenID provider ("broker
 * mode"), and what Looker is configured to expect from it. The construct that configures
 * Looker (lib/looker), the auth service's broker routes and the Looker stand-in import
 * these names from here, so they cannot drift. Pure data: safe for lib/, lambda/, local/.
 *
 * The facts about Looker behind these choices, with their sources, are in docs/looker-oidc.md.
 */
import { AUTH_PATH_PREFIX, attributeClaim } from '../session-contract';

/**
 * The broker's routes, under the gateway's own origin. They sit below {@link AUTH_PATH_PREFIX},
 * so HAProxy sends them to the auth service like every other `/oauth2/` path.
 * Looker's browser redirect reaches `authorize`; Looker's servers call `token` and `userinfo`.
 */
export const LOOKER_BROKER_PATHS = {
  authorize: `${AUTH_PATH_PREFIX}looker/authorize`,
  token: `${AUTH_PATH_PREFIX}looker/token`,
  userinfo: `${AUTH_PATH_PREFIX}looker/userinfo`,
} as const;

/**
 * Where tooling finds the broker's discovery document (Looker itself does not read one): at
 * the issuer's well-known path (OpenID Connect Discovery 1.0, 4), which HAProxy routes to
 * the auth service too, and under the broker's paths.
 */
export const LOOKER_BROKER_DISCOVERY_PATHS = [`${AUTH_PATH_PREFIX}looker/.well-known/openid-configuration`, '/.well-known/openid-configuration'] as const;

/** The client id Looker uses at the broker unless the construct is told otherwise (Looker's `identifier`). */
export const DEFAULT_LOOKER_CLIENT_ID = 'looker';

/**
 * Looker's OIDC callback path: its redirect URI is the URL users open Looker at followed
 * by this path (docs/looker-oidc.md, "Redirect URI").
 */
export const LOOKER_REDIRECT_PATH = '/openidconnect';

/** `https://looker.example.com` -> `https://looker.example.com/openidconnect`. */
export function lookerRedirectUri(lookerUrl: string): string {
  return `${lookerUrl.replace(/\/+$/, '')}${LOOKER_REDIRECT_PATH}`;
}

/**
 * Scopes Looker is configured to ask for. `openid` is what makes the request OpenID
 * Connect; the broker puts every claim below in userinfo whatever the scopes, so the list
 * only has to be one Looker accepts.
 */
export const LOOKER_SCOPES: readonly string[] = ['openid', 'email', 'profile'];

/**
 * Claims the broker's userinfo answer (and ID token) must carry for Looker, and the names
 * Looker's `oidc_config` is set to read them from (`user_attribute_map_*`, `groups_attribute`).
 */
export const LOOKER_CLAIMS = {
  /** E-mail address: Looker's account key for migration by e-mail (`user_attribute_map_email`). */
  email: 'email',
  /** First name (`user_attribute_map_first_name`), OpenID Connect's standard claim. */
  firstName: 'given_name',
  /** Last name (`user_attribute_map_last_name`), OpenID Connect's standard claim. */
  lastName: 'family_name',
  /** Display name, for tooling; Looker reads first and last name. */
  name: 'name',
  /**
   * The mapped Looker groups (a JSON array of strings): the names the mapping rules grant
   * (`grant.groups`), matched by Looker against `groups_with_role_ids[].name` (`groups_attribute`).
   */
  groups: 'groups',
} as const;

/**
 * The claim that carries one mapped user attribute (`region` -> `attr_region`), named in
 * `user_attributes_with_ids[].name`: the same `attr_` names as the session token's claims.
 */
export function lookerAttributeClaim(attributeName: string): string {
  return attributeClaim(attributeName);
}

/** The OpenID provider Looker is pointed at: issuer and endpoints, all under the gateway's origin. */
export interface LookerBrokerEndpoints {
  readonly issuer: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly userinfoEndpoint: string;
}

/** The broker's issuer is the gateway's origin; its endpoints are {@link LOOKER_BROKER_PATHS} on that origin. */
export function lookerBrokerEndpoints(gatewayOrigin: string): LookerBrokerEndpoints {
  const origin = gatewayOrigin.replace(/\/+$/, '');
  return {
    issuer: origin,
    authorizationEndpoint: `${origin}${LOOKER_BROKER_PATHS.authorize}`,
    tokenEndpoint: `${origin}${LOOKER_BROKER_PATHS.token}`,
    userinfoEndpoint: `${origin}${LOOKER_BROKER_PATHS.userinfo}`,
  };
}
