// Plan versions and migrations in D1 (tables plan_versions, plan_migrations; domain/plan-versions.ts
// says what they mean). Statements that are part of a write are returned, not run, so the caller puts
// them in one batch with the plan row and the audit entries (write/catalog-write.ts).

import { LIVE_STATUSES } from "../domain/lifecycle";
import type { MigrationMode } from "../domain/plan-versions";
import type { EntitlementSpec } from "../domain/types";

export interface PlanMigration {
  id: string;
  planId: string;
  toVersion: number;
  mode: MigrationMode;
  at: number;
  cancelledAt: number | null;
  createdBy: string;
  createdAt: number;
}

interface MigrationDbRow {
  id: string;
  plan_id: string;
  to_version: number;
  mode: MigrationMode;
  at: number;
  cancelled_at: number | null;
  created_by: string;
  created_at: number;
}

const toMigration = (r: MigrationDbRow): PlanMigration => ({
  id: r.id,
  planId: r.plan_id,
  toVersion: r.to_version,
  mode: r.mode,
  at: r.at,
  cancelledAt: r.cancelled_at,
  createdBy: r.created_by,
  createdAt: r.created_at,
});

/** A new immutable version. A plain INSERT: two edits racing for the same number fail the later batch. */
export function insertPlanVersionStatement(
  db: D1Database,
  planId: string,
  version: number,
  entitlements: Record<string, EntitlementSpec>,
  now: number,
): D1PreparedStatement {
  return db
    .prepare("INSERT INTO plan_versions (plan_id, version, entitlements, created_at) VALUES (?1, ?2, ?3, ?4)")
    .bind(planId, version, JSON.stringify(entitlements), now);
}

/** The error D1 reports when another edit took this version number first. */
export const isVersionTaken = (err: unknown): boolean =>
  /UNIQUE constraint failed: plan_versions\./.test(
    String(err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : err),
  );

export function insertPlanMigrationStatement(db: D1Database, m: PlanMigration): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO plan_migrations (id, plan_id, to_version, mode, at, cancelled_at, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)",
    )
    .bind(m.id, m.planId, m.toVersion, m.mode, m.at, m.createdBy, m.createdAt);
}

export function cancelPlanMigrationStatement(db: D1Database, id: string, now: number): D1PreparedStatement {
  return db
    .prepare("UPDATE plan_migrations SET cancelled_at = ?2 WHERE id = ?1 AND cancelled_at IS NULL")
    .bind(id, now);
}

export async function planVersions(
  db: D1Database,
  planId: string,
): Promise<
  { version: number; entitlements: Record<string, EntitlementSpec>; createdAt: number; subscribers: number }[]
> {
  const rows = await db
    .prepare(
      `SELECT v.version, v.entitlements, v.created_at,
              (SELECT COUNT(*) FROM subscriptions s WHERE s.plan_id = v.plan_id
                 AND COALESCE(s.plan_version, (SELECT version FROM plans WHERE id = v.plan_id)) = v.version
                 AND s.status IN (SELECT value FROM json_each(?2))) AS subscribers
       FROM plan_versions v WHERE v.plan_id = ?1 ORDER BY v.version`,
    )
    .bind(planId, JSON.stringify([...LIVE_STATUSES]))
    .all<{ version: number; entitlements: string; created_at: number; subscribers: number }>();
  return rows.results.map((r) => ({
    version: r.version,
    entitlements: JSON.parse(r.entitlements) as Record<string, EntitlementSpec>,
    createdAt: r.created_at,
    subscribers: r.subscribers,
  }));
}

export async function readPlanMigration(db: D1Database, id: string): Promise<PlanMigration | null> {
  const row = await db.prepare("SELECT * FROM plan_migrations WHERE id = ?1").bind(id).first<MigrationDbRow>();
  return row ? toMigration(row) : null;
}

export async function planMigrations(db: D1Database, planId: string): Promise<PlanMigration[]> {
  const rows = await db
    .prepare("SELECT * FROM plan_migrations WHERE plan_id = ?1 ORDER BY at, id")
    .bind(planId)
    .all<MigrationDbRow>();
  return rows.results.map(toMigration);
}

/**
 * Live subscriptions of the plan still on a version older than the migration's, whose move is still
 * ahead at `now` (at_period_end: their period in force when it started has not ended yet). Mirrors
 * moveInstant in domain/plan-versions.ts; 0 for a migration "now" or one cancelled.
 */
export async function pendingSubscribers(db: D1Database, m: PlanMigration, now: number): Promise<number> {
  if (m.mode === "now" || m.cancelledAt !== null) return 0;
  const row = await db
    .prepare(
      `SELECT COUNT(*) AS n FROM subscriptions s WHERE s.plan_id = ?1
         AND COALESCE(s.plan_version, (SELECT version FROM plans WHERE id = ?1)) < ?2
         AND s.status IN (SELECT value FROM json_each(?5))
         AND (s.current_period_start IS NULL OR s.current_period_start < ?3)
         AND s.current_period_end IS NOT NULL AND s.current_period_end > ?3 AND s.current_period_end > ?4`,
    )
    .bind(m.planId, m.toVersion, m.at, now, JSON.stringify([...LIVE_STATUSES]))
    .first<{ n: number }>();
  return row?.n ?? 0;
}
