#!/usr/bin/env bash
# CI's bounded fuzzing: builds every libFuzzer target fuzz_<target>
# with clang-16, ASan and UBSan (only those executables), then runs each for
# FUZZ_SECONDS (default 10) over a scratch copy of its seed corpus (the tree
# is never written), as many at a time as there are CPUs (FUZZ_JOBS). Prints
# one line per target (execs, new corpus units,
# coverage, result) and writes the results in meson's testlog.json format to
# BUILD_DIR/meson-logs/fuzz-testlog.json (beside, not over, meson's own
# testlog.json: run-tests.sh fuzzes build-asan while meson tests it), so
# run-tests.sh's summary counts one test per target. BUILD_DIR may be any
# build configured with -Dfuzzers=true (run-tests.sh uses build-asan); one
# that does not exist is configured with only the fuzz targets. A crash leaves its input in the scratch directory, whose path
# is printed. Exits non-zero if any target fails to build or finds a crash.
#
# usage: tests/fuzz-briefly.sh [--build-only] [BUILD_DIR]   (default build-fuzz)
#   --build-only: configure and build the targets, fuzz nothing (run-tests.sh
#   builds them at low priority while other tests run).
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
build=${1:-build-fuzz}
seconds=${FUZZ_SECONDS:-10}
results="$build/meson-logs/fuzz-testlog.json"

die() { echo "fuzz-briefly: $*" >&2; exit 1; }

command -v clang++-16 >/dev/null || die "clang++-16 is missing (./install-deps.sh installs clang-16)"
if [ ! -f "$build/build.ninja" ]; then
  # Naming the compiler turns off meson's own use of ccache: ask for it.
  compiler=clang++-16
  if command -v ccache >/dev/null; then compiler="ccache clang++-16"; fi
  CXX=$compiler meson setup "$build" -Dfuzzers=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dtests=disabled -Dbenchmarks=disabled >/dev/null \
    || die "meson setup $build failed (see $build/meson-logs/meson-log.txt)"
fi
[ $build_only -eq 1 ] || rm -f "$results"

# Every fuzz_<target> executable, as "build-relative-path" lines.
mapfile -t targets < <(meson introspect --targets "$build" | /usr/bin/python3 -c '
import json, os, sys
root = os.path.abspath(sys.argv[1])
for t in json.load(sys.stdin):
    if t["type"] == "executable" and t["name"].startswith("fuzz_"):
        print(os.path.relpath(t["filename"][0], root))' "$build")
[ ${#targets[@]} -gt 0 ] || die "no fuzz_<target> in $build (configured without -Dfuzzers=true?)"
ninja -C "$build" "${targets[@]}" >/dev/null || die "building the fuzz targets failed (run: ninja -C $build)"
[ $build_only -eq 0 ] || exit 0

scratch=$(mktemp -d /tmp/mf-fuzz-XXXXXX)
keep_scratch=0
trap '[ $keep_scratch -eq 1 ] || rm -rf "$scratch"' EXIT

# One target: its line on stdout, its result in $scratch/$exe.result.
fuzz_one() {
  local path=$1
  local exe module name seeds work seed_count log started result took_ms execs added cov
  exe=$(basename "$path")                # fuzz_websocket_codec
  module=$(dirname "$path")              # common | edge | ingress
  name=${exe#fuzz_}
  seeds="$module/fuzz/corpus/$name"
  work="$scratch/$exe"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$seeds"/* "$work/corpus/"
  seed_count=$(ls "$work/corpus" | wc -l)
  log="$work/log.txt"
  started=$(date +%s%N)
  if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
     "$build/$path" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1; then
    result=OK
  else
    result=FAIL
  fi
  took_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  if [ "$result" = OK ] && [ -z "$execs" ]; then result=FAIL; fi  # it never got to fuzzing
  if [ -n "$(ls "$work/artifacts")" ]; then result=FAIL; fi
  printf 'fuzz: %-22s %9s execs  %4s new units (from %s seeds)  cov %5s  %s\n' \
    "$exe" "${execs:-?}" "${added:-?}" "$seed_count" "${cov:-?}" "$result"
  if [ "$result" = FAIL ]; then
    echo "fuzz: $exe failed; log $log, crashing inputs in $work/artifacts/:" >&2
    grep -E 'ERROR|SUMMARY|runtime error|deadly signal' "$log" | head -5 >&2 || true
  fi
  /usr/bin/python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "result": sys.argv[2], "duration": int(sys.argv[3]) / 1000}))' \
    "$exe" "$result" "$took_ms" >"$scratch/$exe.result"
}

for path in "${targets[@]}"; do
  name=$(basename "$path")
  [ -d "$(dirname "$path")/fuzz/corpus/${name#fuzz_}" ] || die "$name has no seed corpus at $(dirname "$path")/fuzz/corpus/${name#fuzz_}"
done
jobs=${FUZZ_JOBS:-$(nproc)}
running=0
for path in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
  fuzz_one "$path" &
  running=$((running + 1))
done
wait

failed=0
: >"$results.tmp"
for path in "${targets[@]}"; do
  exe=$(basename "$path")
  if [ ! -s "$scratch/$exe.result" ]; then
    echo "fuzz: $exe left no result" >&2
    /usr/bin/python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "result": "FAIL", "duration": 0}))' \
      "$exe" >"$scratch/$exe.result"
  fi
  if grep -q '"result": "FAIL"' "$scratch/$exe.result"; then failed=$((failed + 1)); fi
  cat "$scratch/$exe.result" >>"$results.tmp"
done
[ $failed -eq 0 ] || keep_scratch=1
mv "$results.tmp" "$results"
[ $failed -eq 0 ] || die "$failed of ${#targets[@]} targets failed"
echo "fuzz-briefly: ${#targets[@]} targets fuzzed for ${seconds} s each, no crash" >&2
