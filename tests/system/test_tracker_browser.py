"""The bittorrent-tracker client from npm (11.x, tests/browser/package.json)
against mf-edge's tracker path (docs/tracker.md), in Debian's chromium driven
by playwright-core (tests/browser/run-tracker-pages.mjs). The client is
bundled with esbuild (the SDK's, sdk/node_modules) for the pages, where
WebRTC exists: two pages announce one info_hash, the later one's offer
reaches the earlier through the edge, the answer comes back, and a WebRTC
data channel opens between them over loopback. Directly on the edge (wss),
through mf-ingress, and across two edges sharing a redis-server (one page on
each)."""

import json
import os
import subprocess
import tempfile
import unittest

from edge_process import AdminEdge, UNLIMITED_SOURCE, admin_get, edge_config_file, parse_prometheus, run_dir, wait_until
from ingress_process import ingress_with_edges
from redis_process import RedisServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BROWSER_DIR = os.path.join(REPO, "tests", "browser")
ESBUILD = os.path.join(REPO, "sdk", "node_modules", ".bin", "esbuild")
CHROMIUM = "/usr/bin/chromium"
NODE = "/usr/bin/node"
RUN_DEADLINE_S = 30


class TrackerClientInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [path for path in (CHROMIUM, NODE, ESBUILD) if not os.access(path, os.X_OK)]
        for package in ("playwright-core", "bittorrent-tracker", "events"):
            if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", package)):
                missing.append(os.path.join(BROWSER_DIR, "node_modules", package))
        if missing:
            raise AssertionError(f"the tracker browser test needs {', '.join(missing)}: ./install-deps.sh installs "
                                 f"chromium and runs npm ci in tests/browser and sdk")
        cls.bundle = os.path.join(tempfile.mkdtemp(prefix="tracker-bundle-", dir=run_dir()), "tracker-client.js")
        result = subprocess.run([ESBUILD, "tracker-client-entry.js", "--bundle", "--format=iife",
                                 "--platform=browser", "--define:process.browser=true",
                                 f"--outfile={cls.bundle}", "--log-level=warning"],
                                cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"esbuild failed:\n{result.stderr.decode(errors='replace')}")

    def run_pages(self, *announce_urls):
        config = {"announceUrls": list(announce_urls), "bundle": self.bundle, "pages": 2,
                  "deadlineMs": RUN_DEADLINE_S * 1000}
        try:
            result = subprocess.run([NODE, os.path.join(BROWSER_DIR, "run-tracker-pages.mjs"), json.dumps(config)],
                                    cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    timeout=RUN_DEADLINE_S + 10)
        except subprocess.TimeoutExpired as error:
            self.fail(f"run-tracker-pages.mjs hung past its deadline:\n{(error.stderr or b'').decode(errors='replace')}")
        stderr = result.stderr.decode(errors="replace")
        if result.returncode != 0:
            self.fail(f"run-tracker-pages.mjs exited {result.returncode}:\n{stderr}")
        return json.loads(result.stdout.decode().strip().splitlines()[-1]), stderr

    def check_pages(self, report, log):
        pages = report["pages"]
        self.assertEqual(len(pages), 2, log)
        for page in pages:
            self.assertEqual(page["errors"], [], log)
            self.assertEqual(page["warnings"], [], log)
            self.assertGreaterEqual(len(page["updates"]), 1, "an announce reply reached the client")
            self.assertGreaterEqual(len(page["connected"]), 1, "a WebRTC data channel opened")
            other = [p for p in pages if p is not page][0]
            self.assertIn(f"hello from {other['peerId']}", page["received"], log)

    def test_two_pages_connect_through_the_edge(self):
        with AdminEdge(args=["--config", edge_config_file(limits=UNLIMITED_SOURCE)], tls=True,
                       edge_id="edge-tracker-browser") as edge:
            report, log = self.run_pages(f"wss://localhost:{edge.port}/announce")
            metrics, _ = parse_prometheus(admin_get(edge.admin_port, "/metrics").body.decode())
        self.check_pages(report, log)
        self.assertGreaterEqual(metrics[("mf_edge_tracker_offers_relayed_total", frozenset())], 1)
        self.assertGreaterEqual(metrics[("mf_edge_tracker_answers_relayed_total", frozenset())], 1)
        self.assertEqual(metrics[("mf_edge_tracker_answers_refused_total", frozenset())], 0)

    def test_two_pages_connect_through_the_ingress(self):
        with ingress_with_edges(1, edge_args=["--config", edge_config_file(limits=UNLIMITED_SOURCE)]) as (ingress, _):
            report, log = self.run_pages(ingress.ws_url("/announce"))
        self.check_pages(report, log)

    def test_two_pages_connect_across_two_edges(self):
        # One page on each edge; the offer and the answer cross through Valkey
        # (docs/cluster.md, "Tracker swarms across edges").
        with RedisServer() as redis:
            args = ["--valkey", redis.address, "--config", edge_config_file(limits=UNLIMITED_SOURCE)]
            with AdminEdge(args=args, tls=True, edge_id="edge-tracker-a") as a, \
                    AdminEdge(args=args, tls=True, edge_id="edge-tracker-b") as b:
                wait_until(lambda: all(e.metric("mf_edge_valkey_live_edges") == 2 for e in (a, b)),
                           what="both edges alive for every shard")
                report, log = self.run_pages(f"wss://localhost:{a.port}/announce", f"wss://localhost:{b.port}/announce")
                crossed = [e.metric("mf_edge_tracker_offers_to_edges_total") for e in (a, b)]
                answered = [e.metric("mf_edge_tracker_answers_to_edges_total") for e in (a, b)]
        self.check_pages(report, log)
        self.assertGreaterEqual(sum(crossed), 1, "an offer went through Valkey")
        self.assertGreaterEqual(sum(answered), 1, "an answer came back through Valkey")


if __name__ == "__main__":
    unittest.main()
