// HTTP for what the mesh cannot serve: as hls.js's own loaders do it
// (src/utils/xhr-loader.ts and fetch-loader.ts in hls.js 1.5 and 1.7): the
// request's `Range` from the context, a time-to-first-byte timeout
// (loadPolicy.maxTimeToFirstByteMs) then the whole-load timeout
// (loadPolicy.maxLoadTimeMs) counted from the start, and progress in the
// loader's stats as bytes arrive.

import { progress } from './loader-stats';
import type { LoaderStats } from './loader-stats';

export interface LoadPolicyTimes {
  maxTimeToFirstByteMs?: number;
  maxLoadTimeMs: number;
}

export type HttpResult =
  | { kind: 'ok'; bytes: Uint8Array; status: number; url: string; headers: Headers }
  | { kind: 'error'; status: number; text: string }
  | { kind: 'timeout' }
  | { kind: 'aborted' };

export interface HttpRequest {
  result: Promise<HttpResult>;
  abort(): void;
  /** Body bytes received so far, whatever the outcome (an aborted or timed
   * out load still cost the CDN what arrived: the SDK's count of CDN bytes
   * must match the origin's log, docs/pilot.md). */
  received(): number;
}

/** GETs `url` (bytes [start, end) when `range` is given). `stats` (optional)
 * follows the progress; `onData` (optional) sees each piece of the body as it
 * arrives. */
export function httpGet(url: string, times: LoadPolicyTimes, range?: readonly [number, number], stats?: LoaderStats,
                        onData?: (piece: Uint8Array) => void): HttpRequest {
  const controller = new AbortController();
  let settled: HttpResult | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const started = performance.now();
  let loaded = 0;
  const ttfb = times.maxTimeToFirstByteMs && Number.isFinite(times.maxTimeToFirstByteMs) ? times.maxTimeToFirstByteMs : times.maxLoadTimeMs;
  const arm = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      settled ??= { kind: 'timeout' };
      controller.abort();
    }, Math.max(0, ms));
  };
  arm(ttfb);
  const result = (async (): Promise<HttpResult> => {
    try {
      const h: Record<string, string> = {};
      if (range) h.Range = `bytes=${range[0]}-${range[1] - 1}`;
      const response = await fetch(url, { signal: controller.signal, headers: h, credentials: 'same-origin' });
      if (ttfb !== times.maxLoadTimeMs) arm(times.maxLoadTimeMs - (performance.now() - started));
      if (!response.ok) return { kind: 'error', status: response.status, text: response.statusText };
      const total = Number(response.headers.get('content-length') ?? 0);
      const parts: Uint8Array[] = [];
      if (response.body) {
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parts.push(value);
          loaded += value.length;
          onData?.(value);
          if (stats) progress(stats, performance.now(), loaded, Math.max(total, loaded));
        }
      } else {
        const all = new Uint8Array(await response.arrayBuffer());
        parts.push(all);
        loaded = all.length;
      }
      const bytes = new Uint8Array(loaded);
      let at = 0;
      for (const p of parts) { bytes.set(p, at); at += p.length; }
      return { kind: 'ok', bytes, status: response.status, url: response.url, headers: response.headers };
    } catch (error) {
      if (settled) return settled;
      return { kind: 'error', status: 0, text: String(error) };
    } finally {
      clearTimeout(timer);
    }
  })().then((r) => settled ?? (settled = r));
  return {
    result,
    received: () => loaded,
    abort: () => {
      settled ??= { kind: 'aborted' };
      clearTimeout(timer);
      controller.abort();
    },
  };
}
