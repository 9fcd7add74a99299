// The usage ledger in D1: usage_events (every applied change, by meter and meter sequence number)
// and usage_periods (the total of each closed period, per meter). Only the meters write it, through
// their outbox flush (meter/ledger.ts), at least once: INSERT OR IGNORE on the primary keys makes a
// repeated flush harmless. The keys name the meter object, not only the customer: every meter
// object counts its sequence from 1, and a customer may get a second one (a residency change).
// GET /v1/usage/{customerId} reads the closed periods' totals back from usage_periods, summed over
// meters, a bounded page at a time.
import type { MeterPeriod } from "../meter/protocol";

/** The meter id of ledger rows written before the ledger named meters (the columns' default). */
export const UNNAMED_METER_ID = "";

/** One outbox entry of a meter, as the flush sends it. "close" is a period's total; the rest are events. */
export interface LedgerEntry {
  /** The meter object that queued it (its Durable Object id), or UNNAMED_METER_ID. */
  meterId: string;
  seq: number;
  kind: string;
  feature: string;
  amount: number;
  period: MeterPeriod;
  occurredAt: number;
  idempotencyKey: string | null;
}

/**
 * The statements that write `entries` for one customer; the caller sends them as one batch. A "late"
 * entry (a record for a period that had already closed) is an event and adds to that period's total
 * too, only when its event row is new (changes() of the INSERT OR IGNORE before it), so a repeated
 * flush adds it once; a period the meter never closed gets its total from it.
 */
export function ledgerStatements(db: D1Database, customerId: string, entries: LedgerEntry[]): D1PreparedStatement[] {
  return entries.flatMap((e) => {
    if (e.kind === "close")
      return [
        db
          .prepare(
            "INSERT OR IGNORE INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
          )
          .bind(customerId, e.meterId, e.feature, e.period.start, e.period.end, e.amount, e.occurredAt),
      ];
    const event = db
      .prepare(
        "INSERT OR IGNORE INTO usage_events (customer_id, meter_id, seq, feature_key, amount, kind, period_start, period_end, occurred_at, idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
      )
      .bind(
        customerId,
        e.meterId,
        e.seq,
        e.feature,
        e.amount,
        e.kind,
        e.period.start,
        e.period.end,
        e.occurredAt,
        e.idempotencyKey,
      );
    if (e.kind !== "late") return [event];
    const total = db
      .prepare(
        `INSERT INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, closed_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE changes() = 1
         ON CONFLICT (customer_id, meter_id, feature_key, period_start, period_end) DO UPDATE SET total = total + excluded.total`,
      )
      .bind(customerId, e.meterId, e.feature, e.period.start, e.period.end, e.amount, e.occurredAt);
    return [event, total];
  });
}

/** A closed period's total as the ledger has it, summed over meters (the meter is seconds ahead). */
export interface LedgerPeriod {
  feature: string;
  periodStart: number;
  periodEnd: number | null;
  total: number;
}

/** Where a page of periods ends, in their order: feature, then start and end, newest first. */
export type LedgerPeriodKey = [feature: string, periodStart: number, periodEnd: number | null];

export interface ClosedPeriodsQuery {
  /** The features to read (the customer's metered features, or the one asked for). */
  features: string[];
  /** Periods that started at or after `from` and before `to`. */
  from: number;
  to: number;
  /** The last period of the previous page, or null for the first page. */
  after: LedgerPeriodKey | null;
  limit: number;
}

interface LedgerPeriodRow {
  feature_key: string;
  period_start: number;
  period_end: number | null;
  total: number;
}

/**
 * A page of the customer's closed periods, from the totals the meters wrote when each period closed
 * (usage_periods), never by re-summing usage_events: per feature (in key order), newest first, at
 * most `limit`, bounded by `from`/`to` on the period start and by a keyset cursor (`after`), so a
 * call reads at most `limit` groups of rows through usage_periods_by_feature. A period is its start
 * and its end: after a change of reset, periods of two definitions may start together.
 */
export async function closedPeriods(
  db: D1Database,
  customerId: string,
  q: ClosedPeriodsQuery,
): Promise<LedgerPeriod[]> {
  const [afterFeature, afterStart, afterEnd] = q.after ?? [null, null, null];
  const { results } = await db
    .prepare(
      `SELECT feature_key, period_start, period_end, SUM(total) AS total FROM usage_periods
       WHERE customer_id = ?1 AND feature_key IN (SELECT value FROM json_each(?2))
         AND period_start >= ?3 AND period_start < ?4
         AND (?5 IS NULL OR feature_key > ?5
              OR (feature_key = ?5 AND (period_start < ?6 OR (period_start = ?6 AND COALESCE(period_end, -1) < ?7))))
       GROUP BY feature_key, period_start, period_end
       ORDER BY feature_key, period_start DESC, COALESCE(period_end, -1) DESC
       LIMIT ?8`,
    )
    .bind(customerId, JSON.stringify(q.features), q.from, q.to, afterFeature, afterStart, afterEnd ?? -1, q.limit)
    .all<LedgerPeriodRow>();
  return results.map((r) => ({
    feature: r.feature_key,
    periodStart: r.period_start,
    periodEnd: r.period_end,
    total: r.total,
  }));
}
