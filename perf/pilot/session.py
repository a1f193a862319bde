"""A pilot session: the live stream, then K runs against it (treatment and
control alternating when both are asked for), then report.json,
report.html and the origin's access log under the output directory."""

import json
import os
import platform
import subprocess
import time

from edge_process import run_dir
from sdk_pages import build_sdk, install_player, new_signing_key, require_prerequisites, sdk_version

from . import measure
from .live_stream import LiveStream
from .pilot_run import run_once
from .report_html import write_html


def version_of(argv, pick=lambda out: out.splitlines()[0] if out else ""):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return pick((r.stdout or r.stderr).strip())


def software_versions():
    from .system_helpers import REPO
    return {
        "meshedflow": version_of(["git", "-C", REPO, "describe", "--always", "--dirty"]),
        "sdk": sdk_version(),
        "ffmpeg": version_of(["/usr/bin/ffmpeg", "-version"]),
        "nginx": version_of(["/usr/sbin/nginx", "-v"]),
        "chromium": version_of(["/usr/bin/chromium", "--version"]),
        "node": version_of(["/usr/bin/node", "--version"]),
        "redis": version_of(["redis-server", "--version"]),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
    }


def modes_for(runs, control_only):
    """Whether run i is a control run: all of them with control_only, else
    treatment and control alternate, treatment first."""
    return [True] * runs if control_only else [i % 2 == 1 for i in range(runs)]


def run_session(configs, out_dir, stream_options, log=print):
    """configs: [pilot_run.RunConfig] in order. Returns the report dict."""
    require_prerequisites()
    os.makedirs(out_dir, exist_ok=True)
    build_sdk()
    root = os.path.join(run_dir(), "pilot-origin")
    os.makedirs(root, exist_ok=True)
    install_player(root)
    keys = [new_signing_key(os.path.join(run_dir(), "pilot-signing-key.pem"))]
    bound_s = sum(c.ramp_s + c.duration_s + 150 for c in configs) + 120
    load_before = os.getloadavg()
    # At the start: the tree the programs and the SDK were built from, not
    # what the checkout holds when a long session ends.
    software = software_versions()
    runs = []
    with LiveStream(root, os.path.join(run_dir(), "pilot-signing-key.pem"), configs[0].stream_id,
                    max_seconds=bound_s, **stream_options) as stream:
        log(f"live stream: {stream.renditions}, {stream.segment_s} s segments, window {stream.window}")
        stream.wait_ready(segments=3)
        for i, config in enumerate(configs):
            mode = "control" if config.control else "treatment"
            log(f"run {i + 1}/{len(configs)}: {mode}, {config.viewers} viewers, {config.duration_s} s")
            run_dir_out = os.path.join(out_dir, "runs", f"{i + 1:02d}-{mode}")
            report = run_once(config, stream, root, keys, run_dir_out, log=log)
            report["run"] = i + 1
            runs.append(report)
            log(f"  offload at the origin {fmt(report['offload_origin'])}, by the SDK {fmt(report['offload_sdk'])}, "
                f"at the origin once every viewer played {fmt(report['offload_origin_playing'])}; "
                f"stalls {report['stalls']} ({report['stall_ms']} ms), errors {report['playback_errors']}, "
                f"unverified {report['unverified_appended']}; warm offload min {fmt(report['warm_offload_min'])}, "
                f"over segments elected to others {fmt(report['warm_offload_not_elected_min'])}")
    # DIR/origin-access.log: every run's log, in run order.
    with open(os.path.join(out_dir, "origin-access.log"), "w") as out:
        for r in runs:
            mode = r["mode"]
            with open(os.path.join(out_dir, "runs", f"{r['run']:02d}-{mode}", "origin-access.log")) as f:
                out.write(f.read())
    by_mode = lambda m, key: [r[key] for r in runs if r["mode"] == m]
    summary = {m: {"runs": len(by_mode(m, "offload_origin")),
                   "offload_origin_median": measure.median(by_mode(m, "offload_origin")),
                   "offload_origin_min": min((v for v in by_mode(m, "offload_origin") if v is not None), default=None),
                   "stalls_total": sum(by_mode(m, "stalls")), "stall_ms_total": sum(by_mode(m, "stall_ms")),
                   "startup_ms_median": measure.median(by_mode(m, "startup_ms_median")),
                   "playback_errors": sum(by_mode(m, "playback_errors")),
                   "unverified_appended": sum(by_mode(m, "unverified_appended"))}
               for m in ("treatment", "control") if any(r["mode"] == m for r in runs)}
    report = {"formula": "offload_origin = 1 - origin_media_bytes / appended_bytes",
              "stream": {**stream_options, "rendition_names": stream.renditions},
              "software": software, "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "summary": summary, "runs": runs}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    write_html(report, os.path.join(out_dir, "report.html"))
    return report


def fmt(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"
