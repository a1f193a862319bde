"""The operator page's cluster view in a real browser: a redis-server and two
mf-edge processes sharing it, SDK clients joined to both, and Debian's
chromium (driven by playwright-core, tests/browser/run-operator-page.mjs)
opening edge-a's page. Every number the page shows for the cluster's edges,
the streams across the cluster and the newest history sample must equal each
edge's /metrics, /api/cluster and /api/history. The history is sampled every
200 ms here ([admin] history_period_ms) so that a few seconds fill its
charts; the full-page screenshot is docs/images/operator-cluster.png when
MF_UPDATE_SCREENSHOT=1.

The same browser then opens the ingress's page (two backends), pastes the
admin token, clicks "drain" on one backend and must see it draining, as
/api/backends says."""

import json
import os
import subprocess
import unittest

from edge_process import (EXPECT_TIMEOUT_S, UNLIMITED_SOURCE, AdminEdge, RawWebSocket, SdkClient, admin_get,
                          edge_config_file, run_dir)
from ingress_process import ADMIN_TOKEN, Ingress, ProxyBackend, echo_handler, wait_until
from redis_process import RedisServer
from sdk_pages import BROWSER_DIR, NODE, require_prerequisites
from test_protocol_signal import signal_text

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DOCS_SCREENSHOT = os.path.join(REPO, "docs", "images", "operator-cluster.png")
RUN_DEADLINE_S = 40
HISTORY_PERIOD_MS = 200
HISTORY_SAMPLES = 150  # 30 s: the whole run stays on the charts
LIMITS = dict(UNLIMITED_SOURCE, messages_per_second=1000, message_burst=1000)


def history(edge):
    return json.loads(admin_get(edge.admin_port, "/api/history").body)


