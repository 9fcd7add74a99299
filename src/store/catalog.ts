// The catalog as a whole, in D1: read as a catalog file (GET /admin/v1/catalog, diffs) and entity by
// entity (what PUT /admin/v1/catalog compares against: write/catalog-apply.ts composes its writes from
// the resource stores' statements), its revision, and which customers hold a set of plans (the catalog
// diff's blast radius). Applying a file never deletes a feature or plan it leaves out: that is a
// destructive change, guarded by `scripts/catalog apply --allow-destructive`.
import type { CatalogState } from "../domain/catalog-diff";
import { LIVE_STATUSES } from "../domain/lifecycle";
import type { EntitlementSpec, FailurePolicy, FeatureType } from "../domain/types";
import { batchRows, query } from "./batch";
import { creditCostOf, type Feature, type FeatureDbRow, seatOf, toFeature } from "./features";
import { type Plan, type PlanDbRow, toPlanHead } from "./plans";
import { PRICE_MAPPING_SELECT, type PriceMapping, type PriceMappingDbRow, targetOf, toPriceMapping } from "./prices";
import { type RegionGroup, type RegionGroupDbRow, toRegionGroup } from "./region-groups";

/** The catalog as stored, in the catalog file's shape: what the diff compares (domain/catalog-diff.ts). */
export type CatalogExport = CatalogState;

/** The whole catalog in the catalog file format, from one consistent read. */
export async function readCatalog(db: D1Database): Promise<CatalogExport> {
  const [groups, features, plans, ents, prices] = await batchRows(db, [
    query<{ name: string; countries: string }>(db.prepare("SELECT name, countries FROM region_groups ORDER BY name")),
    query<{
      key: string;
      type: FeatureType;
      description: string;
      unit: string | null;
      integer_only: number;
      failure_policy: FailurePolicy;
      credit_feature: string | null;
      credit_cost: number | null;
      seat_feature: string | null;
    }>(
      db.prepare(
        "SELECT key, type, description, unit, integer_only, failure_policy, credit_feature, credit_cost, seat_feature FROM features ORDER BY key",
      ),
    ),
    query<{ id: string; name: string; kind: string; description: string }>(
      db.prepare("SELECT id, name, kind, description FROM plans ORDER BY id"),
    ),
    query<{ plan_id: string; feature_key: string; spec: string }>(
      db.prepare("SELECT plan_id, feature_key, spec FROM plan_entitlements ORDER BY plan_id, feature_key"),
    ),
    query<PriceMappingDbRow>(db.prepare(`${PRICE_MAPPING_SELECT} ORDER BY m.price_id`)),
  ]);
  const out: CatalogExport = { regionGroups: {}, features: {}, plans: {}, prices: {} };
  for (const g of groups) out.regionGroups[g.name] = JSON.parse(g.countries) as string[];
  for (const f of features) {
    out.features[f.key] = {
      type: f.type,
      description: f.description,
      ...(f.unit ? { unit: f.unit } : {}),
      integer: f.integer_only === 1,
      failurePolicy: f.failure_policy,
      ...creditCostOf(f),
      ...seatOf(f),
    };
  }
  for (const p of plans) {
    out.plans[p.id] = { name: p.name, kind: p.kind, description: p.description, entitlements: {} };
  }
  for (const e of ents) {
    const plan = out.plans[e.plan_id];
    if (plan) plan.entitlements[e.feature_key] = JSON.parse(e.spec) as EntitlementSpec;
  }
  for (const p of prices) out.prices[p.price_id] = targetOf(toPriceMapping(p));
  return out;
}

/** Every catalog entity as its resource store reads it (timestamps included), by key: what an apply compares against and audits. */
export interface CatalogEntities {
  features: Map<string, Feature>;
  plans: Map<string, Plan>;
  regionGroups: Map<string, RegionGroup>;
  prices: Map<string, PriceMapping>;
}

/** The whole catalog entity by entity, from one consistent read. */
export async function readCatalogEntities(db: D1Database): Promise<CatalogEntities> {
  const [groups, features, plans, ents, prices] = await batchRows(db, [
    query<RegionGroupDbRow>(db.prepare("SELECT * FROM region_groups")),
    query<FeatureDbRow>(db.prepare("SELECT * FROM features")),
    query<PlanDbRow>(db.prepare("SELECT * FROM plans")),
    query<{ plan_id: string; feature_key: string; spec: string }>(
      db.prepare("SELECT plan_id, feature_key, spec FROM plan_entitlements ORDER BY plan_id, feature_key"),
    ),
    query<PriceMappingDbRow>(db.prepare(PRICE_MAPPING_SELECT)),
  ]);
  const out: CatalogEntities = {
    features: new Map(features.map((r) => [r.key, toFeature(r)])),
    plans: new Map(plans.map((r) => [r.id, { ...toPlanHead(r), entitlements: {} }])),
    regionGroups: new Map(groups.map((r) => [r.name, toRegionGroup(r)])),
    prices: new Map(prices.map((r) => [r.price_id, toPriceMapping(r)])),
  };
  for (const e of ents) {
    const plan = out.plans.get(e.plan_id);
    if (plan) plan.entitlements[e.feature_key] = JSON.parse(e.spec) as EntitlementSpec;
  }
  return out;
}

