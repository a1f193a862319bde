"""Viewers in Debian's chromium for the SDK's browser tests and the offload
pilot (perf/offload): the files a player page needs on the origin, the
signing key, and the bridge to tests/browser/run-sdk-pages.mjs (playwright-
core; one browser context per viewer, each page sdk-player.html playing
with real hls.js and @meshedflow/sdk's loader)."""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time

import websockets

from edge_process import EXPECT_TIMEOUT_S, SUBPROTOCOL, build_dir, run_dir, wait_until
from ingress_process import trust_context

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BROWSER_DIR = os.path.join(REPO, "tests", "browser")
SDK_DIR = os.path.join(REPO, "sdk")
NODE = "/usr/bin/node"
FFMPEG = "/usr/bin/ffmpeg"
CHROMIUM = "/usr/bin/chromium"
NGINX = "/usr/sbin/nginx"
# hls.js versions the page can load, by the module's path on the origin.
HLS = {"1.7": "/lib/hls-1.7.mjs", "1.5": "/lib/hls-1.5.mjs"}


def mf_sign_binary():
    return os.path.join(build_dir(), "origin", "mf-sign")


def missing_prerequisites():
    """What the browser tests need and is not installed or built (empty when all is there)."""
    return [p for p in (NODE, FFMPEG, CHROMIUM, NGINX, mf_sign_binary(),
                        os.path.join(SDK_DIR, "node_modules", "hls-1.5"),
                        os.path.join(BROWSER_DIR, "node_modules", "playwright-core")) if not os.path.exists(p)]


def require_prerequisites():
    missing = missing_prerequisites()
    if missing:
        raise AssertionError(f"the SDK browser tests need {', '.join(missing)}: ./install-deps.sh installs them "
                             f"(npm ci in sdk/ and tests/browser/), meson builds mf-sign")


def build_sdk():
    """The SDK as a customer gets it: built from the sources into sdk/dist."""
    subprocess.run(["npm", "run", "build", "--prefix", SDK_DIR], check=True, timeout=180, stdout=subprocess.DEVNULL)


def sdk_version():
    with open(os.path.join(SDK_DIR, "package.json")) as f:
        return json.load(f)["version"]


def encode_vod(directory, renditions, segments):
    """A finished (VOD) HLS stream made by Debian's ffmpeg under `directory`:
    one folder per rendition ({name: ("WxH", "bitrate")}) holding
    index.m3u8, init.mp4 and one-second fMP4 segments seg000.m4s..., and a
    master.m3u8 listing the renditions."""
    master = ["#EXTM3U", "#EXT-X-VERSION:7"]
    for name, (size, rate) in renditions.items():
        os.makedirs(os.path.join(directory, name))
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                        "-i", f"testsrc2=size={size}:rate=25", "-t", str(segments), "-c:v", "libx264",
                        "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "25",
                        "-keyint_min", "25", "-sc_threshold", "0", "-b:v", rate, "-maxrate", rate, "-bufsize", rate,
                        "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
                        "-hls_fmp4_init_filename", "init.mp4",
                        "-hls_segment_filename", os.path.join(directory, name, "seg%03d.m4s"),
                        os.path.join(directory, name, "index.m3u8")], check=True, timeout=120)
        bandwidth = int(rate[:-1]) * 1000 * 12 // 10
        master += [f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={size},CODECS="avc1.42c01e"',
                   f"{name}/index.m3u8"]
    with open(os.path.join(directory, "master.m3u8"), "w") as f:
        f.write("\n".join(master) + "\n")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_vod(key, directory, stream, renditions):
    """mf-sign --cmaf-chunks over every media playlist under `directory` for
    `stream`; returns {rendition folder: {sn: sha256 hex}} from the signed
    manifests. mf-sign lists each moof+mdat of every segment (one per
    segment from this ffmpeg: hls.js 1.7 cannot parse the lone-styp first
    segment that ffmpeg 5.1's sub-segment fragments make): the SDK verifies
    chunks as they arrive."""
    subprocess.run([mf_sign_binary(), "--key", key, "--dir", directory, "--stream", stream, "--cmaf-chunks"],
                   check=True, timeout=60, capture_output=True)
    digests = {}
    for name in renditions:
        with open(os.path.join(directory, name, "index.m3u8.mfsig")) as f:
            payload = json.loads(b64url_decode(f.read().strip().split(".")[1]))
        digests[name] = {s["sn"]: b64url_decode(s["sha256"]).hex() for s in payload["segments"]}
        chunked = [s for s in payload["segments"] if s.get("chunks")]
        assert len(chunked) == len(payload["segments"]), f"mf-sign listed chunks for {len(chunked)} segments of {name}"
    return digests


def install_player(root):
    """Copies the test page, the built SDK and both hls.js versions under
    `root` (the origin's document root): /sdk-player.html, /lib/..."""
    os.makedirs(os.path.join(root, "lib"), exist_ok=True)
    shutil.copy(os.path.join(BROWSER_DIR, "sdk-player.html"), root)
    shutil.copy(os.path.join(SDK_DIR, "dist", "meshedflow.js"), os.path.join(root, "lib"))
    for version in HLS:
        shutil.copy(os.path.join(SDK_DIR, "node_modules", f"hls-{version}", "dist", "hls.mjs"),
                    os.path.join(root, "lib", f"hls-{version}.mjs"))


