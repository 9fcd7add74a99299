// The usage ledger's bounded part in D1: usage_periods, one total per customer, meter object, feature
// and period. The raw events are in R2 (store/ledger-objects.ts); D1 gets no row per consume. A meter
// writes its totals at most once per flush interval and when a period closes (meter/period-totals.ts),
// as deltas tagged with the meter seqs they cover: a delta is applied only when the row's through_seq
// is below the delta's first seq, so a retried write (its acknowledgement lost) is ignored, and a
// late record for a period long closed still adds to it. The keys name the meter object, not only the
// customer: every meter object counts its sequence from 1, and a customer may get a second one (a
// residency change). GET /v1/usage/{customerId} and the billing export read the totals back, summed
// over meters, a bounded page at a time.
import type { MeterPeriod } from "../meter/protocol";

/** The meter id of ledger entries queued before the ledger named meters (the columns' default). */
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
  /** The entity inside the customer the usage was for (absent: the customer as a whole). */
  entityId?: string;
}

/** What a meter adds to one period's total: the change since its last write, and the seqs it covers. */
export interface PeriodTotalDelta {
  feature: string;
  period: MeterPeriod;
  delta: number;
  /** The period has closed (its close, or a late record for it, is among the seqs). */
  final: boolean;
  firstSeq: number;
  lastSeq: number;
}

/**
 * The statements that add `deltas` to the meter's rows (one batch, so atomic): an UPDATE that applies
 * only when the row does not yet include firstSeq, and an INSERT for a period with no row yet. Two
 * statements rather than an upsert because a never-resetting feature's period_end is NULL, and NULLs
 * never conflict in a primary key.
 */
export function periodTotalStatements(
  db: D1Database,
  customerId: string,
  meterId: string,
  deltas: PeriodTotalDelta[],
  now: number,
): D1PreparedStatement[] {
  return deltas.flatMap((d) => {
    const args = [customerId, meterId, d.feature, d.period.start, d.period.end, d.delta, d.final ? 1 : 0] as const;
    return [
      db
        .prepare(
          `UPDATE usage_periods SET total = total + ?6, final = MAX(final, ?7), through_seq = ?9, closed_at = ?10
           WHERE customer_id = ?1 AND meter_id = ?2 AND feature_key = ?3 AND period_start = ?4 AND period_end IS ?5
             AND through_seq < ?8`,
        )
        .bind(...args, d.firstSeq, d.lastSeq, now),
      db
        .prepare(
          `INSERT INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, final, through_seq, closed_at)
           SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE NOT EXISTS (SELECT 1 FROM usage_periods
             WHERE customer_id = ?1 AND meter_id = ?2 AND feature_key = ?3 AND period_start = ?4 AND period_end IS ?5)`,
        )
        .bind(...args, d.lastSeq, now),
    ];
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
       WHERE customer_id = ?1 AND feature_key IN (SELECT value FROM json_each(?2)) AND final = 1
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

/** One row of the billing export: a customer's total of one feature in one period, summed over meters. */
export interface ExportedPeriod {
  customerId: string;
  feature: string;
  periodStart: number;
  periodEnd: number | null;
  total: number;
  /** 1 when the period has closed (its total is final); 0 for the running total of an open period. */
  final: number;
}

/** Where a page of the export ends: period start, customer, feature, end (-1 for none). */
export type ExportKey = [periodStart: number, customerId: string, feature: string, periodEnd: number];

interface ExportRow {
  customer_id: string;
  feature_key: string;
  period_start: number;
  period_end: number | null;
  total: number;
  final: number;
}

/**
 * A page of every customer's periods that started in [from, to), in (period start, customer,
 * feature, end) order (a NULL end first, as -1 in the cursor), after `after`: a keyset range on
 * usage_periods_by_start, whose columns are the GROUP BY's, so the groups stream in index order and a
 * page reads about `limit` groups of rows however deep the export is (tested at 100,000 customers).
 */
export async function exportPeriods(
  db: D1Database,
  from: number,
  to: number,
  after: ExportKey | null,
  limit: number,
): Promise<ExportedPeriod[]> {
  const [start, customer, feature, end] = after ?? [from, "", "", -2];
  const { results } = await db
    .prepare(
      `SELECT customer_id, feature_key, period_start, period_end, SUM(total) AS total, MIN(final) AS final FROM usage_periods
       WHERE period_start < ?2 AND (period_start, customer_id, feature_key) >= (?3, ?4, ?5) AND period_start >= ?1
         AND NOT (period_start = ?3 AND customer_id = ?4 AND feature_key = ?5 AND COALESCE(period_end, -1) <= ?6)
       GROUP BY period_start, customer_id, feature_key, period_end
       ORDER BY period_start, customer_id, feature_key, period_end
       LIMIT ?7`,
    )
    .bind(from, to, start, customer, feature, end, limit)
    .all<ExportRow>();
  return results.map((r) => ({
    customerId: r.customer_id,
    feature: r.feature_key,
    periodStart: r.period_start,
    periodEnd: r.period_end,
    total: r.total,
    final: r.final,
  }));
}