/** The catalog revision (0 before the first catalog write); also proves D1 answers with its schema applied. */
export async function readCatalogRev(db: D1Database): Promise<number> {
  return (await db.prepare("SELECT value FROM meta WHERE key = 'catalog_rev'").first<number>("value")) ?? 0;
}

/**
 * A subscription that gives access now (or will, by a scheduled change): a live status (the domain's
 * LIVE_STATUSES, bound as ?3) not yet ended or cancelled at ?2. Mirrors subscriptionWindows.
 */
const LIVE = `status IN (SELECT value FROM json_each(?3)) AND (ended_at IS NULL OR ended_at > ?2) AND (cancel_at IS NULL OR cancel_at > ?2)`;

/**
 * For each group of plans: how many distinct customers hold one of them now (a live subscription, or
 * one scheduled to switch to it), and the first `examples` of their ids. Two queries whatever the
 * number of groups.
 */
export async function customersOnPlans(
  db: D1Database,
  groups: string[][],
  now: number,
  examples: number,
): Promise<{ customers: number; examples: string[] }[]> {
  const out = groups.map(() => ({ customers: 0, examples: [] as string[] }));
  const wanted = groups.map((plans, g) => ({ g, plans })).filter((x) => x.plans.length > 0);
  if (wanted.length === 0) return out;
  const cte = `WITH g AS (SELECT CAST(j.key AS INTEGER) AS g, p.value AS plan_id FROM json_each(?1) j, json_each(j.value) p),
    live AS (SELECT customer_id, plan_id FROM subscriptions WHERE ${LIVE}
             UNION SELECT customer_id, scheduled_plan_id FROM subscriptions WHERE ${LIVE} AND scheduled_plan_id IS NOT NULL),
    hit AS (SELECT DISTINCT g.g, live.customer_id FROM g JOIN live ON live.plan_id = g.plan_id)`;
  const groupsJson = JSON.stringify(Object.fromEntries(wanted.map((x) => [x.g, x.plans])));
  const live = JSON.stringify([...LIVE_STATUSES]);
  const [counts, firsts] = await batchRows(db, [
    query<{ g: number; n: number }>(
      db.prepare(`${cte} SELECT g, COUNT(*) AS n FROM hit GROUP BY g`).bind(groupsJson, now, live),
    ),
    query<{ g: number; customer_id: string }>(
      db
        .prepare(
          `${cte} SELECT g, customer_id FROM (SELECT g, customer_id, ROW_NUMBER() OVER (PARTITION BY g ORDER BY customer_id) AS rn FROM hit) WHERE rn <= ?4 ORDER BY g, customer_id`,
        )
        .bind(groupsJson, now, live, examples),
    ),
  ]);
  for (const r of counts) {
    const entry = out[r.g];
    if (entry) entry.customers = r.n;
  }
  for (const r of firsts) out[r.g]?.examples.push(r.customer_id);
  return out;
}

/** What a spec is validated against: each feature's type and the known region groups (one read, one consistent view). */
export interface CatalogFacts {
  featureTypes: Map<string, FeatureType>;
  regionGroups: Set<string>;
}

export async function readCatalogFacts(db: D1Database): Promise<CatalogFacts> {
  const [features, groups] = await batchRows(db, [
    query<{ key: string; type: FeatureType }>(db.prepare("SELECT key, type FROM features")),
    query<{ name: string }>(db.prepare("SELECT name FROM region_groups")),
  ]);
  return {
    featureTypes: new Map(features.map((f) => [f.key, f.type])),
    regionGroups: new Set(groups.map((g) => g.name)),
  };
}

/**
 * At most `limit` customers after `after` (in id order) holding `planId` now or by a scheduled change:
 * the customers a change to that plan can reach (the catalog fan-out's pages). Two range scans of the
 * (plan_id, customer_id) and (scheduled_plan_id, customer_id) indexes, each stopped at `limit`: a page
 * reads O(limit) rows however far the walk has come.
 */
export async function customersOnPlanAfter(
  db: D1Database,
  planId: string,
  now: number,
  after: string,
  limit: number,
): Promise<string[]> {
  const live = (column: string) =>
    `SELECT customer_id FROM subscriptions WHERE ${column} = ?1 AND customer_id > ?4 AND ${LIVE} ORDER BY customer_id LIMIT ?5`;
  const rows = await db
    .prepare(
      `SELECT customer_id FROM (SELECT * FROM (${live("plan_id")}) UNION SELECT * FROM (${live("scheduled_plan_id")}))
       ORDER BY customer_id LIMIT ?5`,
    )
    .bind(planId, now, JSON.stringify([...LIVE_STATUSES]), after, limit)
    .all<{ customer_id: string }>();
  return rows.results.map((r) => r.customer_id);
}
