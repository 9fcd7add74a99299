// What a signed entitlement token says: the customer's entitlements, evaluated by the same pure
// evaluator as a check, and an expiry that never outlives the earliest expiry among what it grants.
// Pure: snapshot + context + instant in, claims out.

import { seatOf } from "../domain/entities";
import { evaluate } from "../domain/evaluate";
import { iso } from "../domain/time";
import type { Evaluation, FeatureType, Json, Reason, ResetPeriod, Snapshot } from "../domain/types";
import { isCounted } from "../domain/types";

export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
export const MAX_TOKEN_TTL_SECONDS = 86_400;
export const DEFAULT_TOKEN_AUDIENCE = "tollgate:entitlements";
/** Explicit JWT typing (RFC 8725 section 3.11), so an assertion can never pass for a token or back. */
export const ENTITLEMENT_TOKEN_TYPE = "tollgate-entitlements+jwt";

/** One feature in a token. Usage is NOT carried: it changes by the second; consumes go to Tollgate. */
export interface FeatureClaim {
  type?: FeatureType;
  /** Entitled in the token's context (for metered: the allowance exists, whatever has been used). */
  enabled: boolean;
  /** Why not, when not enabled. */
  reason?: Reason;
  limit?: number | null;
  reset?: ResetPeriod;
  resetsAt?: string | null;
  value?: Json;
  /** When this feature's answer may change (a trial ends, a grant starts or lapses); null: no known end. */
  expiresAt: string | null;
  /** Metered and credits: what each entity may use per period (docs/model.md, Entities). */
  perEntity?: { limit: number; reset: ResetPeriod };
}

export interface EntitlementClaims {
  sub: string;
  snapshotVersion: number;
  /** The context the entitlements were evaluated in (role and geo rules depend on it). */
  context: { role?: string; country?: string; entityId?: string };
  entitlements: Record<string, FeatureClaim>;
}

export interface TokenScope {
  role?: string;
  country?: string;
  /** Only these features (default: every catalog feature). */
  features?: string[];
  ttlSeconds: number;
  /**
   * A token for an entity inside the customer: which seats it held when the token was minted (by seats
   * feature). A feature needing a seat it does not hold is not enabled (not_entitled).
   */
  entity?: { id: string; seats: Record<string, boolean> };
}

/** A feature's claim for the token's entity: off when it needs a seat the entity does not hold. */
function entityClaim(snapshot: Snapshot, ev: Evaluation, scope: TokenScope): Evaluation {
  const f = Object.hasOwn(snapshot.features, ev.feature) ? snapshot.features[ev.feature] : undefined;
  const seat = seatOf(ev.feature, f);
  if (!scope.entity || !seat || !ev.allowed || scope.entity.seats[seat] === true) return ev;
  return { ...ev, allowed: false, reason: "not_entitled" };
}

function featureClaim(ev: Evaluation): FeatureClaim {
  const claim: FeatureClaim = { enabled: ev.allowed, expiresAt: ev.expiresAt == null ? null : iso(ev.expiresAt) };
  if (ev.type) claim.type = ev.type;
  if (!ev.allowed) return { ...claim, reason: ev.reason };
  if (isCounted(ev.type)) {
    claim.limit = ev.limit ?? null;
    if (ev.reset) claim.reset = ev.reset;
    claim.resetsAt = ev.resetsAt == null ? null : iso(ev.resetsAt);
    const pe = ev.effective?.spec.perEntity;
    if (pe) claim.perEntity = { limit: pe.limit, reset: pe.reset };
  }
  if (ev.type === "seats") claim.limit = ev.limit ?? null;
  if (ev.type === "config") claim.value = ev.value ?? null;
  return claim;
}

/** The claims and the expiry (ms) of a token minted at `now`. */
export function entitlementClaims(
  snapshot: Snapshot,
  scope: TokenScope,
  now: number,
): { claims: EntitlementClaims; expiresAt: number } {
  const keys = scope.features ?? Object.keys(snapshot.features);
  const entries: [string, FeatureClaim][] = [];
  let expiresAt = now + scope.ttlSeconds * 1000;
  for (const feature of keys) {
    const ev = entityClaim(
      snapshot,
      evaluate(snapshot, { feature, role: scope.role, country: scope.country }, now),
      scope,
    );
    entries.push([feature, featureClaim(ev)]);
    // Only what the token grants bounds it: a feature that is off now stays off in the token.
    if (ev.allowed && ev.expiresAt != null && ev.expiresAt < expiresAt) expiresAt = ev.expiresAt;
  }
  const context: EntitlementClaims["context"] = {};
  if (scope.role !== undefined) context.role = scope.role;
  if (scope.country !== undefined) context.country = scope.country;
  if (scope.entity) context.entityId = scope.entity.id;
  // fromEntries defines own properties: a requested feature named "__proto__" stays plain data.
  const entitlements = Object.fromEntries(entries);
  return { claims: { sub: snapshot.customerId, snapshotVersion: snapshot.version, context, entitlements }, expiresAt };
}
