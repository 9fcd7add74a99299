// commitAdminWrite for writers without an operator: the cron handler ("system") and billing webhooks
// ("webhook:stripe"). Same contract: the change, the customers' rev bumps and the audit records in one
// D1 batch (atomic), then the affected snapshots are recompiled and published.
import type { Env } from "../env";
import type { Services } from "../services";
import { type AuditEntry, auditStatement, recompile } from "./commit";

export interface SystemActor {
  actor: string; // "system", "webhook:stripe"
  actorType: "system" | "webhook";
}

export const SYSTEM: SystemActor = { actor: "system", actorType: "system" };
export const STRIPE_WEBHOOK: SystemActor = { actor: "webhook:stripe", actorType: "webhook" };

export interface SystemWrite {
  statements: D1PreparedStatement[];
  audits: AuditEntry[];
  customers: string[];
  requestId?: string | null;
}

/** Returns each affected customer's new snapshot version. */
export async function commitSystemWrite(
  env: Env,
  services: Services,
  by: SystemActor,
  write: SystemWrite,
  now: number,
): Promise<Record<string, number>> {
  const db = env.DB;
  const customers = [...new Set(write.customers)];
  const batch = [...write.statements];
  for (const id of customers)
    batch.push(db.prepare("UPDATE customers SET rev = rev + 1, updated_at = ?2 WHERE id = ?1").bind(id, now));
  for (const a of write.audits) batch.push(auditStatement(db, a, by, now, write.requestId ?? null));
  await db.batch(batch);
  return recompile(env, services, customers, now);
}