class OperatorClusterPage(unittest.TestCase):
    def setUp(self):
        require_prerequisites()
        self.redis = RedisServer().start()
        self.addCleanup(self.redis.close)
        config = edge_config_file(LIMITS, extra=f"[admin]\nhistory_samples = {HISTORY_SAMPLES}\n")
        self.edges = []
        for edge_id in ("edge-a", "edge-b"):
            edge = AdminEdge(args=["--config", config, "--valkey", self.redis.address,
                                   "--history-period-ms", str(HISTORY_PERIOD_MS),
                                   # The clients answer no ping: none is closed idle (4002) however slow the run.
                                   "--heartbeat-ms", "600000"], edge_id=edge_id, shards=2)
            edge.start()
            self.addCleanup(edge.__exit__, None, None, None)
            self.edges.append(edge)

    def client(self, edge):
        c = SdkClient(edge)
        self.addCleanup(c.close)
        return c

    def next_samples(self, edge, count):
        """Returns once `count` more history samples were taken."""
        start = len(history(edge)["samples"])
        wait_until(lambda: len(history(edge)["samples"]) >= min(start + count, HISTORY_SAMPLES), EXPECT_TIMEOUT_S,
                   f"{count} more history samples", interval=0.02)

    def screenshot_path(self):
        if os.environ.get("MF_UPDATE_SCREENSHOT") == "1":
            os.makedirs(os.path.dirname(DOCS_SCREENSHOT), exist_ok=True)
            return DOCS_SCREENSHOT
        return os.path.join(run_dir(), "operator-cluster.png")

    def test_cluster_page_equals_metrics_and_api(self):
        a, b = self.edges
        wait_until(lambda: all(len(json.loads(admin_get(e.admin_port, "/api/cluster").body)["edges"]) == 2
                               for e in self.edges), EXPECT_TIMEOUT_S, "both edges list each other in /api/cluster")
        # The audience grows in steps, with bytes, signals and a few errors,
        # so that every chart of edge-a's history has a shape.
        joined = []
        for step in range(6):
            c = self.client(a)
            c.join("live", "720p", f"a-{step}")
            joined.append(c)
            if step % 2 == 0:
                peer_b = self.client(b)
                peer_b.join("live" if step < 4 else "news", "720p", f"b-{step}")
                peer_b.send({"type": "stats", "p2pBytes": 200_000 * step, "cdnBytes": 500_000, "uploadedBytes": 0})
            for i, peer in enumerate(joined):
                peer.send({"type": "stats", "p2pBytes": (step + 1) * (i + 1) * 400_000, "cdnBytes": (6 - step) * 300_000,
                           "uploadedBytes": step * 100_000})
            if step >= 1:
                joined[0].send(signal_text(f"a-{step}", "offer", '{"sdp":"x"}'))
                self.assertEqual(c.expect("signal")["from"], "a-0")
            if step in (2, 3):
                for i in range(step):
                    c.send({"type": "no-such-type", "id": i})
                    c.expect("error")
            self.next_samples(a, 12)

        # A WebTorrent tracker client on edge-a (docs/tracker.md): a seeder in
        # one swarm, shown beside the SDK streams.
        tracker = RawWebSocket.connect(a, path="/announce", subprotocols=())
        self.addCleanup(tracker.close)
        tracker.send_text(json.dumps({"action": "announce", "info_hash": "operator-page-swarm1", "numwant": 0,
                                      "peer_id": "operator-page-seeder", "event": "started", "left": 0}))
        self.assertEqual(json.loads(tracker.recv_message())["action"], "announce")

        backends = []
        for _ in range(2):
            backend = ProxyBackend(echo_handler).__enter__()
            self.addCleanup(backend.__exit__, None, None, None)
            backends.append(backend)
        ingress = Ingress(backends=[backend.address for backend in backends]).start()
        self.addCleanup(ingress.__exit__, None, None, None)

        config = {"ingress": {"port": ingress.admin_port, "token": ADMIN_TOKEN, "backend": backends[1].address},
                  "page": a.admin_port, "admins": [{"edgeId": e.edge_id, "port": e.admin_port} for e in self.edges],
                  "screenshot": self.screenshot_path(), "deadlineMs": RUN_DEADLINE_S * 1000}
        try:
            result = subprocess.run([NODE, os.path.join(BROWSER_DIR, "run-operator-page.mjs"), json.dumps(config)],
                                    capture_output=True, timeout=RUN_DEADLINE_S + 10, cwd=BROWSER_DIR)
        except subprocess.TimeoutExpired as error:
            self.fail(f"run-operator-page.mjs hung:\n{(error.stderr or b'').decode(errors='replace')}")
        stderr = result.stderr.decode(errors="replace")
        self.assertEqual(result.returncode, 0, stderr)
        report = json.loads(result.stdout.decode().strip().splitlines()[-1])
        cluster = report["cluster"]
        self.assertEqual(cluster["mismatches"], [], stderr)
        shown = cluster["shown"]
        self.assertEqual(shown["edges"]["edge-a"]["peers"], "6")
        self.assertEqual(shown["edges"]["edge-b"]["peers"], "3")
        self.assertEqual(shown["streams"]["live"]["peers"], "8")
        self.assertEqual(shown["streams"]["live"]["edges"], "2")
        self.assertEqual(shown["streams"]["news"]["peers"], "1")
        self.assertGreaterEqual(shown["historySamples"], 30)
        self.assertEqual((shown["tracker"]["trackerSwarms"], shown["tracker"]["trackerPeers"],
                          shown["tracker"]["trackerSeeders"]), ("1", "1", "1"))
        # One line each for peers, signals/s and offload; errors have one
        # line per code that occurred (unknown-type only).
        self.assertEqual(shown["polylines"], 4)
        self.assertTrue(os.path.getsize(config["screenshot"]) > 10_000)

        shown = report["ingress"]
        self.assertIn(shown["before"], ("up", "slow start"), shown)
        self.assertIn(shown["after"], ("draining", "drained"), shown)
        self.assertIn(": 200 ", shown["message"])
        states = {b["address"]: b for b in shown["api"]["backends"]}
        self.assertTrue(states[backends[1].address]["drained"])
        self.assertFalse(states[backends[0].address]["drained"])
        self.assertTrue(ingress.backend_states()[backends[1].address]["drained"])


if __name__ == "__main__":
    unittest.main()
