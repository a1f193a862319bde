"""One pilot run (docs/pilot.md): on loopback, redis-server, two mf-edge
behind mf-ingress, nginx serving the live stream, and N viewers in Chromium
joining over a ramp and playing; the faults asked for; then everything
stopped and the run's figures computed (pilot/measure.py)."""

import contextlib
import json
import os
import shutil
import signal
import time

from edge_process import UNLIMITED_SOURCE, admin_get, edge_config_file, parse_prometheus, write_run_file
from ingress_process import ingress_with_edges
from nginx_process import OriginServer
from redis_process import RedisServer
from sdk_pages import HLS, Bridge

from . import measure

CLK_TCK = os.sysconf("SC_CLK_TCK")


class RunConfig:
    """What one run does; perf/offload's flags, one for one."""

    def __init__(self, viewers=4, duration_s=60, ramp_s=4.0, control=False, rarest_first=True,
                 cmaf_mode="advertise-only", hls="1.7", max_peers=8, lying_viewer=False, leaving_viewer=False,
                 kill_switch_at_s=None, kill_edge_at_s=None, stream_id="pilot-stream"):
        self.viewers, self.duration_s, self.ramp_s, self.control = viewers, duration_s, ramp_s, control
        self.rarest_first, self.cmaf_mode, self.hls, self.max_peers = rarest_first, cmaf_mode, hls, max_peers
        self.lying_viewer, self.leaving_viewer = lying_viewer, leaving_viewer
        self.kill_switch_at_s, self.kill_edge_at_s = kill_switch_at_s, kill_edge_at_s
        self.stream_id = stream_id

    def as_dict(self):
        return dict(vars(self))


def process_usage(pid):
    """(cpu seconds so far, peak RSS in KiB) from /proc, or None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, hwm


def edge_messages(edge):
    """(received, sent) WebSocket messages from the edge's /metrics; None once it is gone."""
    try:
        samples, _ = parse_prometheus(admin_get(edge.admin_port, "/metrics").body.decode())
    except OSError:
        return None
    total = lambda name: sum(v for (n, _), v in samples.items() if n == name)
    return total("mf_edge_messages_received_total"), total("mf_edge_messages_sent_total")


class Usage:
    """CPU and peak RSS of the edges and the ingress over the run; an edge
    killed mid-run keeps its last reading."""

    def __init__(self, named_pids):
        self.named_pids = named_pids
        self.first = {name: process_usage(pid) for name, pid in named_pids.items()}
        self.last = dict(self.first)
        self.started = time.monotonic()

    def sample(self):
        for name, pid in self.named_pids.items():
            now = process_usage(pid)
            if now is not None:
                self.last[name] = now
        self.ended = time.monotonic()

    def summary(self):
        wall = max(1e-3, self.ended - self.started)
        return {name: {"cpu_percent": round(100 * (self.last[name][0] - self.first[name][0]) / wall, 1),
                       "peak_rss_kib": self.last[name][1]} for name in self.named_pids if self.first[name]}


def viewer_ids(config):
    """In joining order: a fault's viewer joins halfway through the ramp, so
    that it holds segments the viewers after it ask it for."""
    ids = [f"viewer-{i + 1:02d}" for i in range(config.viewers)]
    faults = (["viewer-liar"] if config.lying_viewer else []) + (["viewer-leaver"] if config.leaving_viewer else [])
    half = len(ids) // 2
    return ids[:half] + faults + ids[half:]


