// What the browser drivers (run-*.mjs) share: their log and failure lines
// and deadline, starting Debian's chromium for pages that open WebRTC
// connections over loopback, waiting for an event, reading an admin
// listener's JSON and /metrics.
import { chromium } from 'playwright-core';
import { access } from 'node:fs/promises';

export const CHROMIUM = '/usr/bin/chromium';

// A driver's progress lines (stderr, "[name +1.2s] ...") and its failure:
// one line "name: message" on stderr, then exit status 2 (the Python side
// then reports the run as not completed). The deadline fails the run.
export function driverLog(name, deadlineMs) {
  const started = Date.now();
  const log = (...args) => console.error(`[${name} +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);
  const fail = (message) => {
    console.error(`${name}: ${message}`);
    process.exit(2);
  };
  setTimeout(() => fail(`deadline of ${deadlineMs} ms reached`), deadlineMs).unref();
  return { log, fail };
}

// Debian's chromium (never a downloaded browser), headless, set up for pages
// that connect to each other over loopback: host candidates on 127.0.0.1
// without mDNS names, the run's self-signed test certificates accepted,
// media that may play without a user gesture.
export async function launchWebRtcChromium(fail) {
  try {
    await access(CHROMIUM);
  } catch {
    fail(`${CHROMIUM} is missing: install-deps.sh installs the Debian package chromium`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks',
      '--ignore-certificate-errors',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-gpu',
    ],
  });
}

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
