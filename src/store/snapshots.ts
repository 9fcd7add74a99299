// The check path's read of a customer snapshot: bounded isolate cache (short TTL) -> KV -> compile
// from D1 (read-through, published back through snapshot-publisher.ts). Also the write path used
// after every admin change.
import { compileSnapshot } from "../domain/compile";
import type { FailurePolicy, Snapshot } from "../domain/types";
import type { Env } from "../env";
import { BoundedCache } from "./bounded-cache";
import { loadCustomerRows } from "./customer-rows";
import { SnapshotUnavailable } from "./errors";
import { kvKeys } from "./kv";
import { publishSnapshots } from "./snapshot-publisher";

export { SnapshotUnavailable };

export type SnapshotSource = "isolate" | "kv" | "d1" | "stale";

export interface SnapshotRead {
  /** null: no such customer. */
  snapshot: Snapshot | null;
  source: SnapshotSource;
  /** True when the answer comes from an expired copy because KV and D1 both failed. */
  degraded: boolean;
}

export interface SnapshotStoreOptions {
  ttlMs: number;
  maxEntries: number;
  maxBytes: number;
  /** How old an expired copy may be and still be served when KV and D1 fail. */
  staleIfErrorMs: number;
}

export const DEFAULT_SNAPSHOT_CACHE: SnapshotStoreOptions = {
  ttlMs: 5_000,
  maxEntries: 10_000,
  maxBytes: 32 * 1024 * 1024, // a quarter of the 128 MB isolate limit
  staleIfErrorMs: 24 * 3600_000,
};

/**
 * Heap bytes of a parsed snapshot per character of its JSON, for the cache's byte bound. `npm run bench`
 * measures 1.26-1.29 in Node 22 (8-byte pointers; workerd's compressed 4-byte pointers take less), for
 * snapshots of 10 to 100 features; 1.5 keeps the bound an upper bound.
 */
export const PARSED_BYTES_PER_JSON_CHAR = 1.5;

/** The caller asked for a version newer than the source of record has. */
export class VersionNotYetAvailable extends Error {
  constructor(readonly available: number) {
    super(`snapshot version ${available} is the newest`);
  }
}

type WaitUntil = (p: Promise<unknown>) => void;

/** What KV holds for an id that is no customer: `{"unknown":true}`, expiring after UNKNOWN_TTL_SECONDS (KV's minimum). */
interface UnknownCustomerMark {
  unknown: true;
}
const UNKNOWN_MARK = JSON.stringify({ unknown: true } satisfies UnknownCustomerMark);
export const UNKNOWN_TTL_SECONDS = 60;
const isUnknownMark = (v: Snapshot | UnknownCustomerMark): v is UnknownCustomerMark => "unknown" in v && v.unknown;

export class SnapshotStore {
  readonly cache: BoundedCache<Snapshot | null>;
  /** Each feature's failure policy, learnt from every snapshot loaded: readable with KV and D1 down. */
  readonly failurePolicies = new Map<string, FailurePolicy>();
  readonly #inflight = new Map<string, Promise<SnapshotRead>>();

  constructor(readonly options: SnapshotStoreOptions = DEFAULT_SNAPSHOT_CACHE) {
    this.cache = new BoundedCache(options.maxEntries, options.maxBytes);
  }

  async read(
    env: Env,
    customerId: string,
    now: number,
    opts: { minVersion?: number; waitUntil?: WaitUntil } = {},
  ): Promise<SnapshotRead> {
    const min = opts.minVersion ?? 0;
    const hit = this.cache.get(customerId);
    if (hit && now - hit.storedAt < this.options.ttlMs && (hit.value === null ? min === 0 : hit.value.version >= min)) {
      return { snapshot: hit.value, source: "isolate", degraded: false };
    }
    if (min > 0) return this.#load(env, customerId, now, min, opts.waitUntil);
    // Concurrent misses for one customer share one KV read.
    let pending = this.#inflight.get(customerId);
    if (!pending) {
      pending = this.#load(env, customerId, now, 0, opts.waitUntil).finally(() => this.#inflight.delete(customerId));
      this.#inflight.set(customerId, pending);
    }
    return pending;
  }

