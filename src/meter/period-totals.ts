// The meter's period totals on their way to D1 (usage_periods, store/usage-ledger.ts). Every batch R2
// acknowledged adds its events here, in the same synchronous step that drops them from the outbox
// (meter/ledger.ts): one row per feature and period, the change not yet in D1 and the seqs it covers.
// D1 gets them at most once per METER_TOTALS_INTERVAL_MS per meter, or at once when a period closed,
// so a busy customer costs D1 one row per feature and interval, never one per consume.
//
// The table (pending_totals, meter schema v6) holds only what D1 has not acknowledged: a row is gone
// once written, and a write whose acknowledgement was lost is sent again exactly as it was, and
// ignored by D1 if it had landed (its through_seq already covers firstSeq). period_end is stored as -1 for a never-resetting feature, so
// the primary key sees one row per period (NULLs never conflict).
import { type LedgerEntry, type PeriodTotalDelta, periodTotalStatements } from "../store/usage-ledger";

// How often at most a meter writes its running totals to D1 (a period's close is written at once). Each
// write is one D1 transaction: 100,000 busy meters cost D1 about 333 a second at 5 minutes (docs/storage.md).
export const METER_TOTALS_INTERVAL_MS = 5 * 60_000;

const NO_END = -1;
const LAST_WRITE = "totals_written_at";
const IN_FLIGHT = "totals_in_flight";

interface Meta {
  get(key: string): SqlStorageValue;
  set(key: string, value: SqlStorageValue): void;
}

export class PeriodTotals {
  readonly #sql: SqlStorage;
  readonly #meta: Meta;

  constructor(sql: SqlStorage, meta: Meta) {
    this.#sql = sql;
    this.#meta = meta;
  }

  /** Adds the events R2 has acknowledged. A close adds nothing (its amount is the sum of the events) but makes the row final. */
  add(entries: LedgerEntry[]): void {
    for (const e of entries) {
      const delta = e.kind === "close" ? 0 : e.amount;
      const final = e.kind === "close" || e.kind === "late" ? 1 : 0;
      this.#sql.exec(
        `INSERT INTO pending_totals (feature, period_start, period_end, delta, final, first_seq, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (feature, period_start, period_end) DO UPDATE SET delta = delta + excluded.delta,
           final = MAX(final, excluded.final), last_seq = excluded.last_seq`,
        e.feature,
        e.period.start,
        e.period.end ?? NO_END,
        delta,
        final,
        e.seq,
        e.seq,
      );
    }
  }

  /** When D1 should next get the totals: null when nothing is pending, `now` when a period closed. */
  dueAt(now: number): number | null {
    const row = this.#sql.exec("SELECT COUNT(*) AS n, MAX(final) AS closed FROM pending_totals").one();
    if (Number(row.n) === 0) return null;
    if (Number(row.closed) === 1 || this.#meta.get(IN_FLIGHT) !== null) return now;
    return Number(this.#meta.get(LAST_WRITE) ?? 0) + METER_TOTALS_INTERVAL_MS;
  }

  /**
   * Sends the pending rows to D1 in one batch; after the acknowledgement, drops what was sent. A
   * batch whose answer never came is kept as it was sent (meta totals_in_flight) and sent first, byte
   * for byte, at the next write: had D1 applied it, the seqs guard ignores it; rows that grew since go
   * in a second batch with only their new part. Throws when D1 fails. Answers the batches written.
   */
  async write(db: D1Database, customerId: string, meterId: string, now: number): Promise<number> {
    let written = 0;
    const stuck = this.#meta.get(IN_FLIGHT);
    if (stuck !== null) {
      await this.#send(db, customerId, meterId, JSON.parse(String(stuck)) as PeriodTotalDelta[], now);
      written++;
    }
    const deltas = this.#pending();
    if (deltas.length === 0) return written;
    this.#meta.set(IN_FLIGHT, JSON.stringify(deltas));
    await this.#send(db, customerId, meterId, deltas, now);
    return written + 1;
  }

  async #send(db: D1Database, customerId: string, meterId: string, deltas: PeriodTotalDelta[], now: number) {
    await db.batch(periodTotalStatements(db, customerId, meterId, deltas, now));
    // Synchronously after the await: a row that grew meanwhile keeps only its new part.
    for (const d of deltas) {
      const key = [d.feature, d.period.start, d.period.end ?? NO_END] as const;
      this.#sql.exec(
        "DELETE FROM pending_totals WHERE feature = ? AND period_start = ? AND period_end = ? AND last_seq = ?",
        ...key,
        d.lastSeq,
      );
      this.#sql.exec(
        "UPDATE pending_totals SET delta = delta - ?, first_seq = ? WHERE feature = ? AND period_start = ? AND period_end = ?",
        d.delta,
        d.lastSeq + 1,
        ...key,
      );
    }
    this.#meta.set(IN_FLIGHT, null);
    this.#meta.set(LAST_WRITE, now);
  }

  #pending(): PeriodTotalDelta[] {
    return this.#sql
      .exec("SELECT * FROM pending_totals ORDER BY feature, period_start, period_end")
      .toArray()
      .map((r) => ({
        feature: String(r.feature),
        period: { start: Number(r.period_start), end: Number(r.period_end) === NO_END ? null : Number(r.period_end) },
        delta: Number(r.delta),
        final: Number(r.final) === 1,
        firstSeq: Number(r.first_seq),
        lastSeq: Number(r.last_seq),
      }));
  }
}
