// Applying a catalog file (PUT /admin/v1/catalog), entity by entity: each region group, feature, plan
// and price mapping the file creates or changes gets its statement and its own audit entry, with the
// entity as the API returns it before and after (the same entries the resource routes write). What
// the file leaves unchanged is not written at all, so its updatedAt stays true. One entry per entity
// keeps every audit row small: a single row holding the whole catalog before and after could not be
// written once the catalog passed about 1 MB (D1 stores at most 2 MB per row).
import { type CatalogFile, normalizeEntitlement, type PriceTarget } from "../domain/catalog";
import { canonical } from "../domain/catalog-diff";
import type { MigrationMode } from "../domain/plan-versions";
import type { EntitlementSpec } from "../domain/types";
import type { CatalogEntities } from "../store/catalog";
import { type Feature, featureWire, upsertFeatureStatement } from "../store/features";
import { type Plan, planWire, putPlanStatements, versionOf } from "../store/plans";
import { type PriceMapping, priceMappingWire, putPriceMappingStatement, targetOf } from "../store/prices";
import { putRegionGroupStatement, regionGroupOf, regionGroupWire } from "../store/region-groups";
import type { AuditEntry } from "./commit";

export interface CatalogApply {
  statements: D1PreparedStatement[];
  audits: AuditEntry[];
  /** How many entities the file created, changed, and left as they were. */
  counts: { created: number; updated: number; unchanged: number };
  /** Plans the file changed into a new version with `migrate` now or at_period_end: their subscribers move. */
  migrations: { planId: string; toVersion: number; mode: MigrationMode }[];
}

/** The statements and audit entries that bring the stored catalog (`before`) to what the file says. */
export function planCatalogApply(
  db: D1Database,
  before: CatalogEntities,
  cat: CatalogFile,
  now: number,
  reason: string | null,
): CatalogApply {
  const statements: D1PreparedStatement[] = [];
  const audits: AuditEntry[] = [];
  const counts = { created: 0, updated: 0, unchanged: 0 };
  const migrations: CatalogApply["migrations"] = [];
  /** Records one entity's change (or counts it unchanged). */
  const change = <T>(
    entityType: string,
    entityId: string,
    prev: T | undefined,
    next: T,
    same: (a: T, b: T) => boolean,
    wire: (e: T) => unknown,
    stmts: () => D1PreparedStatement[],
    actions: { create: string; update: string },
  ) => {
    if (prev !== undefined && same(prev, next)) {
      counts.unchanged++;
      return;
    }
    counts[prev === undefined ? "created" : "updated"]++;
    statements.push(...stmts());
    audits.push({
      action: prev === undefined ? actions.create : actions.update,
      entityType,
      entityId,
      before: prev === undefined ? null : wire(prev),
      after: wire(next),
      reason,
    });
  };

  for (const [name, countries] of Object.entries(cat.regionGroups)) {
    const next = regionGroupOf(name, countries, now);
    change(
      "region_group",
      name,
      before.regionGroups.get(name),
      next,
      (a, b) => canonical(a.countries) === canonical(b.countries),
      regionGroupWire,
      () => [putRegionGroupStatement(db, next)],
      { create: "region_group.create", update: "region_group.update" },
    );
  }
  for (const [key, f] of Object.entries(cat.features)) {
    const prev = before.features.get(key);
    const next: Feature = {
      key,
      type: f.type,
      description: f.description,
      unit: f.unit ?? null,
      integer: f.integer,
      failurePolicy: f.failurePolicy,
      ...(f.creditCost ? { creditCost: f.creditCost } : {}),
      ...(f.seat ? { seat: f.seat } : {}),
      createdAt: prev?.createdAt ?? now,
      updatedAt: now,
    };
    change(
      "feature",
      key,
      prev,
      next,
      (a, b) => canonical(featureFields(a)) === canonical(featureFields(b)),
      featureWire,
      () => [upsertFeatureStatement(db, key, f, now)],
      { create: "feature.create", update: "feature.update" },
    );
  }
  for (const [id, plan] of Object.entries(cat.plans)) {
    const entitlements: Record<string, EntitlementSpec> = {};
    for (const [key, ent] of Object.entries(plan.entitlements)) {
      const feature = cat.features[key];
      if (!feature) throw new Error(`plan '${id}' names unknown feature '${key}'`); // the schema refuses this
      entitlements[key] = normalizeEntitlement(feature.type, ent);
    }
    const prev = before.plans.get(id);
    const fields = {
      id,
      name: plan.name,
      kind: plan.kind,
      description: plan.description,
      entitlements,
      createdAt: prev?.createdAt ?? now,
      updatedAt: now,
    };
    const { version, isNew } = versionOf(prev ?? null, fields);
    const next: Plan = { ...fields, version };
    change(
      "plan",
      id,
      prev,
      next,
      (a, b) => canonical(planFields(a)) === canonical(planFields(b)),
      planWire,
      () => putPlanStatements(db, next, isNew),
      { create: "plan.create", update: "plan.update" },
    );
    if (prev && isNew && plan.migrate && plan.migrate !== "stay")
      migrations.push({ planId: id, toVersion: version, mode: plan.migrate });
  }
  for (const [priceId, target] of Object.entries(cat.prices)) {
    const next = priceMappingOf(priceId, target, cat, now);
    change(
      "price_mapping",
      priceId,
      before.prices.get(priceId),
      next,
      (a, b) => canonical(targetOf(a)) === canonical(targetOf(b)),
      priceMappingWire,
      () => [putPriceMappingStatement(db, priceId, target, now)],
      { create: "price_mapping.put", update: "price_mapping.put" },
    );
  }
  return { statements, audits, counts, migrations };
}

function priceMappingOf(priceId: string, target: PriceTarget, cat: CatalogFile, now: number): PriceMapping {
  if (typeof target !== "string") return { priceId, topUp: target, updatedAt: now };
  const kind = cat.plans[target]?.kind;
  if (!kind) throw new Error(`price '${priceId}' names unknown plan '${target}'`); // the schema refuses this
  return { priceId, planId: target, kind, updatedAt: now };
}

const featureFields = ({ createdAt: _c, updatedAt: _u, ...rest }: Feature) => rest;
const planFields = ({ createdAt: _c, updatedAt: _u, version: _v, ...rest }: Plan) => rest;