def run_once(config, stream, origin_root, keys, run_out_dir, log=print):
    """Runs one configuration against `stream` (a pilot.live_stream.LiveStream
    that is ready); writes run_out_dir/origin-access.log; returns the run's
    report (a dict, see docs/pilot.md, "report.json")."""
    os.makedirs(run_out_dir, exist_ok=True)
    policy = {"defaults": {"maxPeers": config.max_peers, **({"meshEnabled": False} if config.control else {})}}
    policy_path = write_run_file(f"pilot-policy-{time.monotonic_ns()}.json", json.dumps(policy))
    with open(os.path.join(origin_root, "meshedflow-routing.json"), "w") as f:
        json.dump({"defaults": {}}, f)
    edge_args = ["--config", edge_config_file(limits=UNLIMITED_SOURCE), "--policy", policy_path,
                 "--valkey", None, "--valkey-ttl-ms", "3000"]
    ids = viewer_ids(config)
    play_s = config.duration_s
    with contextlib.ExitStack() as stack:
        redis = RedisServer().start()
        stack.callback(redis.close)
        edge_args[5] = redis.address
        ingress, edges = stack.enter_context(ingress_with_edges(2, edge_args=edge_args,
                                                                settings={"balance": {"mode": "least-connections"}}))
        origin = OriginServer(origin_root).start()
        stack.callback(origin.kill)
        bridge = Bridge(origin.url, deadline_s=config.ramp_s + play_s + 180)
        stack.callback(bridge.close)
        usage = Usage({"ingress": ingress.process.pid, **{e.edge_id: e.process.pid for e in edges}})
        messages_before = [edge_messages(e) for e in edges]

        # Viewers join over the ramp; the run then plays for duration_s (opening
        # pages takes its own time on a loaded machine: it is not counted in it,
        # but what the viewers appended meanwhile is in the figures).
        start_ms = time.time() * 1000
        opening = time.monotonic()
        hooks = {"viewer-liar": {"corruptUploads": True}, "viewer-leaver": {"leaveAfterUploadBytes": 16384}}
        bridge.open_all([{"peerId": peer_id, "wsUrl": ingress.ws_url(), "streamId": config.stream_id,
                          "manifestKeys": keys, "hlsModule": HLS[config.hls], "src": f"{origin.url}/live/master.m3u8",
                          "remoteConfigUrl": "/meshedflow-routing.json", "testHooks": hooks.get(peer_id),
                          "maxBufferLength": 30, "rarestFirst": config.rarest_first, "cmafMode": config.cmaf_mode}
                         for peer_id in ids], config.ramp_s)
        log(f"  {len(ids)} viewers opened in {time.monotonic() - opening:.1f} s")
        started = time.monotonic()

        events = {}
        cut = None          # (unix ms, pages) where the measured window ends: the kill switch, or the end
        edge_killed = None
        while True:
            elapsed = time.monotonic() - started
            stream.poll_manifests()
            usage.sample()
            if config.kill_edge_at_s is not None and edge_killed is None and elapsed >= config.kill_edge_at_s:
                edge_killed = kill_edge(edges[0], bridge, events, log)
            if config.kill_switch_at_s is not None and cut is None and elapsed >= config.kill_switch_at_s:
                cut = push_kill_switch(policy_path, edges, bridge, events, log)
            if elapsed >= play_s:
                break
            time.sleep(min(1.0, play_s - elapsed))
        pages = bridge.report()
        # After the report: every byte the pages counted was served before this.
        end_ms = time.time() * 1000
        if edge_killed is not None:
            events["edge_kill"].update(edge_kill_outcome(edge_killed, pages))
        if cut is None:
            cut = (end_ms, pages)
        stream.poll_manifests()
        usage.sample()
        messages_after = [edge_messages(e) for e in edges]
        entries = origin.entries()
        shutil.copy(origin.access_log_path, os.path.join(run_out_dir, "origin-access.log"))
    return summarize(config, ids, pages, cut, entries, start_ms, end_ms, stream, usage,
                     messages_before, messages_after, events)


def push_kill_switch(policy_path, edges, bridge, events, log):
    """The operator's kill switch: meshEnabled false in the policy file, then
    SIGHUP to every edge. Returns the cut (unix ms, pages before the push);
    records in events how long until no page has a peer."""
    before = bridge.report()
    pushed_ms = time.time() * 1000
    with open(policy_path, "w") as f:
        json.dump({"defaults": {"meshEnabled": False}}, f)
    pushed = time.monotonic()
    for edge in edges:
        if edge.alive():
            edge.send_signal(signal.SIGHUP)
    deadline = pushed + 10
    while True:
        pages = bridge.report()
        if all(not r["stats"]["peers"] and not r["stats"]["policy"]["meshEnabled"] for r in pages.values()):
            took = time.monotonic() - pushed
            break
        if time.monotonic() > deadline:
            took = None
            break
        time.sleep(0.05)
    events["kill_switch"] = {"pushed_ms": pushed_ms, "peers_gone_s": took,
                             "p2p_bytes_at_peers_gone": {p: r["stats"]["p2pBytes"] for p, r in pages.items()}}
    log(f"  kill switch: every page without peers after {took} s (polled: an upper bound)")
    return pushed_ms, before


