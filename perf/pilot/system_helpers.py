"""Makes tests/system's process helpers importable from perf/ (one way to
start each server: the pilot starts them as the system tests do) and points
them at a build directory."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_DIR = os.path.join(REPO, "tests", "system")


def use_build_dir(build_dir):
    """Sets MF_BUILD_DIR (tests/system/edge_process.py reads it) unless set, and
    puts tests/system on the import path."""
    os.environ.setdefault("MF_BUILD_DIR", os.path.abspath(build_dir))
    if SYSTEM_DIR not in sys.path:
        sys.path.insert(0, SYSTEM_DIR)
