// compose: a customer part + the shared catalog -> the snapshot the evaluator reads. Pure, and the same
// answer as compiling the customer's rows in one piece (compileSnapshot, kept as the oracle: the property
// test in test/compose.test.ts). The check path memoises the result per (customer, part rev, catalog rev),
// so a warm check composes nothing and reads no binding.
import type { CompiledCatalog } from "./catalog-compile";
import { compileSpec } from "./compile";
import type { CustomerPart, PartSubscription } from "./customer-part";
import { own } from "./records";
import type { Snapshot, SnapshotFeature } from "./types";

export function compose(part: CustomerPart, catalog: CompiledCatalog): Snapshot {
  const features: Record<string, SnapshotFeature> = {};
  for (const [key, f] of Object.entries(catalog.features)) features[key] = { ...f, sources: [] };
  // Precedence order: base plans, then add-ons by start, then grants by creation.
  const rank = (s: PartSubscription) => (own(catalog.plans, s.planId)?.kind === "addon" ? 1 : 0);
  const subs = [...part.subscriptions].sort(
    (a, b) => rank(a) - rank(b) || a.startedAt - b.startedAt || cmp(a.id, b.id),
  );
  for (const sub of subs) {
    for (const w of sub.windows) {
      const plan = own(catalog.plans, w.planId);
      if (!plan) continue;
      for (const [key, spec] of Object.entries(plan.entitlements)) {
        own(features, key)?.sources.push({
          kind: plan.kind === "addon" ? "addon" : "plan",
          id: w.planId,
          subscriptionId: sub.id,
          mode: "add",
          from: w.from,
          until: w.until,
          lapse: w.lapse,
          anchorAt: sub.anchorAt,
          spec,
        });
      }
    }
  }
  for (const g of part.grants) {
    const feature = own(features, g.featureKey);
    if (!feature) continue;
    feature.sources.push({
      kind: "grant",
      id: g.id,
      mode: g.mode,
      from: g.from,
      until: g.until,
      lapse: "grant_expired",
      spec: compileSpec(g.spec, feature.type, catalog.regionGroups),
    });
  }
  return {
    format: 1,
    customerId: part.customerId,
    version: part.rev + catalog.rev,
    customerRev: part.rev,
    catalogRev: catalog.rev,
    compiledAt: Math.max(part.compiledAt, catalog.compiledAt),
    residency: part.residency,
    features,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
