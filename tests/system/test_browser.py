"""Real browsers end to end (docs/sdk.md): Debian's chromium, driven by
playwright-core (tests/browser/run-pages.mjs), runs the reference client
tests/browser/meshedflow-client.js in several pages that join through the
real mf-ingress (TLS, the run's test certificate) to two mf-edge processes,
open WebRTC data channels to each other over loopback and exchange
checksummed bytes. The same run loads the edge's operator page (/) and
compares it with /api/streams and /metrics, and takes a screenshot
(docs/operator-page.png when MF_UPDATE_SCREENSHOT=1).

Cross-edge meshes (one stream's peers on both edges, presence shared through
Valkey) are not on main yet: today the ingress keeps one stream on one edge
(stream affinity). BALANCE and edge_args() are the switch: with least
connections and the edges' --valkey arguments, the same test covers
cross-edge pairs.
"""

import json
import os
import shutil
import subprocess
import unittest

from edge_process import UNLIMITED_SOURCE, edge_config_file, run_dir
from ingress_process import ingress_with_edges
from redis_process import RedisServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BROWSER_DIR = os.path.join(REPO, "tests", "browser")
# The screenshot goes to the run's folder; with MF_UPDATE_SCREENSHOT=1 it
# replaces docs/operator-page.png (a plain test run leaves the tree clean).
DOCS_SCREENSHOT = os.path.join(REPO, "docs", "operator-page.png")
CHROMIUM = "/usr/bin/chromium"
NODE = "/usr/bin/node"

STREAMS = {"alpha": 4, "beta": 2}  # the first stream is the one checked most
RENDITION = "720p"
RUN_DEADLINE_S = 50


def require_browser(test):
    """Fails `test` (never skips it) when chromium, node or playwright-core is missing."""
    missing = [path for path in (CHROMIUM, NODE) if not os.access(path, os.X_OK)]
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        missing.append(os.path.join(BROWSER_DIR, "node_modules/playwright-core"))
    if missing:
        test.fail(f"the browser tests need {', '.join(missing)}: ./install-deps.sh installs chromium and "
                  f"runs npm ci --prefix tests/browser")


class BrowserEndToEnd(unittest.TestCase):
    # The ingress's balance mode. "stream-affinity" keeps a stream's pages on
    # one edge; once edges share presence (Valkey), "least-connections" plus
    # edge_args() returning the --valkey arguments makes pairs cross edges.
    BALANCE = "stream-affinity"

    def balance_settings(self):
        # A load factor of 10x: the few pages of a stream are never spread
        # over both edges for balance (bounded loads would do so at 125 %).
        return {"mode": self.BALANCE, "affinity_load_factor_percent": 1000}

    def edge_args(self):
        return ["--config", edge_config_file(limits=UNLIMITED_SOURCE)]

    def setUp(self):
        require_browser(self)

    @property
    def screenshot(self):
        return DOCS_SCREENSHOT if os.environ.get("MF_UPDATE_SCREENSHOT") == "1" else \
            os.path.join(run_dir(), "operator-page.png")

    def run_pages(self, ingress, edges):
        config = {
            "wsUrl": ingress.ws_url(),
            "admins": [{"edgeId": e.edge_id, "port": e.admin_port} for e in edges],
            "streams": STREAMS,
            "rendition": RENDITION,
            "screenshot": self.screenshot,
            "deadlineMs": RUN_DEADLINE_S * 1000,
        }
        try:
            result = subprocess.run([NODE, os.path.join(BROWSER_DIR, "run-pages.mjs"), json.dumps(config)],
                                    cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    timeout=RUN_DEADLINE_S + 10)
        except subprocess.TimeoutExpired as error:
            self.fail(f"run-pages.mjs hung past its deadline:\n{(error.stderr or b'').decode(errors='replace')}")
        stderr = result.stderr.decode(errors="replace")
        if result.returncode != 0:
            self.fail(f"run-pages.mjs exited {result.returncode}:\n{stderr}")
        return json.loads(result.stdout.decode().strip().splitlines()[-1]), stderr

    def check_pages(self, report, edges, log):
        """Every page joined once, opened a data channel inside its stream only,
        and exchanged intact bytes; returns the pages by peerId."""
        pages = {p["peerId"]: p for p in report["pages"]}
        self.assertEqual(sorted(pages), sorted(f"{s}-{i}" for s, n in STREAMS.items() for i in range(n)), log)
        edge_ids = {e.edge_id for e in edges}

        for peer, page in pages.items():
            with self.subTest(page=peer):
                self.assertIn(page["edge"], edge_ids)
                self.assertEqual(page["joins"], 1, f"{peer} had to reconnect: {page}")
                self.assertEqual(page["errors"], [], f"{peer} got errors from the edge")
                # A data channel to at least one other page of its stream.
                self.assertGreaterEqual(len(page["open"]), 1, f"{peer} opened no data channel\n{log}")
                # Isolation: every peer connection it ever made (offered or
                # answered) is to a page of its own stream.
                stream = page["streamId"]
                strangers = [remote for remote in page["linked"] + page["open"]
                             if pages.get(remote, {}).get("streamId") != stream]
                self.assertEqual(strangers, [], f"{peer} connected outside its stream")
                # Every page it sent to got the bytes intact (SHA-256), and
                # it got intact bytes from every page that sent to it.
                for sender, other in pages.items():
                    if peer in other["sentTo"]:
                        got = page["received"].get(sender)
                        self.assertIsNotNone(got, f"{peer} got nothing from {sender}")
                        self.assertTrue(got["ok"] and got["bytes"] == got["expected"] == 128 * 1024,
                                        f"{peer} from {sender}: {got}")
                # Channels are symmetric: if it sent to X, X sent to it.
                for remote in page["sentTo"]:
                    self.assertIn(peer, pages[remote]["sentTo"])
                # Its own accounting: bytes received over channels = p2pBytes.
                received = sum(r["bytes"] for r in page["received"].values())
                self.assertGreaterEqual(page["totals"]["p2pBytes"], received)
        return pages

    def test_browser_pages_mesh_through_ingress_and_operator_page_matches(self):
        with ingress_with_edges(2, edge_args=self.edge_args(),
                                settings={"balance": self.balance_settings()}) as (ingress, edges):
            report, log = self.run_pages(ingress, edges)
        pages = self.check_pages(report, edges, log)

        # The operator page showed what /api/streams and /metrics said.
        operator = report["operator"]
        self.assertEqual(operator["mismatches"], [], json.dumps(operator, indent=1))
        streams = {s["streamId"]: s for s in operator["json"]["streams"]}
        alpha = streams["alpha"]
        self.assertEqual(alpha["peers"], STREAMS["alpha"])
        self.assertEqual(alpha["renditions"], [{"rendition": RENDITION, "peers": STREAMS["alpha"]}])
        alpha_pages = [p for p in pages.values() if p["streamId"] == "alpha"]
        # The stats the pages sent are what the edge aggregated.
        for field in ("p2pBytes", "cdnBytes", "uploadedBytes", "connectedProposals"):
            self.assertEqual(alpha[field], sum(p["totals"][field] for p in alpha_pages), field)
        self.assertGreater(alpha["offloadRatio"], 0.5)
        self.assertLess(alpha["offloadRatio"], 1.0)
        # Each channel is counted once, by its offerer; every offer followed
        # a proposal.
        channels = sum(len(p["open"]) for p in alpha_pages) // 2
        self.assertEqual(alpha["connectedProposals"], channels)
        self.assertGreaterEqual(alpha["proposals"], alpha["connectedProposals"])
        self.assertGreaterEqual(alpha["signals"], 3 * channels)  # offer, answer, and candidates at least
        self.assertEqual(alpha["joins"], STREAMS["alpha"])
        self.assertGreater(os.path.getsize(self.screenshot), 10000)

        # A closed page stops being proposed: listed before, gone after.
        departure = report["departure"]
        self.assertIn(departure["leaver"], departure["before"], departure)
        self.assertNotIn(departure["leaver"], departure["after"], departure)
        self.assertLess(departure["ms"], 5000)


