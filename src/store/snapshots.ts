// The check path's read of a customer snapshot, composed from two parts cached independently:
// - the customer part: bounded isolate cache (short TTL) -> KV `part:<id>` -> compile from D1
//   (read-through, published back as a repair through the customer's publisher: store/publisher.ts,
//   which never lets an older part replace a newer one); a KV copy older than half its expiry asks the
//   publisher for a refresh, so the parts that are read never expire;
// - the shared catalog (store/catalog-store.ts): one per isolate, refreshed by a pointer.
// compose (domain/compose.ts) joins them, memoised per (part, catalog revision): a warm check touches
// no binding and composes nothing. A part is never composed with a catalog older than the one it was
// read with. Also the write path used after every customer write (compile).
import type { CompiledCatalog } from "../domain/catalog-compile";
import { compose } from "../domain/compose";
import { type CustomerPart, compilePart, isCustomerPart, type PartRows } from "../domain/customer-part";
import type { FailurePolicy, Snapshot } from "../domain/types";
import {
  catalogNeeded,
  describeMinVersion,
  formatVersion,
  type MinVersion,
  partSatisfies,
  type WriteVersion,
  writeVersionOf,
} from "../domain/version";
import type { Env } from "../env";
import { BoundedCache } from "./bounded-cache";
import { CatalogRevNotYetAvailable, CatalogStore } from "./catalog-store";
import { loadPartRows } from "./customer-rows";
import { type DegradedReason, SnapshotUnavailable } from "./errors";
import { type Flight, joinFlight, startFlight } from "./flight";
import { kvKeys } from "./kv";
import { ReadBudget } from "./read-budget";
import { publishPart, refreshPart } from "./snapshot-publisher";

export { type DegradedReason, SnapshotUnavailable };

export type SnapshotSource = "isolate" | "kv" | "d1" | "stale";

export interface SnapshotRead {
  /** null: no such customer. */
  snapshot: Snapshot | null;
  /** Where the customer part came from. */
  source: SnapshotSource;
  /** True when the answer comes from an expired copy because D1 could not be read (or was not, see degradedReason). */
  degraded: boolean;
  /** Set when degraded: the stores failed, or this isolate's read-through budget was spent. */
  degradedReason?: DegradedReason;
}

export interface SnapshotStoreOptions {
  ttlMs: number;
  maxEntries: number;
  maxBytes: number;
  /** How old an expired copy may be and still be served when KV and D1 fail. */
  staleIfErrorMs: number;
  /** How often an isolate looks at the catalog pointer in KV. */
  catalogTtlMs: number;
  /** Part compiles from D1 on a KV miss, per second and isolate, on average (writes are never limited). */
  readThroughPerSecond: number;
  /** How many such compiles an isolate may make at once before the per-second rate applies. */
  readThroughBurst: number;
  /** How long a published part lives in KV unless published again (KV's expirationTtl, seconds). */
  partTtlSeconds: number;
  /**
   * Consumes only: how long after it was read a part stays fresh while the customer's meter keeps
   * confirming it (`confirm`), instead of ttlMs. Checks never use it.
   */
  confirmedMaxMs: number;
}

export const DEFAULT_SNAPSHOT_CACHE: SnapshotStoreOptions = {
  ttlMs: 5_000,
  maxEntries: 10_000,
  maxBytes: 32 * 1024 * 1024, // a quarter of the 128 MB isolate limit
  staleIfErrorMs: 24 * 3600_000,
  catalogTtlMs: 5_000,
  readThroughPerSecond: 50,
  readThroughBurst: 100,
  partTtlSeconds: 2 * 24 * 3600,
  confirmedMaxMs: 60_000,
};

/** A refresh of one customer's part is asked for at most this often per isolate (domain/publication.ts REPAIR_INTERVAL_MS). */
const REFRESH_ASK_INTERVAL_MS = 60_000;

/** How many in-flight loads of a customer a read joins before it starts its own (store/snapshots.ts #part). */
const MAX_JOINS = 3;

