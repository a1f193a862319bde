"""The edge's side of a mesh of real players: Debian's chromium, driven by
playwright-core (tests/browser/run-sdk-pages.mjs), opens viewers of two
streams that play a short HLS stream each (Debian's ffmpeg, signed by
mf-sign, served by Debian's nginx) with real hls.js and @meshedflow/sdk's
loader (sdk-player.html); their signaling goes through the real mf-ingress
(TLS, the run's test certificate) to two mf-edge processes. The viewers open
WebRTC data channels to each other over loopback and exchange verified
segments. The tests check what the edge makes of them: every page joined
once and connected only inside its stream, the edge's per-stream totals are
the sums of what the players reported, the operator page (/) shows what
/api/streams and /metrics say (screenshot: docs/operator-page.png when
MF_UPDATE_SCREENSHOT=1), and a closed page stops being proposed (seen by an
independent python3-websockets client).

The ingress keeps each stream on one edge here (stream affinity), so one
edge's /api/streams holds a whole stream. Players of one stream on both
edges (presence shared through redis, least connections) finding each other
across edges, and what the SDK does with the segments, are
tests/system/test_sdk_browser.py's subject. Every wait is for the event that
proves the effect, bounded only against a hang.
"""

import json
import os
import shutil
import unittest

from edge_process import UNLIMITED_SOURCE, admin_get, edge_config_file, run_dir, wait_until
from ingress_process import ingress_with_edges
from nginx_process import OriginServer
from sdk_pages import BROWSER_DIR, CHROMIUM, NODE, Bridge, build_sdk, encode_vod, install_player, new_signing_key, \
    require_prerequisites, sign_vod, watch_departure

# The screenshot goes to the run's folder; with MF_UPDATE_SCREENSHOT=1 it
# replaces docs/operator-page.png (a plain test run leaves the tree clean).
DOCS_SCREENSHOT = os.path.join(os.path.dirname(os.path.dirname(BROWSER_DIR)), "docs", "operator-page.png")

STREAMS = {"alpha": 4, "beta": 2}  # the first stream is the one checked most
RENDITIONS = {"r180p": ("320x180", "100k")}
RENDITION = "r180p:index"           # mf-sign's name for r180p/index.m3u8 (docs/origin.md)
SEGMENTS = 8                        # 1 s each; every viewer buffers all of them
BRIDGE_DEADLINE_S = 120
HANG_S = 60


def make_origin_root():
    """The origin's files (made once per run): one short stream, a copy per
    test stream, each signed by mf-sign for its stream, plus the player page,
    the SDK and hls.js. Returns (root, manifestKeys, {stream: {sn: sha256}})."""
    root = os.path.join(run_dir(), "mesh-origin")
    if os.path.isdir(root):
        shutil.rmtree(root)
    first, *others = STREAMS
    encode_vod(os.path.join(root, first), RENDITIONS, SEGMENTS)
    for stream in others:
        shutil.copytree(os.path.join(root, first), os.path.join(root, stream))
    key = os.path.join(run_dir(), "mesh-signing-key.pem")
    jwk = new_signing_key(key)
    digests = {stream: sign_vod(key, os.path.join(root, stream), stream, RENDITIONS)["r180p"] for stream in STREAMS}
    install_player(root)
    return root, [jwk], digests


_ORIGIN_ROOT = []


def origin_root():
    """make_origin_root() once for both test classes (with the SDK built)."""
    if not _ORIGIN_ROOT:
        require_prerequisites()
        build_sdk()
        _ORIGIN_ROOT.append(make_origin_root())
    return _ORIGIN_ROOT[0]


