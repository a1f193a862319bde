#!/usr/bin/env bash
# Installs what building and testing MeshedFlow needs on Debian 12, and
# nothing when it is all there already (idempotent). Used by run-edge.sh and
# run-tests.sh; safe to run by hand.
set -euo pipefail

packages=(
  g++ meson ninja-build pkg-config ccache
  liburing-dev libssl-dev libsimdjson-dev libfmt-dev libhiredis-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev redis-server redis-tools
  openssl python3 python3-websockets python3-cryptography python3-yaml systemd dpkg-dev
  ffmpeg prometheus lintian
  haproxy nginx libnginx-mod-stream valgrind
  chromium chromium-driver nodejs
  clang-16 libclang-rt-16-dev
)

die() { echo "install-deps: $*" >&2; exit 1; }

# The npm packages of a folder, from its committed lock file; again only when
# the lock file changed since the last install: tests/browser (playwright-core,
# which drives the Debian chromium above and never downloads a browser, and
# the bittorrent-tracker client the tracker test bundles for chromium) and sdk
# (esbuild, typescript and the hls.js versions the SDK is tested with).
# Extra arguments go to npm ci: tests/browser installs with --ignore-scripts,
# since bittorrent-tracker's Node WebRTC dependency (node-datachannel) would
# download a prebuilt binary from outside the registry; the browser has its own
# WebRTC and nothing there needs an install script.
npm_ci_from_lock() {
  local name="$1" dir
  dir="$(cd "$(dirname "$0")" && pwd)/$1"
  shift
  local marker="$dir/node_modules/.installed-lock"
  if [ -f "$marker" ] && cmp -s "$marker" "$dir/package-lock.json"; then return 0; fi
  command -v npm >/dev/null || die "npm is missing (it comes with the nodejs package)"
  echo "install-deps: npm ci --prefix $name $*" >&2
  npm ci --prefix "$dir" --no-audit --no-fund --prefer-offline "$@" >/dev/null \
    || die "npm ci --prefix $name failed: is the npm registry reachable?"
  cp "$dir/package-lock.json" "$marker"
}
install_npm_modules() {
  npm_ci_from_lock tests/browser --ignore-scripts
  npm_ci_from_lock sdk
}

[ -r /etc/debian_version ] || die "this set-up targets Debian 12 (bookworm); install the packages by hand: ${packages[*]}"

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm comes with the nodejs package (NodeSource's provides it); Debian's
# own nodejs needs the separate npm package.
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  install_npm_modules
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
  sudo_cmd=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# haproxy and nginx are for perf/compare, which starts its own instances, and
# prometheus is there for promtool (tests/system/test_ops.py): keep apt from
# starting any of them as a system service (Debian's policy-rc.d hook).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  "${sudo_cmd[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  trap '"${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${sudo_cmd[@]}" apt-get update -qq >/dev/null || die "apt-get update failed: is a Debian mirror reachable?"
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || die "apt-get install failed for: ${missing[*]}"
# Only promtool is used: a Prometheus this script installed is not started at
# boot either (systemctl disable also works without a running systemd).
for p in "${missing[@]}"; do
  if [ "$p" = prometheus ] && command -v systemctl >/dev/null; then
    "${sudo_cmd[@]}" systemctl disable --quiet prometheus.service 2>/dev/null || true
  fi
done
install_npm_modules
