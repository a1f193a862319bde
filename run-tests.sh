#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the programs and runs
# every system test and the SDK's tests; builds everything again with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer (while those tests run) and
# runs every unit test and every system test against it, fuzzing every
# parser briefly (the same build's libFuzzer targets) beside that pass; then
# runs the cross-shard queue and shutdown tests under ThreadSanitizer. Exits non-zero on any failure.
# The system tests include the browser tests (Debian's chromium) and the
# Debian package test: those run in the first pass only (tests/meson.build,
# system_tests_unsanitized_only).
set -euo pipefail
cd "$(dirname "$0")"

./install-deps.sh

# The test command's build directories are its own (build-tests, build-asan,
# build-tsan), apart from build/ which ./run-edge.sh and the
# README's manual steps use without test hooks. A directory that exists is
# given the options again, so one configured by hand differently is brought
# back to what the tests need (meson only reconfigures when something
# changed).
setup() {  # dir, meson -D options...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { echo "run-tests: meson setup $dir failed (see $dir/meson-logs/meson-log.txt)" >&2; exit 1; }
  else
    meson configure "$dir" "$@" >/dev/null || { echo "run-tests: meson configure $dir failed" >&2; exit 1; }
  fi
}

# One line per build for CI: "N passed, M failed" over meson's test results
# (meson-logs/testlog.json) and fuzz-briefly.sh's (meson-logs/fuzz-testlog.json,
# where a build has them).
summarize() {  # build dirs...
  /usr/bin/python3 - "$@" <<'PY'
import json, os, sys
passed = failed = 0
for d in sys.argv[1:]:
    for name, required in (("testlog.json", True), ("fuzz-testlog.json", False)):
        path = f"{d}/meson-logs/{name}"
        if not required and not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                for line in f:
                    r = json.loads(line).get("result")
                    if r == "OK": passed += 1
                    elif r in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"): failed += 1
        except FileNotFoundError:
            failed += 1
print(f"{passed} passed, {failed} failed")
PY
}

status=0
started=$(date +%s)
phase() { echo "run-tests: $1 done at $(( $(date +%s) - started )) s" >&2; }
# build-tests is configured for the installed paths so that test_deb packages
# the programs this run tests (packaging/build-deb.sh --from-build).
# The unit tests (GoogleTest) are compiled and run once, in the ASan pass,
# which checks more than an unsanitized run would; compiling them twice was
# a third of a fresh machine's compile time. Only those that count heap
# allocations run here (-Dunit_tests=allocation_counts): their counting
# allocator cannot run beside a sanitizer's. The microbenchmarks are not run
# by the test command; they are compiled (so that none rots) in build-asan,
# which builds in the background below.
setup build-tests -Dbuildtype=debugoptimized -Dwerror=true -Dtest_hooks=true -Dtests=enabled -Dunit_tests=allocation_counts -Dbenchmarks=disabled --prefix=/usr --sysconfdir=/etc
ninja -C build-tests
phase "building build-tests"

# Runs a shell command at the lowest CPU priority: nice 19, in a session of
# its own whose scheduling group is niced to 19 as well. With autogroups
# (sched(7), on in Debian's kernels) nice acts only among the processes of
# one session, and the browser tests' Chromium runs in a session of its own:
# without the group's nice the two sessions would share the CPU half and half.
lowest_priority() {  # shell command
  setsid --wait bash -c 'if [ -w /proc/self/autogroup ]; then echo 19 >/proc/self/autogroup; fi; exec nice -n 19 bash -c "$0"' "$1"
}

# The sanitizer and ThreadSanitizer builds compile at the lowest CPU
# priority while the first pass's tests run. Those tests spend most of their
# time waiting on events (no test depends on a wall-clock margin), so the
# compilers take the idle CPU, and when a test wants the CPU, nice 19 gives
# the compilers about 1.5% of it (the kernel's weight for nice 19 is 15
# against 1024 for nice 0). Their output goes to build-others.log.
# build-asan is compiled once, by clang, for both the ASan pass and the
# libFuzzer targets (-Dfuzzers=true: every library carries the fuzzer's
# coverage hooks, which libFuzzer needs and the tests do not notice); a
# build-asan that another compiler configured (an older tree's g++ one) is
# made anew, as meson cannot change a build directory's compiler.
clang=clang++-16
if command -v ccache >/dev/null; then clang="ccache clang++-16"; fi  # naming the compiler turns meson's ccache off
if [ -f build-asan/build.ninja ] && ! grep -q -m1 'clang++-16' build-asan/build.ninja; then rm -rf build-asan; fi
CXX=$clang setup build-asan -Dbuildtype=debug -Dwerror=true -Dtest_hooks=true -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=enabled -Dfuzzers=true
lowest_priority "ninja -C build-asan && tests/tsan-briefly.sh --build-only build-tsan" \
  >build-others.log 2>&1 &
others=$!
meson test -C build-tests --print-errorlogs --num-processes 2 || status=1
phase "the first pass's tests"
if ! wait $others; then
  status=1
  echo "run-tests: building build-asan or build-tsan failed:" >&2
  tail -40 build-others.log >&2
fi
phase "building build-asan and build-tsan"

# Bounded libFuzzer runs (one test per fuzz_<target>, each for a fixed 10 s)
# at the lowest priority beside the ASan pass, for the same reason as the
# builds above; their lines are printed once it is done.
lowest_priority "tests/fuzz-briefly.sh build-asan" >fuzz-briefly.log 2>&1 &
fuzzing=$!
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  meson test -C build-asan --print-errorlogs --num-processes 2 || status=1
phase "the ASan pass"
wait $fuzzing || status=1
cat fuzz-briefly.log >&2
phase "fuzzing"

# The cross-shard queue and shutdown under TSan.
tests/tsan-briefly.sh build-tsan || status=1

echo "run-tests: wall time $(( $(date +%s) - started )) s (after install-deps)" >&2
summarize build-tests build-asan build-tsan
if [ $status -ne 0 ]; then
  echo "run-tests: FAILED (logs: build-tests/meson-logs/testlog.txt, build-asan/meson-logs/testlog.txt)" >&2
  exit 1
fi
echo "run-tests: all suites passed" >&2
