// Applying a catalog file (catalog-as-code) to D1: upserts features, region groups, plans with
// their exact entitlements, and price mappings. It never deletes a feature or plan that the file
// leaves out (that is a destructive change, guarded by `scripts/catalog apply --allow-destructive`).
import { type CatalogFile, normalizeEntitlement } from "../domain/catalog";

export function catalogStatements(db: D1Database, cat: CatalogFile, now: number): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (const [name, countries] of Object.entries(cat.regionGroups)) {
    out.push(
      db
        .prepare(
          "INSERT INTO region_groups (name, countries, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET countries = excluded.countries, updated_at = excluded.updated_at",
        )
        .bind(name, JSON.stringify([...new Set(countries)].sort()), now),
    );
  }
  for (const [key, f] of Object.entries(cat.features)) {
    out.push(
      db
        .prepare(
          `INSERT INTO features (key, type, description, unit, integer_only, failure_policy, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
           ON CONFLICT (key) DO UPDATE SET type = excluded.type, description = excluded.description, unit = excluded.unit,
             integer_only = excluded.integer_only, failure_policy = excluded.failure_policy, updated_at = excluded.updated_at`,
        )
        .bind(key, f.type, f.description, f.unit ?? null, f.integer ? 1 : 0, f.failurePolicy, now),
    );
  }
  for (const [id, plan] of Object.entries(cat.plans)) {
    out.push(
      db
        .prepare(
          `INSERT INTO plans (id, name, kind, description, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
           ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, description = excluded.description, updated_at = excluded.updated_at`,
        )
        .bind(id, plan.name, plan.kind, plan.description, now),
      db.prepare("DELETE FROM plan_entitlements WHERE plan_id = ?1").bind(id),
    );
    for (const [key, ent] of Object.entries(plan.entitlements)) {
      const spec = normalizeEntitlement(cat.features[key]!.type, ent);
      out.push(
        db
          .prepare("INSERT INTO plan_entitlements (plan_id, feature_key, spec) VALUES (?1, ?2, ?3)")
          .bind(id, key, JSON.stringify(spec)),
      );
    }
  }
  for (const [price, planId] of Object.entries(cat.prices)) {
    out.push(
      db
        .prepare(
          "INSERT INTO price_mappings (price_id, plan_id, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (price_id) DO UPDATE SET plan_id = excluded.plan_id, updated_at = excluded.updated_at",
        )
        .bind(price, planId, now),
    );
  }
  return out;
}
