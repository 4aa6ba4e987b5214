/** key-sync's metrics as CloudWatch metrics of the fleet (core/instance/key-sync-metrics.ts says how each is read). */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { KEY_SYNC_METRIC_READING, KeySyncMetricName } from '../../core/instance/key-sync-metrics';

export function keySyncMetric(namespace: string, metricName: KeySyncMetricName, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
  const { statistic, label } = KEY_SYNC_METRIC_READING[metricName];
  return new cloudwatch.Metric({ namespace, metricName, statistic, period: Duration.minutes(5), label, ...props });
}