/**
 * Heap bytes of a parsed snapshot per character of its JSON, for the cache's byte bound. `npm run bench`
 * measures 1.26-1.29 in Node 22 (8-byte pointers; workerd's compressed 4-byte pointers take less), for
 * snapshots of 10 to 100 features; 1.5 keeps the bound an upper bound.
 */
export const PARSED_BYTES_PER_JSON_CHAR = 1.5;

/** The caller asked for a version newer than the source of record has. */
export class VersionNotYetAvailable extends Error {
  constructor(
    readonly wanted: string,
    /** In the form it was asked in: a number for a numeric minVersion, else a token. */
    readonly available: string | number,
  ) {
    super(`version ${wanted} does not exist yet; the newest is ${available}`);
  }
}

type WaitUntil = (p: Promise<unknown>) => void;

/** A cached customer: its part and, once composed, the snapshot of that part with one catalog. */
interface Entry {
  part: CustomerPart;
  partBytes: number;
  composed: Snapshot | null;
  /** When the customer's meter last decided a call made on this part's terms (confirm). */
  confirmedAt?: number;
}

/** What KV holds for an id that is no customer: `{"unknown":true}`, expiring after UNKNOWN_TTL_SECONDS (KV's minimum). */
const UNKNOWN_MARK = JSON.stringify({ unknown: true });
export const UNKNOWN_TTL_SECONDS = 60;

export class SnapshotStore {
  readonly cache: BoundedCache<Entry | null>;
  readonly catalogs: CatalogStore;
  readonly readThrough: ReadBudget;
  /** At most one load per customer at a time (KV, then D1 on a miss): every concurrent read joins it. */
  readonly #inflight = new Map<string, Load>();
  #seq = 0;

  constructor(readonly options: SnapshotStoreOptions = DEFAULT_SNAPSHOT_CACHE) {
    this.cache = new BoundedCache(options.maxEntries, options.maxBytes);
    this.catalogs = new CatalogStore(options.catalogTtlMs);
    this.readThrough = new ReadBudget(options.readThroughPerSecond, options.readThroughBurst);
  }

  /** A feature's failure policy, from the catalog this isolate holds: readable with KV and D1 down. */
  failurePolicy(feature: string): FailurePolicy | undefined {
    const features = this.catalogs.held?.features;
    return features && Object.hasOwn(features, feature) ? features[feature]?.failurePolicy : undefined;
  }

  async read(
    env: Env,
    customerId: string,
    now: number,
    opts: { minVersion?: MinVersion; waitUntil?: WaitUntil; confirmed?: boolean } = {},
  ): Promise<SnapshotRead> {
    const min = opts.minVersion;
    const got = await this.#part(env, customerId, now, min, opts.waitUntil, opts.confirmed === true);
    if (!got.entry) return { snapshot: null, source: got.source, degraded: false };
    const catalog = await this.#catalog(env, now, got.entry.part, min, opts.waitUntil);
    return {
      snapshot: this.#compose(customerId, got.entry, catalog),
      source: got.source,
      degraded: got.degraded,
      ...(got.degradedReason ? { degradedReason: got.degradedReason } : {}),
    };
  }

  /**
   * Compiles the part from D1 and publishes it (part history, then KV), refreshing this isolate's copy;
   * answers the version a write returns (null: no such customer). The catalog is not read.
   */
  async compile(
    env: Env,
    customerId: string,
    now: number,
    opts: { waitUntil?: WaitUntil; repair?: "drift" } = {},
  ): Promise<WriteVersion | null> {
    const entry = await this.#compilePart(env, customerId, now, opts.waitUntil, opts.repair);
    return entry ? writeVersionOf(entry.part) : null;
  }

  invalidate(customerId: string): void {
    this.cache.delete(customerId);
  }

