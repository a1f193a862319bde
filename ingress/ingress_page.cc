#include "ingress/ingress_page.h"

#include <string>

#include "common/http/admin_page.h"

namespace mf::ingress {
namespace {

// Every number comes from /api/backends and /metrics (docs/ingress.md);
// rates are computed from two consecutive /metrics answers. Cells carry
// data-backend / data-field so that tests can read them.
constexpr std::string_view before_style = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MeshedFlow ingress</title>
<style>
)page";
constexpr std::string_view before_script = R"page(  .failed { color: #b00020; font-weight: bold; }
  td.state-up { color: #2e7d32; } td.state-down { color: #b00020; font-weight: 600; }
  td.state-draining, td.state-slow-start { color: #b26a00; font-weight: 600; }
  #token-row { margin: 1em 0; }
  .note { color: #666; font-size: .9em; }
</style>
</head>
<body>
<h1>MeshedFlow ingress</h1>
<div><span id="status">loading&hellip;</span></div>
<div id="token-row"><label>Admin token <input id="token" type="password" autocomplete="off" size="40"></label>
  <span class="note">needed by drain and enable ([admin] token_file); kept in this page only</span>
  <div id="action-status" class="note"></div></div>
<h2>Backends</h2>
<table>
  <thead><tr><th>backend</th><th>state</th><th>tunnels</th><th>tunnels opened</th><th>connect failures</th>
    <th>weight</th><th></th></tr></thead>
  <tbody id="backends"></tbody>
</table>
<h2>Tunnels and handshakes</h2>
<table>
  <thead><tr><th>what</th><th>total</th><th>per second</th></tr></thead>
  <tbody id="counters"></tbody>
</table>
<script type="module">
)page";
constexpr std::string_view page_script = R"page(
let before = null;  // {timeMs, samples} of the previous /metrics

function parsePrometheus(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

function stateOf(b) {
  if (b.drained) return b.active > 0 ? 'draining' : 'drained';
  if (b.state === 'down') return 'down';
  return b.slow_start ? 'slow start' : 'up';
}

async function act(address, drain) {
  const status = document.getElementById('action-status');
  const token = document.getElementById('token').value.trim();
  const path = '/api/backends/' + (drain ? 'drain' : 'enable') + '?address=' + address;  // host:port as configured (the API does not percent-decode)
  try {
    const response = await fetch(path, {method: 'POST', cache: 'no-store', headers: token ? {Authorization: 'Bearer ' + token} : {}});
    const text = await response.text();
    status.className = response.ok ? 'note' : 'failed';
    status.textContent = (drain ? 'drain ' : 'enable ') + address + ': ' + response.status + ' ' + text.trim();
  } catch (error) {
    status.className = 'failed';
    status.textContent = error.message;
  }
  refreshNow();
}

function renderBackends(data) {
  const body = document.getElementById('backends');
  body.replaceChildren();
  for (const b of data.backends) {
    const row = body.insertRow();
    row.dataset.backend = b.address;
    cell(row, 'address', b.address + (b.removed ? ' (removed)' : ''));
    const state = stateOf(b);
    cell(row, 'state', state).className = 'state-' + state.replace(' ', '-').replace('drained', 'draining');
    cell(row, 'active', String(b.active));
    cell(row, 'total', String(b.total));
    cell(row, 'connectFailures', String(b.connect_failures));
    cell(row, 'weight', String(b.weight));
    const td = row.insertCell();
    if (!b.removed) {
      const button = document.createElement('button');
      button.dataset.action = b.drained ? 'enable' : 'drain';
      button.textContent = b.drained ? 'enable' : 'drain';
      button.addEventListener('click', () => act(b.address, !b.drained));
      td.append(button);
    }
  }
}

function renderCounters(samples, seconds) {
  const body = document.getElementById('counters');
  body.replaceChildren();
  const row = (label, key, isGauge) => {
    if (!samples.has(key)) return;
    const tr = body.insertRow();
    tr.dataset.counter = key;
    cell(tr, 'name', label);
    cell(tr, 'value', String(samples.get(key)));
    const was = before && before.samples.get(key);
    cell(tr, 'rate', isGauge || was === undefined || seconds <= 0 || samples.get(key) < was ? '\u2013'
         : ((samples.get(key) - was) / seconds).toFixed(1));
  };
  row('tunnels open', 'mf_ingress_tunnels_active', true);
  row('tunnels opened', 'mf_ingress_tunnels_total');
  row('connections accepted', 'mf_ingress_accepted_total');
  for (const kind of ['full', 'resumed']) row('TLS handshakes, ' + kind, `mf_ingress_tls_handshakes_total{kind="${kind}"}`);
  for (const key of samples.keys()) {
    const failure = /^mf_ingress_tls_failures_total\{reason="(.*)"\}$/.exec(key);
    if (failure) row('TLS failures, ' + failure[1], key);
  }
  for (const key of samples.keys()) {
    const refused = /^mf_ingress_rejects_total\{reason="(.*)"\}$/.exec(key);
    if (refused) row('refused, ' + refused[1], key);
  }
}

keepRefreshing(async () => {
  const [backends, metrics] = await Promise.all([
    fetchOk('/api/backends').then((r) => r.json()), fetchOk('/metrics').then((r) => r.text())]);
  const now = {timeMs: performance.now(), samples: parsePrometheus(metrics)};
  renderBackends(backends);
  renderCounters(now.samples, before ? (now.timeMs - before.timeMs) / 1000 : 0);
  before = now;
});
</script>
</body>
</html>
)page";

}  // namespace

std::string_view ingress_page_html() {
  static const std::string page = compose_admin_page(before_style, before_script, page_script);
  return page;
}

}  // namespace mf::ingress
