// Features in D1 (table `features`): read, list, what refers to one, and the statements that write
// one. Statements are returned, not run, so a write joins its audit rows in one
// batch (write/catalog-write.ts).
import type { FeatureDef } from "../domain/catalog";
import { iso } from "../domain/time";
import type { CreditCost, FailurePolicy, FeatureType } from "../domain/types";
import { SqlFilter } from "./sql-filter";

export interface FeatureDbRow {
  key: string;
  type: FeatureType;
  description: string;
  unit: string | null;
  integer_only: number;
  failure_policy: FailurePolicy;
  credit_feature: string | null;
  credit_cost: number | null;
  seat_feature: string | null;
  created_at: number;
  updated_at: number;
}

export interface Feature {
  key: string;
  type: FeatureType;
  description: string;
  unit: string | null;
  integer: boolean;
  failurePolicy: FailurePolicy;
  /** Metered: the credit balance each unit draws from (absent: none). */
  creditCost?: CreditCost;
  /** The seats feature an entity's use of this one needs (absent: none). */
  seat?: string;
  createdAt: number;
  updatedAt: number;
}

export const toFeature = (r: FeatureDbRow): Feature => ({
  key: r.key,
  type: r.type,
  description: r.description,
  unit: r.unit,
  integer: r.integer_only === 1,
  failurePolicy: r.failure_policy,
  ...creditCostOf(r),
  ...seatOf(r),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** A row's credit cost as a feature field (spread: absent when the row has none). */
export const creditCostOf = (r: {
  credit_feature: string | null;
  credit_cost: number | null;
}): { creditCost?: CreditCost } =>
  r.credit_feature !== null && r.credit_cost !== null
    ? { creditCost: { credits: r.credit_feature, cost: r.credit_cost } }
    : {};

/** A row's seat as a feature field (spread: absent when the row names none). */
export const seatOf = (r: { seat_feature: string | null }): { seat?: string } =>
  r.seat_feature !== null ? { seat: r.seat_feature } : {};

/** The wire form (GET /admin/v1/features/{key}), which the audit log records too. */
export const featureWire = (f: Feature) => ({
  key: f.key,
  type: f.type,
  description: f.description,
  unit: f.unit,
  integer: f.integer,
  failurePolicy: f.failurePolicy,
  ...(f.creditCost ? { creditCost: f.creditCost } : {}),
  ...(f.seat ? { seat: f.seat } : {}),
  createdAt: iso(f.createdAt),
  updatedAt: iso(f.updatedAt),
});

export async function readFeature(db: D1Database, key: string): Promise<Feature | null> {
  const row = await db.prepare("SELECT * FROM features WHERE key = ?1").bind(key).first<FeatureDbRow>();
  return row ? toFeature(row) : null;
}

export async function featureExists(db: D1Database, key: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM features WHERE key = ?1").bind(key).first()) !== null;
}

/** At most `limit` features in key order after `after`, optionally of one type. */
export async function listFeatures(
  db: D1Database,
  filter: { type?: FeatureType; after?: string | null },
  limit: number,
): Promise<Feature[]> {
  const f = new SqlFilter().when(filter.type, "type = ?").when(filter.after, "key > ?");
  const rows = await db
    .prepare(`SELECT * FROM features ${f.sql} ORDER BY key LIMIT ?`)
    .bind(...f.params, limit)
    .all<FeatureDbRow>();
  return rows.results.map(toFeature);
}

export interface FeatureReferences {
  plans: number;
  grants: number;
  prices: number;
  /** Other features naming it: as the credits their creditCost draws from, or as their seat. */
  features: number;
}

/**
 * How many plan entitlements, grants (of any status), top-up price mappings and other features (creditCost,
 * seat) name the feature.
 */
export async function featureReferences(db: D1Database, key: string): Promise<FeatureReferences> {
  const refs = await db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM plan_entitlements WHERE feature_key = ?1) AS plans,
              (SELECT COUNT(*) FROM grants WHERE feature_key = ?1) AS grants,
              (SELECT COUNT(*) FROM price_mappings WHERE credits_feature = ?1) AS prices,
              (SELECT COUNT(*) FROM features WHERE key <> ?1 AND (credit_feature = ?1 OR seat_feature = ?1)) AS features`,
    )
    .bind(key)
    .first<FeatureReferences>();
  return refs ?? { plans: 0, grants: 0, prices: 0, features: 0 };
}

export function insertFeatureStatement(db: D1Database, f: Feature): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO features (key, type, description, unit, integer_only, failure_policy, created_at, updated_at, credit_feature, credit_cost, seat_feature)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)`,
    )
    .bind(
      f.key,
      f.type,
      f.description,
      f.unit,
      f.integer ? 1 : 0,
      f.failurePolicy,
      f.createdAt,
      f.updatedAt,
      f.creditCost?.credits ?? null,
      f.creditCost?.cost ?? null,
      f.seat ?? null,
    );
}

/** Everything but the key and the type (a feature's type never changes in place: specs depend on it). */
export function updateFeatureStatement(db: D1Database, f: Feature): D1PreparedStatement {
  return db
    .prepare(
      "UPDATE features SET description = ?2, unit = ?3, integer_only = ?4, failure_policy = ?5, updated_at = ?6 WHERE key = ?1",
    )
    .bind(f.key, f.description, f.unit, f.integer ? 1 : 0, f.failurePolicy, f.updatedAt);
}

/** The catalog file's write: creates the feature or overwrites it, type included (keeps created_at). */
export function upsertFeatureStatement(db: D1Database, key: string, f: FeatureDef, now: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO features (key, type, description, unit, integer_only, failure_policy, created_at, updated_at, credit_feature, credit_cost, seat_feature)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)
       ON CONFLICT (key) DO UPDATE SET type = excluded.type, description = excluded.description, unit = excluded.unit,
         integer_only = excluded.integer_only, failure_policy = excluded.failure_policy, updated_at = excluded.updated_at,
         credit_feature = excluded.credit_feature, credit_cost = excluded.credit_cost, seat_feature = excluded.seat_feature`,
    )
    .bind(
      key,
      f.type,
      f.description,
      f.unit ?? null,
      f.integer ? 1 : 0,
      f.failurePolicy,
      now,
      f.creditCost?.credits ?? null,
      f.creditCost?.cost ?? null,
      f.seat ?? null,
    );
}

export function deleteFeatureStatement(db: D1Database, key: string): D1PreparedStatement {
  return db.prepare("DELETE FROM features WHERE key = ?1").bind(key);
}
