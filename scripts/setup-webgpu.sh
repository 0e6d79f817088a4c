#!/usr/bin/env bash
# What the WebGPU backend (--backend webgpu) needs from the system, on Debian: the Vulkan loader
# (libvulkan1) and Mesa's Vulkan drivers (mesa-vulkan-drivers: lavapipe, a Vulkan on the CPU, and
# the drivers of AMD and Intel GPUs). Dawn refuses Debian 12's Mesa 22 lavapipe, so on bookworm
# Mesa comes from bookworm-backports (Mesa 25), which this script adds to apt's sources if missing.
# NVIDIA GPUs bring their own Vulkan driver with the proprietary driver; the loader is still needed.
#
#   sudo scripts/setup-webgpu.sh        # idempotent: does nothing when all is installed already
#
# Not root, or not Debian: prints what to install and exits 1. Check the result with
#   node dist/bin/ssl.js env --backend webgpu
set -euo pipefail

MIN_MESA=25

say() { printf 'setup-webgpu: %s\n' "$*"; }
fail() {
  printf 'setup-webgpu: %s\n' "$*" >&2
  exit 1
}

installed_version() {
  dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '$3 == "installed" { print $4 }'
}

mesa_ok() {
  local v
  v=$(installed_version mesa-vulkan-drivers)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge "${MIN_MESA}~"
}

ready() {
  [ -n "$(installed_version libvulkan1)" ] && mesa_ok
}

report() {
  say "libvulkan1 $(installed_version libvulkan1), mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers)"
}

codename=''
id=''
os_release=${SSL_OS_RELEASE:-/etc/os-release} # tests point it elsewhere
if [ -r "$os_release" ]; then
  # shellcheck disable=SC1090
  . "$os_release"
  codename=${VERSION_CODENAME:-}
  id=${ID:-}
fi

if [ "$id" != debian ] || ! command -v apt-get >/dev/null 2>&1; then
  fail "not Debian (${PRETTY_NAME:-unknown system}): install the Vulkan loader (libvulkan.so.1) and a Vulkan driver Dawn accepts (Mesa ${MIN_MESA}+ lavapipe for a CPU-only machine, or your GPU's driver), then check with: ssl env --backend webgpu"
fi

if ready; then
  say 'already installed'
  report
  exit 0
fi

case "$codename" in
  bookworm) target=bookworm-backports ;;
  bullseye | buster | stretch | '') fail "Debian ${codename:-of unknown release} is too old: Mesa ${MIN_MESA}+ is not packaged for it; upgrade to Debian 12 (bookworm) or later" ;;
  *) target='' ;; # trixie and later carry Mesa 25+ in the main archive
esac

if [ "$(id -u)" -ne 0 ]; then
  if [ -n "$target" ]; then
    fail "run as root (sudo $0), or by hand: add 'deb http://deb.debian.org/debian $target main' to /etc/apt/sources.list.d/, then apt-get update && apt-get install -t $target libvulkan1 mesa-vulkan-drivers"
  fi
  fail "run as root (sudo $0), or by hand: apt-get install libvulkan1 mesa-vulkan-drivers"
fi

export DEBIAN_FRONTEND=noninteractive

has_suite() {
  # one-line sources and deb822 .sources files alike
  grep -qhsE "^[^#]*(deb[[:space:]].*[[:space:]]$1([[:space:]]|$)|Suites:.*[[:space:]]$1([[:space:]]|$))" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

if [ -n "$target" ] && ! has_suite "$target"; then
  say "adding $target to /etc/apt/sources.list.d/$target.list"
  echo "deb http://deb.debian.org/debian $target main" >"/etc/apt/sources.list.d/$target.list"
fi

say 'apt-get update'
apt-get update -qq
say "installing libvulkan1 and mesa-vulkan-drivers${target:+ from $target}"
apt-get install -y -qq --no-install-recommends ${target:+-t "$target"} libvulkan1 mesa-vulkan-drivers >/dev/null

ready || fail "installed, but mesa-vulkan-drivers is $(installed_version mesa-vulkan-drivers), older than ${MIN_MESA}: Dawn will refuse it"
report