  /**
   * The customer's meter decided a call made on the terms of customer revision `rev`: it had been told of
   * no newer one (every customer write pushes its version to the meter, which refuses older terms:
   * write/commit.ts, meter/terms-version.ts). So for the next consumes the held part of that revision
   * stays fresh for another ttlMs, up to confirmedMaxMs after it was read from KV or D1: a busy customer's
   * consumes do not re-read the part every ttlMs. A change the meter was not told of (its push failed)
   * reaches consumes within confirmedMaxMs; checks keep ttlMs.
   */
  confirm(customerId: string, rev: number, now: number): void {
    const entry = this.cache.get(customerId)?.value;
    if (entry && entry.part.rev === rev) entry.confirmedAt = now;
  }

  /**
   * The customer's part, satisfying `min`. A read past the TTL while a load of the customer is in flight
   * answers from the held part when that satisfies its `min`; otherwise concurrent reads share one load,
   * minVersion or not (joined on the reader's own timers: store/flight.ts): a read joins the load in flight
   * and takes its result when that satisfies its own `min`; one that
   * does not satisfy it, read before this read arrived, is followed by another load (shared in turn). A
   * fresh D1 read that started after this read arrived is final: below `min` it is a 409.
   */
  async #part(
    env: Env,
    customerId: string,
    now: number,
    min: MinVersion | undefined,
    waitUntil: WaitUntil | undefined,
    confirmed: boolean,
  ): Promise<PartRead> {
    const hit = this.cache.get(customerId);
    const ttl = this.options.ttlMs;
    if (hit && (hit.value === null ? !min : partSatisfies(hit.value.part, min))) {
      const age = now - hit.storedAt;
      if (age < ttl) return { entry: hit.value, source: "isolate", degraded: false };
      const at = hit.value?.confirmedAt;
      if (confirmed && at !== undefined && now - at < ttl && age < this.options.confirmedMaxMs)
        return { entry: hit.value, source: "isolate", degraded: false };
      // Past the TTL (by less than another) while another request loads this customer: the held part
      // answers, so no request waits on another's I/O (store/flight.ts).
      if (age < 2 * ttl && this.#inflight.has(customerId))
        return { entry: hit.value, source: "isolate", degraded: false };
    }
    const arrived = ++this.#seq;
    for (let round = 0; ; round++) {
      // After MAX_JOINS loads that could not say, a load of its own, with its own min: always final.
      const joined = round < MAX_JOINS ? this.#inflight.get(customerId) : undefined;
      const flight =
        joined ??
        (round < MAX_JOINS
          ? this.#start(env, customerId, now, min, waitUntil)
          : this.#flight(env, customerId, now, min, waitUntil));
      const loaded = joined ? await joinFlight(joined.loaded) : await flight.loaded.promise;
      const got = this.#resolve(customerId, loaded, now, min, flight.seq > arrived || round >= MAX_JOINS);
      if (got) return got;
    }
  }

  #flight(env: Env, customerId: string, now: number, min: MinVersion | undefined, waitUntil?: WaitUntil): Load {
    return { seq: ++this.#seq, loaded: startFlight(this.#load(env, customerId, now, min, waitUntil)) };
  }

  /** A load the reads of this customer that arrive while it runs may join (or answer from the held part). */
  #start(env: Env, customerId: string, now: number, min: MinVersion | undefined, waitUntil?: WaitUntil): Load {
    const load = this.#flight(env, customerId, now, min, waitUntil);
    this.#inflight.set(customerId, load);
    const done = () => {
      if (this.#inflight.get(customerId) === load) this.#inflight.delete(customerId);
    };
    load.loaded.promise.then(done, done); // #load never throws; done either way
    return load;
  }

  /**
   * What one load means for a read wanting `min` (null: it cannot say, load again). `final`: the load
   * started after the read arrived, so a fresh D1 read below `min` is the newest there is.
   */
  #resolve(
    customerId: string,
    loaded: Loaded,
    now: number,
    min: MinVersion | undefined,
    final: boolean,
  ): PartRead | null {
    if (loaded.ok) {
      const { entry, source } = loaded;
      if (entry ? partSatisfies(entry.part, min) : !min) return { entry, source, degraded: false };
      if (source !== "d1" || !final) return null;
      if (!entry || !min) return { entry: null, source, degraded: false };
      throw new VersionNotYetAvailable(describeMinVersion(min), available(entry.part, min));
    }
    // D1 failed or was not asked (budget spent): the newest copy that satisfies `min`, from KV (read in
    // this load: not degraded, it is what KV holds) or the isolate (expired: degraded), never the
    // failure policy while one exists.
    const stale = this.cache.get(customerId);
    const held =
      stale?.value && now - stale.storedAt < this.options.staleIfErrorMs && partSatisfies(stale.value.part, min)
        ? stale.value
        : null;
    const kv = loaded.kv && partSatisfies(loaded.kv.part, min) ? loaded.kv : null;
    if (kv && (!held || newer(kv.part, held.part) || kv.part === held.part)) {
      if (kv.part !== held?.part) this.#remember(kv.part, now, kv.partBytes / PARSED_BYTES_PER_JSON_CHAR);
      return { entry: kv, source: "kv", degraded: false };
    }
    if (held) return { entry: held, source: "stale", degraded: true, degradedReason: loaded.reason };
    throw new SnapshotUnavailable(loaded.error, loaded.reason);
  }

  /** KV, then (on a miss, or a KV copy below the load's `min`) a compile from D1 within the read-through budget. Never throws. */
  async #load(
    env: Env,
    customerId: string,
    now: number,
    min: MinVersion | undefined,
    waitUntil?: WaitUntil,
  ): Promise<Loaded> {
    let kv: Entry | null = null;
    try {
      const { value: text, metadata } = await env.SNAPSHOTS.getWithMetadata<{ publishedAt?: unknown }>(
        kvKeys.part(customerId),
        "text",
      );
      if (text !== null) {
        const value = JSON.parse(text) as unknown;
        if (isCustomerPart(value)) {
          this.#refreshIfOld(env, customerId, metadata?.publishedAt, now, waitUntil);
          const held = this.#newerHeld(customerId, value, now);
          if (held && partSatisfies(held.part, min)) return { ok: true, entry: held, source: "isolate" };
          if (!held && partSatisfies(value, min))
            return { ok: true, entry: this.#remember(value, now, text.length), source: "kv" };
          kv = { part: value, partBytes: Math.ceil(text.length * PARSED_BYTES_PER_JSON_CHAR), composed: null };
        } else if (!min && typeof value === "object" && value !== null && "unknown" in value) {
          // Known in KV to be no customer (cached for UNKNOWN_TTL_SECONDS): no D1 read. A read that must
          // see a write (minVersion) still goes to D1, where the customer may exist by now.
          this.cache.set(customerId, null, now, 64);
          return { ok: true, entry: null, source: "kv" };
        }
      }
    } catch (err) {
      console.warn(JSON.stringify({ msg: "kv read failed", customerId, error: String(err) }));
    }
    if (!this.readThrough.take(now)) {
      this.#logLimited(now);
      return {
        ok: false,
        reason: "read_through_limited",
        error: "the read-through budget of this isolate is spent",
        kv,
      };
    }
    try {
      const rows = await readThroughRows(env.DB, customerId, min);
      return {
        ok: true,
        entry: await this.#compilePart(env, customerId, now, waitUntil, "missing", rows),
        source: "d1",
      };
    } catch (err) {
      console.error(JSON.stringify({ msg: "d1 read failed", customerId, error: String(err) }));
      return { ok: false, reason: "stores_unavailable", error: String(err), kv };
    }
  }

  #limited = 0;
  #limitedLoggedAt = Number.NEGATIVE_INFINITY;

  /** One log line a second at most in a storm, with how many reads were turned away since the last. */
  #logLimited(now: number): void {
    this.#limited++;
    if (now - this.#limitedLoggedAt < 1_000) return;
    console.warn(JSON.stringify({ msg: "read-through limited", turnedAway: this.#limited }));
    this.#limited = 0;
    this.#limitedLoggedAt = now;
  }

  /**
   * A KV copy published more than half its expiry ago (or before parts expired at all) asks the customer's
   * publisher to recompile and republish it, once a minute per isolate at most and within the read-through
   * budget (the publisher reads D1): a part that is read is republished before it expires.
   */
  #refreshIfOld(env: Env, customerId: string, publishedAt: unknown, now: number, waitUntil?: WaitUntil): void {
    const halfLife = (this.options.partTtlSeconds * 1000) / 2;
    if (typeof publishedAt === "number" && now - publishedAt < halfLife) return;
    const asked = this.#refreshAsked.get(customerId);
    if (asked !== undefined && now - asked < REFRESH_ASK_INTERVAL_MS) return;
    if (!this.readThrough.take(now)) return;
    if (this.#refreshAsked.size >= this.options.maxEntries) this.#refreshAsked.clear();
    this.#refreshAsked.set(customerId, now);
    const refresh = refreshPart(env, customerId, now).catch((err) =>
      console.warn(JSON.stringify({ msg: "part refresh failed", customerId, error: String(err) })),
    );
    if (waitUntil) waitUntil(refresh);
  }

  readonly #refreshAsked = new Map<string, number>();

  /**
   * The part this isolate holds (fresh or expired) when KV's copy is older: this location's KV has not
   * caught up with a write this isolate has seen (its own, a read-through, a minVersion read), and an
   * isolate never goes back to an older part. Kept for another TTL. Not when KV's copy was compiled
   * later: the customer was deleted and created again, and its revisions started over.
   */
  #newerHeld(customerId: string, kv: CustomerPart, now: number): Entry | null {
    const cached = this.cache.get(customerId);
    const held = cached?.value;
    if (!cached || !held || !newer(held.part, kv) || held.part.compiledAt < kv.compiledAt) return null;
    this.cache.set(customerId, held, now, cached.bytes);
    return held;
  }

  /**
   * The part compiled from D1 and published (history, then the customer's publisher). `repair`: KV was
   * found without it (a read-through: in the background when the caller gives waitUntil) or holding
   * something else (a rebuild), so the publisher writes it even if it already published this version. A
   * write awaits it. A failed publication is logged, not
   * thrown: the caller still gets the fresh part, the publisher retries what it was given, and the cron
   * republishes a write whose publication never reached the publisher (scheduled.ts).
   */
  async #compilePart(
    env: Env,
    customerId: string,
    now: number,
    waitUntil?: WaitUntil,
    repair?: "missing" | "drift",
    read?: PartRows | null,
  ): Promise<Entry | null> {
    const rows = read === undefined ? await loadPartRows(env.DB, customerId) : read;
    if (!rows) {
      this.cache.set(customerId, null, now, 64);
      // Unknown ids are cached in KV too, briefly, so probing ids costs each isolate no D1 read. Creating
      // the customer publishes its part over this mark; a read-through that raced the creation can leave
      // the mark for at most UNKNOWN_TTL_SECONDS (a write's minVersion reads through it).
      const mark = env.SNAPSHOTS.put(kvKeys.part(customerId), UNKNOWN_MARK, {
        expirationTtl: UNKNOWN_TTL_SECONDS,
      }).catch((err) =>
        console.warn(JSON.stringify({ msg: "unknown-customer mark failed", customerId, error: String(err) })),
      );
      if (waitUntil) waitUntil(mark);
      else await mark;
      return null;
    }
    const part = compilePart(rows, now);
    const text = JSON.stringify(part);
    const write = publishPart(env, part, text, this.options.partTtlSeconds, now, repair).catch((err) =>
      console.error(JSON.stringify({ msg: "part publication failed", customerId, error: String(err) })),
    );
    if (waitUntil && repair === "missing") waitUntil(write);
    else await write;
    return this.#remember(part, now, text.length);
  }

  /** The catalog to compose `part` with: never older than the part's own, nor than minVersion asks. */
  async #catalog(
    env: Env,
    now: number,
    part: CustomerPart,
    min: MinVersion | undefined,
    waitUntil?: WaitUntil,
  ): Promise<CompiledCatalog> {
    const needed = Math.max(part.catalogRev, catalogNeeded(min));
    try {
      return await this.catalogs.read(env, now, needed, waitUntil);
    } catch (err) {
      if (err instanceof CatalogRevNotYetAvailable)
        throw new VersionNotYetAvailable(
          min ? describeMinVersion(min) : String(needed),
          formatVersion(part.rev, err.available),
        );
      throw err;
    }
  }

  #compose(customerId: string, entry: Entry, catalog: CompiledCatalog): Snapshot {
    if (entry.composed?.catalogRev === catalog.rev) return entry.composed;
    const composed = compose(entry.part, catalog);
    // Replace the entry (same part, same storedAt) so the cache's byte bound counts the composed snapshot too.
    const cached = this.cache.get(customerId);
    if (cached?.value?.part === entry.part) {
      entry.composed = composed;
      const bytes = entry.partBytes + Math.ceil(JSON.stringify(composed.features).length * PARSED_BYTES_PER_JSON_CHAR);
      this.cache.set(customerId, entry, cached.storedAt, bytes);
    }
    return composed;
  }

  #remember(part: CustomerPart, now: number, jsonLength: number): Entry {
    const partBytes = Math.ceil(jsonLength * PARSED_BYTES_PER_JSON_CHAR);
    const entry: Entry = { part, partBytes, composed: null };
    this.cache.set(part.customerId, entry, now, partBytes);
    return entry;
  }
}

