/**
 * key-sync's certificate-health step: after every run (updated, unchanged or failed), the
 * days until the installed frontend certificate expires go to CloudWatch with
 * PutMetricData, once without dimensions (the alarm takes the fleet's minimum) and once
 * per instance (dimension InstanceId, from the instance metadata service). It reads the
 * file HAProxy serves, so it tells whether a renewal (ACM's, the rotation's, or yours)
 * reached the instances, not only whether the certificate was renewed somewhere.
 *
 * A failure to publish never fails the run: the JSON line says `metricPublished: false`
 * and why. Spliced into core/instance/key-sync-script.ts where it says @CERTIFICATE_EXPIRY_STEP@.
 */

/** The metric's name (CloudWatch, in the gateway's namespace). */
export const CERTIFICATE_EXPIRY_METRIC = 'FrontendCertificateDaysToExpiry';

export const CERTIFICATE_EXPIRY_STEP = String.raw`
instance_id() {
  # IMDSv2 (the launch template requires tokens); empty when the metadata service does not answer.
  imds=$(printenv LG_IMDS_ENDPOINT || echo http://169.254.169.254)
  token=$(curl -fsS --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$imds/latest/api/token" 2>/dev/null) || return 0
  curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/instance-id" 2>/dev/null || true
}

publish_certificate_expiry() {
  [ -n "$METRIC_NAMESPACE" ] || return 0
  certificate="$CONFIG_DIR/@FRONTEND_CERTIFICATE@"
  if ! end=$(openssl x509 -in "$certificate" -noout -enddate 2>/dev/null); then
    EXPIRY_FACTS='{"metricPublished":false,"metricError":"no frontend certificate is installed"}'
    return 0
  fi
  end_epoch=$(date -d "$(printf '%s' "$end" | sed -e 's/^notAfter=//')" +%s)
  days=$(jq -n --argjson end "$end_epoch" --argjson now "$(date +%s)" '(($end - $now) / 864 | floor) / 100')
  data=$(jq -cn --arg name "@CERTIFICATE_EXPIRY_METRIC@" --argjson days "$days" --arg instance "$(instance_id)" \
    '[{MetricName: $name, Value: $days, Unit: "None"}]
     + (if $instance == "" then [] else [{MetricName: $name, Value: $days, Unit: "None", Dimensions: [{Name: "InstanceId", Value: $instance}]}] end)')
  if error=$(aws cloudwatch put-metric-data --region "$REGION" --cli-connect-timeout 5 --cli-read-timeout 20 \
      --namespace "$METRIC_NAMESPACE" --metric-data "$data" 2>&1 >/dev/null); then
    EXPIRY_FACTS=$(jq -cn --argjson days "$days" '{certificateDaysToExpiry: $days, metricPublished: true}')
  else
    EXPIRY_FACTS=$(jq -cn --argjson days "$days" --arg error "$(printf '%s' "$error" | tr '\n' ' ' | cut -c1-300)" \
      '{certificateDaysToExpiry: $days, metricPublished: false, metricError: $error}')
  fi
}
`;
