/**
 * A CloudWatch metric alarm of a synthesized template, evaluated the way CloudWatch documents
 * it (CloudWatch User Guide, "Using Amazon CloudWatch alarms": an alarm compares the metric's
 * statistic over each period with the threshold; "Evaluating an alarm": M out of N periods)
 * over data points a test collected: PutMetricData data (dev/aws/cloudwatch-endpoint.ts)
 * or the values metric filters published for real log lines. Only data of the alarm's exact
 * namespace, metric name and dimension set count: CloudWatch keeps each dimension combination
 * as a metric of its own.
 */
export interface TemplateAlarm {
  readonly Namespace: string;
  readonly MetricName: string;
  readonly Statistic: string;
  readonly Threshold: number;
  readonly ComparisonOperator: string;
  readonly Dimensions?: Array<{ Name: string; Value: string }>;
}

export interface DataPoint {
  readonly namespace: string;
  readonly metricName: string;
  readonly value: number;
  readonly dimensions: Record<string, string>;
}

/**
 * An alarm's properties as a single metric, whether the template writes them flat (Namespace,
 * MetricName, Statistic) or as a one-metric `Metrics` list (CDK does when the metric has a label).
 */
export function singleMetricAlarm(properties: Record<string, any>): TemplateAlarm {
  if (!properties.Metrics) return properties as TemplateAlarm;
  const returned = (properties.Metrics as Array<Record<string, any>>).filter((m) => m.ReturnData !== false);
  if (returned.length !== 1 || !returned[0].MetricStat) throw new Error(`the alarm is metric math, not one metric: ${JSON.stringify(properties.Metrics)}`);
  const { Metric, Stat } = returned[0].MetricStat;
  return { ...properties, Namespace: Metric.Namespace, MetricName: Metric.MetricName, Dimensions: Metric.Dimensions, Statistic: Stat } as TemplateAlarm;
}

/** The alarm's statistic over the given data points (one period), or undefined when none matches. */
export function alarmStatistic(alarm: TemplateAlarm, data: readonly DataPoint[]): number | undefined {
  const dimensions = Object.fromEntries((alarm.Dimensions ?? []).map((d) => [d.Name, d.Value]));
  const sameDimensions = (d: DataPoint) => JSON.stringify(Object.entries(d.dimensions).sort()) === JSON.stringify(Object.entries(dimensions).sort());
  const values = data.filter((d) => d.namespace === alarm.Namespace && d.metricName === alarm.MetricName && sameDimensions(d)).map((d) => d.value);
  if (values.length === 0) return undefined;
  switch (alarm.Statistic) {
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'Maximum':
      return Math.max(...values);
    case 'Minimum':
      return Math.min(...values);
    case 'Average':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'SampleCount':
      return values.length;
    default:
      throw new Error(`statistic ${alarm.Statistic} is not modelled`);
  }
}

/** Whether one period with these data points breaches the alarm's threshold. */
export function breaches(properties: Record<string, any>, data: readonly DataPoint[]): boolean {
  const alarm = singleMetricAlarm(properties);
  const value = alarmStatistic(alarm, data);
  if (value === undefined) return false;
  switch (alarm.ComparisonOperator) {
    case 'GreaterThanThreshold':
      return value > alarm.Threshold;
    case 'GreaterThanOrEqualToThreshold':
      return value >= alarm.Threshold;
    case 'LessThanThreshold':
      return value < alarm.Threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= alarm.Threshold;
    default:
      throw new Error(`comparison ${alarm.ComparisonOperator} is not modelled`);
  }
}

/**
 * The gateway's own alarms of a synthesized template (GatewayObservability's, not the scaling
 * policies'), by the name their runbook row has: the logical id is `...Observability<Name>Alarm<hash>`.
 */
export function gatewayAlarms(resources: Record<string, { Type: string; Properties?: any }>): Array<{ id: string; name: string; props: Record<string, any> }> {
  return Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm')
    .flatMap(([id, r]) => {
      const name = /Observability(\w+?)Alarm[0-9A-F]{8}$/.exec(id)?.[1];
      return name ? [{ id, name, props: r.Properties as Record<string, any> }] : [];
    });
}
