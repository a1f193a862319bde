"""Reading and steering valgrind's callgrind for perf/handshake_instructions
and perf/relay_instructions: start a server under callgrind, zero its
counters, dump them, and read the dump (total, exclusive instructions per
function, calls into named functions).

Instruction counts do not move with the machine's load, which is why these
tools exist: on a shared 2-core machine CPU time moves by tens of percent
between runs (docs/benchmarks.md). Callgrind sees user space only.
"""
import collections
import glob
import re
import subprocess
import time


def callgrind_prefix(out_dir, cache=False):
    """valgrind's command line; with `cache`, callgrind also simulates the
    caches (first-level instruction and data, last level) and counts misses."""
    return (["nice", "-n", "19", "valgrind", "--tool=callgrind"] + (["--cache-sim=yes"] if cache else []) +
            [f"--callgrind-out-file={out_dir}/callgrind.%p"])


def zero(pid):
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, timeout=120, check=True)


def dump(pid, out_dir):
    """Dumps the counters since the last zero; returns the new file's path."""
    before = set(glob.glob(f"{out_dir}/callgrind.{pid}.*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, timeout=120, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = set(glob.glob(f"{out_dir}/callgrind.{pid}.*")) - before
        if files:
            time.sleep(1)  # let it finish writing
            return sorted(files)[0]
        time.sleep(0.2)
    raise RuntimeError(f"callgrind_control -d {pid} wrote no file")


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


class Profile:
    """One callgrind dump: exclusive instructions per function (`self_ir`,
    keyed by the function's name; an unnamed address gets its object's file
    name appended), calls into each function (`calls`), and the whole dump's
    count of each event (`event_totals`: Ir, and with --cache-sim I1mr,
    D1mr, D1mw, ILmr, DLmr, DLmw, the misses of each cache)."""

    def __init__(self, path):
        self.self_ir = collections.Counter()
        self.calls = collections.Counter()
        self.event_totals = collections.Counter()
        events = ["Ir"]
        names = {}  # callgrind's name compression: "(id) name" once, "(id)" after

        def name(kind, text):
            m = re.match(r"\((\d+)\)(?: (.*))?", text)
            if not m:
                return text.strip()
            if m.group(2):
                names[(kind, m.group(1))] = m.group(2).strip()
            return names.get((kind, m.group(1)), text)

        function, obj, callee, after_calls = None, "", None, False
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("events:"):
                    events = line.split()[1:]
                elif line.startswith("ob="):
                    obj = name("ob", line[3:]).rsplit("/", 1)[-1]
                elif line.startswith("cob="):
                    name("ob", line[4:])
                elif line.startswith("fn="):
                    function = name("fn", line[3:])
                    if function.startswith("0x"):
                        function += f" [{obj}]"
                elif line.startswith("cfn="):
                    callee = name("fn", line[4:])
                elif line.startswith(("fl=", "fi=", "fe=", "cfi=", "cfl=")):
                    name("fl", line.split("=", 1)[1])
                elif line.startswith("calls="):
                    self.calls[callee] += int(line[6:].split()[0])
                    after_calls = True
                elif line and (line[0].isdigit() or line[0] in "+-*"):
                    parts = line.split()
                    if len(parts) < 2:
                        continue
                    if after_calls:  # the call's inclusive cost, not this function's own
                        after_calls = False
                        continue
                    self.self_ir[function] += int(parts[1])
                    for event, count in zip(events, parts[1:]):
                        self.event_totals[event] += int(count)

    def total(self):
        return sum(self.self_ir.values())

    def calls_into(self, needle):
        """Calls into every function whose name contains `needle`."""
        return sum(n for f, n in self.calls.items() if f and needle in f)


def short_name(function):
    """A function's name without its parameter list, for tables."""
    if function.startswith("0x"):
        return function
    text = function.replace("(anonymous namespace)", "(anon)")
    depth, cut = 0, len(text)
    for i, c in enumerate(text):  # the first '(' at template depth 0 that is not "(anon)"
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "(" and depth == 0 and not text.startswith("(anon)", i):
            cut = i
            break
    return text[:cut]


def calls_to(path, names):
    """Calls into each function whose base name is in `names` (a symbol
    version suffix such as @GLIBC is ignored)."""
    counts = {}
    for callee, n in Profile(path).calls.items():
        base = (callee or "").split("'")[0].split("@")[0]
        if base in names:
            counts[base] = counts.get(base, 0) + n
    return counts