  async #load(env: Env, customerId: string, now: number, min: number, waitUntil?: WaitUntil): Promise<SnapshotRead> {
    try {
      const text = await env.SNAPSHOTS.get(kvKeys.snapshot(customerId), "text");
      if (text !== null) {
        const snapshot = JSON.parse(text) as Snapshot | UnknownCustomerMark;
        if (isUnknownMark(snapshot)) {
          // Known in KV to be no customer (cached for UNKNOWN_TTL_SECONDS): no D1 read. A read that must
          // see a write (minVersion) still goes to D1, where the customer may exist by now.
          if (min === 0) {
            this.cache.set(customerId, null, now, 64);
            return { snapshot: null, source: "kv", degraded: false };
          }
        } else if (snapshot.version >= min) {
          this.#remember(customerId, snapshot, now, text.length);
          return { snapshot, source: "kv", degraded: false };
        }
      }
    } catch (err) {
      console.warn(JSON.stringify({ msg: "kv read failed", customerId, error: String(err) }));
    }
    try {
      const snapshot = await this.compile(env, customerId, now, waitUntil);
      if (snapshot && snapshot.version < min) throw new VersionNotYetAvailable(snapshot.version);
      return { snapshot, source: "d1", degraded: false };
    } catch (err) {
      if (err instanceof VersionNotYetAvailable) throw err;
      console.error(JSON.stringify({ msg: "d1 read failed", customerId, error: String(err) }));
      const stale = this.cache.get(customerId);
      if (stale?.value && now - stale.storedAt < this.options.staleIfErrorMs && stale.value.version >= min) {
        return { snapshot: stale.value, source: "stale", degraded: true };
      }
      throw new SnapshotUnavailable(String(err));
    }
  }

  /** Compiles from D1, publishes it (snapshot history, then KV), refreshes the isolate cache. */
  async compile(env: Env, customerId: string, now: number, waitUntil?: WaitUntil): Promise<Snapshot | null> {
    const rows = await loadCustomerRows(env.DB, customerId);
    if (!rows) {
      this.cache.set(customerId, null, now, 64);
      // Unknown ids are cached in KV too, briefly, so probing ids costs each isolate no D1 read. Creating
      // the customer publishes its snapshot over this mark; a read-through that raced the creation can
      // leave the mark for at most UNKNOWN_TTL_SECONDS (a write's minVersion reads through it).
      const mark = env.SNAPSHOTS.put(kvKeys.snapshot(customerId), UNKNOWN_MARK, {
        expirationTtl: UNKNOWN_TTL_SECONDS,
      }).catch((err) =>
        console.warn(JSON.stringify({ msg: "unknown-customer mark failed", customerId, error: String(err) })),
      );
      if (waitUntil) waitUntil(mark);
      else await mark;
      return null;
    }
    const snapshot = compileSnapshot(rows, now);
    const text = JSON.stringify(snapshot);
    // A failed publish is logged, not thrown: the caller still gets the fresh snapshot, and KV keeps the
    // older one until the next compile.
    const write = publishSnapshots(env, [{ customerId, version: snapshot.version, text }], now).catch((err) =>
      console.error(JSON.stringify({ msg: "snapshot write-back failed", customerId, error: String(err) })),
    );
    if (waitUntil) waitUntil(write);
    else await write;
    this.#remember(customerId, snapshot, now, text.length);
    return snapshot;
  }

  invalidate(customerId: string): void {
    this.cache.delete(customerId);
  }

  #remember(customerId: string, snapshot: Snapshot, now: number, jsonLength: number): void {
    this.cache.set(customerId, snapshot, now, Math.ceil(jsonLength * PARSED_BYTES_PER_JSON_CHAR));
    for (const [key, feature] of Object.entries(snapshot.features))
      this.failurePolicies.set(key, feature.failurePolicy);
  }
}
