/**
 * key-sync's metrics as CloudWatch metrics of the fleet (lib/fleet/key-sync/run-metrics.ts
 * publishes them): the series without dimensions, which holds every instance's data points.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { KEY_SYNC_DEFAULTS } from './key-sync';
import { KEY_SYNC_METRICS } from './key-sync/run-metrics';

/**
 * An instance is stale once its last good sync is older than one interval, the timer's random
 * delay and a minute of margin for the run itself: its next run has failed too.
 */
export const KEY_SYNC_STALE_AFTER_SECONDS = KEY_SYNC_DEFAULTS.intervalSeconds + KEY_SYNC_DEFAULTS.randomDelaySeconds + 60;

export function keySyncMetric(namespace: string, metricName: string, statistic: string, label: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace, metricName, statistic, period: Duration.minutes(5), label, ...props });
}

export const KEY_SYNC_METRIC_LABELS = {
  [KEY_SYNC_METRICS.secondsSinceSuccess]: 'Seconds since the last successful key sync (worst instance)',
  [KEY_SYNC_METRICS.currentKidMatches]: 'Installed current session key is the secret\'s (1) or not (0), worst instance',
  [KEY_SYNC_METRICS.runFailed]: 'Failed key-sync runs',
} as const;
