// Readers of what a write left behind in D1 (the source of record), and the few direct writes a test
// makes to set up a state no route offers.
import { env } from "cloudflare:workers";
import type { AuditDbRow as AuditRow } from "../../src/store/audit";

export type { AuditRow };

/** A subscription's row as stored (snake_case columns, instants in ms), or null. */
export const subscriptionRow = (id: string) =>
  env.DB.prepare("SELECT * FROM subscriptions WHERE id = ?1").bind(id).first<Record<string, any>>();

/** Audit rows of one entity, oldest first. `before` and `after` are JSON text: read them with `parsed`. */
export async function auditOf(entityType: string, entityId: string): Promise<AuditRow[]> {
  const rows = await env.DB.prepare("SELECT * FROM audit_log WHERE entity_type = ?1 AND entity_id = ?2 ORDER BY id")
    .bind(entityType, entityId)
    .all<AuditRow>();
  return rows.results;
}

/** Audit rows of one customer, of every entity, oldest first. */
export async function auditOfCustomer(customerId: string): Promise<AuditRow[]> {
  const rows = await env.DB.prepare("SELECT * FROM audit_log WHERE customer_id = ?1 ORDER BY id")
    .bind(customerId)
    .all<AuditRow>();
  return rows.results;
}

/** How many audit rows there are in all: a write that must not happen would add one. */
export const auditCount = async () =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log").first<{ n: number }>())!.n;

/** An audit row's `before` or `after`, parsed. */
export const parsed = (json: string | null) => (json === null ? null : JSON.parse(json));

/** Marks a subscription as managed by a billing provider (Stripe), as a webhook would have created it. */
export async function markProviderManaged(subscriptionId: string, externalId: string) {
  await env.DB.prepare("UPDATE subscriptions SET external_id = ?2 WHERE id = ?1")
    .bind(subscriptionId, externalId)
    .run();
}

/**
 * A period total in usage_periods as the meter's ledger writes it (the upsell candidates read the current
 * periods' totals from there): `start`/`end` in ms, end null for a period without reset.
 */
export async function insertUsagePeriod(
  customerId: string,
  feature: string,
  start: number,
  end: number | null,
  total: number,
) {
  await env.DB.prepare(
    "INSERT INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, closed_at) VALUES (?1, 'test-meter', ?2, ?3, ?4, ?5, ?3)",
  )
    .bind(customerId, feature, start, end, total)
    .run();
}

/** The local analytics rollup rows of one feature (analytics_rollups), in key order. */
export const rollupRows = async (feature: string) =>
  (
    await env.DB.prepare(
      "SELECT hour, kind, plan_id, country, reason, allowed, count, quantity FROM analytics_rollups WHERE feature_key = ?1 ORDER BY hour, kind, plan_id, country, reason, allowed",
    )
      .bind(feature)
      .all<Record<string, unknown>>()
  ).results;

/** The local analytics rows per hour and customer of one feature (analytics_customer_hours). */
export const customerHourRows = async (feature: string) =>
  (
    await env.DB.prepare(
      "SELECT hour, customer_id, checks, denials, consumes, used FROM analytics_customer_hours WHERE feature_key = ?1 ORDER BY hour, customer_id",
    )
      .bind(feature)
      .all<Record<string, unknown>>()
  ).results;
