"""What a system test needs from the build's options.

@needs_test_hooks marks a test (or a TestCase class) that uses a hook only a
build with -Dtest_hooks=true compiles in (meson_options.txt). In other builds
tests/run_system_tests.py does not run it and names it on stderr; the test
command (./run-tests.sh) always builds with the hooks.
"""


def needs_test_hooks(test):
    test.needs_test_hooks = True
    return test
