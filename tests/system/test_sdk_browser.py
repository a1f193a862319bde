"""The player SDK end to end (docs/sdk.md): Debian's chromium, driven by
playwright-core (tests/browser/run-sdk-pages.mjs), opens viewers that play
an HLS stream made by Debian's ffmpeg and signed by mf-sign, served by
Debian's nginx as the origin, with real hls.js (1.5 and 1.7, from the SDK's
lock file) and @meshedflow/sdk's loader; the viewers' signaling goes through
mf-ingress to two mf-edge processes sharing a real redis-server.

What the tests observe comes from the pages (hls.js events, the SHA-256 of
every fragment hls.js loaded, the SDK's stats and events) and from nginx's
access log (which segments the origin served, and which byte ranges). They
wait for the events that prove an effect, never for a fixed time.
"""

import json
import os
import shutil
import signal
import time
import unittest

from edge_process import UNLIMITED_SOURCE, edge_config_file, run_dir, write_run_file
from ingress_process import ingress_with_edges
from nginx_process import OriginServer
from redis_process import RedisServer
from sdk_pages import HLS, Bridge, build_sdk, encode_vod, install_player, new_signing_key, require_prerequisites, \
    sign_vod, watch_departure

STREAM = "pilot-stream"
SEGMENTS = 30            # 1 s each
# Bitrates far below what loopback carries even on a loaded machine, the top
# one within hls.js's default first estimate (500 kbit/s x 0.7): plain hls.js
# settles on r360p, and the mesh's stats must not talk its ABR down (on a
# loaded 2-core machine plain hls.js itself sometimes stayed on a lower level
# when the top rendition asked for more than its first estimate). Three
# renditions: with two, hls.js's abandon rules (the abr controller's
# _abandonRulesCheck in hls.js 1.5 and 1.7) have no level between the one
# loading and the lowest to switch to, and never abort a load.
RENDITIONS = {"r180p": ("320x180", "100k"), "r270p": ("480x270", "175k"), "r360p": ("640x360", "250k")}
BRIDGE_DEADLINE_S = 150


def make_origin_root():
    """The origin's files (made once per run): the stream in two renditions
    with a master playlist under live/, each media playlist signed by
    mf-sign, the test page, the SDK's built module and both hls.js versions.
    Returns (root, manifestKeys, {rendition: {sn: sha256 hex}})."""
    root = os.path.join(run_dir(), "sdk-origin")
    if os.path.isdir(root):
        shutil.rmtree(root)
    encode_vod(os.path.join(root, "live"), RENDITIONS, SEGMENTS)
    # mf-sign: a new key (it prints the player's JWK, with its default kid),
    # then every media playlist under live/ signed.
    key = os.path.join(run_dir(), "sdk-signing-key.pem")
    jwk = new_signing_key(key)
    digests = sign_vod(key, os.path.join(root, "live"), STREAM, RENDITIONS)
    install_player(root)
    return root, [jwk], digests


