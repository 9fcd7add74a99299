// The audit log in D1 (table audit_log): append-only. Writes go through the audited write path
// (src/write/commit.ts), which puts each record in the same D1 batch as the change it describes;
// nothing updates or deletes a row, and the table's triggers refuse it anyway.
import { SqlFilter } from "./sql-filter";

/** What one audit record says: the action, what it touched, and the state before and after. */
export interface AuditEntry {
  action: string;
  entityType: string;
  entityId: string;
  customerId?: string | null;
  before?: unknown;
  after?: unknown;
  reason?: string | null;
}

/** Who made a change, as the log records it ("system", "webhook:stripe", an operator, a key). */
export interface AuditActor {
  actor: string;
  actorType: string;
}

/** An audit_log row as D1 returns it. */
export interface AuditDbRow {
  id: number;
  at: number;
  actor: string;
  actor_type: string;
  action: string;
  entity_type: string;
  entity_id: string;
  customer_id: string | null;
  before: string | null;
  after: string | null;
  reason: string | null;
  request_id: string | null;
}

export function auditStatement(
  db: D1Database,
  e: AuditEntry,
  actor: AuditActor,
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

export interface AuditFilter {
  customerId?: string;
  /** An actor as recorded, or an operator id without its " <email>". */
  actor?: string;
  entityType?: string;
  entityId?: string;
  action?: string;
  /** At or after (ms). */
  from?: number;
  /** Before (ms). */
  to?: number;
  /** Keyset cursor: entries with a smaller id (newest first). */
  beforeId: number | null;
  limit: number;
}

/** Audit entries, newest first. */
export async function listAudit(db: D1Database, q: AuditFilter): Promise<AuditDbRow[]> {
  const f = new SqlFilter()
    .when(q.customerId, "customer_id = ?")
    // An operator is recorded as "sub <email>"; asking for "sub" finds it too.
    .when(q.actor, "actor = ? OR substr(actor, 1, length(?) + 2) = ? || ' <'", q.actor, q.actor, q.actor)
    .when(q.entityType, "entity_type = ?")
    .when(q.entityId, "entity_id = ?")
    .when(q.action, "action = ?")
    .when(q.from, "at >= ?")
    .when(q.to, "at < ?")
    .when(q.beforeId, "id < ?");
  const rows = await db
    .prepare(`SELECT * FROM audit_log ${f.sql} ORDER BY id DESC LIMIT ?`)
    .bind(...f.params, q.limit)
    .all<AuditDbRow>();
  return rows.results;
}
