// Grants in D1 (table grants): customer overrides with their four-eyes status. The snapshot reads
// the active ones (store/customer-rows.ts); this is what the admin API reads and writes. Statements
// that are part of a write are returned, not run, so the caller can put them in one batch with the
// audit records (src/write/commit.ts).
import { iso, isoOrNull } from "../domain/time";
import type { EntitlementSpec } from "../domain/types";
import type { GrantDbRow } from "./customer-rows";
import { SqlFilter } from "./sql-filter";

export type GrantStatus = GrantDbRow["status"];

/** The wire form (GET /admin/v1/grants/{id}), which the audit log records too. */
export const grantWire = (r: GrantDbRow) => ({
  id: r.id,
  customerId: r.customer_id,
  feature: r.feature_key,
  mode: r.mode,
  spec: JSON.parse(r.spec) as EntitlementSpec,
  reason: r.reason,
  startsAt: isoOrNull(r.starts_at),
  expiresAt: isoOrNull(r.expires_at),
  status: r.status,
  elevated: r.elevated === 1,
  proposedBy: r.proposed_by,
  decidedBy: r.decided_by,
  decidedAt: isoOrNull(r.decided_at),
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

export async function readGrant(db: D1Database, id: string): Promise<GrantDbRow | null> {
  return db.prepare("SELECT * FROM grants WHERE id = ?1").bind(id).first<GrantDbRow>();
}

export interface GrantFilter {
  customerId?: string;
  status?: GrantStatus;
  feature?: string;
  /** Keyset cursor, newest first: grants before this (created_at, id). */
  before: [createdAt: number, id: string] | null;
  /** Rows to read (a page reads one more than it shows: http/pagination.ts). */
  limit: number;
}

/** Grants, newest first. */
export async function listGrants(db: D1Database, q: GrantFilter): Promise<GrantDbRow[]> {
  const f = new SqlFilter()
    .when(q.customerId, "customer_id = ?")
    .when(q.status, "status = ?")
    .when(q.feature, "feature_key = ?")
    .when(q.before, "(created_at, id) < (?, ?)", q.before?.[0], q.before?.[1]);
  const rows = await db
    .prepare(`SELECT * FROM grants ${f.sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
    .bind(...f.params, q.limit)
    .all<GrantDbRow>();
  return rows.results;
}

export function insertGrantStatement(db: D1Database, g: GrantDbRow): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO grants (id, customer_id, feature_key, mode, spec, reason, starts_at, expires_at, status, elevated, proposed_by, decided_by, decided_at, created_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)`,
    )
    .bind(
      g.id,
      g.customer_id,
      g.feature_key,
      g.mode,
      g.spec,
      g.reason,
      g.starts_at,
      g.expires_at,
      g.status,
      g.elevated,
      g.proposed_by,
      g.decided_by,
      g.decided_at,
      g.created_at,
      g.updated_at,
    );
}

/**
 * Records a decision: `after` (its status, elevation and decider), only while the grant is still in
 * one of `from`. The CASE turns a status that changed meanwhile (a racing decision) into a CHECK
 * violation, which aborts the whole batch, audit entry included (see isDecidedMeanwhile): the log
 * never records a decision that did not happen.
 */
export function decideGrantStatement(db: D1Database, from: GrantStatus[], after: GrantDbRow): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE grants SET status = CASE WHEN status IN (SELECT value FROM json_each(?2)) THEN ?3 ELSE 'changed-meanwhile' END,
       elevated = ?4, decided_by = ?5, decided_at = ?6, updated_at = ?6 WHERE id = ?1`,
    )
    .bind(after.id, JSON.stringify(from), after.status, after.elevated, after.decided_by, after.decided_at);
}

/** The error D1 reports when decideGrantStatement found the grant already decided by someone else. */
export function isDecidedMeanwhile(err: unknown): boolean {
  return /CHECK constraint/i.test(String(err));
}

/** The grants among `ids` that exist, by id (at most 90 ids per look-up: D1 binds at most 100 parameters). */
export async function grantsByIds(db: D1Database, ids: string[]): Promise<Map<string, GrantDbRow>> {
  const unique = [...new Set(ids)].slice(0, 90);
  if (unique.length === 0) return new Map();
  const marks = unique.map((_, i) => `?${i + 1}`).join(", ");
  const rows = await db
    .prepare(`SELECT * FROM grants WHERE id IN (${marks})`)
    .bind(...unique)
    .all<GrantDbRow>();
  return new Map(rows.results.map((r) => [r.id, r]));
}
