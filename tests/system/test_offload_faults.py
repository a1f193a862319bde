"""The offload pilot's other two faults (perf/offload, docs/pilot.md,
"Faults"), each with its own assertion: a viewer that leaves the mesh in the
middle of an upload (its receiver completes the segment with a `Range`
request for exactly the missing bytes: a range rescue), and an edge
SIGKILLed mid-run (the viewers it held join again through mf-ingress on the
other edge, and the mesh carries bytes again afterwards). One treatment run:
3 viewers and the leaver on the live stream of tests/system/test_offload.py,
through mf-ingress and two mf-edge sharing a redis-server. Also: no playback
error, no unverified byte appended, and nothing of the leaver's half-sent
segment appended from the mesh. Waits are for events, bounded by the run's
own length; the figures are printed for the record."""

import os
import shutil
import sys
import unittest

from edge_process import run_dir
from sdk_pages import require_prerequisites

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "perf"))
from pilot.pilot_run import RunConfig  # noqa: E402
from pilot.session import fmt, run_session  # noqa: E402

VIEWERS = 3
PLAY_S = 36
KILL_EDGE_AT_S = 16   # after the leaver has had time to be asked for a segment, and with 20 s left to recover
RAMP_S = 4


class OffloadFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_prerequisites()
        cls.out = os.path.join(run_dir(), "pilot-faults-out")
        shutil.rmtree(cls.out, ignore_errors=True)
        run = RunConfig(viewers=VIEWERS, duration_s=PLAY_S, ramp_s=RAMP_S, leaving_viewer=True,
                        kill_edge_at_s=KILL_EDGE_AT_S)
        cls.report = run_session([run], cls.out, {"renditions": 2, "segment_s": 2, "window": 8, "cmaf_chunks": True},
                                 log=lambda *x: print(*x, file=sys.stderr, flush=True))
        cls.run = cls.report["runs"][0]
        cls.viewers = cls.run["viewers"]

    def test_the_leaving_viewer_is_rescued_by_a_range_request(self):
        leaver = self.viewers["viewer-leaver"]
        rescues = sum(v["range_rescues"] for p, v in self.viewers.items() if p != "viewer-leaver")
        print(f"\npilot faults: the leaver uploaded {leaver['uploaded_bytes']} B; {rescues} range rescue(s), "
              f"{self.run['origin_range_requests']} Range request(s) in nginx's log")
        self.assertGreater(leaver["uploaded_bytes"], 0, "nobody asked the leaver for anything")
        self.assertGreaterEqual(rescues, 1, "the leaver left mid-upload but no receiver rescued the segment")
        # Every rescue is one Range request the origin served (206), and nginx logged each.
        self.assertGreaterEqual(self.run["origin_range_requests"], rescues)

    def test_the_viewers_of_a_killed_edge_join_again_and_the_mesh_resumes(self):
        kill = self.run["faults"]["edge_kill"]
        print(f"\npilot faults: edge {kill['edge']} SIGKILLed with {kill['viewers_on_it']} on it; joined again: "
              f"{kill['rejoined']}; {kill['p2p_bytes_after_kill']} peer bytes after the kill; offload at the origin "
              f"{fmt(self.run['offload_origin'])}; stalls {self.run['stalls']} ({self.run['stall_ms']} ms)")
        # Two edges behind least-connections balancing: each holds some of the 4 pages.
        self.assertTrue(kill["viewers_on_it"], "no viewer was on the killed edge")
        self.assertEqual(sorted(kill["rejoined"]), sorted(kill["viewers_on_it"]))
        for peer_id in kill["viewers_on_it"]:
            self.assertNotEqual(self.viewers[peer_id]["edge"], kill["edge"], peer_id)
        self.assertGreater(kill["p2p_bytes_after_kill"], 0, "no peer byte after the edge was killed")

    def test_nothing_unverified_is_appended_and_nothing_failed_to_play(self):
        self.assertEqual(self.run["unverified_appended"], 0)
        self.assertGreater(self.run["checked_segments"], VIEWERS * 5)
        self.assertEqual(self.run["playback_errors"], 0,
                         {p: v["errors"] for p, v in self.viewers.items() if v["errors"]})
        self.assertEqual(sum(v["failed_segments"] for v in self.viewers.values()), 0,
                         "a segment failed verification: the leaver's half-sent bytes reached a hash check")


if __name__ == "__main__":
    unittest.main()
