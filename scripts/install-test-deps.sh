#!/usr/bin/env bash
# Installs everything the tests need beyond npm, on Debian 12 or 13 as root:
#   - Debian packages: debootstrap, wrk (benchmarks), chromium (browser tests), curl,
#     openssl, iproute2;
#   - a Debian 13 (trixie) root with haproxy 3.0, made by debootstrap and cached in
#     .cache/trixie-root (ignored by git). That is the haproxy build the gateway AMI runs.
#   - systemd-container on the host and a layer over that root with systemd, systemd-sysv
#     and dbus (.cache/trixie-systemd-layer, an overlayfs upper directory): the tests boot
#     root + layer with systemd as PID 1 in systemd-nspawn and run the user data there,
#     as on an instance. The root itself is never changed by that layer or by the tests.
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
# What an instance has and the root lacks: systemd as PID 1 (the AMI boots it) and D-Bus.
SYSTEMD_LAYER_DIR=${LG_TRIXIE_SYSTEMD_LAYER:-$PWD/.cache/trixie-systemd-layer}
SYSTEMD_PACKAGES=(systemd systemd-sysv dbus)
log() { printf '[install-test-deps] %s\n' "$*"; }

need_pkgs=()
for p in debootstrap wrk chromium chromium-driver curl openssl iproute2 ca-certificates systemd-container; do
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

# The systemd layer: an overlayfs upper directory over the root, made once (apt-get runs in
# a private mount namespace on root + layer, so every file it writes lands in the layer).
# Made again when the root was made again (its .complete stamp is newer than the layer's).
if [[ -z ${LG_HAPROXY_BIN:-} ]]; then
  if [[ -f $SYSTEMD_LAYER_DIR/.complete && ! $ROOT_DIR/.complete -nt $SYSTEMD_LAYER_DIR/.complete ]]; then
    log "systemd layer cached at $SYSTEMD_LAYER_DIR"
  else
    if [[ $(id -u) -ne 0 ]]; then
      echo "install-test-deps: making the systemd layer needs root (mount, chroot)" >&2
      exit 1
    fi
    log "adding ${SYSTEMD_PACKAGES[*]} in a layer over the Debian 13 root (about 30 s)"
    rm -rf "$SYSTEMD_LAYER_DIR" "$SYSTEMD_LAYER_DIR.work" "$SYSTEMD_LAYER_DIR.merged"
    mkdir -p "$SYSTEMD_LAYER_DIR/upper" "$SYSTEMD_LAYER_DIR.work" "$SYSTEMD_LAYER_DIR.merged"
    unshare -m --propagation private bash -euo pipefail -c '
      root=$1 layer=$2 work=$3 merged=$4; shift 4
      mount -t overlay overlay -o "lowerdir=$root,upperdir=$layer/upper,workdir=$work" "$merged"
      mount -t proc proc "$merged/proc"
      mount --rbind /dev "$merged/dev"
      cp /etc/resolv.conf "$merged/etc/resolv.conf"
      chroot "$merged" apt-get update -qq
      chroot "$merged" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
      chroot "$merged" apt-get clean
      # A container has no getty to run and no hardware clock; the rest boots as on EC2.
      chroot "$merged" systemctl mask console-getty.service getty@tty1.service systemd-hwdb-update.service >/dev/null 2>&1 || true
      rm -rf "$merged/var/lib/apt/lists/"*
    ' _ "$ROOT_DIR" "$SYSTEMD_LAYER_DIR" "$SYSTEMD_LAYER_DIR.work" "$SYSTEMD_LAYER_DIR.merged" "${SYSTEMD_PACKAGES[@]}"
    rm -rf "$SYSTEMD_LAYER_DIR.work" "$SYSTEMD_LAYER_DIR.merged"
    touch "$SYSTEMD_LAYER_DIR/.complete"
  fi
  log "systemd in the layer: $(find "$SYSTEMD_LAYER_DIR/upper/usr/lib" -name "libsystemd-shared-*.so" -printf "%f\n" | head -1)"
fi
