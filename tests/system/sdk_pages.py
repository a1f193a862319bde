"""Viewers in Debian's chromium for the SDK's browser tests and the offload
pilot (perf/offload): the files a player page needs on the origin, the
signing key, and the bridge to tests/browser/run-sdk-pages.mjs (playwright-
core; one browser context per viewer, each page sdk-player.html playing
with real hls.js and @meshedflow/sdk's loader)."""

import json
import os
import shutil
import subprocess
import time

from edge_process import build_dir, run_dir

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
