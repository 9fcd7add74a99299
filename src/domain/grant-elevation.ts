// Whether a grant gives a customer more than its plans do ("elevated"). Pure.
//
// The grant is compared with the customer's plan and add-on sources only, never with other grants:
// otherwise a second grant stacked on an elevated one would look harmless and outlive it. The
// comparison runs at every instant of the grant's window where the plans' answer can change (trial
// end, cancellation, scheduled plan change), so a grant that only matches the plans until a trial
// ends is elevated. Where two specs cannot be ordered (a config value, a different reset period),
// any change counts as more: the cost of a needless approval is small, a silent elevation is not.

import { resolveFeature } from "./evaluate";
import type { CompiledSpec, FeatureType, ResetPeriod, SnapshotFeature, Source } from "./types";
import { isCounted } from "./types";

export interface Elevation {
  elevated: boolean;
  /** What the grant adds, in words (for the operator and the audit log). */
  gains: string[];
  /** The first instant at which it gives more. */
  at: number | null;
}

export function grantElevation(feature: SnapshotFeature, grant: Source, now: number): Elevation {
  const plans = feature.sources.filter((s) => s.kind !== "grant");
  // A top-up always gives more (credits the plans do not): four eyes, and an expiry, like any elevation.
  if (grant.spec.enabled && grant.spec.topUp)
    return { elevated: true, gains: [`top-up of ${grant.spec.limit} credits`], at: Math.max(now, grant.from ?? now) };
  const start = Math.max(now, grant.from ?? now);
  const end = grant.until ?? Infinity;
  const instants = new Set([start]);
  for (const s of plans) for (const t of [s.from, s.until]) if (t !== null && t > start && t < end) instants.add(t);
  for (const t of [...instants].sort((a, b) => a - b)) {
    if (t >= end) break;
    const base = enabled(resolveFeature({ ...feature, sources: plans }, t).effective?.spec);
    const next = enabled(resolveFeature({ ...feature, sources: [...plans, grant] }, t).effective?.spec);
    const gains = gainsOf(feature.type, base, next);
    if (gains.length > 0) return { elevated: true, gains, at: t };
  }
  return { elevated: false, gains: [], at: null };
}

export const enabled = (spec: CompiledSpec | undefined) => (spec?.enabled ? spec : null);

/**
 * How two specs are compared. "grant" (a grant against the plans) counts any change it cannot order
 * as more. "plan" (one set of catalog plans against another: plan-elevation.ts) leaves out what the
 * catalog chose and nobody can order, config values and reset anchors, and compares limits with
 * different reset periods per unit of time, so moving to a cheaper plan is not "more".
 */
export type Measure = "grant" | "plan";

/** What `next` gives beyond `base` (both null when the feature is not granted). */
export function gainsOf(
  type: FeatureType,
  base: CompiledSpec | null,
  next: CompiledSpec | null,
  measure: Measure = "grant",
): string[] {
  if (!next) return [];
  if (!base) return ["enables a feature the plans do not grant"];
  const out: string[] = [];
  if (isCounted(type)) {
    if (measure === "plan" && base.reset !== next.reset) {
      if (moreRate(base, next))
        out.push(
          `raises the limit from ${base.limit} ${per(base.reset)} to ${next.limit ?? "unlimited"} ${per(next.reset)}`,
        );
    } else if (moreUnits(base.limit, next.limit))
      out.push(`raises the limit from ${base.limit} to ${next.limit ?? "unlimited"}`);
    if (measure === "grant" && (base.reset !== next.reset || base.anchor !== next.anchor))
      out.push("changes the reset period");
    const baseOverage = base.overage ?? "block";
    if (baseOverage === "block" && next.overage === "allow") out.push("allows overage");
    else if (baseOverage === "allow" && next.overage === "allow" && moreUnits(base.overageCap, next.overageCap))
      out.push("raises the overage cap");
  }
  if (measure === "grant" && type === "config" && canonical(base.value) !== canonical(next.value))
    out.push("changes the configured value");
  const [baseRoles, baseAllow] = [base.roles, base.allow];
  if (baseRoles && (!next.roles || next.roles.some((r) => !baseRoles.includes(r))))
    out.push("widens the allowed roles");
  if (baseAllow && (!next.allow || next.allow.some((c) => !baseAllow.includes(c))))
    out.push("widens the allowed regions");
  if (base.deny?.some((c) => !next.deny?.includes(c))) out.push("lifts a region block");
  return out;
}

/** Hours per reset period, to compare limits that reset differently; "none" never resets (a total). */
const PERIOD_HOURS: Record<ResetPeriod, number> = {
  hour: 1,
  day: 24,
  week: 168,
  month: 730,
  year: 8760,
  none: Infinity,
};
const per = (reset: ResetPeriod | undefined) => (!reset || reset === "none" ? "in total" : `per ${reset}`);

/** Whether `next` allows more units per hour than `base` (a total allows none per hour: any periodic limit is more). */
function moreRate(base: CompiledSpec, next: CompiledSpec): boolean {
  if (base.limit == null) return false;
  if (next.limit == null) return true;
  return next.limit / PERIOD_HOURS[next.reset ?? "month"] > base.limit / PERIOD_HOURS[base.reset ?? "month"];
}

// null/undefined is unlimited.
function moreUnits(base: number | null | undefined, next: number | null | undefined): boolean {
  if (base == null) return false;
  return next == null || next > base;
}

/** JSON with sorted keys, so equal values compare equal whatever their key order. */
function canonical(v: unknown): string {
  if (v === undefined) return "undefined";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
    .join(",")}}`;
}
