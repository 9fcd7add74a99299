// A subscription as an operator writes it, shared by POST /customers (a customer with its first
// subscriptions) and POST /subscriptions: the wire schema of a new one, and the checks on the plans a
// new subscription or a plan change names (a 400 that names the plan, before anything is written).
import { z } from "@hono/zod-openapi";
import { entityId } from "../../domain/catalog";
import { impossibleDates, type SubscriptionDates } from "../../domain/lifecycle";
import type { FieldError } from "../../http/problem";
import { Problem } from "../../http/problem";
import { instant } from "../../http/schemas";
import { planKinds } from "../../store/subscriptions";
import { throwIfAny } from "../../write/spec-validation";

export const subscriptionInput = z
  .object({
    id: entityId.optional(),
    planId: entityId,
    status: z.enum(["trialing", "active", "past_due", "canceled", "expired"]).default("active"),
    startedAt: instant.optional(),
    trialEnd: instant.nullable().optional(),
    currentPeriodStart: instant.nullable().optional(),
    currentPeriodEnd: instant.nullable().optional(),
    billingAnchor: instant.nullable().optional(),
    cancelAt: instant.nullable().optional(),
    graceUntil: instant.nullable().optional(),
  })
  .strict()
  .openapi("SubscriptionInput");

/**
 * The dates of new subscriptions must be possible (domain/lifecycle.ts, impossibleDates): a 400 that
 * names each bad field (`where` is the path of the subscription in the body), before anything is written.
 */
export function assertDatesPossible(subs: { where: string; dates: SubscriptionDates }[], now: number): void {
  const errors: FieldError[] = subs.flatMap(({ where, dates }) =>
    impossibleDates(dates, now).map((e) => ({ path: `${where}.${e.field}`, message: e.message })),
  );
  throwIfAny(errors);
}

/** Every plan a new subscription names must exist. */
export async function assertPlansExist(db: D1Database, planIds: string[]): Promise<void> {
  if (planIds.length === 0) return;
  const kinds = await planKinds(db, planIds);
  for (const id of new Set(planIds)) {
    if (!kinds.has(id))
      throw new Problem("validation", `Unknown plan '${id}'.`, {
        errors: [{ path: "planId", message: `unknown plan '${id}'` }],
      });
  }
}

/** A base plan changes to a base plan, an add-on to an add-on: anything else would change what the subscription is. */
export async function assertSameKind(db: D1Database, fromPlan: string, toPlan: string): Promise<void> {
  const kinds = await planKinds(db, [fromPlan, toPlan]);
  const to = kinds.get(toPlan);
  if (!to)
    throw new Problem("validation", `Unknown plan '${toPlan}'.`, {
      errors: [{ path: "json.planId", message: `unknown plan '${toPlan}'` }],
    });
  if (to !== kinds.get(fromPlan)) {
    throw new Problem(
      "validation",
      `Plan '${toPlan}' is an ${to === "addon" ? "add-on" : "base plan"}; '${fromPlan}' is not.`,
      { errors: [{ path: "json.planId", message: "must be the same kind (base or add-on) as the current plan" }] },
    );
  }
}
