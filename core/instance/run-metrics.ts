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
 *   LookerServersUp             the servers of HAProxy's Looker backend that this instance's
 *                               HAProxy counts as UP (its health check), read from the admin
 *                               socket (`show stat`); with LookerServersConfigured, the servers
 *                               that have an address (static hosts, or DNS-discovered slots
 *                               that resolved). Both absent when the socket cannot be read (at
 *                               boot, before haproxy starts; haproxy down): the JSON line's
 *                               `lookerServersError` says why;
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
  lookerServersUp: 'LookerServersUp',
  lookerServersConfigured: 'LookerServersConfigured',
} as const;

/**
 * Counts the Looker backend's servers in HAProxy's `show stat` answer (the admin socket's CSV,
 * HAProxy 3.0 management guide, "show stat": field `status` of each server row). UP counts,
 * and so does "UP 1/2" (a check failed but not yet `fall` of them: HAProxy still sends it
 * traffic); DOWN, NOLB, DRAIN and MAINT do not. A server-template slot that DNS did not fill
 * is "MAINT (resolution)": no server, so not configured either. Prints {"up":N,"configured":M}
 * or exits non-zero with why. Python 3 is on every instance: Debian's awscli runs on it.
 */
export const LOOKER_SERVERS_PY = String.raw`import csv, json, socket, sys
path, backend = sys.argv[1], sys.argv[2]
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.settimeout(5)
chunks = []
try:
    client.connect(path)
    client.sendall(b"show stat\n")
    while True:
        chunk = client.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
except OSError as error:
    sys.exit("cannot read " + path + ": " + (error.strerror or str(error)))
finally:
    client.close()
rows = list(csv.reader(b"".join(chunks).decode("utf-8", "replace").splitlines()))
if not rows or not rows[0] or not rows[0][0].startswith("# pxname"):
    sys.exit("unexpected answer to show stat from " + path)
columns = [rows[0][0][2:]] + rows[0][1:]
servers = [dict(zip(columns, row)) for row in rows[1:] if row and row[0] == backend and row[1] not in ("FRONTEND", "BACKEND")]
if not servers:
    sys.exit("no backend " + backend + " in the show stat answer of " + path)
statuses = [server.get("status", "") for server in servers]
up = sum(1 for status in statuses if status == "UP" or status.startswith("UP "))
configured = sum(1 for status in statuses if status != "MAINT (resolution)")
print(json.dumps({"up": up, "configured": configured}))`;

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

LOOKER_SERVERS_PY=$(cat <<'PY'
@LOOKER_SERVERS_PY@
PY
)

looker_servers() {
  # HAProxy's view of the Looker backend (the admin socket), into LOOKER_FACTS; the counts, or
  # why there are none. Never fails the run.
  LOOKER_UP=""
  LOOKER_CONFIGURED=""
  [ -n "$HAPROXY_ADMIN_SOCKET" ] || return 0
  if ! command -v python3 >/dev/null 2>&1; then
    LOOKER_FACTS='{"lookerServersError":"python3 is not installed (apt-get install python3)"}'
    return 0
  fi
  if counts=$(python3 -c "$LOOKER_SERVERS_PY" "$HAPROXY_ADMIN_SOCKET" @LOOKER_BACKEND@ 2>&1); then
    LOOKER_UP=$(jq -r .up <<< "$counts")
    LOOKER_CONFIGURED=$(jq -r .configured <<< "$counts")
    LOOKER_FACTS=$(jq -c '{lookerServersUp: .up, lookerServersConfigured: .configured}' <<< "$counts")
  else
    LOOKER_FACTS=$(jq -cn --arg error "$(printf '%s' "$counts" | tr '\n' ' ' | cut -c1-300)" '{lookerServersError: $error}')
  fi
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
  looker_servers
  [ -n "$METRIC_NAMESPACE" ] || return 0
  INSTANCE_ID=$(instance_id)
  certificate_expiry_data
  data=$(
    {
      metric_datum @SECONDS_SINCE_SUCCESS_METRIC@ "$age" Seconds
      if [ "$matches" != null ]; then metric_datum @CURRENT_KID_MATCHES_METRIC@ "$matches" None; fi
      metric_datum @RUN_FAILED_METRIC@ "$failed" Count
      if [ -n "$LOOKER_UP" ]; then
        metric_datum @LOOKER_SERVERS_UP_METRIC@ "$LOOKER_UP" Count
        metric_datum @LOOKER_SERVERS_CONFIGURED_METRIC@ "$LOOKER_CONFIGURED" Count
      fi
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
