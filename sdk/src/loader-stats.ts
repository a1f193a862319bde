// hls.js's LoaderStats, the object a loader owns from its construction: hls.js
// takes it right after `new Loader(config)` (`frag.stats = loader.stats` in
// src/loader/fragment-loader.ts of 1.5 and 1.7) and its ABR controller reads
// loading.start/first/end and loaded/total while and after the load.

export interface LoaderStats {
  aborted: boolean;
  loaded: number;
  retry: number;
  total: number;
  chunkCount: number;
  bwEstimate: number;
  loading: { start: number; first: number; end: number };
  parsing: { start: number; end: number };
  buffering: { start: number; first: number; end: number };
}

export function createLoaderStats(): LoaderStats {
  return {
    aborted: false, loaded: 0, retry: 0, total: 0, chunkCount: 0, bwEstimate: 0,
    loading: { start: 0, first: 0, end: 0 },
    parsing: { start: 0, end: 0 },
    buffering: { start: 0, first: 0, end: 0 },
  };
}

/** Resets `stats` for a new load starting at `now` (performance.now() time),
 * keeping `retry` (hls.js carries it over between attempts). */
export function startLoad(stats: LoaderStats, now: number): void {
  stats.aborted = false;
  stats.loaded = 0;
  stats.total = 0;
  stats.chunkCount = 0;
  stats.bwEstimate = 0;
  stats.loading.start = now;
  stats.loading.first = 0;
  stats.loading.end = 0;
}

/** `bytes` more arrived at `now`. */
export function progress(stats: LoaderStats, now: number, loaded: number, total: number): void {
  if (stats.loading.first === 0 && loaded > 0) stats.loading.first = Math.max(now, stats.loading.start);
  stats.loaded = loaded;
  stats.total = total;
  stats.chunkCount++;
}

/** The load finished with `size` bytes at `now`: as hls.js's own loaders
 * report it (src/utils/xhr-loader.ts: end, loaded = total, bwEstimate). */
export function finishLoad(stats: LoaderStats, now: number, size: number): void {
  if (stats.loading.first === 0) stats.loading.first = Math.max(now, stats.loading.start);
  stats.loading.end = Math.max(now, stats.loading.first);
  stats.loaded = stats.total = size;
  stats.bwEstimate = (size * 8000) / Math.max(stats.loading.end - stats.loading.first, 1);
}

/** A new transfer for the same request starts at `now` (from a peer, from
 * HTTP after the mesh gave up, or from the cache): the time the mesh spent
 * waiting for a holder is scheduling, not network latency, and counting it
 * as time to first byte would make hls.js's ABR (which samples TTFB from
 * loading.first - loading.start) pick lower renditions than over plain HTTP. */
export function restartTiming(stats: LoaderStats, now: number): void {
  stats.loading.start = now;
  stats.loading.first = 0;
  stats.loaded = 0;
}
