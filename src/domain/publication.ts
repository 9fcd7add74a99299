// What a publisher (store/publisher.ts, one Durable Object per KV entry it owns) does with a publication,
// as data: the guard that keeps KV from ever going back to an older version, and the retry schedule.
// Pure: the object calls these with its state and the caller's clock.

/** A version, compared element by element (a customer part: [rev, catalogRev]; the catalog: [rev]). */
export type PubVersion = readonly number[];

/** One KV write: `value` null deletes the key. */
export interface KvPut {
  key: string;
  value: string | null;
  /** KV's expirationTtl, in seconds (60 at least). */
  ttlSeconds?: number;
  metadata?: Record<string, string | number | boolean | null>;
}

export interface Publication {
  version: PubVersion;
  /** When its content was read from D1: a publication read before (or as) the entry was retired is refused. */
  compiledAt: number;
  puts: KvPut[];
  /**
   * Written even when this version is already published. "missing": a reader found KV without it (missing,
   * expired, behind: coalesced, once per REPAIR_INTERVAL_MS, as lagging locations ask again); "drift": KV
   * was verified to hold something else (`snapshots rebuild`): always written.
   */
  repair?: "missing" | "drift";
}

export interface PublishAnswer {
  /**
   * published: KV has it now; pending: KV will, retried (retryInMs); current: KV already had this
   * version; superseded: a newer one is published or pending, this one was dropped; gone: nothing to
   * publish (refresh of a customer that no longer exists).
   */
  state: "published" | "pending" | "current" | "superseded" | "gone";
  /** The newest version the publisher holds after the call (published or pending). */
  newest: PubVersion | null;
  retryInMs?: number;
}

/** The publisher's state (one row in its SQLite storage). */
export interface PublisherState {
  /** The newest version KV has been written with, null before the first (or after a retirement). */
  published: PubVersion | null;
  publishedAt: number;
  /** A publication not yet in KV: the newest the publisher has been given, retried until KV takes it. */
  pending: Publication | null;
  attempts: number;
  /** Publications read from D1 at or before this instant are refused (the entry was retired then). */
  floor: number;
}

export const EMPTY_STATE: PublisherState = { published: null, publishedAt: 0, pending: null, attempts: 0, floor: 0 };

/** KV takes about one write per second per key (429 beyond): the publisher spaces its own writes by this. */
export const MIN_PUT_INTERVAL_MS = 1_000;
/** A repair of the version already published is written at most this often (a lagging location asks again). */
export const REPAIR_INTERVAL_MS = 60_000;
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 5 * 60_000;

export type Verdict =
  /** Newer than anything the publisher has: it becomes the pending publication. */
  | "accept"
  /** KV already has this version (or a write of it is pending, or a repair was made moments ago). */
  | "current"
  /** Older than what KV has or is about to have, or read before the entry was retired: dropped. */
  | "superseded";

export function compareVersions(a: PubVersion, b: PubVersion): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** The newest version the publisher has: pending, else published. */
export function newestOf(state: PublisherState): PubVersion | null {
  return state.pending ? state.pending.version : state.published;
}

/** What to do with `pub`: never anything older than the newest the publisher has been given. */
export function judge(state: PublisherState, pub: Publication, now: number): Verdict {
  if (pub.compiledAt <= state.floor) return "superseded";
  const newest = newestOf(state);
  if (newest === null) return "accept";
  const order = compareVersions(pub.version, newest);
  if (order > 0) return "accept";
  if (order < 0) return "superseded";
  if (state.pending || !pub.repair) return "current";
  if (pub.repair === "drift") return "accept";
  return now - state.publishedAt >= REPAIR_INTERVAL_MS ? "accept" : "current";
}

/**
 * How long to wait before writing the pending publication: KV's per-key rate first (a write less than
 * MIN_PUT_INTERVAL_MS after the last one waits for the rest of it), then after a failure, exponential
 * backoff from 1 s doubling to 5 min, with up to 20 % jitter so publishers that failed together do not
 * retry together. `random` is in [0, 1).
 */
export function delayBeforeWrite(state: PublisherState, now: number, random: number): number {
  const spacing = Math.max(0, state.publishedAt + MIN_PUT_INTERVAL_MS - now);
  if (state.attempts === 0) return spacing;
  const backoff = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (state.attempts - 1));
  return Math.max(spacing, Math.round(backoff * (1 + 0.2 * random)));
}
