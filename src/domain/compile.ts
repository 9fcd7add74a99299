// compileSnapshot: a customer's D1 rows in, one self-contained snapshot out. Pure. The check path no
// longer uses it: it composes a customer part with the shared catalog (domain/compose.ts), which also
// resolves plan versions and migrations. This compiler, which gives every subscription its plan's
// current version, is kept as the oracle compose is tested against (test/compose.test.ts).
//
// Time-dependent facts (trial end, cancellation, grace, grant expiry, scheduled plan changes) become
// source windows [from, until) evaluated at check time, so a snapshot that is a little stale still
// answers correctly, and scheduled changes take effect on time without anyone recompiling.
import { shardsField } from "./leases";
import type { PlanMigrationRule } from "./plan-versions";
import { compareIds, own } from "./records";
import {
  type CompiledSpec,
  type CreditCost,
  type EntitlementSpec,
  type FailurePolicy,
  type FeatureType,
  isCounted,
  type LapseReason,
  type Residency,
  type Snapshot,
  type SnapshotFeature,
  type Source,
  type SubscriptionStatus,
} from "./types";

export interface FeatureRow {
  key: string;
  type: FeatureType;
  integer: boolean;
  failurePolicy: FailurePolicy;
  creditCost?: CreditCost;
  /** An entity's use of it needs a seat of this seats feature. */
  seat?: string;
}
export interface PlanRow {
  id: string;
  kind: "base" | "addon";
  /** The current version's entitlements. */
  entitlements: Record<string, EntitlementSpec>;
  /** The current version (absent: 1). */
  version?: number;
  /** Older versions' entitlements, by version number (domain/plan-versions.ts). */
  versions?: Record<string, Record<string, EntitlementSpec>>;
  /** Migrations of existing subscribers to newer versions. */
  migrations?: PlanMigrationRule[];
}
export interface SubscriptionRow {
  id: string;
  planId: string;
  status: SubscriptionStatus;
  startedAt: number;
  trialEnd: number | null;
  currentPeriodStart: number | null;
  currentPeriodEnd: number | null;
  billingAnchor: number | null;
  cancelAt: number | null;
  graceUntil: number | null;
  endedAt: number | null;
  scheduledPlanId: string | null;
  scheduledChangeAt: number | null;
  /** The version of planId it is on; null or absent: the plan's current version. */
  planVersion?: number | null;
}
export interface GrantRow {
  id: string;
  featureKey: string;
  mode: "add" | "replace";
  spec: EntitlementSpec;
  startsAt: number | null;
  expiresAt: number | null;
  createdAt: number;
}
export interface CustomerRows {
  customer: { id: string; residency: Residency | null; rev: number; meterShards?: number };
  catalogRev: number;
  features: FeatureRow[];
  regionGroups: Record<string, string[]>;
  /** Every plan a subscription refers to (current or scheduled). */
  plans: Record<string, PlanRow>;
  subscriptions: SubscriptionRow[];
  /** Approved (active) grants only: pending, rejected and revoked grants never reach a snapshot. */
  grants: GrantRow[];
}

export function snapshotVersion(customerRev: number, catalogRev: number): number {
  return customerRev + catalogRev;
}

export function compileSnapshot(rows: CustomerRows, compiledAt: number): Snapshot {
  const features: Record<string, SnapshotFeature> = {};
  for (const f of rows.features) {
    features[f.key] = {
      type: f.type,
      failurePolicy: f.failurePolicy,
      ...(isCounted(f.type) ? { integer: f.integer } : {}),
      ...(f.creditCost ? { creditCost: f.creditCost } : {}),
      ...(f.seat ? { seat: f.seat } : {}),
      sources: [],
    };
  }
  const add = (key: string, source: Source) => own(features, key)?.sources.push(source);
  const expand = (spec: EntitlementSpec, type: FeatureType) => compileSpec(spec, type, rows.regionGroups);

  // Precedence order: base plans, then add-ons by start, then grants by creation.
  const subs = [...rows.subscriptions].sort(
    (a, b) => rank(a) - rank(b) || a.startedAt - b.startedAt || compareIds(a.id, b.id),
  );
  function rank(s: SubscriptionRow) {
    return own(rows.plans, s.planId)?.kind === "addon" ? 1 : 0;
  }
  for (const sub of subs) {
    for (const w of subscriptionWindows(sub)) {
      const plan = own(rows.plans, w.planId);
      if (!plan) continue;
      for (const [key, spec] of Object.entries(plan.entitlements)) {
        const type = own(features, key)?.type;
        if (!type) continue;
        add(key, {
          kind: plan.kind === "addon" ? "addon" : "plan",
          id: plan.id,
          subscriptionId: sub.id,
          planVersion: plan.version ?? 1,
          mode: "add",
          from: w.from,
          until: w.until,
          lapse: w.lapse,
          anchorAt: sub.billingAnchor ?? sub.currentPeriodStart ?? sub.startedAt,
          spec: expand(spec, type),
        });
      }
    }
  }
  for (const g of [...rows.grants].sort((a, b) => a.createdAt - b.createdAt || compareIds(a.id, b.id))) {
    const type = own(features, g.featureKey)?.type;
    if (!type) continue;
    add(g.featureKey, {
      kind: "grant",
      id: g.id,
      mode: g.mode,
      from: g.startsAt,
      until: g.expiresAt,
      lapse: "grant_expired",
      spec: expand(g.spec, type),
    });
  }
  return {
    format: 1,
    customerId: rows.customer.id,
    version: snapshotVersion(rows.customer.rev, rows.catalogRev),
    customerRev: rows.customer.rev,
    catalogRev: rows.catalogRev,
    compiledAt,
    residency: rows.customer.residency,
    ...shardsField(rows.customer.meterShards),
    features,
  };
}

