// Allowance leases for hot customers (issue 16; scale review section 5): a customer whose consumes
// outrun one Durable Object spreads them over N shard meters, and a coordinator hands each shard a
// lease, a share of the period's allowance it may admit from on its own. Pure: the arithmetic of
// both sides, no storage, no clock. The Durable Objects (meter/quota-coordinator.ts,
// meter/shard-leases.ts) keep this state in SQLite and move it between them by RPC.
//
// The invariant is the coordinator's: the sum of what it has let every shard hold never exceeds
// the bound. A shard admits q only when its own used + reserved + q fits in the lease it holds, and
// what a shard holds is never more than the coordinator counts for it, so the admitted total never
// exceeds the bound, whatever is lost, late or crashed in between (zero over-admission by
// construction). What is lost errs the other way: a grant whose answer never reached its shard, or
// a return that never reached the coordinator, stays counted as held until the shard's next report
// (bounded, temporary under-admission, reconciled by that report).
//
// Ordering: every message a shard sends (renew, return, an answer to a recall) carries a sequence
// number the shard persisted before sending; the coordinator applies only a newer one than it has,
// and a shard applies a grant only when no newer message of its own went out since it asked. So a
// late message never rolls anything back.

/** Virtual shards that idempotency keys hash onto; the active shards are taken from them by `mod`. */
export const VIRTUAL_SHARDS = 64;
/** The most shards a customer may have (customers.meter_shards). */
export const MAX_METER_SHARDS = 64;

export interface LeaseSizing {
  shards: number;
  /** The smallest chunk granted; below `shards` x this the coordinator grants exactly what is asked (funnel mode). */
  minChunk: number;
  /** The largest chunk granted (about two seconds of one shard's rate). */
  maxChunk: number;
}

export const DEFAULT_SIZING: Omit<LeaseSizing, "shards"> = { minChunk: 16, maxChunk: 1200 };

/** What the coordinator counts for one shard: the lease it lets it hold (used included), and its reported use. */
export interface ShardClaim {
  seq: number;
  held: number;
  used: number;
}

/** The coordinator's book for one (feature, period definition, period): the bound and every shard's claim. */
export interface LeaseBook {
  bound: number;
  claims: Record<number, ShardClaim>;
}

/** A shard's statement: what it holds (at least what it used and reserved), and what it used. */
export interface ShardReport {
  seq: number;
  claim: number;
  used: number;
}

export const emptyBook = (bound: number): LeaseBook => ({ bound, claims: {} });

export const heldTotal = (book: LeaseBook): number => Object.values(book.claims).reduce((s, c) => s + c.held, 0);
export const usedTotal = (book: LeaseBook): number => Object.values(book.claims).reduce((s, c) => s + c.used, 0);

/** Allowance not leased to any shard (never negative: records and usage from before sharding may exceed the bound). */
export const unleased = (book: LeaseBook): number => Math.max(0, book.bound - heldTotal(book));

/** Funnel mode: so little is left that chunks would strand it in idle shards; each grant is exactly what is asked. */
export const inFunnel = (book: LeaseBook, sizing: LeaseSizing): boolean =>
  unleased(book) < sizing.shards * sizing.minChunk;

/**
 * The chunk for a shard that needs `need` more: clamp(unleased / (4N), minChunk, maxChunk), never
 * less than the need and never more than is unleased; 0 when the need does not fit.
 */
export function chunk(book: LeaseBook, sizing: LeaseSizing, need: number): number {
  const free = unleased(book);
  if (need > free) return 0;
  if (inFunnel(book, sizing)) return need;
  const c = Math.min(sizing.maxChunk, Math.max(sizing.minChunk, Math.floor(free / (4 * sizing.shards))));
  return Math.min(free, Math.max(need, c));
}

