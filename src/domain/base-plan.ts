// The customer's base plan, as analytics label a point with it (src/analytics/). Pure. A snapshot keeps
// plans only as the sources of the features they give, base plan first (domain/compose.ts), so the
// plan is read from there: the plan source in force at `now`, else the one that ended last (a lapsed
// trial's plan: the plan of a trial_expired denial), else '' (no plan at all, grants only).
import type { Snapshot } from "./types";

export function basePlanOf(snapshot: Snapshot, now: number): string {
  let latest = "";
  let latestUntil = Number.NEGATIVE_INFINITY;
  for (const key in snapshot.features) {
    for (const s of snapshot.features[key]?.sources ?? []) {
      if (s.kind !== "plan") continue;
      const started = s.from === null || s.from <= now;
      const until = s.until ?? Number.POSITIVE_INFINITY;
      if (started && now < until) return s.id;
      if (until > latestUntil && until <= now) [latest, latestUntil] = [s.id, until];
    }
  }
  return latest;
}
