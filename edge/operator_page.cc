#include "edge/operator_page.h"

#include <string>

#include "common/http/admin_page.h"

namespace mf::edge {
namespace {

// Every number on the page comes from /api/streams, /api/cluster and
// /api/history (schemas in docs/edge.md), fetched once a second.
// Rates are computed here from two consecutive answers with the edge's own
// clock (timeMs); a counter that went down restarted (its stream emptied on
// a shard), so that interval shows no rate rather than a negative one.
// Cells carry data-stream / data-rendition / data-field so that tests can
// read them.
constexpr std::string_view before_style = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MeshedFlow edge</title>
<style>
)page";
constexpr std::string_view before_script = R"page(  #summary { color: #555; margin-bottom: 1em; }
  table { min-width: 60em; }
  tr.stream td { font-weight: 600; border-top: 2px solid #c9ced6; }
  tr.rendition td { color: #555; }
  tr.rendition td:first-child { padding-left: 2em; }
  .bar { display: inline-block; height: .7em; background: #2e9d5b; vertical-align: middle; margin-left: .4em; }
  #empty { color: #777; padding: 1em 0; }
  .note { color: #666; font-size: .9em; margin: .3em 0; }
  td.state-up { color: #2e7d32; } td.state-down, td.state-draining { color: #b00020; font-weight: 600; }
  #charts { display: flex; flex-wrap: wrap; gap: 1em; }
  figure.chart { margin: 0; background: #fff; box-shadow: 0 1px 3px rgba(0,0,0,.12); padding: .5em .8em; }
  figure.chart figcaption { font-weight: 600; font-size: .95em; }
  figure.chart figcaption span { font-weight: normal; color: #555; margin-left: .5em; }
  svg text { font: 11px system-ui, sans-serif; fill: #555; }
  .legend span { display: inline-block; margin-right: .8em; font-size: .85em; }
  .legend i { display: inline-block; width: .8em; height: .8em; margin-right: .3em; vertical-align: middle; }
</style>
</head>
<body>
<h1>MeshedFlow edge <span id="edge"></span></h1>
<div id="summary"><span id="peers">0</span> peers in <span id="stream-count">0</span> streams &middot;
  <span id="status">loading&hellip;</span></div>
<h2>Cluster <span class="note" id="cluster-status"></span></h2>
<table id="edges-table">
  <thead><tr><th>edge</th><th>state</th><th>Valkey</th><th>peers</th><th>connections</th><th>streams</th>
    <th>signals</th><th>errors</th><th>p2p bytes</th><th>CDN bytes</th><th>offload</th></tr></thead>
  <tbody id="edges"></tbody>
</table>
<h2>Streams across the cluster</h2>
<p class="note">The busiest streams of each edge (at most 10 per edge), summed by stream; the 20 with most peers shown.</p>
<table id="cluster-streams-table">
  <thead><tr><th>stream</th><th>peers</th><th>edges</th><th>p2p bytes</th><th>CDN bytes</th><th>offload</th></tr></thead>
  <tbody id="cluster-streams"></tbody>
</table>
<h2>This edge over time <span class="note" id="history-status"></span></h2>
<div id="charts"></div>
<svg id="svg-namespace" width="0" height="0" aria-hidden="true"></svg>
<h2>This edge's streams</h2>
<table>
  <thead><tr><th>stream / rendition</th><th>peers</th><th>joins/s</th><th>signals/s</th><th>proposals</th>
    <th>led to a connection</th><th>offload (p2p / all bytes)</th></tr></thead>
  <tbody id="streams"></tbody>
</table>
<div id="empty" hidden>No peer is joined to this edge.</div>
<h2>WebTorrent tracker swarms on this edge</h2>
<p class="note">Players of p2p-media-loader and other WebTorrent clients whose tracker is this edge's
  <code>/announce</code> (docs/tracker.md).</p>
<table id="tracker-table">
  <thead><tr><th>swarms</th><th>peers</th><th>seeders</th><th>offers waiting for an answer</th>
    <th>announces/s</th><th>offers relayed/s</th><th>answers relayed/s</th></tr></thead>
  <tbody><tr id="tracker"></tr></tbody>
</table>
<script type="module">
)page";
constexpr std::string_view page_script = R"page(
const previous = new Map();  // streamId -> {timeMs, joins, signals}
function rate(now, before, field, seconds) {
  if (!before || seconds <= 0 || now[field] < before[field]) return '\u2013';
  return ((now[field] - before[field]) / seconds).toFixed(1);
}

function percent(value) {
  return value === null || value === undefined ? '\u2013' : (value * 100).toFixed(1) + ' %';
}

function render(data) {
  document.getElementById('edge').textContent = data.edge;
  document.getElementById('peers').textContent = data.peers;
  document.getElementById('stream-count').textContent =
    data.streamCount + (data.truncated ? ' (the ' + data.streams.length + ' busiest shown)' : '');
  const body = document.getElementById('streams');
  body.replaceChildren();
  const seen = new Set();
  for (const s of data.streams) {
    seen.add(s.streamId);
    const before = previous.get(s.streamId);
    const seconds = before ? (data.timeMs - before.timeMs) / 1000 : 0;
    const row = body.insertRow();
    row.className = 'stream';
    row.dataset.stream = s.streamId;
    cell(row, 'name', s.streamId);
    cell(row, 'peers', String(s.peers));
    cell(row, 'joinsPerSecond', rate(s, before, 'joins', seconds), s.joins + ' joins');
    cell(row, 'signalsPerSecond', rate(s, before, 'signals', seconds), s.signals + ' signals');
    cell(row, 'proposals', String(s.proposals));
    cell(row, 'connectedProposals',
         s.connectedProposals + (s.proposals > 0 ? ' (' + percent(s.connectedProposals / s.proposals) + ')' : ''),
         'as reported by clients in stats.connectedProposals');
    const offload = cell(row, 'offloadRatio', percent(s.offloadRatio),
                         s.p2pBytes + ' p2p bytes, ' + s.cdnBytes + ' CDN bytes');
    if (s.offloadRatio !== null) {
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = Math.round(s.offloadRatio * 60) + 'px';
      offload.append(bar);
    }
    for (const r of s.renditions) {
      const sub = body.insertRow();
      sub.className = 'rendition';
      sub.dataset.stream = s.streamId;
      sub.dataset.rendition = r.rendition;
      cell(sub, 'name', r.rendition);
      cell(sub, 'peers', String(r.peers));
      for (let i = 0; i < 5; i++) sub.insertCell();
    }
    previous.set(s.streamId, {timeMs: data.timeMs, joins: s.joins, signals: s.signals});
  }
  for (const id of [...previous.keys()]) if (!seen.has(id)) previous.delete(id);
  document.getElementById('empty').hidden = data.streams.length > 0;
  renderTracker(data);
}

let previousTracker = null;  // {timeMs, announces, offersRelayed, answersRelayed}

function renderTracker(data) {
  const t = data.tracker;
  const row = document.getElementById('tracker');
  row.replaceChildren();
  const seconds = previousTracker ? (data.timeMs - previousTracker.timeMs) / 1000 : 0;
  cell(row, 'trackerSwarms', String(t.swarms));
  cell(row, 'trackerPeers', String(t.peers));
  cell(row, 'trackerSeeders', String(t.seeders));
  cell(row, 'trackerOutstandingOffers', String(t.outstandingOffers));
  cell(row, 'trackerAnnouncesPerSecond', rate(t, previousTracker, 'announces', seconds), t.announces + ' announces');
  cell(row, 'trackerOffersPerSecond', rate(t, previousTracker, 'offersRelayed', seconds), t.offersRelayed + ' offers');
  cell(row, 'trackerAnswersPerSecond', rate(t, previousTracker, 'answersRelayed', seconds), t.answersRelayed + ' answers');
  previousTracker = {timeMs: data.timeMs, announces: t.announces, offersRelayed: t.offersRelayed,
                     answersRelayed: t.answersRelayed};
}


// The SVG namespace, from an element the parser made (no URL in the page).
const SVG = document.getElementById('svg-namespace').namespaceURI;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];

function ratioText(p2p, cdn) {
  const all = p2p + cdn;
  return all > 0 ? percent(p2p / all) : '\u2013';
}

function renderCluster(data) {
  document.getElementById('cluster-status').textContent =
    data.edgeCount + (data.edgeCount === 1 ? ' edge' : ' edges') + ', Valkey ' + data.valkey +
    (data.truncated ? ' (' + data.edges.length + ' shown)' : '');
  const body = document.getElementById('edges');
  body.replaceChildren();
  const merged = new Map();
  for (const e of data.edges) {
    const row = body.insertRow();
    row.dataset.edge = e.edge;
    cell(row, 'edge', e.edge + (e.edge === data.edge ? ' (this edge)' : ''));
    const state = e.draining ? 'draining' : 'up';
    cell(row, 'state', state).className = 'state-' + state;
    cell(row, 'valkey', e.valkey).className = e.valkey === 'down' ? 'state-down' : '';
    cell(row, 'peers', String(e.peers));
    cell(row, 'connections', String(e.connections));
    cell(row, 'streamCount', String(e.streamCount));
    cell(row, 'signals', String(e.signals));
    cell(row, 'errors', String(e.errors));
    cell(row, 'p2pBytes', String(e.p2pBytes));
    cell(row, 'cdnBytes', String(e.cdnBytes));
    cell(row, 'offloadRatio', percent(e.offloadRatio));
    for (const s of e.streams) {
      const m = merged.get(s.streamId) || {streamId: s.streamId, peers: 0, edges: 0, p2pBytes: 0, cdnBytes: 0};
      m.peers += s.peers; m.edges += 1; m.p2pBytes += s.p2pBytes; m.cdnBytes += s.cdnBytes;
      merged.set(s.streamId, m);
    }
  }
  const streams = [...merged.values()].sort((a, b) => b.peers - a.peers || (a.streamId < b.streamId ? -1 : 1)).slice(0, 20);
  const sbody = document.getElementById('cluster-streams');
  sbody.replaceChildren();
  for (const s of streams) {
    const row = sbody.insertRow();
    row.dataset.clusterStream = s.streamId;
    cell(row, 'name', s.streamId);
    cell(row, 'peers', String(s.peers));
    cell(row, 'edges', String(s.edges));
    cell(row, 'p2pBytes', String(s.p2pBytes));
    cell(row, 'cdnBytes', String(s.cdnBytes));
    cell(row, 'offloadRatio', ratioText(s.p2pBytes, s.cdnBytes));
  }
}

function svgElement(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, String(v));
  if (parent) parent.append(element);
  return element;
}

// One line chart: x is the time before the newest answer, y from 0 to the
// largest value (or `yMax`). `series` is [{name, values}] with one value
// (or null: no data) per sample.
function chart(id, title, samples, nowMs, windowMs, series, format, yMax) {
  const width = 420, height = 150, left = 48, right = 8, top = 8, bottom = 20;
  const figure = document.createElement('figure');
  figure.className = 'chart';
  figure.dataset.chart = id;
  const caption = document.createElement('figcaption');
  caption.textContent = title;
  figure.append(caption);
  const svg = svgElement('svg', {width, height, viewBox: `0 0 ${width} ${height}`, role: 'img'}, figure);
  // The whole window the ring can hold, so the axis stays put as it fills.
  const span = Math.max(samples.length > 0 ? nowMs - samples[0].timeMs + samples[0].periodMs : 0, windowMs);
  let top_value = yMax || 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > top_value) top_value = v;
  if (top_value <= 0) top_value = 1;
  const x = (t) => left + (width - left - right) * (1 - (nowMs - t) / span);
  const y = (v) => top + (height - top - bottom) * (1 - v / top_value);
  svgElement('line', {x1: left, y1: y(0), x2: width - right, y2: y(0), stroke: '#bbb'}, svg);
  svgElement('line', {x1: left, y1: top, x2: left, y2: y(0), stroke: '#bbb'}, svg);
  svgElement('text', {x: left - 4, y: top + 9, 'text-anchor': 'end'}, svg).textContent = format(top_value);
  svgElement('text', {x: left - 4, y: y(0), 'text-anchor': 'end'}, svg).textContent = format(0);
  svgElement('text', {x: left, y: height - 4}, svg).textContent =
    '-' + (span >= 120000 ? Math.round(span / 60000) + ' min' : Math.round(span / 1000) + ' s');
  svgElement('text', {x: width - right, y: height - 4, 'text-anchor': 'end'}, svg).textContent = 'now';
  const legend = document.createElement('div');
  legend.className = 'legend';
  series.forEach((s, i) => {
    const points = [];
    samples.forEach((sample, k) => { if (s.values[k] !== null) points.push(x(sample.timeMs).toFixed(1) + ',' + y(s.values[k]).toFixed(1)); });
    const line = svgElement('polyline', {points: points.join(' '), fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 1.6}, svg);
    line.dataset.series = s.name;
    if (series.length > 1) {
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = COLORS[i % COLORS.length];
      item.append(swatch, s.name);
      legend.append(item);
    }
  });
  const last = samples.length > 0 ? series.map((s) => s.values[samples.length - 1]) : [];
  const lastText = document.createElement('span');
  lastText.dataset.last = last.length === 1 && last[0] !== null ? String(last[0]) : '';
  lastText.textContent = last.length === 1 ? 'now ' + (last[0] === null ? '\u2013' : format(last[0])) : '';
  caption.append(lastText);
  figure.append(legend);
  return figure;
}

function renderHistory(data) {
  const samples = data.samples;
  document.getElementById('history-status').textContent =
    samples.length + ' samples of ' + (data.periodMs / 1000) + ' s (up to ' + data.capacity + ')';
  document.body.dataset.historySamples = String(samples.length);
  const errorSeries = [];
  data.errorCodes.forEach((code, i) => {
    const values = samples.map((s) => s.errors[i]);
    if (values.some((v) => v > 0)) errorSeries.push({name: code, values});
  });
  if (errorSeries.length === 0) errorSeries.push({name: 'errors', values: samples.map(() => 0)});
  const number = (v) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1));
  document.getElementById('charts').replaceChildren(
    chart('peers', 'Peers', samples, data.timeMs, data.periodMs * data.capacity, [{name: 'peers', values: samples.map((s) => s.peers)}], number),
    chart('signals', 'Signals/s', samples, data.timeMs, data.periodMs * data.capacity, [{name: 'signals/s', values: samples.map((s) => s.signalsPerSecond)}], number),
    chart('offload', 'Offload (p2p / all bytes)', samples, data.timeMs, data.periodMs * data.capacity,
          [{name: 'offload', values: samples.map((s) => s.offloadRatio === null ? null : s.offloadRatio * 100)}],
          (v) => v.toFixed(0) + ' %', 100),
    chart('errors', 'Errors per sample, by code', samples, data.timeMs, data.periodMs * data.capacity, errorSeries, number));
}

async function getJson(path) {
  return (await fetchOk(path)).json();
}

keepRefreshing(async () => {
  const [data, cluster, history] = await Promise.all(
    [getJson('/api/streams'), getJson('/api/cluster'), getJson('/api/history')]);
  render(data);
  renderCluster(cluster);
  renderHistory(history);
});
</script>
</body>
</html>
)page";

}  // namespace

std::string_view operator_page_html() {
  static const std::string page = compose_admin_page(before_style, before_script, page_script);
  return page;
}

}  // namespace mf::edge
