// The shared catalog on the check path: one compiled catalog per isolate, refreshed by reading a small
// pointer. KV holds one immutable object per catalog revision (`catalog:<rev>`) and the pointer
// (`catalog:head` = {"rev":k}). An isolate reads the pointer at most once per `ttlMs` (one KV read per
// isolate, not per customer), and the object only when the revision moved. So a catalog change reaches
// every check within ttlMs of KV having it (the first request past the TTL reads the pointer; those
// arriving while it does are answered from the held catalog, so for them: ttlMs plus that one read),
// whatever the number of customers, and never goes backwards in an isolate (it keeps the newest revision
// it has seen).
//
// The object and then the pointer are written by the catalog's publisher (store/publisher.ts), for the
// catalog write path and for a read-through that finds the pointer missing or behind D1: one Durable
// Object serialises them and drops any revision older than the newest it has, so of two racing catalog
// writes the later revision is the last pointer written, and a failed write is retried until KV has it.
// `minVersion` "0.k" never waits for the pointer (it reads `catalog:<k>` directly); the cron and
// `snapshots verify` compare the pointer with D1.
import { type CompiledCatalog, compileCatalog, isCompiledCatalog } from "../domain/catalog-compile";
import type { Env } from "../env";
import { loadCatalogRows } from "./customer-rows";
import { SnapshotUnavailable } from "./errors";
import { type Flight, joinFlight, startFlight } from "./flight";
import { kvKeys } from "./kv";
import { publishCatalog } from "./snapshot-publisher";

/** The caller asked for a revision newer than the source of record has. */
export class CatalogRevNotYetAvailable extends Error {
  constructor(readonly available: number) {
    super(`catalog revision ${available} is the newest`);
  }
}

type WaitUntil = (p: Promise<unknown>) => void;

export class CatalogStore {
  #held: CompiledCatalog | null = null;
  #checkedAt = Number.NEGATIVE_INFINITY;
  /** The refresh in flight: requests past the TTL serve the held catalog meanwhile; a cold one joins it. */
  #inflight: Flight<CompiledCatalog> | null = null;
  /** The compile from D1 in flight, joined by every refresh that needs one. */
  #compiling: Flight<CompiledCatalog> | null = null;
  /** When this isolate last compiled the catalog from D1 (or tried to), and whether that failed. */
  #compiledAt = Number.NEGATIVE_INFINITY;
  #compileFailed = false;

  constructor(readonly ttlMs: number) {}

  /** The newest catalog this isolate holds (null before the first read). */
  get held(): CompiledCatalog | null {
    return this.#held;
  }