class BrowserEndToEnd(unittest.TestCase):
    # The ingress's balance mode. "stream-affinity" keeps a stream's pages on
    # one edge, so one edge's /api/streams holds the whole stream.
    BALANCE = "stream-affinity"

    def balance_settings(self):
        # A load factor of 10x: the few pages of a stream are never spread
        # over both edges for balance (bounded loads would do so at 125 %).
        return {"mode": self.BALANCE, "affinity_load_factor_percent": 1000}

    def edge_args(self):
        return ["--config", edge_config_file(limits=UNLIMITED_SOURCE)]

    @classmethod
    def setUpClass(cls):
        cls.root, cls.keys, cls.digests = origin_root()

    def setUp(self):
        self.origin = OriginServer(self.root).start()
        self.addCleanup(self.origin.kill)

    @property
    def screenshot(self):
        return DOCS_SCREENSHOT if os.environ.get("MF_UPDATE_SCREENSHOT") == "1" else \
            os.path.join(run_dir(), "operator-page.png")

    def open_viewers(self, bridge, ingress):
        """One viewer per page of STREAMS (peerId "<stream>-<i>"), opened one
        after the other so that each later viewer is proposed the earlier
        ones; returns once every viewer joined and played all SEGMENTS
        verified."""
        for stream, count in STREAMS.items():
            for i in range(count):
                bridge.open({"peerId": f"{stream}-{i}", "wsUrl": ingress.ws_url(), "streamId": stream,
                             "manifestKeys": self.keys, "hlsModule": "/lib/hls-1.7.mjs",
                             "src": f"{self.origin.url}/{stream}/r180p/index.m3u8", "maxBufferLength": 30})
        return self.wait_pages(bridge, "every viewer to join, buffer every segment and open a data channel",
                               lambda pages: all(r["joined"] and len(set(r["buffered"])) == SEGMENTS and r["opened"]
                                                 for r in pages.values()))

    @staticmethod
    def wait_pages(bridge, what, predicate, timeout=HANG_S):
        return bridge.wait_pages(what, predicate, timeout, lambda pages: {
            p: {"joined": r["joined"], "buffered": len(set(r["buffered"])), "opened": r["opened"], "linked": r["linked"],
                "errors": r["errors"][:5], "coreErrors": r["coreErrors"][:5], "events": r["coreEvents"][:20]}
            for p, r in pages.items()})

    def check_pages(self, pages, edges):
        """Every page joined once on one of the edges, played only bytes the
        manifest names, connected only inside its stream, symmetrically, and
        counted the peer bytes it received."""
        self.assertEqual(sorted(pages), sorted(f"{s}-{i}" for s, n in STREAMS.items() for i in range(n)))
        stream_of = {p: p.rsplit("-", 1)[0] for p in pages}
        edge_ids = {e.edge_id for e in edges}
        for peer, page in pages.items():
            with self.subTest(page=peer):
                self.assertIn(page["joined"]["edge"], edge_ids)
                self.assertEqual(page["joins"], 1, f"{peer} had to reconnect")
                self.assertEqual(page["coreErrors"], [], f"{peer} got errors from the edge")
                self.assertEqual([e for e in page["errors"] if e["fatal"]], [], f"{peer}: fatal playback errors")
                self.assertEqual(page["banned"], [], f"{peer} banned a peer")
                # Every fragment that reached the buffer has the manifest's SHA-256.
                for key in set(page["buffered"]):
                    sn = int(key.split("/")[1])
                    self.assertEqual(page["digests"].get(key), self.digests[stream_of[peer]][sn], f"{peer}: {key}")
                self.assertTrue(all(s["verified"] for s in page["segments"] if s["source"] != "http"), page["segments"])
                # Isolation: every peer connection it ever made (offered or
                # answered) is to a page of its own stream.
                opened = [o["peerId"] for o in page["opened"]]
                strangers = [remote for remote in page["linked"] + opened if stream_of.get(remote) != stream_of[peer]]
                self.assertEqual(strangers, [], f"{peer} connected outside its stream")
                # Channels are symmetric: a channel that opened here opened
                # on the other side too, with the other role.
                for o in page["opened"]:
                    self.assertIn({"peerId": peer, "offerer": not o["offerer"]}, pages[o["peerId"]]["opened"], peer)
                # Its own accounting: the peer bytes it counted cover every
                # segment a peer delivered.
                from_peers = sum(s["bytes"] for s in page["segments"] if s["source"] == "p2p")
                self.assertGreaterEqual(page["stats"]["p2pBytes"], from_peers)
        return stream_of

    @staticmethod
    def reported(page):
        """What the page's stats told the edge: its counters' growth since its join."""
        s, j = page["stats"], page["atJoin"]
        return {"p2pBytes": s["p2pBytes"] - j["p2p"], "cdnBytes": s["httpBytes"] - j["http"],
                "uploadedBytes": s["uploadedBytes"] - j["uploaded"],
                "connectedProposals": s["connectedProposals"] - j["connectedProposals"]}

    def wait_edge_totals(self, bridge, admin, stream):
        """Polls the pages and the edge until the stream's totals on the edge
        are the sums of what its pages reported (the players send stats every
        few seconds once a counter moved; every page is done loading, so
        the counters settle). Returns (pages, the stream's /api/streams entry)."""
        last = {}

        def poll():
            pages = bridge.report()
            mine = [p for peer, p in pages.items() if peer.startswith(stream + "-")]
            expected = {field: sum(self.reported(p)[field] for p in mine)
                        for field in ("p2pBytes", "cdnBytes", "uploadedBytes", "connectedProposals")}
            streams = {s["streamId"]: s for s in json.loads(admin_get(admin.admin_port, "/api/streams").body)["streams"]}
            last["got"], last["expected"] = {field: streams.get(stream, {}).get(field) for field in expected}, expected
            return (pages, streams[stream]) if last["got"] == expected else None

        return wait_until(poll, HANG_S, interval=0.2,
                          what=lambda: f"{stream}'s totals on {admin.edge_id} ({last.get('got')}) to be what the pages "
                                       f"reported ({last.get('expected')})")

    def check_departure(self, ingress, bridge, stream):
        """The stream's last page closes: it was proposed before, and then no
        longer is (waited for; the bound is against a hang)."""
        leaver = f"{stream}-{STREAMS[stream] - 1}"
        departure = watch_departure(ingress, bridge, stream, RENDITION, leaver)
        self.assertIn(leaver, departure["before"], departure)
        self.assertNotIn(leaver, departure["after"], f"still proposed {departure['s']:.1f} s after it closed: {departure}")
        return departure

    def test_browser_pages_mesh_through_ingress_and_operator_page_matches(self):
        with ingress_with_edges(2, edge_args=self.edge_args(),
                                settings={"balance": self.balance_settings()}) as (ingress, edges):
            bridge = Bridge(self.origin.url, BRIDGE_DEADLINE_S)
            self.addCleanup(bridge.close)
            pages = self.open_viewers(bridge, ingress)
            self.check_pages(pages, edges)
            admins = {e.edge_id: e for e in edges}
            alpha_edges = {pages[f"alpha-{i}"]["joined"]["edge"] for i in range(STREAMS["alpha"])}
            self.assertEqual(len(alpha_edges), 1, f"stream affinity kept alpha on one edge: {alpha_edges}")
            admin = admins[alpha_edges.pop()]
            # The stats the pages sent are what the edge aggregated.
            pages, alpha = self.wait_edge_totals(bridge, admin, "alpha")
            alpha_pages = [p for peer, p in pages.items() if peer.startswith("alpha-")]
            self.assertEqual(alpha["peers"], STREAMS["alpha"])
            self.assertEqual(alpha["renditions"], [{"rendition": RENDITION, "peers": STREAMS["alpha"]}])
            self.assertEqual(alpha["joins"], STREAMS["alpha"])
            # Both sources carried bytes, and the edge's ratio is theirs.
            self.assertGreater(alpha["p2pBytes"], 0, "no segment came from a peer")
            self.assertGreater(alpha["cdnBytes"], 0)
            self.assertAlmostEqual(alpha["offloadRatio"], alpha["p2pBytes"] / (alpha["p2pBytes"] + alpha["cdnBytes"]),
                                   places=6)
            # Each channel is counted once, by its offerer; every offer
            # followed a proposal.
            channels = sum(len(p["opened"]) for p in alpha_pages) // 2
            self.assertEqual(alpha["connectedProposals"], channels)
            self.assertGreaterEqual(alpha["proposals"], alpha["connectedProposals"])
            self.assertGreaterEqual(alpha["signals"], 3 * channels)  # offer, answer, and candidates at least

            # The operator page showed what /api/streams and /metrics said.
            operator = bridge.operator_page([{"edgeId": e.edge_id, "port": e.admin_port} for e in edges], "alpha",
                                            self.screenshot)
            self.assertEqual(operator["mismatches"], [], json.dumps(operator, indent=1))
            self.assertGreater(os.path.getsize(self.screenshot), 10000)

            # A closed page stops being proposed.
            departure = self.check_departure(ingress, bridge, "alpha")
        print(f"\nmesh: alpha p2p {alpha['p2pBytes']} B, cdn {alpha['cdnBytes']} B, {channels} channels; "
              f"departure seen after {departure['s']:.2f} s")


class BrowserToolsAreThere(unittest.TestCase):
    """The set-up installs the browser: a missing piece is a failure with the
    reason, never a skip."""

    def test_browser_tools_installed(self):
        self.assertTrue(os.access(CHROMIUM, os.X_OK), "chromium is missing: ./install-deps.sh installs it")
        self.assertTrue(os.access(NODE, os.X_OK), "node is missing")
        self.assertTrue(os.path.isfile(os.path.join(BROWSER_DIR, "node_modules", "playwright-core", "package.json")),
                        "playwright-core is missing: npm ci --prefix tests/browser (run by install-deps.sh)")


if __name__ == "__main__":
    unittest.main()
