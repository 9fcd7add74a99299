// The rules a grant must meet before it is stored or approved: a valid window, and for an elevated
// grant (one that gives more than the customer's plans: src/domain/grant-elevation.ts) a reason and an
// expiry within GRANT_MAX_LIFETIME_DAYS (config.grants.maxLifetimeMs, passed in by the routes). Elevation is
// judged on a snapshot compiled fresh from D1, never on a cached copy, because it decides whether a second
// person must look.
//
// A grant that enables anything also counts as elevated when it has no expiry or lasts longer than
// GRANT_MAX_LIFETIME_DAYS, even if it only copies the plans today (security review M6): plans end (a
// cancellation, Stripe, the cron) and the grant would not, so it would keep the feature for good. Such
// a grant then needs a reason, a bounded expiry and a second person; a restriction (enabled: false)
// may be open-ended, and a bounded copy of the plans still applies at once.

import type { Principal } from "../auth/principal";
import { compileSpec } from "../domain/compile";
import { snapshotOfRows } from "../domain/compose";
import { type Elevation, grantElevation } from "../domain/grant-elevation";
import { DAY_MS } from "../domain/time";
import type { EntitlementSpec } from "../domain/types";
import { type FieldError, Problem } from "../http/problem";
import { loadCustomerRows } from "../store/customer-rows";

export interface GrantTerms {
  customerId: string;
  featureKey: string;
  mode: "add" | "replace";
  spec: EntitlementSpec;
  reason: string;
  startsAt: number | null;
  expiresAt: number | null;
}

/** Whether the grant gives the customer more than its plans do, over the grant's whole window, or could outlive them; null: no such customer. */
export async function assessElevation(
  db: D1Database,
  g: GrantTerms,
  now: number,
  maxLifetimeMs: number,
): Promise<Elevation | null> {
  const rows = await loadCustomerRows(db, g.customerId);
  if (!rows) return null;
  const snapshot = snapshotOfRows(rows, now);
  const feature = snapshot.features[g.featureKey];
  if (!feature)
    throw new Problem("validation", `Unknown feature '${g.featureKey}'.`, {
      errors: [{ path: "json.feature", message: "unknown feature" }],
    });
  const spec = compileSpec(g.spec, feature.type, rows.regionGroups);
  const elevation = grantElevation(
    feature,
    { kind: "grant", id: "proposed", mode: g.mode, from: g.startsAt, until: g.expiresAt, lapse: "grant_expired", spec },
    now,
  );
  const outlives = spec.enabled ? outlivesPlans(g, now, maxLifetimeMs) : null;
  if (!outlives) return elevation;
  return {
    elevated: true,
    gains: [...elevation.gains, outlives],
    at: elevation.at ?? Math.max(now, g.startsAt ?? now),
  };
}

/** Why an enabling grant could outlive the plans it copies (no expiry, or beyond the elevated maximum); null when it cannot. */
function outlivesPlans(g: GrantTerms, now: number, maxLifetimeMs: number): string | null {
  if (g.expiresAt === null) return "has no expiry: it would outlive the plans";
  if (g.expiresAt - Math.max(now, g.startsAt ?? now) > maxLifetimeMs)
    return `lasts more than ${maxLifetimeMs / DAY_MS} days: it could outlive the plans`;
  return null;
}

/** Window and elevation rules; an empty list when the grant may be stored (or approved) at `now`. */
export function termsErrors(g: GrantTerms, elevated: boolean, now: number, maxLifetimeMs: number): FieldError[] {
  const errors: FieldError[] = [];
  if (g.expiresAt !== null && g.expiresAt <= now)
    errors.push({ path: "json.expiresAt", message: "must be in the future" });
  if (g.startsAt !== null && g.expiresAt !== null && g.expiresAt <= g.startsAt)
    errors.push({ path: "json.expiresAt", message: "must be after startsAt" });
  if (!elevated) return errors;
  if (g.reason.trim() === "") errors.push({ path: "json.reason", message: "an elevated grant needs a reason" });
  if (g.expiresAt === null) errors.push({ path: "json.expiresAt", message: "an elevated grant needs an expiry" });
  else if (g.expiresAt - Math.max(now, g.startsAt ?? now) > maxLifetimeMs) {
    errors.push({
      path: "json.expiresAt",
      message: `an elevated grant may last at most ${maxLifetimeMs / DAY_MS} days`,
    });
  }
  return errors;
}

/** A principal's stable identity for four-eyes comparisons (an operator's email may change; its `sub` does not). */
export function identityOf(p: Principal): string {
  if (p.kind === "operator") return `operator:${p.id}`;
  if (p.kind === "api_key") return `key:${p.id}`;
  return "bootstrap";
}
