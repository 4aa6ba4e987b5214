/**
 * key-sync's step for a frontend certificate from ACM (an exportable public certificate):
 * bash functions spliced into core/instance/key-sync-script.ts where it says
 * @ACM_CERTIFICATE_STEP@, in the same style (no "${", no backticks; @NAME@ file names).
 *
 * Every run asks DescribeCertificate for the serial number; only a serial that differs
 * from the installed one (ACM renewed the certificate) costs an export. The export is
 * checked before anything is installed: certificate, chain and key must parse, the key
 * must decrypt with this export's passphrase and belong to the certificate, the chain
 * must sign the certificate for TLS servers, and nothing may have expired. The files
 * then go through the script's common path (atomic rename, `haproxy -c`, seamless reload,
 * old files restored on any failure).
 *
 * The passphrase is made for each export and never stored: ExportCertificate encrypts the
 * key with whatever passphrase the caller sends, so a stored one would protect nothing that
 * the permission to export does not already give away.
 */
export const ACM_CERTIFICATE_STEP = String.raw`
aws_acm() {
  aws acm --region "$REGION" --output json --cli-connect-timeout 5 --cli-read-timeout 20 "$@" 2>"$WORK/aws-error"
}

normalized_serial() {
  # ACM's "0c:9f:..:1a" and OpenSSL's "serial=0C9F...1A" alike: lower-case hex, no separators, no leading zeros.
  sed -e 's/^serial=//' | tr -d ':\n' | tr 'A-F' 'a-f' | sed -e 's/^0*//'
}

public_key_digest() {
  # $1 "x509" or "pkey", $2 file: SHA-256 of the DER public key.
  case $1 in
    x509) openssl x509 -in "$2" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | openssl dgst -sha256 -r ;;
    pkey) openssl pkey -in "$2" -pubout -outform DER 2>/dev/null | openssl dgst -sha256 -r ;;
  esac
}

export_acm_certificate() {
  # $1 ARN. Exports, checks and stages the crt file; fails (old files kept) on any doubt.
  acm="$WORK/acm"
  mkdir -m 0700 "$acm" || fail "cannot create a work directory for the ACM export"
  openssl rand -hex 32 | tr -d '\n' > "$acm/passphrase" && chmod 0600 "$acm/passphrase" \
    || fail "cannot make a passphrase for the ACM export"
  aws_acm export-certificate --certificate-arn "$1" --passphrase "fileb://$acm/passphrase" > "$acm/export.json" \
    || fail "cannot export the ACM certificate ($1): $(aws_error)"
  jq -ej '.Certificate | select(type == "string" and length > 0)' "$acm/export.json" > "$acm/certificate.pem" 2>/dev/null \
    || fail "the export of the ACM certificate ($1) holds no certificate"
  jq -j '.CertificateChain // "" | strings' "$acm/export.json" > "$acm/chain.pem"
  jq -ej '.PrivateKey | select(type == "string" and length > 0)' "$acm/export.json" > "$acm/encrypted-key.pem" 2>/dev/null \
    || fail "the export of the ACM certificate ($1) holds no private key"
  openssl x509 -in "$acm/certificate.pem" -noout >/dev/null 2>&1 \
    || fail "the exported ACM certificate ($1) is not a valid PEM certificate"
  openssl x509 -in "$acm/certificate.pem" -noout -checkend 0 >/dev/null 2>&1 \
    || fail "the exported ACM certificate ($1) has expired"
  openssl pkey -in "$acm/encrypted-key.pem" -passin "file:$acm/passphrase" -out "$acm/key.pem" >/dev/null 2>&1 \
    || fail "the exported private key of the ACM certificate ($1) cannot be decrypted with this export's passphrase"
  [ "$(public_key_digest x509 "$acm/certificate.pem")" = "$(public_key_digest pkey "$acm/key.pem")" ] \
    || fail "the exported private key does not belong to the exported ACM certificate ($1)"
  if [ -s "$acm/chain.pem" ]; then
    openssl verify -partial_chain -purpose sslserver -CAfile "$acm/chain.pem" "$acm/certificate.pem" >/dev/null 2>&1 \
      || fail "the exported chain of the ACM certificate ($1) does not sign the certificate for TLS servers"
  fi
  exported=$(openssl x509 -in "$acm/certificate.pem" -noout -serial | normalized_serial)
  VERSIONS=$(jq -c --arg v "$exported" '. + {"acm-certificate": $v}' <<< "$VERSIONS")
  # HAProxy's crt file: certificate, chain, private key (unencrypted: HAProxy reads it at start and reload).
  for part in certificate.pem chain.pem key.pem; do
    if [ -s "$acm/$part" ]; then
      cat "$acm/$part"
      [ "$(tail -c 1 "$acm/$part")" = "" ] || echo
    fi
  done > "$WORK/new/@FRONTEND_CERTIFICATE@"
  FETCHED="$FETCHED acm-certificate"
  for rel in $(files_of acm-certificate); do
    if ! cmp -s "$WORK/new/$rel" "$CONFIG_DIR/$rel"; then CHANGED="$CHANGED $rel"; fi
  done
}

sync_acm_certificate() {
  arn=$FRONTEND_CERTIFICATE_ARN
  description=$(aws_acm describe-certificate --certificate-arn "$arn") \
    || fail "cannot describe the ACM certificate ($arn): $(aws_error)"
  status=$(jq -r '.Certificate.Status // "without a status"' <<< "$description")
  [ "$status" = ISSUED ] \
    || fail "the ACM certificate ($arn) is $status, not ISSUED: check its DNS validation records in the hosted zone"
  serial=$(jq -r '.Certificate.Serial // ""' <<< "$description" | normalized_serial)
  [ -n "$serial" ] || fail "the ACM certificate ($arn) has no serial number"
  if [ "$serial" = "$(synced_version acm-certificate)" ] && files_present acm-certificate; then
    VERSIONS=$(jq -c --arg v "$serial" '. + {"acm-certificate": $v}' <<< "$VERSIONS")
    return 0
  fi
  export_acm_certificate "$arn"
}
`;
