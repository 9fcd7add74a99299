// The shared catalog as every isolate holds it: features (type, failure policy), and every plan's
// entitlements already compiled (defaults filled, region groups expanded to countries). Pure. One
// immutable object per catalog revision (KV `catalog:<rev>`, src/store/catalog-store.ts): a catalog
// change writes one new object and moves one pointer, whatever the number of customers.
import { compileSpec, type FeatureRow, type PlanRow } from "./compile";
import { own } from "./records";
import type { CompiledSpec, FailurePolicy, FeatureType } from "./types";

export interface CatalogFeature {
  type: FeatureType;
  failurePolicy: FailurePolicy;
  /** Whole units only (metered). */
  integer?: boolean;
}

export interface CompiledPlan {
  kind: "base" | "addon";
  /** Only entitlements of features that exist, compiled. */
  entitlements: Record<string, CompiledSpec>;
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
  for (const f of [...rows.features].sort((a, b) => cmp(a.key, b.key))) {
    features[f.key] = {
      type: f.type,
      failurePolicy: f.failurePolicy,
      ...(f.type === "metered" ? { integer: f.integer } : {}),
    };
  }
  const plans: Record<string, CompiledPlan> = {};
  for (const id of Object.keys(rows.plans).sort(cmp)) {
    const plan = own(rows.plans, id);
    if (!plan) continue;
    const entitlements: Record<string, CompiledSpec> = {};
    for (const [key, spec] of Object.entries(plan.entitlements)) {
      const type = own(features, key)?.type;
      if (type) entitlements[key] = compileSpec(spec, type, rows.regionGroups);
    }
    plans[id] = { kind: plan.kind, entitlements };
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

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
