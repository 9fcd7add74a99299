// Region groups in D1 (table `region_groups`): named sets of countries that region rules refer to.
// Read, list, what still names one, and the statements that write one (returned, not run, so a write
// joins its audit rows in one batch).
import { iso } from "../domain/time";

export interface RegionGroupDbRow {
  name: string;
  /** JSON array of country codes, sorted, without repeats. */
  countries: string;
  updated_at: number;
}

export interface RegionGroup {
  name: string;
  countries: string[];
  updatedAt: number;
}

export const toRegionGroup = (r: RegionGroupDbRow): RegionGroup => ({
  name: r.name,
  countries: JSON.parse(r.countries) as string[],
  updatedAt: r.updated_at,
});

/** The wire form (GET /admin/v1/region-groups/{name}), which the audit log records too. */
export const regionGroupWire = (g: RegionGroup) => ({
  name: g.name,
  countries: g.countries,
  updatedAt: iso(g.updatedAt),
});

/** A group in its stored form: countries sorted, without repeats. */
export const regionGroupOf = (name: string, countries: string[], now: number): RegionGroup => ({
  name,
  countries: [...new Set(countries)].sort(),
  updatedAt: now,
});

export async function readRegionGroup(db: D1Database, name: string): Promise<RegionGroup | null> {
  const row = await db.prepare("SELECT * FROM region_groups WHERE name = ?1").bind(name).first<RegionGroupDbRow>();
  return row ? toRegionGroup(row) : null;
}

/** At most `limit` groups in name order after `after` ("" from the start). */
export async function listRegionGroups(db: D1Database, after: string, limit: number): Promise<RegionGroup[]> {
  const rows = await db
    .prepare("SELECT * FROM region_groups WHERE name > ?1 ORDER BY name LIMIT ?2")
    .bind(after, limit)
    .all<RegionGroupDbRow>();
  return rows.results.map(toRegionGroup);
}

// Specs that name the group in an allow or deny list (JSON columns, searched inside SQLite).
const NAMES_GROUP = (alias: string) =>
  `(EXISTS (SELECT 1 FROM json_each(${alias}.spec, '$.regions.allow') WHERE value = ?1) OR EXISTS (SELECT 1 FROM json_each(${alias}.spec, '$.regions.deny') WHERE value = ?1))`;

/** How many plan entitlements and live (pending or active) grants name the group. */
export async function regionGroupReferences(db: D1Database, name: string): Promise<{ plans: number; grants: number }> {
  const refs = await db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM plan_entitlements e WHERE ${NAMES_GROUP("e")}) AS plans,
              (SELECT COUNT(*) FROM grants g WHERE g.status IN ('pending', 'active') AND ${NAMES_GROUP("g")}) AS grants`,
    )
    .bind(name)
    .first<{ plans: number; grants: number }>();
  return refs ?? { plans: 0, grants: 0 };
}

/** Creates or replaces the group (the admin API's PUT and the catalog file write the same statement). */
export function putRegionGroupStatement(db: D1Database, g: RegionGroup): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO region_groups (name, countries, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET countries = excluded.countries, updated_at = excluded.updated_at",
    )
    .bind(g.name, JSON.stringify(g.countries), g.updatedAt);
}

export function deleteRegionGroupStatement(db: D1Database, name: string): D1PreparedStatement {
  return db.prepare("DELETE FROM region_groups WHERE name = ?1").bind(name);
}