class BrowserAcrossEdges(BrowserEndToEnd):
    """The same pages with the edges sharing presence through a real
    redis-server and the ingress balancing by least connections: a stream's
    pages sit on both edges and must still find each other and connect."""

    BALANCE = "least-connections"

    def setUp(self):
        super().setUp()
        self.redis = RedisServer().start()
        self.addCleanup(self.redis.close)

    def balance_settings(self):
        return {"mode": self.BALANCE}

    def edge_args(self):
        return super().edge_args() + ["--valkey", self.redis.address, "--valkey-ttl-ms", "3000"]

    def test_browser_pages_mesh_through_ingress_and_operator_page_matches(self):
        with ingress_with_edges(2, edge_args=self.edge_args(),
                                settings={"balance": self.balance_settings()}) as (ingress, edges):
            report, log = self.run_pages(ingress, edges)
        pages = self.check_pages(report, edges, log)
        alpha = [p for p in pages.values() if p["streamId"] == "alpha"]
        self.assertEqual(len({p["edge"] for p in alpha}), 2,
                         f"least connections should spread alpha's pages over both edges: {[p['edge'] for p in alpha]}")
        across = [(p["peerId"], remote) for p in alpha for remote in p["open"] if pages[remote]["edge"] != p["edge"]]
        self.assertTrue(across, f"no data channel between pages on different edges\n{log}")
        departure = report["departure"]
        self.assertIn(departure["leaver"], departure["before"], departure)
        self.assertNotIn(departure["leaver"], departure["after"], departure)


class BrowserToolsAreThere(unittest.TestCase):
    """The set-up installs the browser: a missing piece is a failure with the
    reason, never a skip."""

    def test_browser_tools_installed(self):
        self.assertTrue(os.access(CHROMIUM, os.X_OK), "chromium is missing: ./install-deps.sh installs it")
        self.assertIsNotNone(shutil.which("node") or (os.access(NODE, os.X_OK) or None), "node is missing")
        self.assertTrue(os.path.isfile(os.path.join(BROWSER_DIR, "node_modules", "playwright-core", "package.json")),
                        "playwright-core is missing: npm ci --prefix tests/browser (run by install-deps.sh)")


if __name__ == "__main__":
    unittest.main()
