// Which customers a catalog change can reach, from the two compiled catalogs. Pure. A change to plans
// only reaches the customers on those plans; a change to a feature's definition or a region group can
// reach anyone (defaults, grants and country rules are composed with them), so it says "everyone".
// It over-approximates, never under: the fan-out still diffs each customer it visits.
import type { CompiledCatalog } from "./catalog-compile";
import { own } from "./records";

export type CatalogReach = { everyone: true } | { everyone: false; plans: string[] };

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function catalogReach(before: CompiledCatalog, after: CompiledCatalog): CatalogReach {
  if (!same(before.features, after.features) || !same(before.regionGroups, after.regionGroups))
    return { everyone: true };
  const ids = new Set([...Object.keys(before.plans), ...Object.keys(after.plans)]);
  const plans = [...ids].filter((id) => !same(own(before.plans, id) ?? null, own(after.plans, id) ?? null)).sort();
  return { everyone: false, plans };
}