  /** A catalog of revision >= minRev: the isolate's while fresh, else KV's pointer and object, else D1. */
  async read(env: Env, now: number, minRev = 0, waitUntil?: WaitUntil): Promise<CompiledCatalog> {
    const held = this.#held;
    if (held && held.rev >= minRev && now - this.#checkedAt < this.ttlMs) return held;
    // Past the TTL (by less than another) while another request refreshes: the held catalog answers (no
    // request waits on another's I/O: store/flight.ts), so a change is seen within ttlMs plus one refresh
    // of KV having it. Older than that, or nothing held: the request joins the refresh.
    const inflight = this.#inflight;
    if (inflight && held && held.rev >= minRev && now - this.#checkedAt < 2 * this.ttlMs) return held;
    let got: CompiledCatalog;
    if (inflight) got = await joinFlight(inflight);
    else {
      const flight = startFlight(this.#refresh(env, now, 0, waitUntil));
      this.#inflight = flight;
      try {
        got = await flight.promise;
      } finally {
        if (this.#inflight === flight) this.#inflight = null;
      }
    }
    // One that cannot satisfy minRev is followed by a targeted read of its own.
    if (got.rev >= minRev) return got;
    return this.#refresh(env, now, minRev, waitUntil);
  }

  /** Adopts a catalog compiled by this isolate's own write (never an older one than held). */
  adopt(catalog: CompiledCatalog, now: number): void {
    if (!this.#held || catalog.rev >= this.#held.rev) {
      this.#held = catalog;
      this.#checkedAt = now;
    }
  }

  async #refresh(env: Env, now: number, minRev: number, waitUntil?: WaitUntil): Promise<CompiledCatalog> {
    let head: number | null = null;
    let kvFailed = false;
    try {
      const pointer = await env.SNAPSHOTS.get<{ rev?: unknown }>(kvKeys.catalogHead, "json");
      if (pointer && typeof pointer.rev === "number") head = pointer.rev;
    } catch (err) {
      kvFailed = true;
      console.warn(JSON.stringify({ msg: "catalog pointer read failed", error: String(err) }));
    }
    const want = Math.max(head ?? 0, minRev);
    const held = this.#held;
    if (held && held.rev >= want && (head !== null || kvFailed)) {
      // Up to date with the pointer (or KV cannot say: the held catalog serves until it can).
      this.#checkedAt = now;
      return held;
    }
    if (head !== null && !kvFailed) {
      try {
        const obj = await env.SNAPSHOTS.get(kvKeys.catalog(want), "json");
        if (isCompiledCatalog(obj) && obj.rev === want) {
          this.adopt(obj, now);
          return obj;
        }
      } catch (err) {
        console.warn(JSON.stringify({ msg: "catalog read failed", rev: want, error: String(err) }));
      }
    }
    let compiled: CompiledCatalog;
    try {
      compiled = await this.#fromD1(env, now, head, waitUntil);
    } catch (err) {
      if (held && held.rev >= minRev) {
        this.#checkedAt = now; // stale, but the newest this isolate can have: again after ttlMs
        return held;
      }
      throw new SnapshotUnavailable(String(err));
    }
    if (compiled.rev < minRev) throw new CatalogRevNotYetAvailable(compiled.rev);
    return compiled;
  }

  /**
   * The catalog compiled from D1, and published. One compile at a time per isolate, and while it holds a
   * catalog, one per ttlMs whatever happens (KV failing or behind, a minVersion asking for a revision
   * that does not exist yet, D1 failing): within that window the held catalog answers, the newest D1
   * gave (or a failure again, when the last compile failed).
   */
  #fromD1(env: Env, now: number, head: number | null, waitUntil?: WaitUntil): Promise<CompiledCatalog> {
    if (this.#compiling) return joinFlight(this.#compiling);
    const held = this.#held;
    if (held && now - this.#compiledAt < this.ttlMs)
      return this.#compileFailed
        ? Promise.reject(new Error("the catalog compile from D1 failed less than the catalog TTL ago"))
        : Promise.resolve(held);
    this.#compiledAt = now;
    const flight = startFlight(
      this.#compile(env, now, head, waitUntil).finally(() => {
        if (this.#compiling === flight) this.#compiling = null;
      }),
    );
    this.#compiling = flight;
    return flight.promise;
  }

  async #compile(env: Env, now: number, head: number | null, waitUntil?: WaitUntil): Promise<CompiledCatalog> {
    let compiled: CompiledCatalog;
    try {
      compiled = compileCatalog(await loadCatalogRows(env.DB), now);
      this.#compileFailed = false;
    } catch (err) {
      this.#compileFailed = true;
      console.error(JSON.stringify({ msg: "catalog compile failed", error: String(err) }));
      throw err;
    }
    this.adopt(compiled, now);
    // KV's pointer is missing or behind what D1 has: published as a repair (the publisher drops it when
    // it already has this revision or a newer one).
    if (head !== null && head >= compiled.rev) return compiled;
    const write = publishCatalog(env, compiled, now, "missing").catch((err) =>
      console.error(JSON.stringify({ msg: "catalog publish failed", rev: compiled.rev, error: String(err) })),
    );
    if (waitUntil) waitUntil(write);
    else await write;
    return compiled;
  }
}
