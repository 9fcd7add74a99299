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
