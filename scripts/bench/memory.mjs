// Memory of parsed snapshots: how many heap bytes a parsed snapshot takes per byte of its JSON text,
// the factor the isolate cache uses to account for its entries (src/store/snapshots.ts #remember).
// Needs --expose-gc (run.mjs starts it so). Node 22 without pointer compression stores pointers in
// 8 bytes where workerd uses 4, so the factor measured here is an upper bound for workerd.
import { fileURLToPath } from "node:url";
import { benchSnapshot, loadDomain } from "./domain.mjs";

const MB = 1024 * 1024;

function heapAfterGc() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

function factorFor(domain, size, count) {
  const texts = Array.from({ length: count }, (_, i) => JSON.stringify(benchSnapshot(domain, size, `c${i}`).snapshot));
  const jsonChars = texts.reduce((n, t) => n + t.length, 0);
  const before = heapAfterGc();
  const parsed = texts.map((t) => JSON.parse(t));
  const after = heapAfterGc();
  if (parsed.length !== count) throw new Error("unreachable");
  return {
    features: size,
    snapshots: count,
    jsonBytesEach: Math.round(jsonChars / count),
    heapBytesEach: Math.round((after - before) / count),
    factor: (after - before) / jsonChars,
  };
}

/** The isolate cache's limits as the code has them (src/store/snapshots.ts), and what they hold. */
export async function memoryBench(root, { sizes = [10, 20, 100], count = 2000 } = {}) {
  if (typeof globalThis.gc !== "function") throw new Error("run with node --expose-gc");
  const domain = await loadDomain(root);
  const { maxEntries, maxBytes } = domain.DEFAULT_SNAPSHOT_CACHE;
  const cache = { maxEntries, maxBytes, accountingFactor: domain.PARSED_BYTES_PER_JSON_CHAR };
  const results = sizes.map((size) => factorFor(domain, size, count));
  // The largest working set the cache can hold: entries stop at maxEntries, or accounted bytes
  // (JSON length x accounting factor) at maxBytes, whichever comes first; the real heap is entries x heapBytesEach.
  const bounds = results.map((r) => {
    const entries = Math.min(cache.maxEntries, Math.floor(cache.maxBytes / (r.jsonBytesEach * cache.accountingFactor)));
    const heap = entries * r.heapBytesEach;
    return { features: r.features, entries, heapMB: heap / MB, fractionOf128MB: heap / (128 * MB) };
  });
  const worstFactor = Math.max(...results.map((r) => r.factor));
  return {
    node: process.version,
    results,
    cache: { ...cache, maxMB: cache.maxBytes / MB },
    bounds,
    // Whatever the snapshot size, the real heap is at most maxBytes x (measured / accounted factor).
    worstCaseMB: (cache.maxBytes * Math.max(1, worstFactor / cache.accountingFactor)) / MB,
    accountingHolds: worstFactor <= cache.accountingFactor,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const count = Number(process.argv[2] ?? 2000);
  console.log(JSON.stringify(await memoryBench(process.cwd(), { count })));
}
