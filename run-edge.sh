#!/usr/bin/env bash
# The main job: installs what is missing, builds, and starts mf-edge serving
# wss://127.0.0.1:8445/ws with a self-signed development certificate (made
# once under build/dev-cert/). Ctrl-C stops it. Extra arguments go to mf-edge.
set -euo pipefail
cd "$(dirname "$0")"

./install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=debugoptimized >/dev/null || { echo "run-edge: meson setup failed (see build/meson-logs/meson-log.txt)" >&2; exit 1; }
fi
ninja -C build edge/mf-edge >/dev/null || { echo "run-edge: build failed; run 'ninja -C build' to see why" >&2; exit 1; }

cert_dir=build/dev-cert
if [ ! -f "$cert_dir/cert.pem" ]; then
  mkdir -p "$cert_dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$cert_dir/key.pem" -out "$cert_dir/cert.pem" 2>/dev/null \
    || { echo "run-edge: could not create the development certificate" >&2; exit 1; }
fi
echo "run-edge: serving wss://127.0.0.1:8445/ws (certificate $cert_dir/cert.pem); Ctrl-C stops" >&2
exec build/edge/mf-edge --listen 127.0.0.1:8445 --tls-cert "$cert_dir/cert.pem" --tls-key "$cert_dir/key.pem" "$@"
