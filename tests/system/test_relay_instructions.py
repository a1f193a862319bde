"""perf/relay_instructions and the callgrind reader it shares with
perf/handshake_instructions (perf/callgrind_counts.py): the reader on a
small callgrind file written here (name compression, calls, a call's
inclusive cost that is not the caller's own), and the tool itself on the
build under test, both servers under valgrind, with a short closed loop."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

from edge_process import build_dir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "perf"))
from callgrind_counts import Profile, short_name  # noqa: E402

# Two functions of one object: main calls work twice (inclusive 300), and
# an unnamed address of libx.so. Names appear in full once, then by id.
CALLGRIND_FILE = """version: 1
creator: callgrind-3.19.0
events: Ir
ob=(1) /usr/bin/prog
fl=(1) prog.cc
fn=(1) main
10 5
cfn=(2) ns::work(int)
calls=2 20
12 300
+1 7
fn=(2)
20 150
+1 150
ob=(2) /usr/lib/libx.so
fl=(2) ???
fn=(3) 0x0000000000001230
0 40
fn=(1)
11 3
summary: 355
"""


def profile_of(text):
    """The reader's view of a callgrind file holding `text`."""
    with tempfile.NamedTemporaryFile("w", suffix=".out", delete=False) as f:
        f.write(text)
    try:
        return Profile(f.name)
    finally:
        os.unlink(f.name)


class CallgrindReader(unittest.TestCase):
    def test_exclusive_instructions_and_calls(self):
        profile = profile_of(CALLGRIND_FILE)
        # main's own: 5 + 7 + 3; the 300 after calls= is work's, counted in work.
        self.assertEqual(profile.self_ir["main"], 15)
        self.assertEqual(profile.self_ir["ns::work(int)"], 300)
        self.assertEqual(profile.self_ir["0x0000000000001230 [libx.so]"], 40)
        self.assertEqual(profile.total(), 355)
        self.assertEqual(profile.calls_into("ns::work("), 2)
        self.assertEqual(profile.calls_into("main"), 0)

    def test_every_event_of_a_cache_simulation_is_totalled(self):
        # The same file with two events per cost line, as --cache-sim=yes
        # writes (Ir, then I1mr): each event's total over the functions'
        # own costs, a call's inclusive cost left out.
        text = CALLGRIND_FILE.replace("events: Ir", "events: Ir I1mr").replace("summary: 355", "summary: 355 9")
        text = "\n".join(line + (" 1" if re.match(r"^(\d+|\+\d+) \d+$", line) else "") for line in text.split("\n"))
        profile = profile_of(text)
        self.assertEqual(profile.event_totals["Ir"], 355)
        # Seven cost lines, one of them the call's inclusive cost.
        self.assertEqual(profile.event_totals["I1mr"], 6)
        self.assertEqual(profile.self_ir["main"], 15)

    def test_short_names_drop_parameters_but_keep_templates_and_anonymous_namespaces(self):
        self.assertEqual(short_name("ns::work(int)"), "ns::work")
        self.assertEqual(short_name("mf::edge::(anonymous namespace)::skip_string(char const*)"),
                         "mf::edge::(anon)::skip_string")
        self.assertEqual(short_name("f<std::pair<int, int>(int)>(long)"), "f<std::pair<int, int>(int)>")
        self.assertEqual(short_name("0x00000000000ddc00 [libcrypto.so.3]"), "0x00000000000ddc00 [libcrypto.so.3]")


class RelayInstructions(unittest.TestCase):
    def test_edge_against_echo(self):
        done = subprocess.run([os.path.join(REPO, "perf", "relay_instructions"), "--build", build_dir(), "--pairs", "4",
                               "--seconds", "2", "--top", "60"], capture_output=True, text=True, timeout=840)
        self.assertEqual(done.returncode, 0, done.stdout[-3000:] + done.stderr[-3000:])
        per_message = {m.group(1): int(m.group(2).replace(",", ""))
                       for m in re.finditer(r"^(edge|echo): ([\d,]+) Ir per message", done.stdout, re.M)}
        self.assertEqual(set(per_message), {"edge", "echo"}, done.stdout)
        # Both open a record, validate UTF-8 and seal one: thousands of
        # instructions each. The edge parses, routes and renders on top.
        self.assertGreater(per_message["echo"], 2000, done.stdout)
        self.assertGreater(per_message["edge"], per_message["echo"], done.stdout)
        rows = {}
        for m in re.finditer(r"^\s+([\d.]+)\s+([\d.]+)\s+([+-][\d.]+)  (.+)$", done.stdout, re.M):
            rows[m.group(4)] = (float(m.group(1)), float(m.group(2)))
        # The SDK parse is the edge's alone. mf-load sends signals as the SDK
        # does, so they are read by their pieces, not walked
        # (docs/architecture.md, "Reading an SDK message").
        parse = rows.get("mf::edge::read_compact_signal")
        self.assertIsNotNone(parse, done.stdout)
        self.assertGreater(parse[0], 0)
        self.assertEqual(parse[1], 0)


if __name__ == "__main__":
    unittest.main()
