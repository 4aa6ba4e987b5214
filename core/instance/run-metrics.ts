/**
 * key-sync's metrics, published with one PutMetricData call after every run, success or
 * failure (a run that fails says so even when it could not read a single secret):
 *
 *   KeySyncSecondsSinceSuccess  seconds since this instance's last successful run (0 after
 *                               one); an instance whose runs keep failing keeps old keys, and
 *                               one rotation later refuses sessions signed with the new key;
 *   KeySyncCurrentKidMatches    1 when the installed `current` session key is the
 *                               verification-keys secret's current key, 0 when not; absent when
 *                               the run could not read the secret's current version (the age
 *                               above says so);
 *   KeySyncRunFailed            1 for a failed run, 0 otherwise;
 *   FrontendCertificateDaysToExpiry (core/instance/certificate-expiry.ts).
 *
 * Each datum goes out twice: without dimensions (the fleet's series, which the alarms watch)
 * and with the dimension InstanceId (the dashboard's per-instance lines). CloudWatch does not
 * aggregate custom metrics across dimensions: a statistic exists only for the dimension
 * combination that was published (CloudWatch User Guide, "Dimensions": "CloudWatch treats each
 * unique combination of dimensions as a separate metric ... you can't retrieve statistics
 * using combinations of dimensions that you did not specifically publish").
 *
 * A failure to publish never fails the run: the JSON line says `metricPublished: false` and why.
 * Spliced into core/instance/key-sync-script.ts where it says @RUN_METRICS_STEP@.
 */

/** The metric names key-sync publishes into the gateway's namespace. */
export const KEY_SYNC_METRICS = {
  secondsSinceSuccess: 'KeySyncSecondsSinceSuccess',
  currentKidMatches: 'KeySyncCurrentKidMatches',
  runFailed: 'KeySyncRunFailed',
} as const;

export const RUN_METRICS_STEP = String.raw`
instance_id() {
  # IMDSv2 (the launch template requires tokens); empty when the metadata service does not answer.
  imds=$(printenv LG_IMDS_ENDPOINT || echo http://169.254.169.254)
  token=$(curl -fsS --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$imds/latest/api/token" 2>/dev/null) || return 0
  curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id" 2>/dev/null || true
}

metric_datum() {
  # $1 name, $2 value, $3 unit: the fleet's datum, and this instance's when the metadata service told its id.
  jq -cn --arg name "$1" --argjson value "$2" --arg unit "$3" --arg instance "$INSTANCE_ID" \
    '[{MetricName: $name, Value: $value, Unit: $unit}]
     + (if $instance == "" then [] else [{MetricName: $name, Value: $value, Unit: $unit, Dimensions: [{Name: "InstanceId", Value: $instance}]}] end)'
}

installed_current_kid() {
  awk -v path="$CONFIG_DIR/@SESSION_KEY_CURRENT@" '$2 == path { print $1; exit }' "$CONFIG_DIR/@SESSION_KID_MAP@" 2>/dev/null || true
}

secret_current_kid() {
  # The verification-keys secret's current kid as this run knows it: from the version it fetched,
  # or the one remembered with the version it found unchanged; empty when it read no version.
  fetched="$WORK/secrets/verification-keys.json"
  if [ -n "$WORK" ] && [ -s "$fetched" ]; then
    jq -r 'try ([.keys[] | select(.status == "current") | .kid] | if length == 1 then .[0] else "" end) catch ""' "$fetched" 2>/dev/null
    return 0
  fi
  version=$(jq -r '."verification-keys" // ""' <<< "$VERSIONS")
  if [ -n "$version" ] && [ "$version" = "$(synced_version verification-keys)" ]; then cat "$STATE_DIR/verification-keys.kid" 2>/dev/null; fi
  return 0
}

publish_run_metrics() {
  # $1 the run's outcome: updated, unchanged or error.
  now=$(date +%s)
  if [ "$1" != error ]; then
    printf '%s\n' "$now" > "$STATE_DIR/last-success.tmp" && mv -f "$STATE_DIR/last-success.tmp" "$STATE_DIR/last-success"
    kid=$(secret_current_kid)
    if [ -n "$kid" ]; then printf '%s\n' "$kid" > "$STATE_DIR/verification-keys.kid"; fi
  fi
  # Never a success on this instance: count from boot, when it should have had one.
  last=$(cat "$STATE_DIR/last-success" 2>/dev/null || echo $((now - $(cut -d. -f1 /proc/uptime))))
  age=$((now - last))
  secret_kid=$(secret_current_kid)
  installed_kid=$(installed_current_kid)
  if [ -z "$secret_kid" ]; then matches=null; elif [ "$secret_kid" = "$installed_kid" ]; then matches=1; else matches=0; fi
  failed=0
  if [ "$1" = error ]; then failed=1; fi
  SYNC_FACTS=$(jq -cn --argjson age "$age" --argjson matches "$matches" '{secondsSinceSuccess: $age, currentKidMatches: (if $matches == null then null else $matches == 1 end)}')
  [ -n "$METRIC_NAMESPACE" ] || return 0
  INSTANCE_ID=$(instance_id)
  certificate_expiry_data
  data=$(
    {
      metric_datum @SECONDS_SINCE_SUCCESS_METRIC@ "$age" Seconds
      if [ "$matches" != null ]; then metric_datum @CURRENT_KID_MATCHES_METRIC@ "$matches" None; fi
      metric_datum @RUN_FAILED_METRIC@ "$failed" Count
      printf '%s\n' "$EXPIRY_DATA"
    } | jq -cs 'add'
  )
  if error=$(aws cloudwatch put-metric-data --region "$REGION" --cli-connect-timeout 5 --cli-read-timeout 20 \
      --namespace "$METRIC_NAMESPACE" --metric-data "$data" 2>&1 >/dev/null); then
    METRIC_FACTS='{"metricPublished":true}'
  else
    METRIC_FACTS=$(jq -cn --arg error "$(printf '%s' "$error" | tr '\n' ' ' | cut -c1-300)" '{metricPublished: false, metricError: $error}')
  fi
}
`;
