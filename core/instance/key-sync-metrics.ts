/**
 * How key-sync's metrics (core/instance/run-metrics.ts publishes them) are read: the series
 * without dimensions, which holds every instance's data points, with the statistic that shows
 * the worst instance, and the staleness threshold of its alarm. Pure: the constructs make the
 * CloudWatch metrics from it (GatewayFleet.metricKeySync*()).
 */
import { KEY_SYNC_DEFAULTS } from './key-sync';
import { KEY_SYNC_METRICS } from './run-metrics';

/**
 * An instance is stale once its last good sync is older than one interval, the timer's random
 * delay and a minute of margin for the run itself: its next run has failed too.
 */
export const KEY_SYNC_STALE_AFTER_SECONDS = KEY_SYNC_DEFAULTS.intervalSeconds + KEY_SYNC_DEFAULTS.randomDelaySeconds + 60;

export type KeySyncMetricName = (typeof KEY_SYNC_METRICS)[keyof typeof KEY_SYNC_METRICS];

/** Each metric's statistic over the fleet's series (the worst instance, or the count of failures) and its label. */
export const KEY_SYNC_METRIC_READING: Record<KeySyncMetricName, { readonly statistic: 'Maximum' | 'Minimum' | 'Sum'; readonly label: string }> = {
  [KEY_SYNC_METRICS.secondsSinceSuccess]: { statistic: 'Maximum', label: 'Seconds since the last successful key sync (worst instance)' },
  [KEY_SYNC_METRICS.currentKidMatches]: { statistic: 'Minimum', label: "Installed current session key is the secret's (1) or not (0), worst instance" },
  [KEY_SYNC_METRICS.runFailed]: { statistic: 'Sum', label: 'Failed key-sync runs' },
  [KEY_SYNC_METRICS.lookerServersUp]: { statistic: 'Minimum', label: 'Looker servers up (fewest any instance sees)' },
  [KEY_SYNC_METRICS.lookerServersConfigured]: { statistic: 'Maximum', label: 'Looker servers configured (most any instance has)' },
};
