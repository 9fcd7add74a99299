// evaluate: snapshot + request context + instant -> decision. Pure, and O(sources of one feature):
// the cost does not grow with the number of features in the snapshot.
//
// Precedence (docs/model.md, "Precedence"): sources are visited in order base plan, add-ons, grants.
// - A source counts only inside its window [from, until).
// - "replace" (grants only) discards everything before it, including a disabling one.
// - Otherwise the first enabling source sets the entitlement and later enabling ones add to it:
//   booleans OR; metered limits sum (unlimited wins) in the period of the first; config values,
//   overage policy, rollover, per-entity limits, roles and region rules are taken from the latest source
//   that states them.
//
// Metered features take two steps: `evaluate` answers everything the snapshot knows and returns the
// feature's period but no usage; the caller reads the usage of that period from the customer's
// meter (one Durable Object RPC) and `applyUsage` completes the same Evaluation. The split is what
// keeps the evaluator pure: the I/O sits between two pure calls, in the check path (check-path.ts).
import { periodAt } from "./periods";
import {
  type CheckContext,
  type CompiledSpec,
  type Effective,
  type Evaluation,
  isCounted,
  type LapseReason,
  type ResetAnchor,
  type ResetPeriod,
  type Snapshot,
  type SnapshotFeature,
  type Source,
  type TopUp,
} from "./types";

export interface Resolution {
  effective: Effective | null;
  /** Why the feature is not granted, when a source that would grant it has lapsed. */
  lapse: LapseReason | null;
  /** The next instant at which a window opens or closes (Infinity when none). */
  changeAt: number;
}

const LAPSE_RANK: Record<LapseReason, number> = { grant_expired: 1, subscription_inactive: 2, trial_expired: 3 };

export function resolveFeature(feature: SnapshotFeature, now: number): Resolution {
  let spec: CompiledSpec | null = null;
  let owned = false; // copy-on-write: the common single-source case allocates nothing
  let sources: Source[] = [];
  let anchorAt: number | null = null;
  let lapse: LapseReason | null = null;
  let changeAt = Infinity;
  let topUps: TopUp[] | null = null;
  for (const s of feature.sources) {
    if (s.from !== null && now < s.from) {
      if (s.from < changeAt) changeAt = s.from;
      continue;
    }
    if (s.until !== null && now >= s.until) {
      if (s.spec.enabled && s.lapse && (lapse === null || LAPSE_RANK[s.lapse] > LAPSE_RANK[lapse])) lapse = s.lapse;
      continue;
    }
    if (s.until !== null && s.until < changeAt) changeAt = s.until;
    // A top-up adds credits once, not to each period's limit: kept aside for the meter (domain/credits.ts).
    if (s.spec.topUp) {
      if (s.spec.enabled && s.spec.limit) {
        topUps ??= [];
        topUps.push({ id: s.id, amount: s.spec.limit, from: s.from ?? 0, until: s.until });
      }
      continue;
    }
    if (s.mode === "replace" || spec === null || (!spec.enabled && s.spec.enabled)) {
      spec = s.spec;
      owned = false;
      sources = [s];
      anchorAt = s.anchorAt ?? null;
      continue;
    }
    if (!s.spec.enabled) continue; // a disabling add-on takes nothing away; a "replace" grant does
    if (!owned) {
      spec = { ...spec };
      owned = true;
    }
    merge(spec, s.spec);
    sources.push(s);
    if (anchorAt === null) anchorAt = s.anchorAt ?? null;
  }
  if (topUps) {
    // Top-ups alone grant the feature, with no period allowance of its own.
    spec ??= { enabled: true, limit: 0, reset: "month", anchor: "calendar" };
    if (!spec.enabled) return { effective: { spec, sources, anchorAt }, lapse, changeAt };
    topUps.sort((a, b) => (a.until ?? Infinity) - (b.until ?? Infinity));
    return { effective: { spec, sources, anchorAt, topUps }, lapse, changeAt };
  }
  return { effective: spec ? { spec, sources, anchorAt } : null, lapse, changeAt };
}

function merge(into: CompiledSpec, add: CompiledSpec): void {
  if (into.limit !== undefined || add.limit !== undefined) {
    into.limit = into.limit == null || add.limit == null ? null : into.limit + add.limit;
  }
  if (add.overage !== undefined) {
    into.overage = add.overage;
    into.overageCap = add.overageCap;
  }
  if (add.value !== undefined) into.value = add.value;
  if (add.rollover !== undefined) into.rollover = add.rollover;
  if (add.perEntity !== undefined) into.perEntity = add.perEntity;
  if (add.roles) into.roles = add.roles;
  if (add.allow || add.deny) {
    into.allow = add.allow;
    into.deny = add.deny;
  }
}

