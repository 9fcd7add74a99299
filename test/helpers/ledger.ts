// Reads of the usage ledger as a billing reader would: the raw events in R2 (deduplicated by their key,
// (meterId, seq)) and the period totals in D1. Tests compare both with the meter's counters.
import { env } from "cloudflare:workers";
import { type LedgerLine, ledgerLines } from "../../src/store/ledger-objects";

/** Every line of the customer's ledger objects, each event once. */
export async function ledgerEvents(customerId: string, bucket: R2Bucket = env.LEDGER): Promise<LedgerLine[]> {
  const lines: LedgerLine[] = [];
  for await (const line of ledgerLines(bucket, customerId, "0000-00-00", "9999-99-99")) lines.push(line);
  return lines;
}

/** The sum of what the customer's events applied to `feature` (a close repeats a period's sum: not counted). */
export async function ledgerSum(customerId: string, feature: string): Promise<number> {
  const events = await ledgerEvents(customerId);
  return events.filter((e) => e.feature === feature && e.kind !== "close").reduce((s, e) => s + e.amount, 0);
}

/** The customer's period totals in D1, summed over meters: `final` ones only unless `all`. */
export async function periodTotals(
  customerId: string,
  all = false,
): Promise<{ feature: string; periodStart: number; total: number; final: number }[]> {
  const { results } = await env.DB.prepare(
    `SELECT feature_key AS feature, period_start AS periodStart, SUM(total) AS total, MIN(final) AS final FROM usage_periods
     WHERE customer_id = ?1 AND (?2 OR final = 1) GROUP BY feature_key, period_start, period_end ORDER BY feature_key, period_start`,
  )
    .bind(customerId, all ? 1 : 0)
    .all<{ feature: string; periodStart: number; total: number; final: number }>();
  return results;
}
