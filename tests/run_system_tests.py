#!/usr/bin/python3
"""System tests of mf-edge: starts the real binary and talks to it with
independent clients (raw sockets, ssl, python3-websockets).

usage: /usr/bin/python3 tests/run_system_tests.py --build-dir BUILD_DIR [--file test_x.py] [-k PATTERN] [-v]
       /usr/bin/python3 tests/run_system_tests.py --check-listed tests/meson.build

Runs one file of tests/system (--file; meson runs each file as its own test,
see tests/meson.build) or discovers every tests/system/test_*.py, exits
non-zero on any failure or error, and prints as its very last line exactly
`N passed, M failed` (M = tests with a failure or an error, each counted once
whatever its subtests; a skip counts as a failure: nothing may be skipped).

Tests that need test-only hooks compiled in (-Dtest_hooks=true, see
meson_options.txt) carry @needs_test_hooks (tests/system/build_options.py).
In a build without them they are not run, and the runner says so by name on
stderr; ./run-tests.sh always builds with them, so the test command runs
every test.

--check-listed fails when a tests/system/test_*.py is missing from the list
in tests/meson.build (a file that is not listed would never run) or does not
import.
"""

import argparse
import importlib
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_DIR = os.path.join(HERE, "system")


class StrictResult(unittest.TextTestResult):
    """Skips and unexpected successes are failures here."""

    def addSkip(self, test, reason):
        self.addFailure(test, (AssertionError, AssertionError(f"test was skipped ({reason}); skipping is not allowed"), None))

    def addExpectedFailure(self, test, err):
        self.addFailure(test, err)

    def addUnexpectedSuccess(self, test):
        self.addFailure(test, (AssertionError, AssertionError("unexpected success"), None))

    def startTest(self, test):
        self._started_at = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        if self.showAll:
            self.stream.writeln(f"    ({time.monotonic() - self._started_at:.2f} s)")
            self.stream.flush()


def build_has_test_hooks(build_dir):
    """Whether the build was configured with -Dtest_hooks=true (meson's own record of its options)."""
    import json
    try:
        with open(os.path.join(build_dir, "meson-info", "intro-buildoptions.json")) as f:
            options = json.load(f)
    except (OSError, ValueError):
        return False
    return any(o.get("name") == "test_hooks" and o.get("value") is True for o in options)


def iterate_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iterate_tests(item)
        else:
            yield item


def without_hook_tests(suite):
    """(the suite without tests marked @needs_test_hooks, their ids)."""
    kept, left_out = unittest.TestSuite(), []
    for test in iterate_tests(suite):
        method = getattr(test, getattr(test, "_testMethodName", ""), None)
        if getattr(method, "needs_test_hooks", False) or getattr(type(test), "needs_test_hooks", False):
            left_out.append(test.id())
        else:
            kept.addTest(test)
    return kept, left_out


def check_listed(meson_build):
    with open(meson_build) as f:
        listed = f.read()
    files = sorted(f for f in os.listdir(SYSTEM_DIR) if f.startswith("test_") and f.endswith(".py"))
    missing = [f for f in files if f"'{f[:-3]}'" not in listed]
    for name in missing:
        print(f"run_system_tests: tests/system/{name} is not listed in {meson_build}: it would never run",
              file=sys.stderr)
    # Every file imports (a helper another file took away fails here, before
    # any test runs, not as one test file's error at the end of a pass).
    sys.path.insert(0, SYSTEM_DIR)
    os.environ.setdefault("MF_BUILD_DIR", "/nonexistent-build-dir")  # some modules name binaries at import
    broken = []
    for name in files:
        try:
            importlib.import_module(name[:-3])
        except Exception as error:  # noqa: BLE001 - each is reported
            broken.append(name)
            print(f"run_system_tests: tests/system/{name} does not import: {error!r}", file=sys.stderr)
    sys.stderr.flush()
    failed = len(set(missing) | set(broken))
    print(f"{len(files) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", help="meson build directory holding edge/mf-edge")
    parser.add_argument("--file", help="run only this file of tests/system (e.g. test_tls.py)")
    parser.add_argument("--check-listed", metavar="MESON_BUILD",
                        help="check that every tests/system/test_*.py is listed in this meson.build")
    parser.add_argument("-k", dest="patterns", action="append", default=None,
                        help="only tests whose name contains this substring (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    args = parser.parse_args()
    if args.check_listed:
        return check_listed(args.check_listed)
    if not args.build_dir:
        parser.error("--build-dir is required")

    build_dir = os.path.abspath(args.build_dir)
    binary = os.path.join(build_dir, "edge", "mf-edge")
    if not os.access(binary, os.X_OK):
        print(f"run_system_tests: {binary} is missing or not executable (build first)", file=sys.stderr)
        sys.stderr.flush()
        print("0 passed, 1 failed")
        return 1
    os.environ["MF_BUILD_DIR"] = build_dir
    sys.path.insert(0, SYSTEM_DIR)

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [f"*{p}*" for p in args.patterns]
    try:
        if args.file:
            suite = loader.loadTestsFromName(os.path.splitext(os.path.basename(args.file))[0])
        else:
            suite = loader.discover(start_dir=SYSTEM_DIR, pattern="test_*.py", top_level_dir=SYSTEM_DIR)
    except Exception as error:  # an import error in a test module
        print(f"run_system_tests: discovery failed: {error!r}", file=sys.stderr)
        sys.stderr.flush()
        print("0 passed, 1 failed")
        return 1

    if not build_has_test_hooks(build_dir):
        suite, left_out = without_hook_tests(suite)
        for name in left_out:
            print(f"run_system_tests: not run, needs a build with -Dtest_hooks=true (./run-tests.sh builds one): {name}",
                  file=sys.stderr)
        if left_out and suite.countTestCases() == 0:
            sys.stderr.flush()
            print("0 passed, 0 failed")
            return 0

    started = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if args.verbose else 1,
                                     resultclass=StrictResult)
    result = runner.run(suite)
    # Count tests, not subtests: a test with three failing subtests is one
    # failed test. Errors outside any test (setUpClass, import) count once each.
    failing = {}
    for test, _ in result.failures + result.errors:
        test = getattr(test, "test_case", test)
        failing[test.id()] = isinstance(test, unittest.TestCase)
    failed = len(failing)
    passed = max(result.testsRun - sum(1 for is_test in failing.values() if is_test), 0)
    if result.testsRun == 0:
        print("run_system_tests: no tests ran", file=sys.stderr)
        failed = max(failed, 1)
    sys.stdout.flush()
    print(f"wall time {time.monotonic() - started:.1f} s", file=sys.stderr)
    sys.stderr.flush()
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
