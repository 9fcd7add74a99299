// compose: a customer part + the shared catalog -> the snapshot the evaluator reads. Pure, and the same
// answer as compiling the customer's rows in one piece (compileSnapshot, kept as the oracle: the property
// test in test/compose.test.ts). The check path memoises the result per (customer, part rev, catalog rev),
// so a warm check composes nothing and reads no binding.

import { type CompiledCatalog, compileCatalog } from "./catalog-compile";
import { type CustomerRows, compileSpec } from "./compile";
import { type CustomerPart, compilePart, type PartSubscription } from "./customer-part";
import { shardsField } from "./leases";
import { versionSegments } from "./plan-versions";
import { compareIds, own } from "./records";
import type { Snapshot, SnapshotFeature } from "./types";

export function compose(part: CustomerPart, catalog: CompiledCatalog): Snapshot {
  const features: Record<string, SnapshotFeature> = {};
  for (const [key, f] of Object.entries(catalog.features)) features[key] = { ...f, sources: [] };
  // Precedence order: base plans, then add-ons by start, then grants by creation.
  const rank = (s: PartSubscription) => (own(catalog.plans, s.planId)?.kind === "addon" ? 1 : 0);
  const subs = [...part.subscriptions].sort(
    (a, b) => rank(a) - rank(b) || a.startedAt - b.startedAt || compareIds(a.id, b.id),
  );
  for (const sub of subs) {
    for (const w of sub.windows) {
      const plan = own(catalog.plans, w.planId);
      if (!plan) continue;
      // The subscription's pinned version applies to its own plan; a scheduled plan starts on its current one.
      const versioned = { ...sub, planVersion: w.planId === sub.planId ? sub.planVersion : null };
      const segments = versionSegments(plan.version, plan.migrations ?? [], versioned, w.from, w.until);
      segments.forEach((seg, i) => {
        const specs =
          seg.version === plan.version
            ? plan.entitlements
            : (own(plan.versions ?? {}, String(seg.version)) ?? plan.entitlements);
        // A move to a newer version closes a segment without a lapse; only the window's own end is one.
        const lapse = i === segments.length - 1 ? w.lapse : null;
        for (const [key, spec] of Object.entries(specs)) {
          own(features, key)?.sources.push({
            kind: plan.kind === "addon" ? "addon" : "plan",
            id: w.planId,
            subscriptionId: sub.id,
            planVersion: seg.version,
            mode: "add",
            from: seg.from,
            until: seg.until,
            lapse,
            anchorAt: sub.anchorAt,
            spec,
          });
        }
      });
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
    ...shardsField(part.meterShards),
    features,
  };
}

/** A customer's whole rows composed as the check path composes them (plan versions resolved): the write path's policies. */
export function snapshotOfRows(rows: CustomerRows, at: number): Snapshot {
  return compose(compilePart(rows, at), compileCatalog(rows, at));
}
