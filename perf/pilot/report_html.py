"""report.html: one self-contained page (inline SVG, no script, no external
file) with the pilot's figures, the formula, and its plots: offload over
time per viewer and for the swarm, bytes by source, stalls on a timeline,
control against treatment."""

import html
import json

WIDTH, HEIGHT, PAD = 640, 220, 40
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def pct(v):
    return "n/a" if v is None else f"{100 * v:.1f}%"


def line_plot(title, series, x_max, y_label="offload"):
    """series: [(name, [(x, y in 0..1)])] on one 0..100% axis."""
    x_max = max(x_max, 1e-3)
    sx = lambda x: PAD + (WIDTH - 2 * PAD) * x / x_max
    sy = lambda y: HEIGHT - PAD - (HEIGHT - 2 * PAD) * max(0.0, min(1.0, y))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 20 * len(series)}">',
             f'<text x="{PAD}" y="16" font-weight="bold">{html.escape(title)}</text>']
    for pct_mark in (0, 0.5, 1.0):
        y = sy(pct_mark)
        parts.append(f'<line x1="{PAD}" y1="{y}" x2="{WIDTH - PAD}" y2="{y}" stroke="#ddd"/>'
                     f'<text x="4" y="{y + 4}" font-size="10">{int(pct_mark * 100)}%</text>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 16}" font-size="10" text-anchor="end">'
                 f'{x_max:.0f} s</text><text x="{PAD}" y="{HEIGHT - PAD + 16}" font-size="10">0 s</text>')
    for i, (name, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        if points:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{3 if name == "swarm" else 1.5}" '
                         f'points="{path}"/>')
        parts.append(f'<text x="{PAD}" y="{HEIGHT + 20 * i}" font-size="11" fill="{colour}">'
                     f'{html.escape(name)} ({y_label})</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_plot(title, rows, unit="MB"):
    """rows: [(name, [(label, value)])]: one stacked horizontal bar per row."""
    total = max((sum(v for _, v in bars) for _, bars in rows), default=1) or 1
    row_h = 22
    height = 40 + row_h * len(rows) + 20
    labels = sorted({label for _, bars in rows for label, _ in bars})
    colour = {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(labels)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">',
             f'<text x="{PAD}" y="16" font-weight="bold">{html.escape(title)}</text>']
    for i, (name, bars) in enumerate(rows):
        y = 30 + i * row_h
        x = 130
        parts.append(f'<text x="4" y="{y + 14}" font-size="11">{html.escape(name)}</text>')
        for label, value in bars:
            w = (WIDTH - 140) * value / total
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" fill="{colour[label]}">'
                         f'<title>{html.escape(label)}: {value / 1e6:.2f} {unit}</title></rect>')
            x += w
    legend_y = 40 + row_h * len(rows)
    for i, label in enumerate(labels):
        parts.append(f'<rect x="{130 + 120 * i}" y="{legend_y - 10}" width="10" height="10" fill="{colour[label]}"/>'
                     f'<text x="{144 + 120 * i}" y="{legend_y}" font-size="11">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stall_timeline(run):
    viewers = run["viewers"]
    x_max = max(1.0, (run["window"]["end_ms"] - run["window"]["start_ms"]) / 1000)
    row_h = 16
    height = 30 + row_h * len(viewers) + 10
    sx = lambda x: 130 + (WIDTH - 150) * max(0.0, x) / x_max
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">',
             f'<text x="{PAD}" y="16" font-weight="bold">stalls on a timeline (0 to {x_max:.0f} s)</text>']
    kill = run["faults"].get("kill_switch")
    if kill:
        x = sx((kill["pushed_ms"] - run["window"]["start_ms"]) / 1000)
        parts.append(f'<line x1="{x:.1f}" y1="22" x2="{x:.1f}" y2="{height}" stroke="#d62728" stroke-dasharray="4"/>'
                     f'<text x="{x + 3:.1f}" y="30" font-size="10" fill="#d62728">kill switch</text>')
    for i, (name, v) in enumerate(viewers.items()):
        y = 30 + i * row_h
        parts.append(f'<text x="4" y="{y + 11}" font-size="11">{html.escape(name)}</text>'
                     f'<line x1="130" y1="{y + 7}" x2="{WIDTH - 20}" y2="{y + 7}" stroke="#ccc"/>')
        for start, end in v["stall_spans"]:
            parts.append(f'<rect x="{sx(start):.1f}" y="{y + 1}" width="{max(2.0, sx(end) - sx(start)):.1f}" '
                         f'height="12" fill="#d62728"><title>{end - start:.2f} s</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def run_table(runs):
    keys = [("run", "run"), ("mode", "mode"), ("offload_origin", "offload (origin)"),
            ("offload_sdk", "offload (SDK)"), ("offload_origin_playing", "offload (origin), all playing"),
            ("appended_bytes", "appended B"),
            ("origin_media_bytes", "origin media B"), ("stalls", "stalls"), ("stall_ms", "stall ms"),
            ("playback_errors", "errors"), ("unverified_appended", "unverified"),
            ("startup_ms_median", "startup ms (median)"), ("warm_offload_min", "warm offload (min)"),
            ("warm_offload_not_elected_min", "warm offload, segments elected to others (min)"),
            ("peers_per_viewer", "peers/viewer"), ("signaling_received_per_viewer_minute", "signaling msgs/viewer/min")]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in keys)
    rows = []
    for r in runs:
        cells = []
        for key, _ in keys:
            v = r.get(key)
            cells.append(pct(v) if key.startswith(("offload", "warm")) else html.escape(str(v)))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_html(report, path):
    runs = report["runs"]
    out = ["<!doctype html><meta charset='utf-8'><title>MeshedFlow offload pilot</title>",
           "<style>body{font-family:sans-serif;max-width:1000px;margin:1em auto}table{border-collapse:collapse;"
           "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}code{background:#eee}</style>",
           "<h1>MeshedFlow offload pilot</h1>",
           "<h2>The formula</h2><p><code>offload = 1 &minus; origin media bytes &divide; appended media bytes</code></p>"
           "<p><em>origin media bytes</em>: the bytes nginx sent for segments and init segments (from its access "
           "log, kept beside this page as <code>origin-access.log</code>); <em>appended media bytes</em>: the bytes "
           "of every fragment the players appended to their buffers. The SDK's own figure puts its count of HTTP "
           "bytes in place of nginx's; the two must agree within 2 points. With N viewers that each need every "
           "segment and the CDN serving it once per swarm, the ceiling is (N&minus;1)/N. A run with the kill switch "
           "pushed is measured up to the push.</p>",
           "<h2>Summary</h2>"]
    for mode, s in report["summary"].items():
        out.append(f"<p><b>{mode}</b>: {s['runs']} runs; offload at the origin median "
                   f"{pct(s['offload_origin_median'])} (min {pct(s['offload_origin_min'])}); stalls "
                   f"{s['stalls_total']} ({s['stall_ms_total']} ms); startup median {s['startup_ms_median']} ms; "
                   f"playback errors {s['playback_errors']}; unverified appended {s['unverified_appended']}</p>")
    out.append(run_table(runs))
    out.append(bar_plot("control vs treatment: bytes appended and bytes the origin served, per run",
                        [(f"run {r['run']} {r['mode']}", [("origin served", r["origin_media_bytes"]),
                                                           ("carried by peers",
                                                            max(0, r["appended_bytes"] - r["origin_media_bytes"]))])
                         for r in runs]))
    for r in runs:
        x_max = r["window"]["measured_s"]
        out.append(f"<h2>Run {r['run']}: {r['mode']}</h2>")
        series = [("swarm", [tuple(p) for p in r["swarm_series"]])] + \
                 [(name, [tuple(p) for p in v["series"]]) for name, v in r["viewers"].items()]
        out.append(line_plot("offload over time (swarm: origin-measured per 10 s; viewers: cumulative, SDK count)",
                             series, x_max))
        out.append(bar_plot("bytes by source per viewer",
                            [(name, [("http", v["http_bytes"]), ("p2p", v["p2p_bytes"]),
                                     ("uploaded", v["uploaded_bytes"])]) for name, v in r["viewers"].items()]))
        out.append(stall_timeline(r))
        if r["faults"]:
            out.append(f"<p>faults: <code>{html.escape(json.dumps(r['faults'], default=str))}</code></p>")
        out.append(f"<p>edge and ingress: <code>{html.escape(json.dumps(r['processes']))}</code></p>")
    out.append(f"<h2>Configuration and software</h2><pre>{html.escape(json.dumps({'stream': report['stream'], 'software': report['software'], 'load_average_before': report['load_average_before'], 'load_average_after': report['load_average_after'], 'configs': [r['config'] for r in runs]}, indent=1))}</pre>")
    with open(path, "w") as f:
        f.write("\n".join(out))
