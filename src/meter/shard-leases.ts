// A shard meter's leases (issue 16; domain/leases.ts): per (feature, period definition, period), the
// allowance the coordinator let it hold, the seq of its last message to the coordinator, the bound
// it was granted under, and when it hands back what it did not use. Only the `leases` table's rows
// (meter schema v7); the decisions and the RPCs are the meter's (customer-meter.ts).
//
// Every change of what the shard holds is written here before the message that says so goes out
// (the Durable Object's output gate holds an RPC until the write is durable), so a crash between the
// two loses nothing: the shard holds at most what the coordinator counts for it.
import { claimOf, type ShardLease, type ShardReport } from "../domain/leases";
import type { LeaseKey, LeaseRoute, RenewAnswer } from "./protocol";

/** A lease is handed back this long after its last grant (the alarm), whether used or not. */
export const LEASE_TTL_MS = 30_000;
/** A hand-back the coordinator did not acknowledge is sent again after this. */
export const RETURN_RETRY_MS = 5_000;

export interface LeaseRow extends ShardLease {
  key: LeaseKey;
  route: LeaseRoute;
  /** When the unused part is handed back (0: nothing out). */
  expiresAt: number;
  /** A hand-back the coordinator has not acknowledged. */
  unreported: boolean;
  /** What the coordinator last said: allowance no shard held, and what the others had used. */
  unleased: number;
  othersUsed: number;
}

const K = "feature = ? AND definition = ? AND period_start = ?";
const k = (key: LeaseKey) => [key.feature, key.definition, key.periodStart] as const;

export class ShardLeases {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  get(key: LeaseKey): LeaseRow | null {
    const r = this.#sql.exec(`SELECT * FROM leases WHERE ${K}`, ...k(key)).toArray()[0];
    return r ? rowOf(r) : null;
  }

  /**
   * Before asking: the seq moves on (written now), and a lease granted under another bound (new
   * terms) is handed back first. Answers the report to send and the need it carries.
   */
  prepare(key: LeaseKey, route: LeaseRoute, bound: number, used: number, reserved: number, q: number) {
    const had = this.get(key);
    const granted = !had ? 0 : had.bound === bound ? had.granted : Math.min(had.granted, used + reserved);
    const lease = { granted, seq: (had?.seq ?? 0) + 1, bound };
    const claim = claimOf(lease, used, reserved);
    this.#sql.exec(
      `INSERT INTO leases (feature, definition, period_start, granted, seq, bound, expires_at, unreported, unleased,
         others_used, shard, shards, residency) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?)
       ON CONFLICT (feature, definition, period_start) DO UPDATE SET granted = excluded.granted, seq = excluded.seq,
         bound = excluded.bound, shard = excluded.shard, shards = excluded.shards, residency = excluded.residency`,
      ...k(key),
      granted,
      lease.seq,
      bound,
      had?.expiresAt ?? 0,
      route.shard,
      route.shards,
      route.residency,
    );
    const report: ShardReport = { seq: lease.seq, claim, used };
    return { report, need: used + reserved + q - claim };
  }

  /** The coordinator's answer to the message `report`: applied only when no newer message went out since. */
  applyGrant(key: LeaseKey, report: ShardReport, answer: RenewAnswer, now: number): boolean {
    const row = this.get(key);
    if (!row || row.seq !== report.seq) return false;
    const expiresAt = answer.granted > 0 ? now + LEASE_TTL_MS : row.expiresAt;
    this.#sql.exec(
      `UPDATE leases SET granted = ?, expires_at = ?, unleased = ?, others_used = ? WHERE ${K}`,
      report.claim + answer.granted,
      expiresAt,
      answer.unleased,
      answer.othersUsed,
      ...k(key),
    );
    return true;
  }

  /** Hands back what was not used or reserved (a recall, or expiry: then `unreported` until acknowledged). */
  giveBack(key: LeaseKey, used: number, reserved: number, unreported: boolean): ShardReport | null {
    const row = this.get(key);
    if (!row) return null;
    const granted = used + reserved;
    const seq = row.seq + 1;
    const flag = unreported ? 1 : 0;
    this.#sql.exec(
      `UPDATE leases SET granted = ?, seq = ?, expires_at = 0, unreported = ? WHERE ${K}`,
      granted,
      seq,
      flag,
      ...k(key),
    );
    return { seq, claim: Math.max(granted, 0), used };
  }

  /** The coordinator took the hand-back `seq`. */
  acknowledged(key: LeaseKey, seq: number): void {
    this.#sql.exec(`UPDATE leases SET unreported = 0 WHERE ${K} AND seq = ?`, ...k(key), seq);
  }

  /** Leases to hand back at `now`, and hand-backs to send again. */
  due(now: number): LeaseRow[] {
    const due = "SELECT * FROM leases WHERE (expires_at > 0 AND expires_at <= ?) OR unreported = 1";
    return this.#sql.exec(due, now).toArray().map(rowOf);
  }

  /** When the alarm next has lease work (null: none). */
  nextDue(now: number): number | null {
    const r = this.#sql
      .exec("SELECT MIN(expires_at) AS t, MAX(unreported) AS u FROM leases WHERE expires_at > 0 OR unreported = 1")
      .one();
    if (r.t === null && !r.u) return null;
    const retry = r.u ? now + RETURN_RETRY_MS : Number.POSITIVE_INFINITY;
    const expiry = r.t === null || Number(r.t) === 0 ? Number.POSITIVE_INFINITY : Number(r.t);
    return Math.min(retry, expiry);
  }

  /** A period ended: its leases are over (the coordinator drops its book at the new period's first grant). */
  dropBefore(feature: string, definition: string, periodStart: number): void {
    this.#sql.exec(
      "DELETE FROM leases WHERE feature = ? AND definition = ? AND period_start < ?",
      feature,
      definition,
      periodStart,
    );
  }
}

function rowOf(r: Record<string, SqlStorageValue>): LeaseRow {
  return {
    key: { feature: String(r.feature), definition: String(r.definition), periodStart: Number(r.period_start) },
    route: {
      shard: Number(r.shard),
      shards: Number(r.shards),
      residency: r.residency === null ? null : (String(r.residency) as LeaseRoute["residency"]),
    },
    granted: Number(r.granted),
    seq: Number(r.seq),
    bound: Number(r.bound),
    expiresAt: Number(r.expires_at),
    unreported: Number(r.unreported) === 1,
    unleased: Number(r.unleased),
    othersUsed: Number(r.others_used),
  };
}
