// Price mappings in D1 (table `price_mappings`): what a billing provider's price (or product) id
// provisions: a plan (with the plan's kind joined in), or a credit top-up of a credits feature
// (docs/billing.md, "Credit top-ups"). Statements that write are returned, not run, so a write joins
// its audit row in one batch.
import type { PriceTarget, TopUpPrice } from "../domain/catalog";
import { iso } from "../domain/time";

export interface PriceMappingDbRow {
  price_id: string;
  plan_id: string | null;
  kind: "base" | "addon" | null;
  credits_feature: string | null;
  credits_amount: number | null;
  credits_expires_days: number | null;
  updated_at: number;
}

export type PriceMapping =
  | { priceId: string; planId: string; kind: "base" | "addon"; updatedAt: number }
  | { priceId: string; topUp: TopUpPrice; updatedAt: number };

const topUpOf = (r: PriceMappingDbRow): TopUpPrice | null =>
  r.credits_feature === null
    ? null
    : { credits: r.credits_feature, amount: r.credits_amount ?? 0, expiresInDays: r.credits_expires_days ?? 0 };

export function toPriceMapping(r: PriceMappingDbRow): PriceMapping {
  const topUp = topUpOf(r);
  if (topUp) return { priceId: r.price_id, topUp, updatedAt: r.updated_at };
  return { priceId: r.price_id, planId: r.plan_id ?? "", kind: r.kind ?? "base", updatedAt: r.updated_at };
}

/** The mapping as the catalog file writes it: a plan id, or the top-up. */
export const targetOf = (m: PriceMapping): PriceTarget => ("topUp" in m ? m.topUp : m.planId);

/** The wire form (GET /admin/v1/prices/{priceId}), which the audit log records too. */
export const priceMappingWire = (m: PriceMapping) =>
  "topUp" in m
    ? { priceId: m.priceId, topUp: m.topUp, updatedAt: iso(m.updatedAt) }
    : { priceId: m.priceId, planId: m.planId, kind: m.kind, updatedAt: iso(m.updatedAt) };

export const PRICE_MAPPING_SELECT =
  "SELECT m.price_id, m.plan_id, p.kind, m.credits_feature, m.credits_amount, m.credits_expires_days, m.updated_at FROM price_mappings m LEFT JOIN plans p ON p.id = m.plan_id";

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

/** Maps the price to a plan or a top-up, replacing what it mapped to (the admin API's PUT and the catalog file write the same statement). */
export function putPriceMappingStatement(
  db: D1Database,
  priceId: string,
  target: PriceTarget,
  now: number,
): D1PreparedStatement {
  const [planId, topUp] = typeof target === "string" ? [target, null] : [null, target];
  return db
    .prepare(
      `INSERT INTO price_mappings (price_id, plan_id, credits_feature, credits_amount, credits_expires_days, updated_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6)
       ON CONFLICT (price_id) DO UPDATE SET plan_id = excluded.plan_id, credits_feature = excluded.credits_feature,
         credits_amount = excluded.credits_amount, credits_expires_days = excluded.credits_expires_days,
         updated_at = excluded.updated_at`,
    )
    .bind(priceId, planId, topUp?.credits ?? null, topUp?.amount ?? null, topUp?.expiresInDays ?? null, now);
}

export function deletePriceMappingStatement(db: D1Database, priceId: string): D1PreparedStatement {
  return db.prepare("DELETE FROM price_mappings WHERE price_id = ?1").bind(priceId);
}

/** At most 90 distinct ids per look-up (D1 binds at most 100 parameters per statement). */
async function mappingsOf(db: D1Database, priceIds: string[]): Promise<PriceMapping[]> {
  const unique = [...new Set(priceIds)].slice(0, 90);
  if (unique.length === 0) return [];
  const marks = unique.map((_, i) => `?${i + 1}`).join(", ");
  const rows = await db
    .prepare(`${PRICE_MAPPING_SELECT} WHERE m.price_id IN (${marks})`)
    .bind(...unique)
    .all<PriceMappingDbRow>();
  return rows.results.map(toPriceMapping);
}

/** The plan (and its kind) each of these price ids is mapped to; unmapped ids, and top-up prices, are absent. */
export async function plansOfPrices(
  db: D1Database,
  priceIds: string[],
): Promise<Record<string, { planId: string; kind: "base" | "addon" }>> {
  return Object.fromEntries(
    (await mappingsOf(db, priceIds)).flatMap((m) =>
      "topUp" in m ? [] : [[m.priceId, { planId: m.planId, kind: m.kind }]],
    ),
  );
}

/** The top-up each of these price ids is mapped to; unmapped ids, and plan prices, are absent. */
export async function topUpsOfPrices(db: D1Database, priceIds: string[]): Promise<Record<string, TopUpPrice>> {
  return Object.fromEntries(
    (await mappingsOf(db, priceIds)).flatMap((m) => ("topUp" in m ? [[m.priceId, m.topUp]] : [])),
  );
}
