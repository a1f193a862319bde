// What the browser drivers (run-sdk-pages.mjs, run-operator-page.mjs) share:
// waiting for an event, reading an admin listener's JSON and /metrics.

// Resolves with predicate()'s first truthy value; rejects after timeoutMs.
export async function waitFor(what, predicate, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// GET http://127.0.0.1:PORT/PATH: parsed JSON for /api/..., text otherwise.
export async function adminGet(port, path) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  if (!response.ok) throw new Error(`GET ${path} on ${port}: ${response.status}`);
  return path.startsWith('/api/') ? response.json() : response.text();
}

// Prometheus text: {'name{labels}': value}.
export function parsePrometheus(text) {
  const samples = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return samples;
}
