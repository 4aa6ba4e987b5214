/**
 * The key-sync script that runs on every gateway instance (bash, AWS CLI v2, jq,
 * openssl, flock: all from Debian 13). Its settings come from the config file that
 * core/instance/key-sync.ts renders; the script itself is the same everywhere.
 *
 * Written without "${" and backticks so it can live in a String.raw template as is. The
 * file names are placeholders (@NAME@) that core/instance/key-sync.ts fills from
 * core/layout.ts, so the script writes exactly the files haproxy.cfg names.
 */
export const KEY_SYNC_SCRIPT = String.raw`#!/bin/bash
# lg-key-sync (cdk-looker-gateway): copies the gateway's rotated public session keys and
# certificates from AWS Secrets Manager into HAProxy's files, checks the configuration
# with "haproxy -c" and reloads HAProxy, only when a file changed. When anything fails
# it keeps (restores) the last good files and does not reload. One JSON line per run.
#
#   lg-key-sync CONFIG_FILE [--no-reload] [--wait-for-first-rotation]
#
# --no-reload is for the boot run, before haproxy starts (it reads the files itself).
# --wait-for-first-rotation, also for the boot run: on a new stack the first rotations run
# asynchronously after the secrets are created, so a secret may still hold its seed (no
# current session key, no certificate). The run then waits with a bounded backoff (2 s
# doubling to 30 s, FIRST_ROTATION_WAIT_SECONDS in all), logging what it waits for.
# Exit status: 0 updated or unchanged, 1 failed (the JSON line says why), 2 bad usage.
set -u -o pipefail
umask 027
export LC_ALL=C
# Bounded AWS CLI retries: a sync that cannot reach Secrets Manager fails fast and the timer tries again.
export AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=3 AWS_PAGER=""

if [ $# -lt 1 ]; then
  echo '{"unit":"lg-key-sync","outcome":"error","message":"usage: lg-key-sync CONFIG_FILE [--no-reload] [--wait-for-first-rotation]"}'
  exit 2
fi
ARGS="$*"
CONFIG_FILE=$1
shift
RELOAD=yes
WAIT_FOR_FIRST_ROTATION=no
for option in "$@"; do
  case $option in
    --no-reload) RELOAD=no ;;
    --wait-for-first-rotation) WAIT_FOR_FIRST_ROTATION=yes ;;
    *)
      echo '{"unit":"lg-key-sync","outcome":"error","message":"unknown option (expected --no-reload or --wait-for-first-rotation)"}'
      exit 2
      ;;
  esac
done

SECRETS="verification-keys backend-client-certificate frontend-certificate"
SLOTS="previous current next"
WORK=""
CHANGED=""
FETCHED=""
KIDS=""
EXPIRY_FACTS="{}"
SYNC_FACTS="{}"
METRIC_FACTS="{}"
LOOKER_FACTS="{}"
VERSIONS="{}"
LOG_FILE=""

json_list() {
  # Words of $1 as a JSON array of strings.
  printf '%s\n' $1 | jq -R . | jq -cs 'map(select(length > 0))'
}

log_line() {
  # $1 outcome, $2 message, $3 extra JSON object. Never give it key material. To the journal
  # (stdout) and to LOG_FILE, which the CloudWatch agent ships (it does not read the journal).
  line=$(jq -cn --arg outcome "$1" --arg message "$2" --argjson extra "$3" \
    '{time: (now | todate), unit: "lg-key-sync", outcome: $outcome, message: $message} + $extra')
  printf '%s\n' "$line"
  if [ -n "$LOG_FILE" ]; then printf '%s\n' "$line" >> "$LOG_FILE" || echo '{"unit":"lg-key-sync","outcome":"error","message":"cannot append to the log file"}'; fi
}

run_facts() {
  jq -cn --argjson changed "$(json_list "$CHANGED")" --argjson fetched "$(json_list "$FETCHED")" \
    --argjson kids "$(json_list "$KIDS")" --arg reload "$RELOAD" --argjson expiry "$EXPIRY_FACTS" \
    --argjson sync "$SYNC_FACTS" --argjson metric "$METRIC_FACTS" --argjson looker "$LOOKER_FACTS" \
    '{changed: $changed, fetched: $fetched, kids: $kids, reloadAllowed: ($reload == "yes")} + $sync + $looker + $expiry + $metric'
}

restore_previous_files() {
  [ -n "$WORK" ] || return 0
  if [ -f "$WORK/installed" ]; then
    while read -r rel; do
      backup="$WORK/old/$(printf '%s' "$rel" | tr / _)"
      if [ -e "$backup" ]; then mv -f "$backup" "$CONFIG_DIR/$rel"; else rm -f "$CONFIG_DIR/$rel"; fi
    done < "$WORK/installed"
    rm -f "$WORK/installed"
  fi
}

fail() {
  restore_previous_files
  # A failed run reports too: its failure, the age of the last good one, and the installed
  # certificate that still counts down (a renewal that keeps failing alarms).
  publish_run_metrics error
  log_line error "$1" "$(run_facts | jq -c '. + {reloaded: false, keptPreviousFiles: true}')"
  exit 1
}

cleanup() {
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Steps (functions): the frontend certificate from ACM; the run's metrics, with the days until the
# certificate expires and the Looker servers HAProxy counts as up.
@ACM_CERTIFICATE_STEP@
@CERTIFICATE_EXPIRY_STEP@
@RUN_METRICS_STEP@

if ! [ -r "$CONFIG_FILE" ]; then
  echo '{"unit":"lg-key-sync","outcome":"error","message":"cannot read the config file"}'
  exit 2
fi
FIRST_ROTATION_WAIT_SECONDS=480
FRONTEND_CERTIFICATE_SOURCE=secret
METRIC_NAMESPACE=""
HAPROXY_ADMIN_SOCKET=""
. "$CONFIG_FILE"
case $FRONTEND_CERTIFICATE_SOURCE in
  secret) FRONTEND_CERTIFICATE_SETTING=FRONTEND_CERTIFICATE_SECRET_ARN ;;
  acm)
    FRONTEND_CERTIFICATE_SETTING=FRONTEND_CERTIFICATE_ARN
    SECRETS="verification-keys backend-client-certificate"
    ;;
  *)
    echo '{"unit":"lg-key-sync","outcome":"error","message":"FRONTEND_CERTIFICATE_SOURCE must be secret or acm"}'
    exit 2
    ;;
esac
for name in REGION CONFIG_DIR STATE_DIR VERIFICATION_KEYS_SECRET_ARN BACKEND_CLIENT_CERTIFICATE_SECRET_ARN $FRONTEND_CERTIFICATE_SETTING HAPROXY_BIN HAPROXY_CONFIG RELOAD_COMMAND HAPROXY_GROUP; do
  eval "value=\"\$$name\""
  if [ -z "$value" ]; then
    echo "{\"unit\":\"lg-key-sync\",\"outcome\":\"error\",\"message\":\"$name is not set in $CONFIG_FILE\"}"
    exit 2
  fi
done
for tool in aws jq openssl flock "$HAPROXY_BIN"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "{\"unit\":\"lg-key-sync\",\"outcome\":\"error\",\"message\":\"$tool is not installed (apt-get install awscli jq openssl util-linux haproxy)\"}"
    exit 2
  fi
done

mkdir -p "$STATE_DIR" "$CONFIG_DIR" || fail "cannot create $STATE_DIR or $CONFIG_DIR"
exec 9>>"$STATE_DIR/lock"
flock -w 300 9 || fail "another lg-key-sync run holds $STATE_DIR/lock"
# The work area lives in the config directory, so installing a file is a rename on one file system.
WORK=$(mktemp -d "$CONFIG_DIR/.lg-key-sync.XXXXXX") || fail "cannot create a work directory in $CONFIG_DIR"
mkdir -p "$WORK/secrets" "$WORK/new/keys" "$WORK/new/maps" "$WORK/new/tls" "$WORK/old"

arn_of() {
  case $1 in
    verification-keys) printf '%s' "$VERIFICATION_KEYS_SECRET_ARN" ;;
    backend-client-certificate) printf '%s' "$BACKEND_CLIENT_CERTIFICATE_SECRET_ARN" ;;
    frontend-certificate) printf '%s' "$FRONTEND_CERTIFICATE_SECRET_ARN" ;;
  esac
}

files_of() {
  case $1 in
    verification-keys) printf '%s\n' @SESSION_KEY_PREVIOUS@ @SESSION_KEY_CURRENT@ @SESSION_KEY_NEXT@ @SESSION_KID_MAP@ ;;
    backend-client-certificate) printf '%s\n' @BACKEND_CLIENT_CERTIFICATE@ ;;
    frontend-certificate | acm-certificate) printf '%s\n' @FRONTEND_CERTIFICATE@ ;;
  esac
}

slot_file() {
  case $1 in
    previous) printf '%s' @SESSION_KEY_PREVIOUS@ ;;
    current) printf '%s' @SESSION_KEY_CURRENT@ ;;
    next) printf '%s' @SESSION_KEY_NEXT@ ;;
  esac
}

aws_sm() {
  aws secretsmanager --region "$REGION" --output json --cli-connect-timeout 5 --cli-read-timeout 20 "$@" 2>"$WORK/aws-error"
}

aws_error() {
  tr '\n' ' ' < "$WORK/aws-error" | cut -c1-300
}

current_version() {
  aws_sm describe-secret --secret-id "$1" | jq -er '.VersionIdsToStages // {} | to_entries[] | select(.value | index("AWSCURRENT")) | .key'
}

synced_version() {
  cat "$STATE_DIR/$1.version" 2>/dev/null || true
}

files_present() {
  for rel in $(files_of "$1"); do
    [ -s "$CONFIG_DIR/$rel" ] || return 1
  done
  return 0
}

with_final_newline='if endswith("\n") then . else . + "\n" end'

# What the first rotation writes, whatever the seed before it looks like: a current key in the
# verification set, a certificate in a certificate secret (false for anything else, JSON or not).
has_current_key() {
  jq -e 'try ([.keys[]? | select(type == "object" and .status == "current")] | length > 0) catch false' "$1" >/dev/null 2>&1
}

has_certificate() {
  jq -e 'try (.certificatePem | type == "string" and length > 0) catch false' "$1" >/dev/null 2>&1
}

not_yet_rotated() {
  # $1 secret, $2 what is missing. Waits (boot run) or fails (timer runs try again later).
  if [ "$WAIT_FOR_FIRST_ROTATION" != yes ]; then fail "$2 (has its first rotation run?)"; fi
  now=$(date +%s)
  # Set by the previous attempt (re-executed below); absent on the first.
  started=$(printenv LG_KEY_SYNC_WAIT_STARTED || echo "$now")
  delay=$(printenv LG_KEY_SYNC_NEXT_DELAY || echo 2)
  waited=$((now - started))
  remaining=$((FIRST_ROTATION_WAIT_SECONDS - waited))
  if [ "$remaining" -le 0 ]; then
    fail "gave up after $waited s waiting for the first rotation: $2. Check the rotation of the $1 secret (rotation log group) and start the instance again."
  fi
  if [ "$delay" -gt "$remaining" ]; then delay=$remaining; fi
  log_line waiting "waiting for the first rotation: $2; next check in $delay s" \
    "$(jq -cn --arg s "$1" --argjson w "$waited" --argjson d "$delay" --argjson l "$FIRST_ROTATION_WAIT_SECONDS" '{secret: $s, waitedSeconds: $w, retryInSeconds: $d, waitLimitSeconds: $l}')"
  restore_previous_files
  cleanup
  exec 9>&-
  sleep "$delay"
  next=$((delay * 2))
  if [ "$next" -gt 30 ]; then next=30; fi
  LG_KEY_SYNC_WAIT_STARTED=$started LG_KEY_SYNC_NEXT_DELAY=$next exec "$0" $ARGS
}

render_verification_keys() {
  doc="$WORK/secrets/verification-keys.json"
  jq -e '.kind == "session-verification-keys" and .version == 1' "$doc" >/dev/null \
    || fail "the verification-keys secret is not a session-verification-keys document of format version 1"
  jq -e '(.keys | type == "array") and all(.keys[]; (.kid | type == "string" and test("^[A-Za-z0-9_-]{1,128}$")) and (.status | IN("previous", "current", "next")) and (.publicKeyPem | type == "string"))' "$doc" >/dev/null \
    || fail "the verification-keys secret has a malformed key entry (kid, status or publicKeyPem)"
  if jq -e 'any(.keys[]; .publicJwk | has("d") or has("p") or has("q") or has("k"))' "$doc" >/dev/null; then
    fail "the verification-keys secret holds private key material: refusing to write it"
  fi
  for slot in $SLOTS; do
    count=$(jq --arg s "$slot" '[.keys[] | select(.status == $s)] | length' "$doc")
    if [ "$slot" = current ] && [ "$count" != 1 ]; then
      fail "the verification-keys secret has $count current keys, expected 1 (have the signing keys been rotated once?)"
    fi
    if [ "$count" -gt 1 ]; then fail "the verification-keys secret has $count $slot keys, expected at most 1"; fi
  done
  : > "$WORK/new/@SESSION_KID_MAP@"
  for slot in $SLOTS; do
    source_slot=$slot
    if ! jq -e --arg s "$slot" 'any(.keys[]; .status == $s)' "$doc" >/dev/null; then
      # An empty slot holds a copy of the current key and has no kid map line.
      source_slot=current
    else
      jq -r --arg s "$slot" --arg path "$CONFIG_DIR/$(slot_file "$slot")" '.keys[] | select(.status == $s) | "\(.kid) \($path)"' "$doc" >> "$WORK/new/@SESSION_KID_MAP@"
      KIDS="$KIDS $slot:$(jq -r --arg s "$slot" '.keys[] | select(.status == $s) | .kid' "$doc")"
    fi
    target="$WORK/new/$(slot_file "$slot")"
    jq -j --arg s "$source_slot" ".keys[] | select(.status == \$s) | .publicKeyPem | $with_final_newline" "$doc" > "$target"
    openssl pkey -pubin -in "$target" -noout >/dev/null 2>&1 \
      || fail "the $slot session key in the verification-keys secret is not a valid PEM public key"
  done
}

render_certificate() {
  # $1 secret name, $2 expected kind, $3 target file (relative)
  doc="$WORK/secrets/$1.json"
  jq -e --arg kind "$2" '.kind == $kind and .version == 1' "$doc" >/dev/null \
    || fail "the $1 secret is not a $2 document of format version 1"
  jq -e '(.certificatePem | type == "string" and length > 0) and (.privateKeyPem | type == "string" and length > 0)' "$doc" >/dev/null \
    || fail "the $1 secret holds no certificate yet (has its first rotation run?)"
  target="$WORK/new/$3"
  # HAProxy's crt file: certificate, chain, private key.
  jq -j "[.certificatePem, (.chainPem // \"\"), .privateKeyPem] | map(select(length > 0) | $with_final_newline) | join(\"\")" "$doc" > "$target"
  openssl x509 -in "$target" -noout -checkend 0 >/dev/null 2>&1 \
    || fail "the certificate in the $1 secret is not valid PEM or has expired"
  openssl pkey -in "$target" -noout >/dev/null 2>&1 \
    || fail "the private key in the $1 secret is not a valid PEM key"
}

# 1. Which secrets have a new AWSCURRENT version since the last good sync?
VERSIONS="{}"
for secret in $SECRETS; do
  arn=$(arn_of "$secret")
  version=$(current_version "$arn") || fail "cannot read the current version of the $secret secret ($arn): $(aws_error)"
  VERSIONS=$(jq -c --arg k "$secret" --arg v "$version" '. + {($k): $v}' <<< "$VERSIONS")
  if [ "$version" = "$(synced_version "$secret")" ] && files_present "$secret"; then continue; fi
  # 2. Fetch exactly that version and render its files in the work area.
  aws_sm get-secret-value --secret-id "$arn" --version-id "$version" | jq -er '.SecretString' > "$WORK/secrets/$secret.json" \
    || fail "cannot read version $version of the $secret secret ($arn): $(aws_error)"
  case $secret in
    verification-keys) has_current_key "$WORK/secrets/$secret.json" || not_yet_rotated "$secret" "the $secret secret ($arn) has no current session key yet" ;;
    *) has_certificate "$WORK/secrets/$secret.json" || not_yet_rotated "$secret" "the $secret secret ($arn) holds no certificate yet" ;;
  esac
  jq -e . "$WORK/secrets/$secret.json" >/dev/null 2>&1 || fail "the $secret secret ($arn) is not a JSON document"
  FETCHED="$FETCHED $secret"
  case $secret in
    verification-keys) render_verification_keys ;;
    backend-client-certificate) render_certificate "$secret" backend-client-certificate @BACKEND_CLIENT_CERTIFICATE@ ;;
    frontend-certificate) render_certificate "$secret" frontend-certificate @FRONTEND_CERTIFICATE@ ;;
  esac
  for rel in $(files_of "$secret"); do
    if ! cmp -s "$WORK/new/$rel" "$CONFIG_DIR/$rel"; then CHANGED="$CHANGED $rel"; fi
  done
done
# 2b. A frontend certificate from ACM: exported again when ACM renewed it (a new serial).
if [ "$FRONTEND_CERTIFICATE_SOURCE" = acm ]; then sync_acm_certificate; fi

save_versions() {
  for secret in $FETCHED; do
    jq -r --arg k "$secret" '.[$k]' <<< "$VERSIONS" > "$STATE_DIR/$secret.version.tmp" && mv -f "$STATE_DIR/$secret.version.tmp" "$STATE_DIR/$secret.version"
  done
}

if [ -z "$CHANGED" ]; then
  save_versions
  publish_run_metrics unchanged
  log_line unchanged "nothing to change: the files match the current secret versions" "$(run_facts | jq -c --argjson v "$VERSIONS" '. + {versions: $v, reloaded: false}')"
  exit 0
fi

# 3. Install the changed files atomically (rename), keeping the old ones to restore.
mkdir -p "$CONFIG_DIR/keys" "$CONFIG_DIR/maps" "$CONFIG_DIR/tls" || fail "cannot create the key directories in $CONFIG_DIR"
chmod 0755 "$CONFIG_DIR/keys" "$CONFIG_DIR/maps"
chgrp "$HAPROXY_GROUP" "$CONFIG_DIR/tls" && chmod 0750 "$CONFIG_DIR/tls" || fail "cannot give $CONFIG_DIR/tls to group $HAPROXY_GROUP"
for rel in $CHANGED; do
  staged="$WORK/new/$rel"
  case $rel in
    tls/*) chgrp "$HAPROXY_GROUP" "$staged" && chmod 0640 "$staged" || fail "cannot set the owner of $rel" ;;
    *) chmod 0644 "$staged" ;;
  esac
  if [ -e "$CONFIG_DIR/$rel" ]; then
    cp -p "$CONFIG_DIR/$rel" "$WORK/old/$(printf '%s' "$rel" | tr / _)" || fail "cannot keep a copy of $rel"
  fi
  printf '%s\n' "$rel" >> "$WORK/installed"
  mv -f "$staged" "$CONFIG_DIR/$rel" || fail "cannot install $rel"
done

# 4. Check the whole configuration with the new files; any complaint restores the old ones.
if ! "$HAPROXY_BIN" -c -f "$HAPROXY_CONFIG" > "$WORK/check" 2>&1; then
  fail "haproxy -c rejected the configuration with the new files: $(grep -m 3 -E 'ALERT' "$WORK/check" | tr '\n' ' ' | cut -c1-500)"
fi

# 5. Reload seamlessly (master-worker), unless haproxy has not started yet.
RELOADED=false
if [ "$RELOAD" = yes ]; then
  if ! sh -c "$RELOAD_COMMAND" > "$WORK/reload" 2>&1; then
    fail "the reload command failed: $(tr '\n' ' ' < "$WORK/reload" | cut -c1-300)"
  fi
  RELOADED=true
fi
rm -f "$WORK/installed"
save_versions
publish_run_metrics updated
log_line updated "installed new key and certificate files" "$(run_facts | jq -c --argjson v "$VERSIONS" --argjson r "$RELOADED" '. + {versions: $v, reloaded: $r}')"
exit 0
`;
