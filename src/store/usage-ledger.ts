// The usage ledger in D1: usage_events (every applied change, by meter and meter sequence number)
// and usage_periods (the total of each closed period, per meter). Only the meters write it, through
// their outbox flush (meter/ledger.ts), at least once: INSERT OR IGNORE on the primary keys makes a
// repeated flush harmless. The keys name the meter object, not only the customer: every meter
// object counts its sequence from 1, and a customer may get a second one (a residency change).
// GET /v1/usage/{customerId} reads the past periods back from here, summed over meters.
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

/** The statements that write `entries` for one customer; the caller sends them as one batch. */
export function ledgerStatements(db: D1Database, customerId: string, entries: LedgerEntry[]): D1PreparedStatement[] {
  return entries.map((e) =>
    e.kind === "close"
      ? db
          .prepare(
            "INSERT OR IGNORE INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
          )
          .bind(customerId, e.meterId, e.feature, e.period.start, e.period.end, e.amount, e.occurredAt)
      : db
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
          ),
  );
}

/** A period's total as the ledger has it (flushed events only: the meter is seconds ahead). */
export interface LedgerPeriod {
  feature: string;
  periodStart: number;
  periodEnd: number | null;
  total: number;
}

interface LedgerPeriodRow {
  feature_key: string;
  period_start: number;
  period_end: number | null;
  total: number;
}

/**
 * Every period of the customer's features (or of one), newest first per feature. A period is its
 * start and its end: after a change of reset, periods of two definitions may start together.
 */
export async function ledgerPeriods(
  db: D1Database,
  customerId: string,
  feature: string | null,
): Promise<LedgerPeriod[]> {
  const { results } = await db
    .prepare(
      `SELECT feature_key, period_start, period_end, SUM(amount) AS total FROM usage_events
       WHERE customer_id = ?1 AND (?2 IS NULL OR feature_key = ?2) GROUP BY feature_key, period_start, period_end
       ORDER BY feature_key, period_start DESC, period_end DESC`,
    )
    .bind(customerId, feature)
    .all<LedgerPeriodRow>();
  return results.map((r) => ({
    feature: r.feature_key,
    periodStart: r.period_start,
    periodEnd: r.period_end,
    total: r.total,
  }));
}
