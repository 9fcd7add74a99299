// One base plan per customer at a time, plus any add-ons (docs/model.md). A new base-plan subscription
// while another still counts (domain/lifecycle.ts isCurrentAt: not ended, not cancelled; one scheduled
// to end counts until it does) is refused with 409 base_plan_exists, naming the subscription whose plan
// to change instead. The check reads before the write; basePlanGuard in the write's own batch makes
// two concurrent creates unable to both commit. Add-ons are not limited: the same add-on twice adds
// its entitlements twice (quantities).
import { isCurrentAt } from "../domain/lifecycle";
import { Problem } from "../http/problem";
import {
  basePlanGuard,
  isBasePlanConflict,
  liveBaseSubscriptions,
  planKinds,
  type SubscriptionRecord,
} from "../store/subscriptions";

/** The customer's base-plan subscription that counts at `now` (the oldest, if several do), or null. */
export async function currentBaseSubscription(
  db: D1Database,
  customerId: string,
  now: number,
): Promise<SubscriptionRecord | null> {
  return (await liveBaseSubscriptions(db, customerId)).find((s) => isCurrentAt(s, now)) ?? null;
}

export function basePlanExists(existing: SubscriptionRecord): Problem {
  return new Problem(
    "base_plan_exists",
    `Customer '${existing.customerId}' already has base plan '${existing.planId}' (subscription '${existing.id}'); a customer has one base plan at a time. Change its plan with POST /admin/v1/subscriptions/${existing.id}/change-plan instead.`,
    { subscriptionId: existing.id, planId: existing.planId },
  );
}

/**
 * Refuses new subscriptions that would give the customer a second current base plan (among
 * themselves or next to an existing one). Answers the guard statements to put in the write's batch,
 * after the inserts (none when no new subscription is a current base plan).
 */
export async function assertOneBasePlan(
  db: D1Database,
  customerId: string,
  subs: SubscriptionRecord[],
  now: number,
  existingCustomer: boolean,
): Promise<D1PreparedStatement[]> {
  const kinds = await planKinds(
    db,
    subs.map((s) => s.planId),
  );
  const bases = subs.filter((s) => kinds.get(s.planId) === "base" && isCurrentAt(s, now));
  if (bases.length === 0) return [];
  if (bases.length > 1) {
    throw new Problem(
      "base_plan_exists",
      `A customer has one base plan at a time; this request names ${bases.length}: ${bases.map((s) => `'${s.planId}'`).join(", ")}. Add the others as add-ons, or choose one.`,
      { planIds: bases.map((s) => s.planId) },
    );
  }
  if (existingCustomer) {
    const existing = await currentBaseSubscription(db, customerId, now);
    if (existing) throw basePlanExists(existing);
  }
  return [basePlanGuard(db, customerId, now)];
}

/** Turns the guard's failure (a concurrent write won) into the same 409, naming what that write created. */
export async function rethrowBasePlanConflict(
  db: D1Database,
  customerId: string,
  now: number,
  err: unknown,
): Promise<never> {
  if (isBasePlanConflict(err)) {
    const existing = await currentBaseSubscription(db, customerId, now);
    if (existing) throw basePlanExists(existing);
  }
  throw err;
}
