// The one way an admin write reaches D1: the change, the revision bumps and its audit records in a
// single D1 batch (atomic), then the affected snapshots are recompiled and written to KV.
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { actorOf } from "../auth/principal";
import type { Env } from "../env";
import type { Services } from "../services";

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId: string;
  customerId?: string | null;
  before?: unknown;
  after?: unknown;
  reason?: string | null;
}

export interface Affected {
  /** Customers whose entitlements change: their rev grows, their snapshots are recompiled now. */
  customers?: string[];
  /** A catalog change: catalog_rev grows, every customer's snapshot is recompiled (see recompile jobs). */
  catalog?: boolean;
}

export function auditStatement(
  db: D1Database,
  e: AuditEntry,
  actor: { actor: string; actorType: string },
  at: number,
  requestId: string | null,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO audit_log (at, actor, actor_type, action, entity_type, entity_id, customer_id, before, after, reason, request_id)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)`,
    )
    .bind(
      at,
      actor.actor,
      actor.actorType,
      e.action,
      e.entityType,
      e.entityId,
      e.customerId ?? null,
      json(e.before),
      json(e.after),
      e.reason ?? null,
      requestId,
    );
}

const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));

/** Commits statements + audit atomically, then recompiles. Returns each affected customer's new snapshot version. */
export async function commitAdminWrite(
  c: Context<AppEnv>,
  statements: D1PreparedStatement[],
  audits: AuditEntry[],
  affected: Affected = {},
): Promise<Record<string, number>> {
  const { clock } = c.var.services;
  const now = clock.now();
  const db = c.env.DB;
  const actor = actorOf(c.var.principal);
  const customers = [...new Set(affected.customers ?? [])];
  const batch = [...statements];
  for (const id of customers)
    batch.push(db.prepare("UPDATE customers SET rev = rev + 1, updated_at = ?2 WHERE id = ?1").bind(id, now));
  if (affected.catalog) batch.push(db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'catalog_rev'"));
  for (const a of audits) batch.push(auditStatement(db, a, actor, now, c.var.requestId));
  await db.batch(batch);
  return recompile(c.env, c.var.services, customers, now);
}

/** Recompiles and publishes snapshots (KV + history + this isolate's cache). */
export async function recompile(
  env: Env,
  services: Services,
  customerIds: string[],
  now: number,
): Promise<Record<string, number>> {
  const versions: Record<string, number> = {};
  // Awaited (not waitUntil): when the write answers, KV already holds the new snapshot.
  for (const id of customerIds) {
    const snap = await services.snapshots.compile(env, id, now);
    if (snap) versions[id] = snap.version;
  }
  return versions;
}
