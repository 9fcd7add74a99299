// Plans in D1 (tables `plans` and `plan_entitlements`): read one or a page with their entitlements,
// what refers to one, and the statements that write one. A plan is written whole (its row and its
// exact set of entitlements); statements are returned, not run, so a write joins its audit rows in
// one batch (write/catalog-write.ts).
import { canonical } from "../domain/catalog-diff";
import { iso } from "../domain/time";
import type { EntitlementSpec } from "../domain/types";
import { insertPlanVersionStatement } from "./plan-versions";
import { SqlFilter } from "./sql-filter";

export type PlanKind = "base" | "addon";

export interface PlanDbRow {
  id: string;
  name: string;
  kind: PlanKind;
  description: string;
  created_at: number;
  updated_at: number;
  version: number;
}

/** A plan's own row, without its entitlements. */
export interface PlanHead {
  id: string;
  name: string;
  kind: PlanKind;
  description: string;
  createdAt: number;
  updatedAt: number;
  /** The current version (store/plan-versions.ts): what new subscriptions get. */
  version: number;
}

export interface Plan extends PlanHead {
  entitlements: Record<string, EntitlementSpec>;
}

export const toPlanHead = (r: PlanDbRow): PlanHead => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
  description: r.description,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  version: r.version,
});

/** The wire form (GET /admin/v1/plans/{id}), which the audit log records too. */
export const planWire = (p: Plan) => ({
  id: p.id,
  name: p.name,
  kind: p.kind,
  description: p.description,
  entitlements: p.entitlements,
  version: p.version,
  createdAt: iso(p.createdAt),
  updatedAt: iso(p.updatedAt),
});

export async function planExists(db: D1Database, id: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM plans WHERE id = ?1").bind(id).first()) !== null;
}

export async function readPlan(db: D1Database, id: string): Promise<Plan | null> {
  const row = await db.prepare("SELECT * FROM plans WHERE id = ?1").bind(id).first<PlanDbRow>();
  if (!row) return null;
  const [plan] = await withEntitlements(db, [toPlanHead(row)]);
  return plan ?? null;
}

/** At most `limit` plans in id order after `after`, optionally of one kind (entitlements: withEntitlements). */
export async function listPlans(
  db: D1Database,
  filter: { kind?: PlanKind; after?: string | null },
  limit: number,
): Promise<PlanHead[]> {
  const f = new SqlFilter().when(filter.kind, "kind = ?").when(filter.after, "id > ?");
  const rows = await db
    .prepare(`SELECT * FROM plans ${f.sql} ORDER BY id LIMIT ?`)
    .bind(...f.params, limit)
    .all<PlanDbRow>();
  return rows.results.map(toPlanHead);
}

/** The plans with their entitlements (by feature key), in one query whatever their number. */
export async function withEntitlements(db: D1Database, heads: PlanHead[]): Promise<Plan[]> {
  if (heads.length === 0) return [];
  const ents = await db
    .prepare(
      "SELECT plan_id, feature_key, spec FROM plan_entitlements WHERE plan_id IN (SELECT value FROM json_each(?1)) ORDER BY feature_key",
    )
    .bind(JSON.stringify(heads.map((h) => h.id)))
    .all<{ plan_id: string; feature_key: string; spec: string }>();
  const plans = new Map(heads.map((h) => [h.id, { ...h, entitlements: {} as Record<string, EntitlementSpec> }]));
  for (const e of ents.results) {
    const plan = plans.get(e.plan_id);
    if (plan) plan.entitlements[e.feature_key] = JSON.parse(e.spec) as EntitlementSpec;
  }
  return [...plans.values()];
}

/** How many subscriptions (current or scheduled plan) and price mappings refer to the plan. */
export async function planReferences(db: D1Database, id: string): Promise<{ subscriptions: number; prices: number }> {
  const refs = await db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM subscriptions WHERE plan_id = ?1 OR scheduled_plan_id = ?1) AS subscriptions,
              (SELECT COUNT(*) FROM price_mappings WHERE plan_id = ?1) AS prices`,
    )
    .bind(id)
    .first<{ subscriptions: number; prices: number }>();
  return refs ?? { subscriptions: 0, prices: 0 };
}

/**
 * Creates the plan or overwrites it (its created_at kept), with exactly `plan.entitlements`: the admin
 * API's writes and the catalog file use the same statements. Specs are stored as given (normalised).
 */
export function putPlanStatements(db: D1Database, plan: Plan, newVersion = false): D1PreparedStatement[] {
  return [
    db
      .prepare(
        `INSERT INTO plans (id, name, kind, description, created_at, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, description = excluded.description,
           updated_at = excluded.updated_at, version = excluded.version`,
      )
      .bind(plan.id, plan.name, plan.kind, plan.description, plan.createdAt, plan.updatedAt, plan.version),
    // A new version is also kept whole, immutable, for the subscribers who stay on it later.
    ...(newVersion ? [insertPlanVersionStatement(db, plan.id, plan.version, plan.entitlements, plan.updatedAt)] : []),
    db.prepare("DELETE FROM plan_entitlements WHERE plan_id = ?1").bind(plan.id),
    ...Object.entries(plan.entitlements).map(([key, spec]) =>
      db
        .prepare("INSERT INTO plan_entitlements (plan_id, feature_key, spec) VALUES (?1, ?2, ?3)")
        .bind(plan.id, key, JSON.stringify(spec)),
    ),
  ];
}

/**
 * The version `after` is written as: 1 for a new plan; the next number when what a subscriber gets
 * changes (its entitlements or its kind); else the same (a new name or description is no new version).
 */
export function versionOf(before: Plan | null, after: Omit<Plan, "version">): { version: number; isNew: boolean } {
  if (!before) return { version: 1, isNew: true };
  const same = before.kind === after.kind && canonical(before.entitlements) === canonical(after.entitlements);
  return same ? { version: before.version, isNew: false } : { version: before.version + 1, isNew: true };
}

export function deletePlanStatements(db: D1Database, id: string): D1PreparedStatement[] {
  return [
    db.prepare("DELETE FROM plan_migrations WHERE plan_id = ?1").bind(id),
    db.prepare("DELETE FROM plan_versions WHERE plan_id = ?1").bind(id),
    db.prepare("DELETE FROM plan_entitlements WHERE plan_id = ?1").bind(id),
    db.prepare("DELETE FROM plans WHERE id = ?1").bind(id),
  ];
}