class SdkInBrowsers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_prerequisites()
        build_sdk()
        cls.root, cls.keys, cls.digests = make_origin_root()

    def setUp(self):
        self.redis = RedisServer().start()
        self.addCleanup(self.redis.close)
        self.policy_path = write_run_file("sdk-policy.json", json.dumps({"defaults": {"maxPeers": 8}}))
        self.remote_config_path = os.path.join(self.root, "meshedflow-routing.json")
        with open(self.remote_config_path, "w") as f:
            json.dump({"defaults": {}}, f)
        edge_args = ["--config", edge_config_file(limits=UNLIMITED_SOURCE), "--policy", self.policy_path,
                     "--valkey", self.redis.address, "--valkey-ttl-ms", "3000"]
        self.cluster = ingress_with_edges(2, edge_args=edge_args, settings={"balance": {"mode": "least-connections"}})
        self.ingress, self.edges = self.cluster.__enter__()
        self.addCleanup(self.cluster.__exit__, None, None, None)
        self.origin = OriginServer(self.root).start()
        self.addCleanup(self.origin.kill)
        self.bridge = Bridge(self.origin.url, BRIDGE_DEADLINE_S)
        self.addCleanup(self.bridge.close)

    # ---- helpers ----

    def open(self, peer_id, hls="1.7", src="live/r360p/index.m3u8", **extra):
        viewer = {"peerId": peer_id, "wsUrl": self.ingress.ws_url(), "streamId": STREAM, "manifestKeys": self.keys,
                  "hlsModule": HLS[hls], "src": f"{self.origin.url}/{src}",
                  "remoteConfigUrl": "/meshedflow-routing.json", **extra}
        self.bridge.open(viewer)

    def report(self):
        return self.bridge.report()

    def wait_pages(self, what, predicate, timeout=60.0):
        """Polls the pages' reports until predicate(pages) holds; returns them."""
        return self.bridge.wait_pages(what, predicate, timeout, lambda pages: {
            p: {"buffered": len(r["buffered"]), "t": r["currentTime"], "errors": r["errors"][:5], "nerrors": len(r["errors"]),
                "stats": r["stats"], "peerOpens": r["peerOpens"], "events": r["coreEvents"][:20]} for p, r in pages.items()})

    def segment_requests(self):
        return [r for r in self.origin.requests() if r[1].endswith(".m4s")]

    def assert_plays_verified(self, peer_id, page):
        """No fatal hls.js error, the video advanced, and every fragment that
        reached the buffer has the manifest's SHA-256."""
        fatal = [e for e in page["errors"] if e["fatal"]]
        self.assertEqual(fatal, [], f"{peer_id}: fatal playback errors")
        self.assertGreater(page["currentTime"], 1.0, f"{peer_id} did not play")
        for key in set(page["buffered"]):
            rendition, sn = key.split("/")
            self.assertIn(key, page["digests"], f"{peer_id}: no digest for buffered {key}")
            self.assertEqual(page["digests"][key], self.digests[rendition][int(sn)],
                             f"{peer_id}: buffered {key} differs from the manifest")

    @staticmethod
    def buffered_at_least(n, peers=None):
        return lambda pages: all(len(set(r["buffered"])) >= n and r["currentTime"] > 1.0
                                 for p, r in pages.items() if peers is None or p in peers)

    # ---- tests ----

    def test_four_viewers_share_verified_segments_with_hls_1_5_and_1_7(self):
        viewers = {"viewer-a": "1.7", "viewer-b": "1.5", "viewer-c": "1.7", "viewer-d": "1.5"}
        for peer_id, version in viewers.items():
            self.open(peer_id, hls=version)
        pages = self.wait_pages("every viewer to buffer 12 segments", self.buffered_at_least(12), timeout=90)
        requests = self.segment_requests()
        buffered = sum(len(set(r["buffered"])) for r in pages.values())
        for peer_id, page in pages.items():
            with self.subTest(viewer=peer_id):
                self.assertEqual(page["hlsVersion"][:3], viewers[peer_id])
                self.assert_plays_verified(peer_id, page)
                self.assertEqual(page["banned"], [])
        p2p = sum(r["stats"]["p2pBytes"] for r in pages.values())
        http = sum(r["stats"]["httpBytes"] for r in pages.values())
        self.assertGreater(p2p, 0, "no segment came from a peer")
        self.assertLess(len(requests), buffered,
                        f"the origin served {len(requests)} segment requests for {buffered} buffered "
                        f"(viewers x segments): peers delivered nothing")
        # Printed for the record (the figures in the report).
        print(f"\nsdk: {len(requests)} origin segment requests for {buffered} segments buffered by "
              f"{len(pages)} viewers; p2p {p2p} B, http {http} B, offload {p2p / max(1, p2p + http):.2f}")
        joined_edges = {p["joined"]["edge"] for p in pages.values() if p["joined"]}
        self.assertEqual(len(joined_edges), 2, f"least connections should spread viewers over both edges: {joined_edges}")
        # Presence shared through redis: viewers on different edges found
        # each other and opened data channels (seen opening on both sides).
        edge_of = {p: r["joined"]["edge"] for p, r in pages.items()}
        across = [(p, o["peerId"]) for p, r in pages.items() for o in r["opened"] if edge_of[o["peerId"]] != edge_of[p]]
        self.assertTrue(across, f"no data channel between viewers on different edges: {edge_of}")
        for peer_id, page in pages.items():
            for o in page["opened"]:
                self.assertIn({"peerId": peer_id, "offerer": not o["offerer"]}, pages[o["peerId"]]["opened"], peer_id)
        # A viewer that closes stops being proposed, on both edges.
        departure = watch_departure(self.ingress, self.bridge, STREAM, "r360p:index", "viewer-d")
        self.assertIn("viewer-d", departure["before"], departure)
        self.assertNotIn("viewer-d", departure["after"], f"still proposed {departure['s']:.1f} s after it closed: {departure}")

    def test_a_lying_viewer_corrupts_nobody(self):
        """A viewer whose uploads are corrupted (test switch): every honest
        viewer's buffered segments still match the manifest, the liar is
        banned by those it lied to, and nobody honest is."""
        self.open("viewer-liar", testHooks={"corruptUploads": True})
        honest = ["viewer-h1", "viewer-h2", "viewer-h3"]
        for peer_id in honest:
            self.open(peer_id)
        pages = self.wait_pages(
            "the honest viewers to buffer 12 segments and ban the liar",
            lambda pages: self.buffered_at_least(12, honest)(pages) and
            any(b["peerId"] == "viewer-liar" for p in honest for b in pages[p]["banned"]), timeout=90)
        for peer_id in honest:
            with self.subTest(viewer=peer_id):
                page = pages[peer_id]
                self.assert_plays_verified(peer_id, page)
                self.assertEqual([b for b in page["banned"] if b["peerId"] != "viewer-liar"], [])
                self.assertTrue(all(s["verified"] for s in page["segments"] if s["source"] != "http"), page["segments"])
        victims = [p for p in honest if pages[p]["banned"]]
        self.assertTrue(all(pages[p]["stats"]["failedSegments"] >= 1 for p in victims))
        print(f"\nsdk: the liar was banned by {len(victims)} of {len(honest)} honest viewers")

    def test_a_peer_leaving_mid_segment_is_completed_with_a_range_request(self):
        """A viewer leaves the mesh after sending the first 16 KiB of a
        segment (test switch): its receiver completes the segment with an
        HTTP Range request for exactly the missing bytes, and plays on."""
        self.open("viewer-leaver", testHooks={"leaveAfterUploadBytes": 16384})
        stayers = ["viewer-s1", "viewer-s2"]
        for peer_id in stayers:
            self.open(peer_id)
        pages = self.wait_pages(
            "a range rescue, and the viewers to buffer 12 segments",
            lambda pages: self.buffered_at_least(12, stayers)(pages) and
            any(pages[p]["rescues"] for p in stayers), timeout=90)
        ranged = [r for r in self.segment_requests() if r[3] is not None]
        rescues = [(p, r) for p in stayers for r in pages[p]["rescues"]]
        for peer_id, rescue in rescues:
            header = f"bytes={rescue['start']}-{rescue['end'] - 1}"
            path = f"/live/{rescue['rendition'].split(':')[0]}/seg{rescue['sn']:03d}.m4s"
            self.assertIn(("GET", path, 206, header), [r[:4] for r in ranged], f"{peer_id}: {rescue} not in {ranged}")
            self.assertEqual(rescue["start"] % 16384, 0, rescue)
        for peer_id in stayers:
            with self.subTest(viewer=peer_id):
                self.assert_plays_verified(peer_id, pages[peer_id])
                stalls = [e for e in pages[peer_id]["errors"] if e["details"] == "bufferStalledError"]
                self.assertEqual(stalls, [], f"{peer_id} stalled")
        print(f"\nsdk: {len(rescues)} range rescues: {[r for _, r in rescues]}")

    def test_kill_switch_and_sighup_stop_peer_traffic_and_playback_goes_on(self):
        viewers = ["viewer-k1", "viewer-k2", "viewer-k3"]
        for peer_id in viewers:
            self.open(peer_id, maxBufferLength=3)
        self.wait_pages("the mesh to carry segments",
                        lambda pages: all(r["stats"]["peers"] for r in pages.values()) and
                        sum(r["stats"]["p2pBytes"] for r in pages.values()) > 0, timeout=60)
        with open(self.policy_path, "w") as f:
            json.dump({"defaults": {"meshEnabled": False}}, f)
        started = time.monotonic()
        for edge in self.edges:
            edge.send_signal(signal.SIGHUP)
        pages = self.wait_pages("every page to drop its peers",
                                lambda pages: all(not r["stats"]["peers"] and not r["stats"]["policy"]["meshEnabled"]
                                                  for r in pages.values()), timeout=10)
        took = time.monotonic() - started
        p2p = {p: r["stats"]["p2pBytes"] for p, r in pages.items()}
        buffered = {p: len(set(r["buffered"])) for p, r in pages.items()}
        pages = self.wait_pages("playback to go on from the CDN",
                                lambda pages: all(len(set(r["buffered"])) >= buffered[p] + 3 for p, r in pages.items()),
                                timeout=60)
        for peer_id, page in pages.items():
            with self.subTest(viewer=peer_id):
                self.assert_plays_verified(peer_id, page)
                self.assertEqual(page["stats"]["p2pBytes"], p2p[peer_id], "peer bytes after the kill switch")
                self.assertEqual(page["stats"]["peers"], [])
        # The figure, observed through polling three pages (an upper bound);
        # the wait's timeout above is the hang bound.
        print(f"\nsdk: kill switch: every page without peers {took:.2f} s after SIGHUP")

    def test_abr_picks_the_same_rendition_with_and_without_the_mesh(self):
        """On an unconstrained link hls.js's ABR, 1.5 and 1.7 alike, settles on
        the same rendition with the SDK's loader (meshed viewers, which get
        fragments from peers) as with hls.js alone on the same stream; the
        stats of the fragments peers delivered are whole (hls.js's abandon
        rules read them while a load runs), and hls.js never abandoned a
        load of a meshed viewer (FRAG_LOAD_EMERGENCY_ABORTED, its emergency
        switch down), nor switched down right after a fragment the mesh
        served."""
        versions = {"1.5": ("abr15-plain", "abr15-mesh-1", "abr15-mesh-2"),
                    "1.7": ("abr17-plain", "abr17-mesh-1", "abr17-mesh-2")}
        for version, (plain, *meshed) in versions.items():
            self.open(plain, hls=version, src="live/master.m3u8", plain=True, maxBufferLength=6)
            for peer_id in meshed:
                self.open(peer_id, hls=version, src="live/master.m3u8", maxBufferLength=6)

        def from_mesh(page):
            """The fragments the core served other than by its own HTTP load:
            from a peer, or from its store (prefetched)."""
            return [s for s in page["segments"] if s["source"] != "http"]

        def loading(page):
            """The rendition hls.js's ABR chose last: that of the last
            fragment it loaded (what plays switches later)."""
            return page["abr"][-1]["key"].split("/")[0] if page["abr"] else None

        # A slow first load on a loaded machine makes any hls.js start low and
        # climb back; the wait is for every viewer to have settled (a hang
        # bound, not a measure), then the choices are compared.
        pages = self.wait_pages("every viewer to buffer 12 segments, peers to deliver to the meshed viewers of both "
                                "versions, and the meshed viewers to load the rendition plain hls.js loads",
                                lambda pages: self.buffered_at_least(12)(pages) and
                                all(sum(pages[p]["stats"]["p2pBytes"] for p in meshed) > 0 and
                                    all(loading(pages[p]) == loading(pages[plain]) for p in meshed)
                                    for plain, *meshed in versions.values()),
                                timeout=120)
        rank = {name: i for i, name in enumerate(RENDITIONS)}

        def down_after_mesh(page):
            """Switches down decided right after a fragment the mesh served:
            (that fragment, the next one buffered, at a lower rendition). On a
            loaded machine plain hls.js itself sometimes switches down after a
            slow HTTP load; after a mesh-served one it must not."""
            source = {f"{s['rendition'].split(':')[0]}/{s['sn']}": s["source"] for s in page["segments"]}
            keys = [a["key"] for a in page["abr"]]
            return [(a, b) for a, b in zip(keys, keys[1:])
                    if rank[b.split("/")[0]] < rank[a.split("/")[0]] and source.get(a, "http") != "http"]

        for version, (plain, *meshed) in versions.items():
            chosen = [loading(pages[plain])]
            self.assertTrue(chosen[0], f"plain hls.js {version} never loaded a fragment")
            for peer_id in meshed:
                with self.subTest(viewer=peer_id):
                    page = pages[peer_id]
                    self.assertEqual(page["hlsVersion"][:3], version)
                    self.assert_plays_verified(peer_id, page)
                    why = (f"{peer_id} chose {page['levels']}, plain hls.js {version} {chosen}; {peer_id}: {page['abr']} "
                           f"{page['segments']}; plain: {pages[plain]['abr']}")
                    self.assertEqual(page["emergencyAborts"], [], f"hls.js abandoned loads of {peer_id}: {why}")
                    self.assertEqual([loading(page)], chosen, why)
                    self.assertEqual(down_after_mesh(page), [], why)
                    # What hls.js read for every fragment the mesh served: the
                    # whole size from the first byte on, times in order.
                    for segment in from_mesh(page):
                        key = f"{segment['rendition'].split(':')[0]}/{segment['sn']}"
                        stats = page["fragStats"].get(key)
                        self.assertIsNotNone(stats, f"{peer_id}: no stats for {key}")
                        self.assertEqual((stats["loaded"], stats["total"]), (stats["bytes"], stats["bytes"]), key)
                        self.assertLessEqual(stats["start"], stats["first"], key)
                        self.assertLessEqual(stats["first"], stats["end"], key)
            top = [s for p in meshed for s in from_mesh(pages[p]) if s["rendition"].split(":")[0] == chosen[-1]]
            self.assertTrue(top, f"the mesh served no fragment of {chosen[-1]} to the hls.js {version} viewers")
        print("\nsdk: ABR: " + "; ".join(
            f"hls.js {v}: plain {pages[plain]['levels']} ({len(pages[plain]['emergencyAborts'])} abandoned), meshed "
            f"{[pages[p]['levels'] for p in meshed]} ({[len(pages[p]['emergencyAborts']) for p in meshed]} abandoned), fragments from the mesh "
            f"{sum(len(from_mesh(pages[p])) for p in meshed)}" for v, (plain, *meshed) in versions.items()))


if __name__ == "__main__":
    unittest.main()
