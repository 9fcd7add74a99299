// Terminal output of scripts/catalog.mjs. Pure (strings in, strings out), so tests can import it.

/** The PUT /admin/v1/catalog answer as one short paragraph. */
export function formatApplyResult(result, { file, target }) {
  const a = result?.applied ?? {};
  const counts = [`${a.features ?? 0} features`, `${a.plans ?? 0} plans`, `${a.regionGroups ?? 0} region groups`, `${a.prices ?? 0} price mappings`];
  return `Applied ${file} to ${target}: ${counts.join(", ")}; ${result?.recompiled ?? 0} customer snapshots recompiled.`;
}
