"""The pilot's figures from what it observed (pure: no I/O). The formula
(docs/pilot.md, "The offload formula"):

    offload_origin = 1 - origin_media_bytes / appended_bytes

origin_media_bytes: the bytes nginx sent for media files (segments and init
segments; not playlists, manifests or the page) up to the end of the
measured window; appended_bytes: the bytes of the fragments every player
appended to its buffer in that window. The audience measured is the
ordinary viewers: a fault's viewer (a liar, a leaver) is left out of both
sides, told apart in the log by the user agent that names each viewer.
offload_sdk is the same with the SDK's own count of HTTP bytes in place of
nginx's."""

import re

MEDIA_SUFFIXES = (".m4s", ".mp4")
VIEWER_IN_USER_AGENT = re.compile(r"MeshedFlowViewer/(\S+)")


def is_media(path):
    return path.startswith("/live/") and path.endswith(MEDIA_SUFFIXES)


def viewer_of(entry):
    """The viewer a log entry's user agent names, or None."""
    m = VIEWER_IN_USER_AGENT.search(entry[6])
    return m.group(1) if m else None


def origin_media_bytes(entries, until_s=None, viewers=None):
    """Bytes nginx sent for media, requests logged at or before until_s (unix
    s), made by one of `viewers` when given."""
    return sum(e[4] for e in entries if is_media(e[1]) and (until_s is None or e[5] <= until_s) and
               (viewers is None or viewer_of(e) in viewers))


def fragment_key(path, fragment_of_path):
    """The key a player records an append of `path` under ("<rendition>/<sn>",
    "<rendition>/init"), or None for a file no manifest signed."""
    if path.endswith(".mp4"):
        return f"{path.split('/')[-2]}/init"
    return fragment_of_path.get(path)


def offload_of_fragments_first_appended(entries, appended_by, from_ms, until_ms, fragment_of_path):
    """The formula over the fragments the audience first appended from from_ms
    to until_ms (unix ms). appended_by: {viewer: its append records}, the
    audience. A fragment counts whole or not at all: every append of it up to
    until_ms on one side, every byte nginx sent the audience for it up to
    until_ms (whenever asked) on the other. Media requests logged in the span
    for a fragment nobody appended by until_ms (fetched and wasted), or that
    no manifest signed, count on the origin's side. Counting by fragment, not
    by time, keeps a fragment fetched before the span and shared in it (or
    fetched in it and appended after it) from counting on one side only.
    Returns (origin bytes, appended bytes)."""
    first = {}
    for records in appended_by.values():
        for r in records:
            if r["at"] <= until_ms:
                first[r["key"]] = min(first.get(r["key"], r["at"]), r["at"])
    chosen = {key for key, at in first.items() if at >= from_ms}
    appended = sum(r["bytes"] for records in appended_by.values() for r in records
                   if r["at"] <= until_ms and r["key"] in chosen)
    origin = 0
    for e in entries:
        if not is_media(e[1]) or viewer_of(e) not in appended_by or e[5] * 1000 > until_ms:
            continue
        key = fragment_key(e[1], fragment_of_path)
        if key in chosen or ((key is None or key not in first) and e[5] * 1000 >= from_ms):
            origin += e[4]
    return origin, appended


def everyone_playing_ms(pages, viewers):
    """When the last of `viewers` started playing (unix ms), or None when one
    of them never did."""
    times = [pages[p]["playingAt"] for p in viewers]
    return None if not times or any(t is None for t in times) else max(times)


def ratio_offload(cdn_bytes, appended):
    return None if appended <= 0 else 1.0 - cdn_bytes / appended


def warm_offload(appended_records):
    """A viewer's offload after its first two media segments: from the SDK's
    HTTP count and the appended bytes between its second media segment and
    its last record. None when it appended fewer than three."""
    media = [r for r in appended_records if not r["key"].endswith("/init")]
    if len(media) < 3:
        return None
    base, last = media[1], appended_records[-1]
    return ratio_offload(last["http"] - base["http"], last["total"] - base["total"])


def warm_offload_not_elected(entries, appended_by, until_ms, fragment_of_path):
    """Each viewer's warm-state offload over the segments it was not elected
    to fetch for the swarm, measured at the origin (docs/pilot.md, "Warm
    offload"). The elected fetcher of a fragment is the viewer whose request
    for it nginx logged first; a viewer's warm segments are its media appends
    after its first two. For each viewer: 1 - (bytes nginx sent it for its
    warm segments elected to another viewer) / (bytes it appended of them).
    appended_by: {viewer: its append records}, the audience. Returns
    {viewer: ratio, or None when it appended no such segment}."""
    elected, sent = {}, {}
    for e in sorted((e for e in entries if is_media(e[1]) and e[5] * 1000 <= until_ms), key=lambda e: e[5]):
        viewer, key = viewer_of(e), fragment_key(e[1], fragment_of_path)
        if viewer not in appended_by or key is None:
            continue
        elected.setdefault(key, viewer)
        sent[(viewer, key)] = sent.get((viewer, key), 0) + e[4]
    out = {}
    for viewer, records in appended_by.items():
        media = [r for r in records if r["at"] <= until_ms and not r["key"].endswith("/init")]
        warm = [r for r in media[2:] if elected.get(r["key"]) != viewer]
        appended = sum(r["bytes"] for r in warm)
        origin = sum(sent.get((viewer, key), 0) for key in {r["key"] for r in warm})
        out[viewer] = ratio_offload(origin, appended)
    return out


def stall_summary(stalls, end_ms, after_ms=None):
    """(count, total ms) of stalls (start/end in ms; end None = still
    stalled at end_ms); only those starting at or after after_ms when given."""
    chosen = [s for s in stalls if after_ms is None or s["start"] >= after_ms]
    return len(chosen), sum((s["end"] if s["end"] is not None else end_ms) - s["start"] for s in chosen)


def unverified(page, signed):
    """(checked, unverified): segments in this page's buffer checked against
    the signed manifests' SHA-256 ({rendition: {sn: hex}}); a segment whose
    digest differs or that no manifest signed counts as unverified."""
    checked = bad = 0
    for key in set(page["buffered"]):
        rendition, sn = key.split("/")
        checked += 1
        digest = page["digests"].get(key)
        if digest is None or signed.get(rendition, {}).get(int(sn)) != digest:
            bad += 1
    return checked, bad


def swarm_offload_series(pages, entries, start_ms, end_ms, viewers, window_ms=10000):
    """[(seconds since start, offload)] per window: 1 - nginx media bytes in
    the window / bytes appended by `viewers`' players in the window."""
    out = []
    at = start_ms
    while at < end_ms:
        stop = min(at + window_ms, end_ms)
        appended = sum(r["bytes"] for p in viewers for r in pages[p]["appended"] if at <= r["at"] < stop)
        served = sum(e[4] for e in entries if is_media(e[1]) and at <= e[5] * 1000 < stop and viewer_of(e) in viewers)
        value = ratio_offload(served, appended)
        if value is not None:
            out.append(((stop - start_ms) / 1000, value))
        at = stop
    return out


def viewer_offload_series(page, start_ms):
    """[(seconds since start, cumulative offload by the SDK's count)] at each append."""
    return [((r["at"] - start_ms) / 1000, 1.0 - r["http"] / r["total"]) for r in page["appended"] if r["total"] > 0]


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
