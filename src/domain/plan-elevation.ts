// Whether a change of a customer's subscriptions (a new one, or a plan change) gives it more than its
// plans give now: an "upgrade", which the admin API leaves to admins (write/upgrade-policy.ts). Pure.
//
// The plans and add-ons before and after the change are compared feature by feature, at every instant
// from now on where either side's windows open or close, so an upgrade scheduled for the period end,
// or a trial of a bigger plan, is one too. Grants are left out on both sides, as in grant elevation:
// a grant that already gives the feature must not make the plan look harmless, since it ends on its
// own. Specs are compared with gainsOf's "plan" measure: a catalog's config values and reset anchors
// are not ordered, and limits with different reset periods are compared per unit of time.
import { resolveFeature } from "./evaluate";
import { type Elevation, enabled, gainsOf } from "./grant-elevation";
import type { Snapshot, Source } from "./types";

const plansOnly = (sources: Source[]) => sources.filter((s) => s.kind !== "grant");

/** What `after` gives beyond `before` from `now` on, per feature ("sso: enables ..."); `at`: the first such instant. */
export function planChangeElevation(before: Snapshot, after: Snapshot, now: number): Elevation {
  const gains: string[] = [];
  let at: number | null = null;
  for (const [key, feature] of Object.entries(after.features)) {
    const prev = Object.hasOwn(before.features, key) ? before.features[key] : undefined;
    const baseSources = prev ? plansOnly(prev.sources) : [];
    const nextSources = plansOnly(feature.sources);
    const instants = new Set([now]);
    for (const s of [...baseSources, ...nextSources])
      for (const t of [s.from, s.until]) if (t !== null && t > now) instants.add(t);
    for (const t of [...instants].sort((a, b) => a - b)) {
      const base = enabled(resolveFeature({ ...feature, sources: baseSources }, t).effective?.spec);
      const next = enabled(resolveFeature({ ...feature, sources: nextSources }, t).effective?.spec);
      const more = gainsOf(feature.type, base, next, "plan");
      if (more.length === 0) continue;
      gains.push(...more.map((g) => `${key}: ${g}`));
      at = at === null ? t : Math.min(at, t);
      break;
    }
  }
  return { elevated: gains.length > 0, gains, at };
}
