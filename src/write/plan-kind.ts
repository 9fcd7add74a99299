// A plan's kind (base or add-on) is fixed once anything refers to it: composition ranks add-ons after
// base plans, the one-base-plan rule counts base plans, and price mappings carry the kind they were
// made for, so turning a subscribed plan into an add-on (or back) would silently change what its
// subscribers hold and break those rules. A plan nobody refers to can change kind freely.
import { Problem } from "../http/problem";
import { planReferences } from "../store/plans";

/** Throws 409 (reason `plan_in_use`) when `planId` changes kind while a subscription or price mapping refers to it. */
export async function assertKindChange(
  db: D1Database,
  planId: string,
  before: string | undefined,
  after: string,
): Promise<void> {
  if (before === undefined || before === after) return;
  const refs = await planReferences(db, planId);
  if (refs.subscriptions === 0 && refs.prices === 0) return;
  throw new Problem(
    "conflict",
    `Plan '${planId}' cannot change from ${before} to ${after}: ${refs.subscriptions} subscription(s) and ${refs.prices} price mapping(s) refer to it. Make a new plan of kind '${after}' instead.`,
    { reason: "plan_in_use", references: refs },
  );
}