/** Evaluates one check against a snapshot. Metered features come back with their period; usage is applied by `applyUsage`. */
export function evaluate(snapshot: Snapshot, ctx: CheckContext, now: number): Evaluation {
  const key = ctx.feature;
  // hasOwn: a feature called "constructor" must not find Object.prototype.constructor.
  const feature = Object.hasOwn(snapshot.features, key) ? snapshot.features[key] : undefined;
  if (!feature) return { allowed: false, reason: "unknown_feature", feature: key };
  const { effective, lapse, changeAt } = resolveFeature(feature, now);
  const expiresAt = changeAt === Infinity ? null : changeAt;
  const base = { feature: key, type: feature.type, expiresAt };
  if (!effective?.spec.enabled) return { ...base, allowed: false, reason: lapse ?? "not_entitled" };
  const spec = effective.spec;
  const country = ctx.country?.toUpperCase();
  if (
    (spec.deny && country && spec.deny.includes(country)) ||
    (spec.allow && !(country && spec.allow.includes(country)))
  ) {
    return { ...base, allowed: false, reason: "region_blocked", effective };
  }
  if (spec.roles && !(ctx.role && spec.roles.includes(ctx.role)))
    return { ...base, allowed: false, reason: "role_denied", effective };
  if (feature.type === "config") return { ...base, allowed: true, reason: "ok", value: spec.value ?? null, effective };
  if (feature.type === "boolean") return { ...base, allowed: true, reason: "ok", effective };
  // Seats: how many the customer has; which entity holds one is the meter's (check-path.ts).
  if (feature.type === "seats") return { ...base, allowed: true, reason: "ok", limit: spec.limit ?? null, effective };
  const terms = periodTerms(effective);
  const period = periodAt(terms.reset, terms.anchor, terms.anchorAt, now);
  return {
    ...base,
    allowed: true,
    reason: "ok",
    limit: spec.limit ?? null,
    reset: spec.reset,
    periodStart: period.start,
    resetsAt: period.end,
    effective,
  };
}

/** How an effective entitlement's periods are cut (the meter keeps a counter per definition: meter/protocol.ts PeriodTerms). */
export function periodTerms(effective: Effective): {
  reset: ResetPeriod;
  anchor: ResetAnchor;
  anchorAt: number | null;
  rollover?: { max: number; periods: number; limit: number };
} {
  const { reset = "month", anchor = "calendar", rollover, limit } = effective.spec;
  const terms = { reset, anchor, anchorAt: effective.anchorAt };
  // Only a finite allowance that resets leaves something to carry.
  return rollover && limit != null && reset !== "none" ? { ...terms, rollover: { ...rollover, limit } } : terms;
}

/** The allowance terms a meter needs to decide a consume atomically. */
export interface Allowance {
  limit: number | null;
  overage: "block" | "allow";
  overageCap: number | null;
}

export function allowanceOf(spec: CompiledSpec): Allowance {
  return { limit: spec.limit ?? null, overage: spec.overage ?? "block", overageCap: spec.overageCap ?? null };
}

/** Whether `amount` more units fit on top of `used` (hard limit, soft limit, or soft limit up to a cap). */
export function fits(a: Allowance, used: number, amount: number): boolean {
  if (a.limit === null) return true;
  if (used + amount <= a.limit) return true;
  if (a.overage !== "allow") return false;
  return a.overageCap === null || used + amount <= a.limit + a.overageCap;
}

/**
 * What is left of a limit and how far usage went past it (soft limits). Reserved units count
 * against what remains but are not overage until charged. An unlimited allowance: null and 0.
 */
export function headroom(
  limit: number | null,
  used: number,
  reserved: number,
): { remaining: number | null; overage: number } {
  if (limit === null) return { remaining: null, overage: 0 };
  return { remaining: Math.max(0, limit - used - reserved), overage: Math.max(0, used - limit) };
}

/**
 * Completes a metered evaluation with the customer's usage of the current period (reserved units count
 * as used). A credits feature's open top-ups (`topUpLeft` credits) are drawn first, then the period's.
 */
export function applyUsage(ev: Evaluation, used: number, quantity = 1, reserved = 0, topUpLeft?: number): Evaluation {
  if (!isCounted(ev.type) || !ev.effective) return ev;
  const a = allowanceOf(ev.effective.spec);
  const left = topUpLeft ?? 0;
  const { remaining: periodLeft } = headroom(a.limit, used, reserved);
  const remaining = periodLeft === null ? null : periodLeft + left;
  const topUps = topUpLeft === undefined ? {} : { topUpRemaining: left };
  if (!ev.allowed) return { ...ev, used, remaining, ...topUps };
  const ok = fits(a, used + reserved, Math.max(0, quantity - left));
  return { ...ev, used, remaining, ...topUps, allowed: ok, reason: ok ? "ok" : "limit_reached" };
}
