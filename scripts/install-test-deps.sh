#!/usr/bin/env bash
# Installs everything the tests need beyond npm, on Debian 12 or 13 as root:
#   - Debian packages: debootstrap, wrk (benchmarks), chromium (browser tests), curl,
#     openssl, iproute2;
#   - a Debian 13 (trixie) root with haproxy 3.0, made by debootstrap and cached in
#     .cache/trixie-root (ignored by git). That is the haproxy build the gateway AMI runs.
#
# Use your own haproxy (>= 3.0) instead of the Debian 13 root:
#   LG_HAPROXY_BIN=/usr/sbin/haproxy npm test     (the install then skips debootstrap)
#
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT_DIR=${LG_TRIXIE_ROOT:-$PWD/.cache/trixie-root}
# What the gateway instance needs, as its user data installs it: haproxy 3.0, the AWS
# CLI and jq for key-sync, curl and openssl for checks.
ROOT_PACKAGES=(haproxy ca-certificates openssl curl jq procps awscli)
log() { printf '[install-test-deps] %s\n' "$*"; }

need_pkgs=()
for p in debootstrap wrk chromium chromium-driver curl openssl iproute2 ca-certificates; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: these Debian packages are missing and installing them needs root: ${need_pkgs[*]}" >&2
    exit 1
  fi
  log "apt-get install ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [[ -n ${LG_HAPROXY_BIN:-} ]]; then
  log "using LG_HAPROXY_BIN=$LG_HAPROXY_BIN: $("$LG_HAPROXY_BIN" -v | head -1)"
elif [[ -x $ROOT_DIR/usr/sbin/haproxy && -f $ROOT_DIR/.complete ]]; then
  log "Debian 13 root cached at $ROOT_DIR"
else
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: making the Debian 13 root needs root (debootstrap); or set LG_HAPROXY_BIN to a haproxy >= 3.0" >&2
    exit 1
  fi
  log "debootstrap trixie into $ROOT_DIR (about 30 s)"
  rm -rf "$ROOT_DIR"
  mkdir -p "$(dirname "$ROOT_DIR")"
  mirror=${LG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  # debootstrap's own resolver does not follow virtual packages (awscli needs one), so it
  # lays down haproxy only and apt-get, below, adds the rest of ROOT_PACKAGES.
  debootstrap --variant=minbase --include=haproxy,ca-certificates trixie "$ROOT_DIR" "$mirror" >"$ROOT_DIR.log" 2>&1 \
    || { tail -20 "$ROOT_DIR.log" >&2; exit 1; }
  touch "$ROOT_DIR/.complete"
fi

if [[ -z ${LG_HAPROXY_BIN:-} ]]; then
  missing=()
  for p in "${ROOT_PACKAGES[@]}"; do
    chroot "$ROOT_DIR" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "adding to the Debian 13 root: ${missing[*]}"
    cp /etc/resolv.conf "$ROOT_DIR/etc/resolv.conf"
    chroot "$ROOT_DIR" apt-get update -qq
    chroot "$ROOT_DIR" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  chroot "$ROOT_DIR" apt-get clean   # the downloaded .debs are not needed again
fi

if [[ -z ${LG_HAPROXY_BIN:-} ]]; then
  arch_lib=$(ls -d "$ROOT_DIR"/usr/lib/*-linux-gnu | head -1)
  loader=$(compgen -G "$ROOT_DIR/lib64/ld-linux-*.so.2" || compgen -G "$ROOT_DIR/lib/ld-linux-*.so.1" || true)
  loader=${loader%%$'\n'*}
  log "haproxy: $("$loader" --library-path "$arch_lib:$ROOT_DIR/lib/$(basename "$arch_lib")" "$ROOT_DIR/usr/sbin/haproxy" -v | head -1)"
fi
