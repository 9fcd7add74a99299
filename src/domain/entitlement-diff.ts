// What a write changed in what a customer may do now: the entitlements.changed event's data. Pure:
// two composed snapshots (before and after the write) and an instant in, the features gained, lost and
// changed out (a metered limit or a config value that differs while the feature stays enabled).

import { resolveFeature } from "./evaluate";
import type { Json, Snapshot } from "./types";
import { isCounted } from "./types";

export interface FeatureGrant {
  feature: string;
  limit?: number | null;
  value?: Json;
}

export interface EntitlementDiff {
  gained: FeatureGrant[];
  lost: FeatureGrant[];
  changed: { feature: string; before: FeatureGrant; after: FeatureGrant }[];
}

/** The feature as granted at `now` (null: not enabled), with the limit or value a receiver needs. */
function grantAt(snapshot: Snapshot | null, feature: string, now: number): FeatureGrant | null {
  const f = snapshot && Object.hasOwn(snapshot.features, feature) ? snapshot.features[feature] : undefined;
  if (!f) return null;
  const spec = resolveFeature(f, now).effective?.spec;
  if (!spec?.enabled) return null;
  if (isCounted(f.type)) return { feature, limit: spec.limit ?? null };
  if (f.type === "config") return { feature, value: spec.value ?? null };
  return { feature };
}

/**
 * `before` as granted at `beforeAt` (default `now`) against `after` at `now`: a write compares two
 * snapshots at one instant; a change that time alone makes (a grant's end, a migration's move at a
 * period end) compares one snapshot just before and at that instant.
 */
export function entitlementDiff(
  before: Snapshot | null,
  after: Snapshot | null,
  now: number,
  beforeAt = now,
): EntitlementDiff {
  const keys = new Set([...Object.keys(before?.features ?? {}), ...Object.keys(after?.features ?? {})]);
  const diff: EntitlementDiff = { gained: [], lost: [], changed: [] };
  for (const feature of [...keys].sort()) {
    const was = grantAt(before, feature, beforeAt);
    const is = grantAt(after, feature, now);
    if (!was && is) diff.gained.push(is);
    else if (was && !is) diff.lost.push(was);
    else if (was && is && JSON.stringify(was) !== JSON.stringify(is))
      diff.changed.push({ feature, before: was, after: is });
  }
  return diff;
}

export const isEmptyDiff = (d: EntitlementDiff) => d.gained.length + d.lost.length + d.changed.length === 0;