interface PartRead {
  entry: Entry | null;
  source: SnapshotSource;
  degraded: boolean;
  degradedReason?: DegradedReason;
}

/** What one load of a customer found: a part (null: no such customer) from KV or D1, or why D1 gave none. */
type Loaded =
  | { ok: true; entry: Entry | null; source: "kv" | "d1" | "isolate" }
  | {
      ok: false;
      reason: DegradedReason;
      error: string /** The part KV gave in this load, below its min. */;
      kv: Entry | null;
    };

/** A load in flight; `seq` orders it against the reads that join it. */
interface Load {
  seq: number;
  loaded: Flight<Loaded>;
}

/**
 * A read-through's rows, from any D1 read replica (a Sessions API session, "first-unconstrained"): a storm
 * of KV misses spreads over the replicas instead of the one primary. A replica can lag: when its answer does
 * not satisfy `min`, or says the customer does not exist (it may have just been created), the primary is
 * asked (a plain query, outside any session). Writes, the publisher's refresh and rebuilds read the primary.
 * A replica's older part is as stale as a lagging KV location's, and its publisher drops it as older.
 */
export async function readThroughRows(
  db: D1Database,
  customerId: string,
  min: MinVersion | undefined,
): Promise<PartRows | null> {
  if (typeof db.withSession !== "function") return loadPartRows(db, customerId);
  const replica = await loadPartRows(db.withSession("first-unconstrained"), customerId);
  if (replica && partSatisfies({ rev: replica.customer.rev, catalogRev: replica.catalogRev }, min)) return replica;
  return loadPartRows(db, customerId);
}

/** Whether part `a` is newer than `b` (customer revision first, then the catalog revision read with it). */
const newer = (a: CustomerPart, b: CustomerPart): boolean =>
  a.rev > b.rev || (a.rev === b.rev && a.catalogRev > b.catalogRev);

/** The newest version D1 has, in the form `min` was asked in. */
function available(part: CustomerPart, min: MinVersion): string | number {
  return "sum" in min ? part.rev + part.catalogRev : formatVersion(part.rev, part.catalogRev);
}
