/**
 * The props that tune HAProxy on every instance, shared by LookerGateway and GatewayFleet,
 * and their synth-time checks (each error names the prop, the value and the fix).
 */
import { Duration, Token } from 'aws-cdk-lib';
import type { InstanceHaproxySettings } from '../../core/instance/user-data';
import { assertDurationInRange, assertIntegerInRange, GatewayPropsError } from '../private/validation';

export interface GatewayHaproxyProps {
  /**
   * Origins that may show Looker in a frame (Looker embedding), e.g. `https://portal.example.com`:
   * HAProxy sends `Content-Security-Policy: frame-ancestors 'self' <origins>` and no `X-Frame-Options`.
   * @default - Looker's own `X-Frame-Options`, or `SAMEORIGIN` when Looker sends none
   */
  readonly frameAncestors?: string[];
  /**
   * Requests to the auth service (`/oauth2/*`: sign-in, callback, logout) allowed per client
   * address and `authRateLimitPeriod`; more get 429 with `Retry-After`. Raise it when many
   * users share one address (a NAT).
   * @default 60
   */
  readonly authRateLimit?: number;
  /** The period of `authRateLimit` (1 second to 1 hour, whole seconds). @default Duration.seconds(10) */
  readonly authRateLimitPeriod?: Duration;
  /**
   * Entries of HAProxy's cache of verified session signatures (per process); about 100 bytes
   * each. Size it to the sessions active within 15 minutes.
   * @default 100000
   */
  readonly verificationCacheSize?: number;
  /**
   * Concurrent connections per instance (HAProxy's global `maxconn`; each needs two file
   * descriptors).
   * @default - derived by HAProxy from the file-descriptor limit
   */
  readonly maxConnections?: number;
  /**
   * Concurrent connections of the public listener per instance (its `maxconn`), at most
   * `maxConnections`. The health-check, metrics and redirect listeners have small limits of
   * their own.
   * @default - maxConnections
   */
  readonly listenerMaxConnections?: number;
}

const HTTPS_ORIGIN = /^https:\/\/[A-Za-z0-9.*-]+(:\d{1,5})?$/;

/** Checks the props and turns them into the instance files' HAProxy settings. */
export function haproxySettingsFrom(where: string, props: GatewayHaproxyProps): InstanceHaproxySettings {
  for (const origin of props.frameAncestors ?? []) {
    if (!HTTPS_ORIGIN.test(origin))
      throw new GatewayPropsError(
        where,
        `frameAncestors has ${JSON.stringify(origin)}: give https origins without a path, for example "https://portal.example.com".`,
      );
  }
  if (props.authRateLimit !== undefined)
    assertIntegerInRange(where, 'authRateLimit', props.authRateLimit, 1, 100_000, 'Requests per client address and authRateLimitPeriod; the default is 60.');
  if (props.authRateLimitPeriod !== undefined) {
    if (!props.authRateLimitPeriod.isUnresolved() && props.authRateLimitPeriod.toMilliseconds() % 1000 !== 0)
      throw new GatewayPropsError(
        where,
        `authRateLimitPeriod is ${props.authRateLimitPeriod.toHumanString()}; give whole seconds, for example Duration.seconds(10).`,
      );
    assertDurationInRange(where, 'authRateLimitPeriod', props.authRateLimitPeriod, Duration.seconds(1), Duration.hours(1), 'The default is 10 seconds.');
  }
  if (props.verificationCacheSize !== undefined)
    assertIntegerInRange(where, 'verificationCacheSize', props.verificationCacheSize, 100, 10_000_000, 'Size it to the sessions active within 15 minutes.');
  if (props.maxConnections !== undefined)
    assertIntegerInRange(
      where,
      'maxConnections',
      props.maxConnections,
      100,
      1_000_000,
      'Leave it unset to let HAProxy derive it from the file-descriptor limit.',
    );
  if (props.listenerMaxConnections !== undefined)
    assertIntegerInRange(where, 'listenerMaxConnections', props.listenerMaxConnections, 100, 1_000_000, 'Leave it unset to use maxConnections.');
  const [all, listener] = [props.maxConnections, props.listenerMaxConnections];
  if (all !== undefined && listener !== undefined && !Token.isUnresolved(all) && !Token.isUnresolved(listener) && listener > all)
    throw new GatewayPropsError(
      where,
      `listenerMaxConnections (${listener}) is above maxConnections (${all}): an instance never accepts more than maxConnections. Lower listenerMaxConnections or raise maxConnections.`,
    );
  return {
    frameAncestors: props.frameAncestors,
    authRequestsPerPeriod: props.authRateLimit,
    authRatePeriodSeconds: props.authRateLimitPeriod?.toSeconds(),
    verificationCacheSize: props.verificationCacheSize,
    maxConnections: props.maxConnections,
    listenerMaxConnections: props.listenerMaxConnections,
  };
}
