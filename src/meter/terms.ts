// From a snapshot to the terms a meter call needs: is the customer entitled, with which allowance,
// in which period. Pure; the usage routes validate, call this, then make one Durable Object call.
import { creditEvaluation, creditsFor } from "../domain/credits";
import { seatOf } from "../domain/entities";
import { type Allowance, allowanceOf, periodTerms, resolveFeature } from "../domain/evaluate";
import { periodAt } from "../domain/periods";
import {
  type Evaluation,
  isCounted,
  type LapseReason,
  type ResetPeriod,
  type Snapshot,
  type SnapshotFeature,
  type TopUp,
} from "../domain/types";
import { Problem } from "../http/problem";
import type { CreditCall, EntityCall, EntityLimit, MeterPeriod, PeriodTerms } from "./protocol";

export interface MeterTerms {
  feature: SnapshotFeature;
  entitled: boolean;
  /** Why not entitled (not_entitled, or the lapse of a source that would grant it). */
  denial: "not_entitled" | LapseReason | null;
  allowance: Allowance;
  terms: PeriodTerms;
  period: MeterPeriod;
  gauge: boolean;
  /** A credits feature's open top-ups, drawn first (absent: none). */
  topUps?: TopUp[];
  /** The entitlement's per-entity limit (docs/model.md, Entities; absent: none). */
  perEntity?: EntityLimit;
}

/** Usage is server-to-server reporting: region and role rules, which describe end users, do not apply. */
export function meterTerms(snapshot: Snapshot, key: string, now: number): MeterTerms {
  const feature = Object.hasOwn(snapshot.features, key) ? snapshot.features[key] : undefined;
  if (!feature) throw new Problem("not-found", `Unknown feature '${key}'.`);
  if (!isCounted(feature.type))
    throw new Problem(
      "validation",
      `'${key}' is a ${feature.type} feature; usage applies to metered and credits features.`,
      {
        errors: [{ path: "json.feature", message: "not a metered feature" }],
      },
    );
  const { effective, lapse } = resolveFeature(feature, now);
  const entitled = !!effective && effective.spec.enabled;
  // Without an entitlement the customer's allowance is nothing; the period falls back to the calendar month.
  const spec = entitled
    ? effective.spec
    : { enabled: false, limit: 0, reset: feature.sources[0]?.spec.reset ?? "month", anchor: "calendar" as const };
  const terms: PeriodTerms = entitled
    ? periodTerms(effective)
    : { reset: spec.reset ?? "month", anchor: spec.anchor ?? "calendar", anchorAt: effective?.anchorAt ?? null };
  return {
    feature,
    entitled,
    denial: entitled ? null : (lapse ?? "not_entitled"),
    allowance: entitled ? allowanceOf(spec) : { limit: 0, overage: "block", overageCap: null },
    terms,
    period: periodAt(terms.reset, terms.anchor, terms.anchorAt, now),
    gauge: terms.reset === "none",
    ...(entitled && effective.topUps ? { topUps: effective.topUps } : {}),
    ...(entitled && effective.spec.perEntity ? { perEntity: entityLimit(key, effective.spec.perEntity, terms) } : {}),
  };
}

/** A per-entity limit's terms: its own reset, cut with the entitlement's anchor. */
export function entityLimit(
  feature: string,
  p: { limit: number; reset: ResetPeriod },
  terms: PeriodTerms,
): EntityLimit {
  return { feature, limit: p.limit, terms: { reset: p.reset, anchor: terms.anchor, anchorAt: terms.anchorAt } };
}

/**
 * The entity part of a meter call (undefined: the call names no entity): the seat its feature needs, and
 * the per-entity limits of the feature and of the credit balance it draws from, decided with the pooled ones.
 */
export function entityCall(
  snapshot: Snapshot,
  t: MeterTerms,
  entityId: string | undefined,
  now: number,
): EntityCall | undefined {
  if (entityId === undefined) return undefined;
  const cc = t.feature.creditCost;
  const credit = cc ? meterTerms(snapshot, cc.credits, now).perEntity : undefined;
  const limits = [t.perEntity, credit].filter((l): l is EntityLimit => l !== undefined);
  return { id: entityId, ...(t.feature.seat ? { seat: t.feature.seat } : {}), limits };
}

/** The credit balance a feature with a credit cost draws from (undefined: it has none), for the same meter call. */
export function creditCall(snapshot: Snapshot, t: MeterTerms, now: number): CreditCall | undefined {
  const cc = t.feature.creditCost;
  if (!cc) return undefined;
  const c = meterTerms(snapshot, cc.credits, now);
  const call = { feature: cc.credits, cost: cc.cost, entitled: c.entitled, allowance: c.allowance, terms: c.terms };
  return c.topUps ? { ...call, topUps: c.topUps } : call;
}

/** What a check reads of an entity for some evaluations: the seats their features need, their per-entity limits. */
export interface EntityReads {
  seats: string[];
  limits: (EntityLimit & { amount: number })[];
}

/**
 * The entity reads of checks of `evs` (each for `quantity` units): a feature's seat (a seats feature is its
 * own), and the per-entity limits of its entitlement and of the credit balance it draws from.
 */
export function entityReads(
  snapshot: Snapshot,
  evs: readonly Evaluation[],
  quantity: number,
  now: number,
): EntityReads {
  const seats = new Set<string>();
  const limits = new Map<string, EntityLimit & { amount: number }>();
  const limitOf = (e: Evaluation | null, amount: number) => {
    const pe = e?.effective && isCounted(e.type) ? e.effective.spec.perEntity : undefined;
    if (pe && e?.effective && !limits.has(e.feature))
      limits.set(e.feature, { ...entityLimit(e.feature, pe, periodTerms(e.effective)), amount });
  };
  for (const ev of evs) {
    const f = Object.hasOwn(snapshot.features, ev.feature) ? snapshot.features[ev.feature] : undefined;
    const seat = seatOf(ev.feature, f);
    if (seat) seats.add(seat);
    limitOf(ev, quantity);
    if (f?.creditCost)
      limitOf(creditEvaluation(snapshot, { feature: ev.feature }, now), creditsFor(quantity, f.creditCost.cost));
  }
  return { seats: [...seats], limits: [...limits.values()] };
}

/** The amount rules: whole units where the feature says so, negative only for gauges. */
export function checkAmount(t: MeterTerms, amount: number, path = "json.amount"): void {
  const bad = (message: string) => new Problem("validation", message, { errors: [{ path, message }] });
  if (amount === 0) throw bad("amount must not be 0");
  if (t.feature.integer !== false && !Number.isInteger(amount)) throw bad("this feature counts whole units");
  if (amount < 0 && !t.gauge) throw bad("negative amounts apply only to features without reset (gauges such as seats)");
}
