"""The offload pilot, bounded (perf/offload, docs/pilot.md): a live stream
(Debian's ffmpeg, signed by mf-sign --watch, served by Debian's nginx) played
by 4 Chromium viewers through mf-ingress and two mf-edge sharing a
redis-server, one treatment run and one control run (the mesh off by
policy), with a lying viewer in the treatment (a fifth viewer, left out of
the audience measured: pilot/measure.py) and the kill switch pushed near its
end. Asserts what the pilot's targets scale to at 4 viewers: offload
measured at the origin at least 60% (ceiling 75%) once every viewer plays
(docs/pilot.md, "The offload formula": the pages' opening, which a loaded
machine stretches, is the swarm's cold start, printed but not asserted),
the SDK's own figure within 2 points of the origin's over the whole window, no unverified byte appended, no playback
error; the liar banned, no honest viewer banned; after the kill switch no
peer left, no peer byte, no stall. Waits are for events, bounded by the
run's own length; the figures are printed for the record."""

import os
import shutil
import sys
import unittest

from edge_process import run_dir
from sdk_pages import require_prerequisites

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "perf"))
from pilot.pilot_run import RunConfig  # noqa: E402
from pilot.session import fmt, run_session  # noqa: E402

VIEWERS = 4
TREATMENT_S = 50          # played once the viewers are open; the kill switch is pushed KILL_SWITCH_TAIL_S before the end
KILL_SWITCH_TAIL_S = 10
# Long enough that one load hls.js abandons (its bytes sent by nginx, never
# read by the page: docs/pilot.md, "The offload formula") stays inside the
# 2-point agreement: at 12 s one such load measured 2.5 points on a loaded machine.
CONTROL_S = 24
RAMP_S = 4


class OffloadPilot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_prerequisites()
        cls.out = os.path.join(run_dir(), "pilot-out")
        shutil.rmtree(cls.out, ignore_errors=True)
        treatment = RunConfig(viewers=VIEWERS, duration_s=TREATMENT_S, ramp_s=RAMP_S, lying_viewer=True,
                              kill_switch_at_s=TREATMENT_S - KILL_SWITCH_TAIL_S)
        control = RunConfig(viewers=VIEWERS, duration_s=CONTROL_S, ramp_s=RAMP_S, control=True)
        cls.report = run_session([treatment, control], cls.out,
                                 {"renditions": 2, "segment_s": 2, "window": 8, "cmaf_chunks": True},
                                 log=lambda *x: print(*x, file=sys.stderr, flush=True))
        cls.treatment, cls.control = cls.report["runs"]

    def test_the_output_directory_holds_the_report_and_the_access_log(self):
        for name in ("report.json", "report.html", "origin-access.log"):
            self.assertTrue(os.path.getsize(os.path.join(self.out, name)) > 0, name)
        with open(os.path.join(self.out, "report.html")) as f:
            page = f.read()
        self.assertIn("<svg", page)
        self.assertIn("1 &minus; origin media bytes &divide; appended media bytes", page)
        self.assertNotIn("<script", page)

    def test_treatment_offloads_at_least_60_percent_measured_at_the_origin(self):
        t = self.treatment
        print(f"\npilot: treatment offload at the origin {fmt(t['offload_origin_playing'])} over the "
              f"{t['window']['playing_s']} s every viewer played; over the whole window {fmt(t['offload_origin'])}, "
              f"by the SDK {fmt(t['offload_sdk'])} over {t['window']['measured_s']} s ({t['origin_media_bytes']} of "
              f"{t['appended_bytes']} B from the origin); control {fmt(self.control['offload_origin'])}; startup "
              f"median {t['startup_ms_median']} ms (control {self.control['startup_ms_median']} ms); stalls "
              f"{t['stalls']} (control {self.control['stalls']}); warm offload min {fmt(t['warm_offload_min'])}")
        self.assertIsNotNone(t["offload_origin_playing"], "a viewer never played before the kill switch")
        self.assertGreaterEqual(t["offload_origin_playing"], 0.60, t["swarm_series"])
        self.assertLessEqual(abs(t["offload_origin"] - t["offload_sdk"]), 0.02)
        self.assertGreater(t["appended_bytes"], 0)
        self.assertEqual(t["audience"], [f"viewer-{i + 1:02d}" for i in range(VIEWERS)])

    def test_control_is_served_by_the_cdn_alone(self):
        c = self.control
        self.assertEqual(c["mode"], "control")
        self.assertLessEqual(abs(c["offload_origin"] - c["offload_sdk"]), 0.02)
        self.assertLessEqual(c["offload_origin"], 0.0 + 1e-9, "the control run carried bytes over the mesh")
        self.assertEqual(sum(v["p2p_bytes"] for v in c["viewers"].values()), 0)

    def test_every_appended_segment_matches_the_signed_manifest_and_nothing_failed_to_play(self):
        for run in (self.treatment, self.control):
            with self.subTest(mode=run["mode"]):
                self.assertEqual(run["unverified_appended"], 0)
                self.assertGreater(run["checked_segments"], VIEWERS * 5)
                self.assertEqual(run["playback_errors"], 0,
                                 {p: v["errors"] for p, v in run["viewers"].items() if v["errors"]})

    def test_the_lying_viewer_is_banned_and_nobody_honest_is(self):
        viewers = self.treatment["viewers"]
        honest = {p: v for p, v in viewers.items() if v["role"] == "viewer"}
        victims = [p for p, v in honest.items() if v["failed_segments"]]
        self.assertGreater(viewers["viewer-liar"]["uploaded_bytes"], 0, "nobody asked the liar for anything")
        self.assertTrue(victims, "the liar served bytes but nobody failed a segment")
        self.assertTrue(all("viewer-liar" in honest[p]["banned"] for p in victims), honest)
        self.assertTrue(all(b == "viewer-liar" for v in viewers.values() for b in v["banned"]), viewers)
        print(f"\npilot: the liar uploaded {viewers['viewer-liar']['uploaded_bytes']} B and was banned by "
              f"{len(victims)} of {len(honest)} honest viewers")

    def test_the_kill_switch_stops_peer_traffic_without_a_stall(self):
        kill = self.treatment["faults"]["kill_switch"]
        self.assertIsNotNone(kill["peers_gone_s"], "some page kept a peer for 10 s after the kill switch")
        for peer_id, v in self.treatment["viewers"].items():
            with self.subTest(viewer=peer_id):
                self.assertEqual(v["p2p_bytes"], kill["p2p_bytes_at_peers_gone"][peer_id], "peer bytes after it")
                self.assertEqual(v["stalls_after_kill_switch"], 0)
        print(f"\npilot: kill switch: every page without peers {kill['peers_gone_s']:.2f} s after SIGHUP "
              f"(observed by polling the pages: an upper bound)")


if __name__ == "__main__":
    unittest.main()