interface Window {
  planId: string;
  from: number | null;
  until: number | null;
  lapse: LapseReason | null;
}

/** The windows in which a subscription grants its plan (two when a plan change is scheduled). */
export function subscriptionWindows(sub: SubscriptionRow): Window[] {
  if (sub.status === "canceled" || sub.status === "expired") {
    // Inactive from the start: kept so a check can say why, not just "not_entitled". A trial that ran
    // out is recorded as "expired" (src/domain/lifecycle.ts): it keeps answering trial_expired.
    const at = sub.endedAt ?? sub.startedAt;
    const lapse = sub.status === "expired" && sub.trialEnd !== null ? "trial_expired" : "subscription_inactive";
    return [{ planId: sub.planId, from: at, until: at, lapse }];
  }
  let until: number | null = minOf(sub.cancelAt, sub.endedAt);
  let lapse: LapseReason = "subscription_inactive";
  if (sub.status === "trialing" && sub.trialEnd !== null && (until === null || sub.trialEnd < until)) {
    until = sub.trialEnd;
    lapse = "trial_expired";
  }
  if (sub.status === "past_due") until = minOf(until, sub.graceUntil ?? sub.startedAt);
  const scheduledPlanId = sub.scheduledPlanId;
  const change = scheduledPlanId && sub.scheduledChangeAt !== null ? sub.scheduledChangeAt : null;
  if (!scheduledPlanId || change === null || (until !== null && change >= until))
    return [{ planId: sub.planId, from: sub.startedAt, until, lapse }];
  return [
    // The old plan's window closes because the new plan takes over: not a lapse, so a feature only the
    // old plan had answers not_entitled, exactly as it will once the cron records the change.
    { planId: sub.planId, from: sub.startedAt, until: change, lapse: null },
    { planId: scheduledPlanId, from: change, until, lapse },
  ];
}

/** Fills defaults and expands region groups into country codes, so evaluation never looks anything up. */
export function compileSpec(spec: EntitlementSpec, type: FeatureType, groups: Record<string, string[]>): CompiledSpec {
  const out: CompiledSpec = { enabled: spec.enabled };
  if (type === "seats") out.limit = spec.limit ?? null;
  if (isCounted(type)) {
    out.limit = spec.limit ?? null;
    out.reset = spec.reset ?? "month";
    out.anchor = spec.anchor ?? "calendar";
    // Overage is left unset unless stated, so an add-on that says nothing keeps the base plan's policy.
    if (spec.overage !== undefined) out.overage = spec.overage;
    if (spec.overageCap != null) out.overageCap = spec.overageCap;
    if (spec.topUp) out.topUp = true;
    if (spec.rollover) out.rollover = { max: spec.rollover.max, periods: spec.rollover.periods };
    if (spec.perEntity) out.perEntity = { limit: spec.perEntity.limit, reset: spec.perEntity.reset ?? out.reset };
  }
  if (type === "config" && spec.value !== undefined) out.value = spec.value;
  if (spec.roles && spec.roles.length > 0) out.roles = [...spec.roles];
  const allow = expandRegions(spec.regions?.allow, groups);
  const deny = expandRegions(spec.regions?.deny, groups);
  if (allow) out.allow = allow;
  if (deny) out.deny = deny;
  return out;
}

function expandRegions(refs: string[] | undefined, groups: Record<string, string[]>): string[] | undefined {
  if (!refs || refs.length === 0) return undefined;
  const out = new Set<string>();
  for (const ref of refs) for (const c of own(groups, ref) ?? [ref.toUpperCase()]) out.add(c);
  return [...out].sort();
}

function minOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}