def kill_edge(edge, bridge, events, log):
    """SIGKILLs one edge; its viewers must rejoin through the ingress."""
    pages = bridge.report()
    on_it = [p for p, r in pages.items() if r["joined"] and r["joined"]["edge"] == edge.edge_id]
    edge.expect_clean_exit = False
    edge.process.kill()
    killed_ms = time.time() * 1000
    events["edge_kill"] = {"edge": edge.edge_id, "killed_ms": killed_ms, "viewers_on_it": on_it,
                           "joins_before": {p: r["joins"] for p, r in pages.items()},
                           "p2p_before": {p: r["stats"]["p2pBytes"] for p, r in pages.items()}}
    log(f"  edge {edge.edge_id} SIGKILLed with {len(on_it)} viewers on it")
    return events["edge_kill"]


def edge_kill_outcome(killed, pages):
    rejoined = [p for p in killed["viewers_on_it"] if pages[p]["joins"] > killed["joins_before"][p]]
    p2p_after = sum(r["stats"]["p2pBytes"] - killed["p2p_before"].get(p, 0) for p, r in pages.items())
    return {"rejoined": rejoined, "p2p_bytes_after_kill": p2p_after}


def role_of(peer_id):
    return {"viewer-liar": "liar", "viewer-leaver": "leaver"}.get(peer_id, "viewer")


