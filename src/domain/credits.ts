// Credit systems (issue 17, docs/model.md "Credits"): a feature of type `credits` is a balance per
// period (limit, reset, anchor, overage and cap, like a metered feature), and a metered feature with a
// `creditCost` draws `cost` credits per unit from it. A check or consume of such a feature must fit
// both: its own limit (if it has one) and the balance. Pure; the meter makes the same decision
// atomically (meter/customer-meter.ts), the check path reports it from one meter read (check-path.ts).
import { allowanceOf, evaluate, fits, headroom } from "./evaluate";
import type { CheckContext, CreditBalance, Evaluation, Snapshot } from "./types";

/** The credits feature's evaluation for a check of `ctx.feature`, or null when that feature draws no credits. */
export function creditEvaluation(snapshot: Snapshot, ctx: CheckContext, now: number): Evaluation | null {
  const f = Object.hasOwn(snapshot.features, ctx.feature) ? snapshot.features[ctx.feature] : undefined;
  if (!f?.creditCost) return null;
  return evaluate(snapshot, { ...ctx, feature: f.creditCost.credits }, now);
}

/** Credits `quantity` units of a feature draw (exact for the usual integer and decimal costs). */
export const creditsFor = (quantity: number, cost: number): number => quantity * cost;

/**
 * Completes a metered evaluation with its credit balance (`credit`: the credits feature's evaluation,
 * `usage`: that balance's usage and what is left of its open top-ups). Denied when the balance is not granted (its reason, such
 * as not_entitled, wins over an allowing answer) or when `quantity` units' credits do not fit it.
 */
export function applyCredits(
  ev: Evaluation,
  credit: Evaluation,
  cost: number,
  usage: { used: number; reserved: number; topUpLeft?: number },
  quantity: number,
): Evaluation {
  if (!credit.allowed || !credit.effective) return ev.allowed ? { ...ev, allowed: false, reason: credit.reason } : ev;
  const { used, reserved } = usage;
  const a = allowanceOf(credit.effective.spec);
  const left = usage.topUpLeft ?? 0;
  const { remaining: periodLeft } = headroom(a.limit, used, reserved);
  const remaining = periodLeft === null ? null : periodLeft + left;
  const credits: CreditBalance = { feature: credit.feature, cost, limit: a.limit, used, remaining };
  if (usage.topUpLeft !== undefined) credits.topUpRemaining = left;
  if (!ev.allowed) return { ...ev, credits };
  // Top-ups are drawn first: only what they cannot cover must fit the period's allowance.
  const ok = fits(a, used + reserved, Math.max(0, creditsFor(quantity, cost) - left));
  return { ...ev, credits, allowed: ok, reason: ok ? "ok" : "limit_reached" };
}
