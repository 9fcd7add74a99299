// Upsell hints: for a check denied with not_entitled or limit_reached, the plans and add-ons of the
// catalog that would allow it. Pure, and never a guess: each candidate is put into the customer's
// snapshot for this feature (a base plan in place of the current base plans, an add-on next to them,
// grants kept) and the very same evaluator answers the same check, with the same usage.
//
// Order: the catalog carries no prices, so "lowest tier" is computed from what a plan gives: the
// plans that enable fewer features come first; then the one giving the smaller limit for this
// feature (the smallest step that suffices; unlimited last); then the smaller overall allowance (the
// sum of log2(1 + limit) over its metered features, unlimited counting as 64); then id.

import type { CompiledCatalog, CompiledPlan } from "./catalog-compile";
import { applyUsage, evaluate, resolveFeature } from "./evaluate";
import { own } from "./records";
import type { CheckContext, Reason, Snapshot, Source, UpgradeHint } from "./types";
import { isCounted } from "./types";

export const HINTED_REASONS: ReadonlySet<Reason> = new Set(["not_entitled", "limit_reached"]);

/** The hints for a denied check; `used` is the usage the denial saw (metered). */
export function upgradeHints(
  snapshot: Snapshot,
  catalog: CompiledCatalog,
  ctx: CheckContext,
  now: number,
  used = 0,
): UpgradeHint[] {
  const feature = own(snapshot.features, ctx.feature);
  if (!feature) return [];
  const active = new Set(
    feature.sources
      .filter((s) => s.kind !== "grant" && (s.from === null || s.from <= now) && (s.until === null || now < s.until))
      .map((s) => s.id),
  );
  const hints: { hint: UpgradeHint; rank: number; limit: number; size: number }[] = [];
  for (const [planId, plan] of Object.entries(catalog.plans)) {
    const spec = own(plan.entitlements, ctx.feature);
    if (!spec?.enabled || active.has(planId)) continue;
    const candidate: Source = {
      kind: plan.kind === "addon" ? "addon" : "plan",
      id: planId,
      mode: "add",
      from: null,
      until: null,
      lapse: null,
      spec,
    };
    const sources =
      plan.kind === "addon"
        ? [
            ...feature.sources.filter((s) => s.kind !== "grant"),
            candidate,
            ...feature.sources.filter((s) => s.kind === "grant"),
          ]
        : [candidate, ...feature.sources.filter((s) => s.kind !== "plan")];
    const trial: Snapshot = { ...snapshot, features: { ...snapshot.features, [ctx.feature]: { ...feature, sources } } };
    const ev = applyUsage(evaluate(trial, ctx, now), used, ctx.quantity ?? 1);
    if (!ev.allowed) continue;
    const limit = isCounted(feature.type)
      ? (resolveFeature({ ...feature, sources }, now).effective?.spec.limit ?? null)
      : undefined;
    const hint: UpgradeHint = { planId, kind: plan.kind, ...(limit !== undefined ? { limit } : {}) };
    hints.push({
      hint,
      rank: enabledCount(plan),
      limit: limit ?? Number.POSITIVE_INFINITY,
      size: allowance(plan, catalog),
    });
  }
  hints.sort(
    (a, b) =>
      a.rank - b.rank ||
      (a.limit === b.limit ? 0 : a.limit < b.limit ? -1 : 1) ||
      a.size - b.size ||
      (a.hint.planId < b.hint.planId ? -1 : 1),
  );
  return hints.map((h) => h.hint);
}

const enabledCount = (plan: CompiledPlan) => Object.values(plan.entitlements).filter((s) => s.enabled).length;

/** How much a plan's metered features allow, on a log scale (so no one feature's units dominate). */
function allowance(plan: CompiledPlan, catalog: CompiledCatalog): number {
  let size = 0;
  for (const [key, spec] of Object.entries(plan.entitlements))
    if (spec.enabled && isCounted(own(catalog.features, key)?.type))
      size += spec.limit == null ? 64 : Math.log2(1 + Math.max(0, spec.limit));
  return size;
}
