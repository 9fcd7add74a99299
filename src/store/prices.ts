// Price mappings in D1 (table `price_mappings`): which plan a billing provider's price (or product) id
// provisions, with the plan's kind joined in. Statements that write are returned, not run, so a write
// joins its audit row in one batch.
import { iso } from "../domain/time";

export interface PriceMappingDbRow {
  price_id: string;
  plan_id: string;
  kind: "base" | "addon";
  updated_at: number;
}

export interface PriceMapping {
  priceId: string;
  planId: string;
  kind: "base" | "addon";
  updatedAt: number;
}

export const toPriceMapping = (r: PriceMappingDbRow): PriceMapping => ({
  priceId: r.price_id,
  planId: r.plan_id,
  kind: r.kind,
  updatedAt: r.updated_at,
});

/** The wire form (GET /admin/v1/prices/{priceId}), which the audit log records too. */
export const priceMappingWire = (m: PriceMapping) => ({
  priceId: m.priceId,
  planId: m.planId,
  kind: m.kind,
  updatedAt: iso(m.updatedAt),
});

export const PRICE_MAPPING_SELECT =
  "SELECT m.price_id, m.plan_id, p.kind, m.updated_at FROM price_mappings m JOIN plans p ON p.id = m.plan_id";

export async function readPriceMapping(db: D1Database, priceId: string): Promise<PriceMapping | null> {
  const row = await db
    .prepare(`${PRICE_MAPPING_SELECT} WHERE m.price_id = ?1`)
    .bind(priceId)
    .first<PriceMappingDbRow>();
  return row ? toPriceMapping(row) : null;
}

/** At most `limit` mappings in price id order after `after` ("" from the start), optionally of one plan. */
export async function listPriceMappings(
  db: D1Database,
  filter: { after: string; planId?: string },
  limit: number,
): Promise<PriceMapping[]> {
  const rows = await db
    .prepare(
      `${PRICE_MAPPING_SELECT} WHERE m.price_id > ?1 AND (?2 IS NULL OR m.plan_id = ?2) ORDER BY m.price_id LIMIT ?3`,
    )
    .bind(filter.after, filter.planId ?? null, limit)
    .all<PriceMappingDbRow>();
  return rows.results.map(toPriceMapping);
}

/** Maps the price to the plan (the admin API's PUT and the catalog file write the same statement). */
export function putPriceMappingStatement(
  db: D1Database,
  priceId: string,
  planId: string,
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO price_mappings (price_id, plan_id, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (price_id) DO UPDATE SET plan_id = excluded.plan_id, updated_at = excluded.updated_at",
    )
    .bind(priceId, planId, now);
}

export function deletePriceMappingStatement(db: D1Database, priceId: string): D1PreparedStatement {
  return db.prepare("DELETE FROM price_mappings WHERE price_id = ?1").bind(priceId);
}

/** The plan (and its kind) each of these price ids is mapped to; unmapped ids are absent. At most 90 distinct ids are looked up (D1 binds at most 100 parameters per statement). */
export async function plansOfPrices(
  db: D1Database,
  priceIds: string[],
): Promise<Record<string, { planId: string; kind: "base" | "addon" }>> {
  const unique = [...new Set(priceIds)].slice(0, 90);
  if (unique.length === 0) return {};
  const marks = unique.map((_, i) => `?${i + 1}`).join(", ");
  const rows = await db
    .prepare(
      `SELECT m.price_id, m.plan_id, p.kind FROM price_mappings m JOIN plans p ON p.id = m.plan_id WHERE m.price_id IN (${marks})`,
    )
    .bind(...unique)
    .all<{ price_id: string; plan_id: string; kind: "base" | "addon" }>();
  return Object.fromEntries(rows.results.map((r) => [r.price_id, { planId: r.plan_id, kind: r.kind }]));
}
