"""mf-load, the load generator, against a real mf-edge: small bounded runs of
each scenario whose JSON report must show the work done and no errors."""

import json
import os
import subprocess
import unittest

from edge_process import AdminEdge, Edge, build_dir, tls_material

BUDGET = ["--messages-per-second", "1000000", "--message-burst", "1000000"]


def mf_load(*args, timeout=60):
    binary = os.path.join(build_dir(), "perf", "mf-load")
    done = subprocess.run([binary, *args, "--json"], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"mf-load {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


class MfLoad(unittest.TestCase):
    def test_join_plain(self):
        with Edge(args=BUDGET, shards=2) as edge:
            report = mf_load("join", "--url", edge.ws_url(), "--connections", "300", "--rate", "3000", "--duration", "2")
            self.assertEqual(report["connections"]["joined"], 300, report)
            self.assertEqual(report["errors"], {}, report)
            latency = report["joinLatencyUs"]["joinToPeers"]
            self.assertEqual(latency["count"], 300)
            self.assertLessEqual(latency["p50"], latency["p99"])

    def test_relay_tls(self):
        cert, _ = tls_material()
        with Edge(args=BUDGET, shards=1, tls=True) as edge:
            report = mf_load("relay", "--url", edge.ws_url(), "--connections", "20", "--duration", "2",
                             "--size", "200", "--ca", cert, "--cpu-pid", str(edge.process.pid))
            self.assertEqual(report["connections"]["joined"], 20, report)
            self.assertEqual(report["errors"], {}, report)
            relay = report["relay"]
            self.assertGreater(relay["signalsPerSecond"], 1000, relay)
            self.assertEqual(relay["sent"], relay["received"], relay)
            # The edge's CPU over the measured window, for the signals relayed in it.
            cpu = report["serverCpu"]
            self.assertEqual(cpu["pids"], [edge.process.pid], cpu)
            self.assertEqual(cpu["messages"], relay["inWindow"], cpu)
            self.assertIsNotNone(cpu["seconds"][0], cpu)
            self.assertGreaterEqual(cpu["seconds"][0], 0, cpu)
            # The same time split: user space and the kernel on the edge's behalf.
            self.assertAlmostEqual(cpu["userSeconds"][0] + cpu["systemSeconds"][0], cpu["seconds"][0], delta=0.0015)
            # TCP segments the host sent in the window, and per signal.
            segments = report["tcpSegments"]
            self.assertGreater(segments["sent"], 0, segments)
            self.assertAlmostEqual(segments["perMessage"], segments["sent"] / relay["inWindow"], delta=0.001)

    def test_tracker_tls(self):
        # aquatic_ws's load test over TLS: announces with 10 offers, answers
        # to the offers read; every message read counts.
        cert, _ = tls_material()
        with AdminEdge(args=BUDGET, shards=1, tls=True) as edge:
            report = mf_load("tracker", "--url", edge.ws_url("/announce"), "--connections", "40", "--duration", "2",
                             "--ca", cert, "--cpu-pid", str(edge.process.pid))
            self.assertEqual(report["connections"]["joined"], 40, report)
            self.assertEqual(report["errors"], {}, report)
            tracker = report["tracker"]
            self.assertGreater(tracker["inWindow"], 0, tracker)
            self.assertGreaterEqual(tracker["received"], tracker["sent"], tracker)
            # Offers were relayed and answered through the edge.
            self.assertGreater(edge.metric("mf_edge_tracker_offers_relayed_total"), 0)
            self.assertGreater(edge.metric("mf_edge_tracker_answers_relayed_total"), 0)
            self.assertEqual(report["serverCpu"]["messages"], tracker["inWindow"], report["serverCpu"])

    def test_refuses_an_unreadable_cpu_pid(self):
        binary = os.path.join(build_dir(), "perf", "mf-load")
        done = subprocess.run([binary, "join", "--url", "ws://127.0.0.1:1/ws", "--connections", "1",
                               "--cpu-pid", str(2 ** 22 + 1)], capture_output=True, text=True, timeout=10)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("--cpu-pid", done.stderr)

    def test_idle_reports_server_memory(self):
        with Edge(args=BUDGET + ["--heartbeat-ms", "500"], shards=1) as edge:
            report = mf_load("idle", "--url", edge.ws_url(), "--connections", "200", "--duration", "2",
                             "--pid", str(edge.process.pid))
            self.assertEqual(report["connections"]["joined"], 200, report)
            self.assertEqual(report["errors"], {}, report)
            self.assertIn("serverRss", json.dumps(report))

    def test_refuses_non_loopback_targets(self):
        binary = os.path.join(build_dir(), "perf", "mf-load")
        done = subprocess.run([binary, "join", "--url", "ws://192.0.2.1:8445/ws", "--connections", "1"],
                              capture_output=True, text=True, timeout=10)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("loopback", done.stderr)


if __name__ == "__main__":
    unittest.main()