def summarize(config, ids, pages, cut, entries, start_ms, end_ms, stream, usage, messages_before, messages_after,
              events):
    cut_ms, cut_pages = cut
    audience = {p for p in ids if role_of(p) == "viewer"}
    # Each viewer's side of the formula at the moment its page was read: the
    # origin's bytes for that viewer up to then, what it had appended then.
    origin_of = {p: measure.origin_media_bytes(entries, cut_pages[p]["now"] / 1000, {p}) for p in ids}
    appended = sum(cut_pages[p]["appendedBytes"] for p in audience)
    origin_bytes = sum(origin_of[p] for p in audience)
    sdk_http = sum(cut_pages[p]["stats"]["httpBytes"] for p in audience)
    appended_all = sum(cut_pages[p]["appendedBytes"] for p in ids)
    origin_bytes_all = sum(origin_of.values())
    # The same formula from the moment every viewer of the audience plays to
    # the end of the window (docs/pilot.md, "The offload formula"): the
    # swarm's figure without the time the pages took to open, which a loaded
    # machine can stretch to a quarter of a short run.
    playing_ms = measure.everyone_playing_ms(cut_pages, audience)
    offload_playing = None
    if playing_ms is not None and playing_ms < cut_ms:
        offload_playing = measure.ratio_offload(*measure.offload_of_fragments_first_appended(
            entries, {p: cut_pages[p]["appended"] for p in audience}, playing_ms, cut_ms, stream.fragment_of_path))
    kill_ms = events.get("kill_switch", {}).get("pushed_ms")
    warm_not_elected = measure.warm_offload_not_elected(entries, {p: cut_pages[p]["appended"] for p in audience},
                                                        cut_ms, stream.fragment_of_path)
    viewers = {}
    totals = {"stalls": 0, "stall_ms": 0, "playback_errors": 0, "unverified_appended": 0, "checked_segments": 0}
    for peer_id in ids:
        page = pages[peer_id]
        in_window = [r for r in page["appended"] if r["at"] <= cut_ms]
        stalls, stall_ms = measure.stall_summary(page["stalls"], end_ms)
        errors = [e for e in page["errors"] if e["fatal"]] + page["mediaErrors"]
        checked, bad = measure.unverified(page, stream.signed)
        samples = [s for s in page["samples"] if s["at"] <= cut_ms and s["appended"] > 0]
        minutes = max(1e-3, (end_ms - page["startedAt"]) / 60000)
        viewers[peer_id] = {
            "role": role_of(peer_id),
            "origin_media_bytes": origin_of[peer_id],
            "edge": page["joined"]["edge"] if page["joined"] else None, "joins": page["joins"],
            "startup_ms": None if page["playingAt"] is None else page["playingAt"] - page["startedAt"],
            "appended_bytes": page["appendedBytes"], "http_bytes": page["stats"]["httpBytes"],
            "p2p_bytes": page["stats"]["p2pBytes"], "uploaded_bytes": page["stats"]["uploadedBytes"],
            "offload_sdk": measure.ratio_offload(cut_pages[peer_id]["stats"]["httpBytes"],
                                                 cut_pages[peer_id]["appendedBytes"]),
            "warm_offload": measure.warm_offload(in_window),
            "warm_offload_not_elected": warm_not_elected.get(peer_id),
            "peers_mean": round(sum(s["peers"] for s in samples) / len(samples), 2) if samples else 0,
            "stalls": stalls, "stall_ms": stall_ms,
            "stalls_after_kill_switch": measure.stall_summary(page["stalls"], end_ms, kill_ms)[0] if kill_ms else None,
            "playback_errors": len(errors), "errors": errors[:5],
            "segments_checked": checked, "unverified_appended": bad,
            "verified_segments": page["stats"]["verifiedSegments"], "failed_segments": page["stats"]["failedSegments"],
            "range_rescues": page["stats"]["rangeRescues"],
            "segment_sources": [[e["sn"], e["source"], round((e["at"] - start_ms) / 1000, 2)] for e in page["segments"]],
            # Fetched over HTTP without a manifest entry (so never shared): a manifest that lagged the playlist.
            "unshared_http_segments": sum(1 for e in page["segments"] if e["source"] == "http" and not e["verified"]), "banned": [b["peerId"] for b in page["banned"]],
            "hls_version": page["hlsVersion"], "uploaded_per_minute": page["stats"]["uploadedBytes"] / minutes,
            "series": [[round(t, 2), round(v, 4)] for t, v in measure.viewer_offload_series(page, start_ms)],
            "stall_spans": [[(s["start"] - start_ms) / 1000,
                             ((s["end"] if s["end"] is not None else end_ms) - start_ms) / 1000] for s in page["stalls"]],
        }
        totals["stalls"] += stalls
        totals["stall_ms"] += stall_ms
        totals["playback_errors"] += len(errors)
        totals["unverified_appended"] += bad
        totals["checked_segments"] += checked
    received = sent = 0
    for before, after in zip(messages_before, messages_after):
        if before and after:
            received += after[0] - before[0]
            sent += after[1] - before[1]
    minutes = max(1e-3, (end_ms - start_ms) / 60000)
    startups = [v["startup_ms"] for v in viewers.values() if v["startup_ms"] is not None]
    report = {
        "mode": "control" if config.control else "treatment",
        "config": config.as_dict(),
        "window": {"start_ms": start_ms, "cut_ms": cut_ms, "end_ms": end_ms,
                   "measured_s": round((cut_ms - start_ms) / 1000, 1), "everyone_playing_ms": playing_ms,
                   "playing_s": None if playing_ms is None else round((cut_ms - playing_ms) / 1000, 1)},
        "offload_origin": measure.ratio_offload(origin_bytes, appended),
        "offload_sdk": measure.ratio_offload(sdk_http, appended),
        "offload_origin_playing": offload_playing,
        "appended_bytes": appended, "origin_media_bytes": origin_bytes, "sdk_http_bytes": sdk_http,
        "audience": sorted(audience),
        "offload_origin_all_viewers": measure.ratio_offload(origin_bytes_all, appended_all),
        "origin_media_requests": sum(1 for e in entries if measure.is_media(e[1]) and e[5] * 1000 <= cut_ms),
        "origin_range_requests": sum(1 for e in entries if measure.is_media(e[1]) and e[3]),
        **totals,
        "startup_ms_median": measure.median(startups), "startup_ms_max": max(startups) if startups else None,
        "warm_offload_min": min((v["warm_offload"] for v in viewers.values() if v["warm_offload"] is not None),
                                default=None),
        "warm_offload_not_elected_min": min((v for v in warm_not_elected.values() if v is not None), default=None),
        "uploaded_bytes": sum(v["uploaded_bytes"] for v in viewers.values()),
        "peers_per_viewer": measure.median([v["peers_mean"] for v in viewers.values()]),
        "signaling_received_per_viewer_minute": round(received / len(ids) / minutes, 1),
        "signaling_sent_per_viewer_minute": round(sent / len(ids) / minutes, 1),
        "processes": usage.summary(),
        "swarm_series": [[round(t, 1), round(v, 4)] for t, v in
                         measure.swarm_offload_series(pages, entries, start_ms, cut_ms, audience)],
        "viewers": viewers,
        "faults": events,
    }
    if report["offload_origin"] is not None and report["offload_sdk"] is not None:
        report["offload_agreement"] = abs(report["offload_origin"] - report["offload_sdk"])
    return report
