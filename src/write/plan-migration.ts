// Moving a plan's existing subscribers to a newer version (domain/plan-versions.ts): one plan_migrations
// row, written in the same batch as the plan edit that asks for it (`?migrate=now|at_period_end`) or on
// its own (POST /admin/v1/plans/{id}/migrations). Only one migration per plan runs at a time: one
// `at_period_end` whose subscribers have not all reached their period end is still running, and a second
// migration of that plan is a 409 `migration_running` until it finishes or is cancelled.
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { actorOf } from "../auth/principal";
import type { MigrationMode } from "../domain/plan-versions";
import { iso, isoOrNull } from "../domain/time";
import { Problem } from "../http/problem";
import {
  insertPlanMigrationStatement,
  type PlanMigration,
  pendingSubscribers,
  planMigrations,
} from "../store/plan-versions";
import type { AuditEntry } from "./commit";

export type MigrateMode = "stay" | MigrationMode;

/** The migration row and its audit entry; throws 409 while another migration of the plan runs. */
export async function migrationWrite(
  c: Context<AppEnv>,
  planId: string,
  toVersion: number,
  mode: MigrationMode,
  reason: string | null,
): Promise<{ migration: PlanMigration; statement: D1PreparedStatement; audit: AuditEntry }> {
  const db = c.env.DB;
  const now = c.var.services.clock.now();
  for (const m of await planMigrations(db, planId)) {
    const pending = await pendingSubscribers(db, m, now);
    if (pending > 0)
      throw new Problem(
        "migration_running",
        `Migration '${m.id}' of plan '${planId}' to version ${m.toVersion} still has ${pending} subscriber(s) to move at their period end; wait for it or cancel it (POST /admin/v1/plans/${planId}/migrations/${m.id}/cancel).`,
        { migrationId: m.id, pending },
      );
  }
  const migration: PlanMigration = {
    id: `mig_${crypto.randomUUID()}`,
    planId,
    toVersion,
    mode,
    at: now,
    cancelledAt: null,
    createdBy: actorOf(c.var.principal).actor,
    createdAt: now,
  };
  const audit: AuditEntry = {
    action: "plan.migration.start",
    entityType: "plan_migration",
    entityId: migration.id,
    after: migrationWire(migration),
    reason,
  };
  return { migration, statement: insertPlanMigrationStatement(db, migration), audit };
}

export const migrationWire = (m: PlanMigration) => ({
  id: m.id,
  planId: m.planId,
  toVersion: m.toVersion,
  mode: m.mode,
  at: iso(m.at),
  cancelledAt: isoOrNull(m.cancelledAt),
  createdBy: m.createdBy,
});
