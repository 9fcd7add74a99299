// Validation of entitlement specs against the live catalog (feature types, region groups), for the
// admin API's plan and grant writes. The rules are the catalog file's (src/domain/catalog.ts), so a
// spec accepted here is one the catalog file would accept too.

import type { z } from "zod";
import { type entitlementShorthand, normalizeEntitlement, regionRefProblem, specProblem } from "../domain/catalog";
import type { EntitlementSpec } from "../domain/types";
import { type FieldError, Problem } from "../http/problem";
import type { CatalogFacts } from "../store/catalog";

/** Problems of one spec for one feature; an empty list when it fits. */
export function specErrors(facts: CatalogFacts, featureKey: string, spec: EntitlementSpec, path: string): FieldError[] {
  const type = facts.featureTypes.get(featureKey);
  if (!type) return [{ path, message: `unknown feature '${featureKey}'` }];
  const errors: FieldError[] = [];
  const problem = specProblem(type, spec as Parameters<typeof specProblem>[1]);
  if (problem) errors.push({ path, message: problem });
  for (const ref of [...(spec.regions?.allow ?? []), ...(spec.regions?.deny ?? [])]) {
    const found = regionRefProblem(ref, (g) => facts.regionGroups.has(g));
    if (found) errors.push({ path, message: found });
  }
  return errors;
}

/** A plan's entitlements (catalog-file shorthand allowed) as full specs, or a 400 naming every bad one. */
export function normalizePlanEntitlements(
  facts: CatalogFacts,
  entitlements: Record<string, z.output<typeof entitlementShorthand>>,
  where = "json.entitlements",
): Record<string, EntitlementSpec> {
  const out: Record<string, EntitlementSpec> = {};
  const errors: FieldError[] = [];
  for (const [key, ent] of Object.entries(entitlements)) {
    const type = facts.featureTypes.get(key);
    const path = `${where}.${key}`;
    if (!type) {
      errors.push({ path, message: `unknown feature '${key}'` });
      continue;
    }
    const spec = normalizeEntitlement(type, ent) as EntitlementSpec;
    if (spec.topUp) {
      errors.push({ path, message: "topUp applies to grants only" });
      continue;
    }
    const found = specErrors(facts, key, spec, path);
    if (found.length > 0) errors.push(...found);
    else out[key] = spec;
  }
  throwIfAny(errors);
  return out;
}

export function throwIfAny(errors: FieldError[]): void {
  if (errors.length > 0)
    throw new Problem("validation", `${errors.length} invalid field(s): ${errors.map((e) => e.path).join(", ")}`, {
      errors,
    });
}
