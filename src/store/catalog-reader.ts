// D1 -> the catalog in the catalog file format (for GET /admin/v1/catalog, audits and diffs).
import type { EntitlementSpec } from "../domain/types";

export interface CatalogExport {
  regionGroups: Record<string, string[]>;
  features: Record<
    string,
    { type: string; description: string; unit?: string; integer: boolean; failurePolicy: string }
  >;
  plans: Record<
    string,
    { name: string; kind: string; description: string; entitlements: Record<string, EntitlementSpec> }
  >;
  prices: Record<string, string>;
}

export async function readCatalog(db: D1Database): Promise<CatalogExport> {
  const [groups, features, plans, ents, prices] = await db.batch<Record<string, unknown>>([
    db.prepare("SELECT name, countries FROM region_groups ORDER BY name"),
    db.prepare("SELECT key, type, description, unit, integer_only, failure_policy FROM features ORDER BY key"),
    db.prepare("SELECT id, name, kind, description FROM plans ORDER BY id"),
    db.prepare("SELECT plan_id, feature_key, spec FROM plan_entitlements ORDER BY plan_id, feature_key"),
    db.prepare("SELECT price_id, plan_id FROM price_mappings ORDER BY price_id"),
  ]);
  const out: CatalogExport = { regionGroups: {}, features: {}, plans: {}, prices: {} };
  for (const g of groups!.results as { name: string; countries: string }[])
    out.regionGroups[g.name] = JSON.parse(g.countries) as string[];
  for (const f of features!.results as {
    key: string;
    type: string;
    description: string;
    unit: string | null;
    integer_only: number;
    failure_policy: string;
  }[]) {
    out.features[f.key] = {
      type: f.type,
      description: f.description,
      ...(f.unit ? { unit: f.unit } : {}),
      integer: f.integer_only === 1,
      failurePolicy: f.failure_policy,
    };
  }
  for (const p of plans!.results as { id: string; name: string; kind: string; description: string }[]) {
    out.plans[p.id] = { name: p.name, kind: p.kind, description: p.description, entitlements: {} };
  }
  for (const e of ents!.results as { plan_id: string; feature_key: string; spec: string }[]) {
    const plan = out.plans[e.plan_id];
    if (plan) plan.entitlements[e.feature_key] = JSON.parse(e.spec) as EntitlementSpec;
  }
  for (const p of prices!.results as { price_id: string; plan_id: string }[]) out.prices[p.price_id] = p.plan_id;
  return out;
}
