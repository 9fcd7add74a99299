// A small LRU bounded by entry count AND bytes, for per-isolate caches (snapshots, API keys).
// An isolate has 128 MB; the limits are set by the owner and documented in docs/benchmark.md, "Memory bound".
export interface CacheEntry<V> {
  value: V;
  storedAt: number;
  bytes: number;
}

export class BoundedCache<V> {
  readonly #map = new Map<string, CacheEntry<V>>();
  #bytes = 0;

  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
  ) {}

  /** Returns the entry (fresh or not: the caller decides) and marks it most recently used. */
  get(key: string): CacheEntry<V> | undefined {
    const entry = this.#map.get(key);
    if (entry) {
      this.#map.delete(key);
      this.#map.set(key, entry);
    }
    return entry;
  }

  set(key: string, value: V, storedAt: number, bytes: number): void {
    this.delete(key);
    if (bytes > this.maxBytes) return;
    this.#map.set(key, { value, storedAt, bytes });
    this.#bytes += bytes;
    while (this.#map.size > this.maxEntries || this.#bytes > this.maxBytes) {
      const oldest = this.#map.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(key: string): void {
    const entry = this.#map.get(key);
    if (!entry) return;
    this.#map.delete(key);
    this.#bytes -= entry.bytes;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  get size(): number {
    return this.#map.size;
  }

  get bytes(): number {
    return this.#bytes;
  }
}
