// From a snapshot to the terms a meter call needs: is the customer entitled, with which allowance,
// in which period. Pure; the usage routes validate, call this, then make one Durable Object call.
import { type Allowance, allowanceOf, periodTerms, resolveFeature } from "../domain/evaluate";
import { periodAt } from "../domain/periods";
import { isCounted, type LapseReason, type Snapshot, type SnapshotFeature, type TopUp } from "../domain/types";
import { Problem } from "../http/problem";
import type { CreditCall, MeterPeriod, PeriodTerms } from "./protocol";

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
  };
}

/** The credit balance a feature with a credit cost draws from (undefined: it has none), for the same meter call. */
export function creditCall(snapshot: Snapshot, t: MeterTerms, now: number): CreditCall | undefined {
  const cc = t.feature.creditCost;
  if (!cc) return undefined;
  const c = meterTerms(snapshot, cc.credits, now);
  const call = { feature: cc.credits, cost: cc.cost, entitled: c.entitled, allowance: c.allowance, terms: c.terms };
  return c.topUps ? { ...call, topUps: c.topUps } : call;
}

/** The amount rules: whole units where the feature says so, negative only for gauges. */
export function checkAmount(t: MeterTerms, amount: number, path = "json.amount"): void {
  const bad = (message: string) => new Problem("validation", message, { errors: [{ path, message }] });
  if (amount === 0) throw bad("amount must not be 0");
  if (t.feature.integer !== false && !Number.isInteger(amount)) throw bad("this feature counts whole units");
  if (amount < 0 && !t.gauge) throw bad("negative amounts apply only to features without reset (gauges such as seats)");
}
