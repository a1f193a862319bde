#include "edge/operator_page.h"

namespace mf::edge {
namespace {

// Every number on the page comes from /api/streams (schema in docs/edge.md).
// Rates are computed here from two consecutive answers with the edge's own
// clock (timeMs); a counter that went down restarted (its stream emptied on
// a shard), so that interval shows no rate rather than a negative one.
// Cells carry data-stream / data-rendition / data-field so that tests can
// read them.
constexpr std::string_view page = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MeshedFlow edge</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  #summary { color: #555; margin-bottom: 1em; }
  #status.stale { color: #b00020; font-weight: bold; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 3px rgba(0,0,0,.12); min-width: 60em; }
  th, td { padding: .35em .8em; text-align: right; border-bottom: 1px solid #e3e6ea; }
  th { background: #2b3445; color: #fff; font-weight: 600; }
  th:first-child, td:first-child { text-align: left; }
  tr.stream td { font-weight: 600; border-top: 2px solid #c9ced6; }
  tr.rendition td { color: #555; }
  tr.rendition td:first-child { padding-left: 2em; }
  .bar { display: inline-block; height: .7em; background: #2e9d5b; vertical-align: middle; margin-left: .4em; }
  #empty { color: #777; padding: 1em 0; }
</style>
</head>
<body>
<h1>MeshedFlow edge <span id="edge"></span></h1>
<div id="summary"><span id="peers">0</span> peers in <span id="stream-count">0</span> streams &middot;
  <span id="status">loading&hellip;</span></div>
<table>
  <thead><tr><th>stream / rendition</th><th>peers</th><th>joins/s</th><th>signals/s</th><th>proposals</th>
    <th>led to a connection</th><th>offload (p2p / all bytes)</th></tr></thead>
  <tbody id="streams"></tbody>
</table>
<div id="empty" hidden>No peer is joined to this edge.</div>
<script type="module">
const previous = new Map();  // streamId -> {timeMs, joins, signals}
let refreshes = 0;

function rate(now, before, field, seconds) {
  if (!before || seconds <= 0 || now[field] < before[field]) return '\u2013';
  return ((now[field] - before[field]) / seconds).toFixed(1);
}

function percent(value) {
  return value === null || value === undefined ? '\u2013' : (value * 100).toFixed(1) + ' %';
}

function cell(row, field, text, title) {
  const td = row.insertCell();
  td.dataset.field = field;
  td.textContent = text;
  if (title) td.title = title;
  return td;
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
}

async function refresh() {
  const status = document.getElementById('status');
  try {
    const response = await fetch('/api/streams', {cache: 'no-store'});
    if (!response.ok) throw new Error('HTTP ' + response.status);
    const data = await response.json();
    render(data);
    refreshes++;
    document.body.dataset.refreshes = String(refreshes);
    status.className = '';
    status.textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (error) {
    status.className = 'stale';
    status.textContent = 'not updated: ' + error.message;
  }
  setTimeout(refresh, 1000);
}
refresh();
</script>
</body>
</html>
)page";

}  // namespace

std::string_view operator_page_html() { return page; }

}  // namespace mf::edge
