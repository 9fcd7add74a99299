// A subscription as an operator writes it, shared by POST /customers (a customer with its first
// subscriptions) and POST /subscriptions: the wire schema of a new one, and the checks on the plans a
// new subscription or a plan change names (a 400 that names the plan, before anything is written).
import { z } from "@hono/zod-openapi";
import { entityId } from "../../domain/catalog";
import { Problem } from "../../http/problem";
import { instant } from "../../http/schemas";
import { planKinds } from "../../store/subscriptions";

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