def new_signing_key(path):
    """mf-sign --generate-key at `path` (replaced if present): the player's JWK."""
    if os.path.exists(path):
        os.unlink(path)
    printed = subprocess.run([mf_sign_binary(), "--generate-key", path], check=True, timeout=30, capture_output=True,
                             text=True).stdout
    return json.loads(next(line for line in printed.splitlines() if line.startswith("{")))


class Bridge:
    """run-sdk-pages.mjs: one JSON command per line, one JSON answer per line
    (the commands are listed at the top of that file). It exits by itself
    after `deadline_s`."""

    def __init__(self, origin_url, deadline_s):
        self.stderr_path = os.path.join(run_dir(), f"run-sdk-pages-{time.monotonic_ns()}.stderr")
        self._stderr = open(self.stderr_path, "wb")
        config = {"originUrl": origin_url, "deadlineMs": int(deadline_s * 1000)}
        self.process = subprocess.Popen([NODE, os.path.join(BROWSER_DIR, "run-sdk-pages.mjs"), json.dumps(config)],
                                        cwd=BROWSER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr)

    def command(self, **command):
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"run-sdk-pages.mjs exited ({self.process.poll()}):\n{self.log()}")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise AssertionError(f"{command.get('cmd')} failed: {answer.get('error')}\n{self.log()}")
        return answer

    def open(self, viewer):
        self.open_all([viewer])

    def open_all(self, viewers, ramp_s=0.0):
        """Opens the viewers, viewer i starting at i * ramp_s / len(viewers)
        (concurrently with the others); returns once all play."""
        self.command(cmd="open", viewers=viewers, rampMs=int(ramp_s * 1000))

    def report(self):
        """{peerId: the page's report} (sdk-player.html's window.report())."""
        return self.command(cmd="report")["pages"]

    def operator_page(self, admins, stream_id, screenshot):
        """The operator page of the edge listing `stream_id` compared with its
        /api/streams and /metrics: {"edge", "attempts", "mismatches", "json",
        "shown"} (run-sdk-pages.mjs, checkOperatorPage); saves `screenshot`."""
        return self.command(cmd="operator", admins=admins, streamId=stream_id, screenshot=screenshot)["comparison"]

    def wait_pages(self, what, predicate, timeout, summary):
        """Polls report() until predicate(pages) holds; returns those pages.
        On timeout the AssertionError names `what`, summary(pages) of the last
        reports, and the driver's log."""
        last = {}

        def poll():
            last["pages"] = self.report()
            return last["pages"] if predicate(last["pages"]) else None

        return wait_until(poll, timeout, what=lambda: f"{what}: {json.dumps(summary(last.get('pages', {})))}\n{self.log()}",
                          interval=0.2)

    def close_viewer(self, peer_id):
        """Closes the viewer's browser context at once (as a closed tab: no goodbye)."""
        self.command(cmd="close", peerId=peer_id)

    def log(self):
        self._stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")[-6000:]

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write(b'{"cmd": "quit"}\n')
                self.process.stdin.flush()
                self.process.wait(20)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(5)
        self._stderr.close()


def watch_departure(ingress, bridge, stream, rendition, leaver, bound_s=EXPECT_TIMEOUT_S):
    """An independent client (python3-websockets, through the ingress) joins
    `stream` and asks for peers; the viewer `leaver` is closed (its browser
    context, as a closed tab: no goodbye); the client asks again every 50 ms
    until `leaver` is no longer proposed or `bound_s` (a bound against a
    hang, not a measure of speed) passed. Returns
    {"leaver", "before", "after", "s"}: the proposals before the close, the
    last ones, and the seconds from the close to them."""
    async def run():
        async with websockets.connect(ingress.ws_url(f"/ws?stream={stream}"), ssl=trust_context(),
                                      subprotocols=[SUBPROTOCOL], open_timeout=EXPECT_TIMEOUT_S) as ws:
            await ws.send(json.dumps({"type": "join", "streamId": stream, "rendition": rendition,
                                      "peerId": "departure-asker"}))
            joined = json.loads(await asyncio.wait_for(ws.recv(), EXPECT_TIMEOUT_S))
            if joined["type"] != "joined":
                raise AssertionError(f"the asker's join: {joined}")
            ids = iter(range(1, 1 << 30))

            async def ask():
                ref = f"np-{next(ids)}"
                await ws.send(json.dumps({"type": "need-peers", "id": ref, "count": 8}))
                while True:  # the players' offers to the asker come in between
                    m = json.loads(await asyncio.wait_for(ws.recv(), EXPECT_TIMEOUT_S))
                    if m["type"] == "peers" and m.get("ref") == ref:
                        return [p["peerId"] for p in m["peers"]]
                    if m["type"] == "error":
                        raise AssertionError(f"need-peers: {m}")

            before = await ask()
            bridge.close_viewer(leaver)
            closed_at = time.monotonic()
            after = before
            while leaver in after and time.monotonic() - closed_at < bound_s:
                await asyncio.sleep(0.05)
                after = await ask()
            return {"leaver": leaver, "before": before, "after": after, "s": time.monotonic() - closed_at}

    return asyncio.run(run())
