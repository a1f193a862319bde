#!/usr/bin/env bash
# The cross-shard queue, the typed messages over it and the shutdown path
# under ThreadSanitizer (docs/security.md, "Untrusted input"): builds only
# spsc_queue_test, wake_flag_test, shard_group_test and shard_messages_test with
# -Db_sanitize=thread and runs them through meson test (results in
# BUILD_DIR/meson-logs/testlog.json, counted by run-tests.sh's summary). Any
# data race report fails the test (halt_on_error).
#
# usage: tests/tsan-briefly.sh [--build-only] [BUILD_DIR]   (default build-tsan)
#   --build-only: configure and build the four tests, run nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
build=${1:-build-tsan}
tests=(spsc_queue wake_flag shard_group shard_messages)

die() { echo "tsan-briefly: $*" >&2; exit 1; }

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=debug -Db_sanitize=thread -Dtests=enabled -Dbenchmarks=disabled >/dev/null \
    || die "meson setup $build failed (see $build/meson-logs/meson-log.txt)"
fi
ninja -C "$build" $(printf 'common/runtime/%s_test ' "${tests[@]}") >/dev/null \
  || die "building ${tests[*]} failed (run: ninja -C $build)"
[ $build_only -eq 0 ] || exit 0
rm -f "$build/meson-logs/testlog.json"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4" \
  meson test -C "$build" --no-rebuild --print-errorlogs "${tests[@]}"
