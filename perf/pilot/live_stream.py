"""A live HLS stream on disk for the pilot: Debian's ffmpeg encodes a test
pattern with a tone (H.264 + AAC) into a ladder of fMP4/CMAF renditions
(root/live/<name>/index.m3u8 plus root/live/master.m3u8), and mf-sign
--watch signs every media playlist as ffmpeg rewrites it. Both stop by
themselves: ffmpeg after `max_seconds`, mf-sign on SIGTERM (and both on the
harness's own deadline, see perf/offload)."""

import base64
import glob
import json
import os
import time

from edge_process import ManagedProcess
from sdk_pages import FFMPEG, mf_sign_binary

# (name, size, video bitrate): below hls.js's first bandwidth estimate
# (500 kbit/s x 0.7 with audio) at the top, so every viewer starts and stays
# on the same rendition on an unconstrained link, as one swarm.
LADDER = [("r180p", "320x180", "100k"), ("r360p", "640x360", "250k"), ("r540p", "960x540", "600k"),
          ("r720p", "1280x720", "1200k")]
AUDIO_BITRATE = "48k"


def ffmpeg_argv(root, renditions, segment_s, window, max_seconds):
    ladder = LADDER[:renditions]
    split = f"[0:v]split={len(ladder)}" + "".join(f"[s{i}]" for i in range(len(ladder)))
    scales = ";".join(f"[s{i}]scale={size.replace('x', ':')}[v{i}]" for i, (_, size, _) in enumerate(ladder))
    argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(max_seconds), "-filter_complex", f"{split};{scales}"]
    for i in range(len(ladder)):
        argv += ["-map", f"[v{i}]"]
    for i in range(len(ladder)):
        argv += ["-map", "1:a"]
    gop = str(int(25 * segment_s))
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
             "-g", gop, "-keyint_min", gop, "-sc_threshold", "0"]
    for i, (_, _, rate) in enumerate(ladder):
        argv += [f"-b:v:{i}", rate, f"-maxrate:v:{i}", rate, f"-bufsize:v:{i}", rate]
    argv += ["-c:a", "aac", "-b:a", AUDIO_BITRATE,
             "-f", "hls", "-hls_time", str(segment_s), "-hls_list_size", str(window),
             "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments+delete_segments",
             "-master_pl_name", "master.m3u8",
             "-var_stream_map", " ".join(f"v:{i},a:{i},name:{name}" for i, (name, _, _) in enumerate(ladder)),
             "-hls_fmp4_init_filename", "init.mp4",
             "-hls_segment_filename", os.path.join(root, "live", "%v", "seg%05d.m4s"),
             os.path.join(root, "live", "%v", "index.m3u8")]
    return argv


class Packager(ManagedProcess):
    name = "ffmpeg"

    def __init__(self, argv):
        super().__init__(expect_clean_exit=False)
        self._argv = argv

    def start(self):
        self._spawn(self._argv, "ffmpeg-")
        return self


class Signer(ManagedProcess):
    name = "mf-sign"

    def __init__(self, argv):
        super().__init__(stop_timeout=5.0)
        self._argv = argv

    def start(self):
        self._spawn(self._argv, "mf-sign-")
        return self


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LiveStream:
    """Use as a `with` block: ffmpeg and mf-sign run inside it."""

    def __init__(self, root, key_path, stream_id, renditions=2, segment_s=2, window=8, cmaf_chunks=True,
                 max_seconds=3600):
        self.root, self.stream_id = root, stream_id
        self.renditions = [name for name, _, _ in LADDER[:renditions]]
        self.segment_s, self.window = segment_s, window
        for name in self.renditions:
            os.makedirs(os.path.join(root, "live", name), exist_ok=True)
        self.packager = Packager(ffmpeg_argv(root, renditions, segment_s, window, max_seconds))
        sign = [mf_sign_binary(), "--key", key_path, "--dir", os.path.join(root, "live"), "--stream", stream_id,
                "--watch", "--log-level", "warning"]
        self.signer = Signer(sign + (["--cmaf-chunks"] if cmaf_chunks else []))
        # {rendition: {sn: sha256 hex}} of every segment any manifest signed.
        self.signed = {name: {} for name in self.renditions}
        self.signed_init = {name: set() for name in self.renditions}
        # {"/live/<rendition>/<file>": "<rendition>/<sn>"} of every segment any
        # manifest signed: the key under which the players record an append.
        self.fragment_of_path = {}

    def __enter__(self):
        self.signer.start()
        self.packager.start()
        return self

    def __exit__(self, *exc):
        self.packager.kill()
        self.signer.__exit__(*exc)
        return False

    def poll_manifests(self):
        """Adds what the current manifests sign to self.signed."""
        for name in self.renditions:
            for path in glob.glob(os.path.join(self.root, "live", name, "*.m3u8.mfsig")):
                try:
                    with open(path) as f:
                        payload = json.loads(b64url_decode(f.read().strip().split(".")[1]))
                except (OSError, ValueError, IndexError):
                    continue  # replaced while read: the next poll gets it
                for s in payload.get("segments", []):
                    self.signed[name][s["sn"]] = b64url_decode(s["sha256"]).hex()
                    self.fragment_of_path[f"/live/{name}/{s['uri']}"] = f"{name}/{s['sn']}"
                if payload.get("init"):
                    self.signed_init[name].add(b64url_decode(payload["init"]["sha256"]).hex())

    def wait_ready(self, segments=3, timeout=60.0):
        """Until every rendition's manifest signs `segments` segments."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.packager.alive():
                raise RuntimeError(f"ffmpeg exited: {self.packager.stderr_tail()}")
            if not self.signer.alive():
                raise RuntimeError(f"mf-sign exited: {self.signer.stderr_tail()}")
            self.poll_manifests()
            if all(len(self.signed[n]) >= segments for n in self.renditions):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the live stream was not signed within {timeout} s: {self.packager.stderr_tail()} "
                           f"{self.signer.stderr_tail()}")