/** Takes a shard's report when it is newer than the last; a stale one changes nothing (`applied` false). */
export function applyReport(book: LeaseBook, shard: number, r: ShardReport): { book: LeaseBook; applied: boolean } {
  const had = book.claims[shard];
  if (had && r.seq <= had.seq) return { book, applied: false };
  return {
    book: { ...book, claims: { ...book.claims, [shard]: { seq: r.seq, held: r.claim, used: r.used } } },
    applied: true,
  };
}

/**
 * A shard asks for `need` more (its report first). The answer's `granted` is added to what the
 * shard holds (the shard's new lease is its claim plus it); null when the report is stale.
 */
export function renew(
  book: LeaseBook,
  shard: number,
  r: ShardReport,
  need: number,
  sizing: LeaseSizing,
): { book: LeaseBook; granted: number } | null {
  const reported = applyReport(book, shard, r);
  if (!reported.applied) return null;
  return grantMore(reported.book, shard, r.seq, need, sizing);
}

/** A further grant for the shard's message `seq` (after a recall): nothing when the shard has spoken since. */
export function grantMore(
  book: LeaseBook,
  shard: number,
  seq: number,
  need: number,
  sizing: LeaseSizing,
): { book: LeaseBook; granted: number } {
  const claim = book.claims[shard];
  if (!claim || claim.seq !== seq) return { book, granted: 0 };
  const granted = chunk(book, sizing, need);
  if (granted === 0) return { book, granted };
  return { book: { ...book, claims: { ...book.claims, [shard]: { ...claim, held: claim.held + granted } } }, granted };
}

/** The shards to recall unused allowance from, when a shard's need does not fit: every other one holding more than it used. */
export const recallTargets = (book: LeaseBook, shard: number): number[] =>
  Object.entries(book.claims)
    .filter(([i, c]) => Number(i) !== shard && c.held > c.used)
    .map(([i]) => Number(i));

// ---- the shard's side ------------------------------------------------------------------------

/** A shard's lease on one (feature, period definition, period): what it may admit up to, and its last message. */
export interface ShardLease {
  granted: number;
  seq: number;
  /** The bound the lease was granted under: a call with another bound (new terms) hands it back first. */
  bound: number;
}

/** How many more units the shard needs for q (0: it admits from its lease). */
export const shortfall = (lease: ShardLease, used: number, reserved: number, q: number): number =>
  Math.max(0, used + reserved + q - lease.granted);

/** What a shard states it holds: its lease, or more when records (never refused) or pre-sharding use went past it. */
export const claimOf = (lease: ShardLease, used: number, reserved: number): number =>
  Math.max(lease.granted, used + reserved);

/** The shard of an idempotency key: by hash over the virtual shards, so every retry reaches the same one. */
export function shardOf(key: string | null, shards: number, random: number): number {
  if (shards <= 1) return 0;
  if (key === null) return Math.min(shards - 1, Math.floor(random * shards));
  return virtualShard(key) % shards;
}

/** FNV-1a (32 bits) of the key, onto VIRTUAL_SHARDS. */
export function virtualShard(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % VIRTUAL_SHARDS;
}

/**
 * The lease bound of an allowance: the limit, or limit + cap for a soft limit with a cap; null when
 * nothing bounds it (unlimited, or a soft limit without a cap), and then shards only count.
 */
export function leaseBound(a: { limit: number | null; overage: "block" | "allow"; overageCap: number | null }) {
  if (a.limit === null) return null;
  if (a.overage !== "allow") return a.limit;
  return a.overageCap === null ? null : a.limit + a.overageCap;
}

/**
 * Shards for a target rate of consumes per second, at about `perShard` each with headroom (the
 * scale review's 600/s per shard measured as a safe share of one Durable Object's ~1,000/s).
 */
export const shardsFor = (targetPerSecond: number, perShard = 600): number =>
  Math.min(MAX_METER_SHARDS, Math.max(1, Math.ceil(targetPerSecond / perShard)));

/** The part and the snapshot carry meterShards only when sharded, so parts from before it compare equal. */
export const shardsField = (n: number | undefined): { meterShards?: number } =>
  n !== undefined && n > 1 ? { meterShards: n } : {};
