/**
 * Time limits that HAProxy and the auth service must agree on, derived from one another so
 * that neither gives up on work the other still finishes: the auth service's wait for each
 * IdP call, HAProxy's wait for an inline refresh, and HAProxy's wait for any answer of the
 * auth service.
 */

/**
 * API Gateway's integration timeout for REST APIs (29 s, "Maximum integration timeout" in
 * the Amazon API Gateway quotas: https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
 * A slower Lambda gets a 504 from API Gateway, so waiting longer for the auth service is useless.
 */
export const API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29;

/** The auth service's default bound on each call to the IdP (`LG_IDP_TIMEOUT_MS`), milliseconds. */
export const DEFAULT_IDP_TIMEOUT_MS = 5000;

/**
 * What an inline refresh adds to its call to the IdP's token endpoint: the client's own 250 ms
 * deadline slack, the session record (DynamoDB read, lease, write), minting and sealing, Lambda
 * and API Gateway, and the path through the VPC endpoint. Milliseconds.
 */
export const INLINE_REFRESH_MARGIN_MS = 2000;

/**
 * How long HAProxy waits for an inline refresh, seconds: longer than the auth service allows
 * the IdP plus {@link INLINE_REFRESH_MARGIN_MS}. A refresh that HAProxy abandons while the
 * auth service still completes it rotates the refresh token behind the browser's back (its
 * next refresh, more than 10 s later, is `refresh-cookie-superseded`: sign in again).
 */
export function inlineRefreshTimeoutSeconds(idpTimeoutMs: number = DEFAULT_IDP_TIMEOUT_MS): number {
  return Math.ceil((idpTimeoutMs + INLINE_REFRESH_MARGIN_MS) / 1000);
}

/** The inline-refresh wait with the auth service's default IdP timeout (7 s). */
export const DEFAULT_INLINE_REFRESH_TIMEOUT_SECONDS = inlineRefreshTimeoutSeconds();

/**
 * HAProxy's `timeout server` towards the auth service: just above API Gateway's limit, so API
 * Gateway's own 504 (with its reason) arrives first and a dead connection is still given up
 * on in half a minute, not after Looker's hour.
 */
export const AUTH_SERVICE_TIMEOUT_SECONDS = API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS + 1;

/** How long a finished inline refresh's answer is reused by requests that carry the same refresh cookie (HAProxy's Lua drops it after that). */
export const DEFAULT_REFRESH_GRACE_SECONDS = 5;
