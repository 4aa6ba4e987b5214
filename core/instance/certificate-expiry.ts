/**
 * key-sync's certificate-health datum: the days until the installed frontend certificate
 * expires, published after every run (updated, unchanged or failed) by the run's metrics
 * (core/instance/run-metrics.ts), once without dimensions (the alarm takes the fleet's
 * minimum) and once per instance. It reads the file HAProxy serves, so it tells whether a
 * renewal (ACM's, the rotation's, or yours) reached the instances, not only whether the
 * certificate was renewed somewhere.
 *
 * Spliced into core/instance/key-sync-script.ts where it says @CERTIFICATE_EXPIRY_STEP@.
 */

/** The metric's name (CloudWatch, in the gateway's namespace). */
export const CERTIFICATE_EXPIRY_METRIC = 'FrontendCertificateDaysToExpiry';

export const CERTIFICATE_EXPIRY_STEP = String.raw`
certificate_expiry_data() {
  # Sets EXPIRY_DATA (metric data, a JSON array: empty without a certificate) and EXPIRY_FACTS.
  certificate="$CONFIG_DIR/@FRONTEND_CERTIFICATE@"
  EXPIRY_DATA='[]'
  if ! end=$(openssl x509 -in "$certificate" -noout -enddate 2>/dev/null); then
    EXPIRY_FACTS='{"certificateError":"no frontend certificate is installed"}'
    return 0
  fi
  end_epoch=$(date -d "$(printf '%s' "$end" | sed -e 's/^notAfter=//')" +%s)
  days=$(jq -n --argjson end "$end_epoch" --argjson now "$(date +%s)" '(($end - $now) / 864 | floor) / 100')
  EXPIRY_FACTS=$(jq -cn --argjson days "$days" '{certificateDaysToExpiry: $days}')
  EXPIRY_DATA=$(metric_datum "@CERTIFICATE_EXPIRY_METRIC@" "$days" None)
}
`;
