"""p2p-media-loader players on mf-edge's tracker (docs/tracker.md, "Switching
a p2p-media-loader deployment"): a live HLS stream made by Debian's ffmpeg
(the pilot's, perf/pilot/live_stream.py) served by Debian's nginx, played in
Debian's chromium (playwright-core, tests/browser/run-p2pml-pages.mjs) by 3
pages, each with hls.js and p2p-media-loader-hlsjs 2.3.1 from npm (bundled
with esbuild) whose `announceTrackers` is wss://.../announce on mf-ingress in
front of an edge. The pages find each other through the edge and at least
two of them receive segment bytes over P2P. Waits are for that event,
bounded by the run's deadline."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from edge_process import UNLIMITED_SOURCE, edge_config_file, run_dir
from ingress_process import ingress_with_edges
from nginx_process import OriginServer
from sdk_pages import BROWSER_DIR, NODE, new_signing_key, require_prerequisites

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "perf"))
from pilot.live_stream import LiveStream  # noqa: E402

ESBUILD = os.path.join(os.path.dirname(BROWSER_DIR), "..", "sdk", "node_modules", ".bin", "esbuild")
PAGES = 3
P2P_PAGES = 2
RUN_DEADLINE_S = 150


class P2pMediaLoaderOnTheEdge(unittest.TestCase):
    def test_three_players_share_segments_through_the_edges_tracker(self):
        require_prerequisites()
        for package in ("p2p-media-loader-hlsjs", "p2p-media-loader-core", "hls.js"):
            self.assertTrue(os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", package)),
                            f"tests/browser/node_modules/{package} is missing: ./install-deps.sh runs npm ci there")
        root = tempfile.mkdtemp(prefix="p2pml-origin-", dir=run_dir())
        built = subprocess.run([ESBUILD, "p2pml-entry.js", "--bundle", "--format=iife", "--platform=browser",
                                "--define:process.browser=true", f"--outfile={os.path.join(root, 'p2pml-bundle.js')}",
                                "--log-level=warning"], cwd=BROWSER_DIR, capture_output=True, timeout=120)
        self.assertEqual(built.returncode, 0, built.stderr.decode(errors="replace"))
        shutil.copy(os.path.join(BROWSER_DIR, "p2pml-player.html"), root)
        key = os.path.join(root, "signing-key.pem")
        new_signing_key(key)
        with LiveStream(root, key, "p2pml-stream", renditions=1, segment_s=2, window=8, cmaf_chunks=False,
                        max_seconds=RUN_DEADLINE_S + 60) as stream, OriginServer(root) as origin, \
                ingress_with_edges(1, edge_args=["--config", edge_config_file(limits=UNLIMITED_SOURCE)]) as (ingress,
                                                                                                             edges):
            stream.wait_ready(segments=3)
            config = {"origin": origin.url, "tracker": ingress.ws_url("/announce"), "src": "live/master.m3u8",
                      "pages": PAGES, "p2pPages": P2P_PAGES, "deadlineMs": RUN_DEADLINE_S * 1000}
            try:
                result = subprocess.run([NODE, os.path.join(BROWSER_DIR, "run-p2pml-pages.mjs"), json.dumps(config)],
                                        cwd=BROWSER_DIR, capture_output=True, timeout=RUN_DEADLINE_S + 20)
            except subprocess.TimeoutExpired as error:
                self.fail(f"run-p2pml-pages.mjs hung past its deadline:\n{(error.stderr or b'').decode(errors='replace')}")
            log = result.stderr.decode(errors="replace")
            self.assertEqual(result.returncode, 0, log)
            pages = json.loads(result.stdout.decode().strip().splitlines()[-1])["pages"]
            offers = edges[0].metric("mf_edge_tracker_offers_relayed_total")
            answers = edges[0].metric("mf_edge_tracker_answers_relayed_total")
        for i, page in enumerate(pages):
            self.assertEqual(page["errors"], [], f"page {i}: {page}\n{log}")
        with_p2p = [page for page in pages if page["bytes"]["p2p"] > 0]
        self.assertGreaterEqual(len(with_p2p), P2P_PAGES, f"{pages}\n{log}")
        self.assertGreaterEqual(offers, 1)
        self.assertGreaterEqual(answers, 1)
        print(f"\np2p-media-loader: {len(pages)} pages, P2P bytes {[p['bytes']['p2p'] for p in pages]}, "
              f"HTTP bytes {[p['bytes']['http'] for p in pages]}, segments over P2P "
              f"{[p['segments']['p2p'] for p in pages]}; the edge relayed {offers:.0f} offers and {answers:.0f} answers",
              flush=True)


if __name__ == "__main__":
    unittest.main()
