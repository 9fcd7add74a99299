// Manual upgrades need the admin role (security review M6). A subscription an operator creates, or a
// plan change, that gives the customer more than its current plans (domain/plan-elevation.ts: a
// feature it lacks, a higher limit, overage, wider roles or regions, now or at a later instant) is an
// upgrade without a payment behind it: worth as much as any elevated grant, and more, since it has no
// expiry. An approver may still downgrade, record history (canceled or expired subscriptions), create
// customers without subscriptions, and run the lifecycle (cancel, resume, trials, past due); Stripe's
// own changes do not come through here.
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { atLeast, roleOf } from "../auth/admin";
import type { CustomerRows, SubscriptionRow } from "../domain/compile";
import { snapshotOfRows } from "../domain/compose";
import { planChangeElevation } from "../domain/plan-elevation";
import { Problem } from "../http/problem";
import { readCatalogFacts } from "../store/catalog";
import { loadCustomerRows } from "../store/customer-rows";
import { readPlan } from "../store/plans";

/**
 * 403 unless the principal is an admin or `changed` (new subscriptions, or existing ones as they will
 * be, by id) gives customer `customerId` nothing more than its plans do now. Admins skip the reads.
 */
export async function assertUpgradeAllowed(
  c: Context<AppEnv>,
  customerId: string,
  changed: SubscriptionRow[],
): Promise<void> {
  const role = roleOf(c.var.principal);
  if (role && atLeast(role, "admin")) return;
  const db = c.env.DB;
  const now = c.var.services.clock.now();
  const before = (await loadCustomerRows(db, customerId)) ?? (await newCustomerRows(db, customerId));
  const after: CustomerRows = {
    ...before,
    plans: { ...before.plans },
    subscriptions: [...before.subscriptions.filter((s) => !changed.some((n) => n.id === s.id)), ...changed],
  };
  for (const id of new Set(changed.flatMap((s) => [s.planId, s.scheduledPlanId ?? s.planId]))) {
    if (Object.hasOwn(after.plans, id)) continue;
    const plan = await readPlan(db, id);
    if (plan) after.plans[id] = { id, kind: plan.kind, entitlements: plan.entitlements };
  }
  const elevation = planChangeElevation(snapshotOfRows(before, now), snapshotOfRows(after, now), now);
  if (!elevation.elevated) return;
  throw new Problem(
    "forbidden",
    `This gives customer '${customerId}' more than its current plans (${elevation.gains.join("; ")}): a manual upgrade needs the 'admin' role; you have '${role}'.`,
    { gains: elevation.gains },
  );
}

/**
 * The rows of a customer that does not exist yet: no plans, so any subscription that grants anything
 * is an upgrade. Region groups are left out: nothing is compared with a region rule when the customer
 * has no entitlement at all.
 */
async function newCustomerRows(db: D1Database, customerId: string): Promise<CustomerRows> {
  const facts = await readCatalogFacts(db);
  return {
    customer: { id: customerId, residency: null, rev: 0 },
    catalogRev: 0,
    features: [...facts.featureTypes].map(([key, type]) => ({ key, type, integer: false, failurePolicy: "closed" })),
    regionGroups: {},
    plans: {},
    subscriptions: [],
    grants: [],
  };
}
