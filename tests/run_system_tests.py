#!/usr/bin/python3
"""System tests of mf-edge: starts the real binary and talks to it with
independent clients (raw sockets, ssl, python3-websockets).

usage: /usr/bin/python3 tests/run_system_tests.py --build-dir BUILD_DIR [-k PATTERN] [-v]

Discovers tests/system/test_*.py with unittest, exits non-zero on any failure
or error, and prints as its very last line exactly `N passed, M failed`
(M = tests with a failure or an error, each counted once whatever its subtests; a skipped
may be skipped).
"""

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True, help="meson build directory holding edge/mf-edge")
    parser.add_argument("-k", dest="patterns", action="append", default=None,
                        help="only tests whose name contains this substring (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    args = parser.parse_args()

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
        suite = loader.discover(start_dir=SYSTEM_DIR, pattern="test_*.py", top_level_dir=SYSTEM_DIR)
    except Exception as error:  # an import error in a test module
        print(f"run_system_tests: discovery failed: {error!r}", file=sys.stderr)
        sys.stderr.flush()
        print("0 passed, 1 failed")
        return 1

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
