// The shared catalog as every isolate holds it: features (type, failure policy), and every plan's
// entitlements already compiled (defaults filled, region groups expanded to countries). Pure. One
// immutable object per catalog revision (KV `catalog:<rev>`, src/store/catalog-store.ts): a catalog
// change writes one new object and moves one pointer, whatever the number of customers.
import { compileSpec, type FeatureRow, type PlanRow } from "./compile";
import type { PlanMigrationRule } from "./plan-versions";
import { compareIds, own } from "./records";
import {
  type CompiledSpec,
  type CreditCost,
  type EntitlementSpec,
  type FailurePolicy,
  type FeatureType,
  isCounted,
} from "./types";

export interface CatalogFeature {
  type: FeatureType;
  failurePolicy: FailurePolicy;
  /** Whole units only (metered). */
  integer?: boolean;
  /** Metered: the credit balance each unit draws from. */
  creditCost?: CreditCost;
  /** An entity's use of it needs a seat of this seats feature. */
  seat?: string;
}

export interface CompiledPlan {
  kind: "base" | "addon";
  /** The current version (what new subscriptions get). */
  version: number;
  /** The current version's entitlements: only features that exist, compiled. */
  entitlements: Record<string, CompiledSpec>;
  /** Older versions' entitlements, compiled, by version number (absent: none). */
  versions?: Record<string, Record<string, CompiledSpec>>;
  /** Migrations of existing subscribers to newer versions (domain/plan-versions.ts; absent: none). */
  migrations?: PlanMigrationRule[];
}

export interface CompiledCatalog {
  format: 1;
  rev: number;
  compiledAt: number;
  features: Record<string, CatalogFeature>;
  /** Region groups as countries, to expand the region rules of grants when composed. */
  regionGroups: Record<string, string[]>;
  plans: Record<string, CompiledPlan>;
}

export interface CatalogRows {
  catalogRev: number;
  features: FeatureRow[];
  regionGroups: Record<string, string[]>;
  /** Every plan. */
  plans: Record<string, PlanRow>;
}

export function compileCatalog(rows: CatalogRows, compiledAt: number): CompiledCatalog {
  const features: Record<string, CatalogFeature> = {};
  for (const f of [...rows.features].sort((a, b) => compareIds(a.key, b.key))) {
    features[f.key] = {
      type: f.type,
      failurePolicy: f.failurePolicy,
      ...(isCounted(f.type) ? { integer: f.integer } : {}),
      ...(f.creditCost ? { creditCost: f.creditCost } : {}),
      ...(f.seat ? { seat: f.seat } : {}),
    };
  }
  const plans: Record<string, CompiledPlan> = {};
  for (const id of Object.keys(rows.plans).sort(compareIds)) {
    const plan = own(rows.plans, id);
    if (!plan) continue;
    const compileAll = (specs: Record<string, EntitlementSpec>) => {
      const out: Record<string, CompiledSpec> = {};
      for (const [key, spec] of Object.entries(specs)) {
        const type = own(features, key)?.type;
        if (type) out[key] = compileSpec(spec, type, rows.regionGroups);
      }
      return out;
    };
    const compiled: CompiledPlan = {
      kind: plan.kind,
      version: plan.version ?? 1,
      entitlements: compileAll(plan.entitlements),
    };
    const older = Object.entries(plan.versions ?? {});
    if (older.length > 0) compiled.versions = Object.fromEntries(older.map(([v, specs]) => [v, compileAll(specs)]));
    if (plan.migrations && plan.migrations.length > 0)
      compiled.migrations = [...plan.migrations].sort((a, b) => a.at - b.at || a.toVersion - b.toVersion);
    plans[id] = compiled;
  }
  return { format: 1, rev: rows.catalogRev, compiledAt, features, regionGroups: rows.regionGroups, plans };
}

/** A parsed KV or history value that is a compiled catalog. */
export function isCompiledCatalog(v: unknown): v is CompiledCatalog {
  return (
    typeof v === "object" &&
    v !== null &&
    (v as CompiledCatalog).format === 1 &&
    typeof (v as CompiledCatalog).rev === "number" &&
    typeof (v as CompiledCatalog).features === "object" &&
    typeof (v as CompiledCatalog).plans === "object"
  );
}
