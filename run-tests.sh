#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every unit and
# system test, then builds the unit tests again with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs them. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"

./install-deps.sh

setup() {  # dir, meson args...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { echo "run-tests: meson setup $dir failed (see $dir/meson-logs/meson-log.txt)" >&2; exit 1; }
  fi
}

setup build --buildtype=debugoptimized -Dwerror=true
ninja -C build
meson test -C build --print-errorlogs --num-processes 2

setup build-asan --buildtype=debug -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=disabled
ninja -C build-asan
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  meson test -C build-asan --suite unit --print-errorlogs --num-processes 2

echo "run-tests: all suites passed"
