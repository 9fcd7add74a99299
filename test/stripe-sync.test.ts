// The pure Stripe -> subscription rows planner (no bindings).
import { describe, expect, it } from "vitest";
import { stripeSubscription } from "../src/billing/stripe-events";
import { type MappedPlan, planInvoiceEvent, planSubscriptionEvent } from "../src/billing/stripe-sync";
import type { SubscriptionRecord } from "../src/store/subscriptions";
import { DAY_MS } from "./helpers/time";

const T = 1_773_144_000; // seconds
const MS = T * 1000;
const prices: Record<string, MappedPlan> = {
  price_pro: { planId: "pro", kind: "base" },
  price_team: { planId: "team", kind: "base" },
  price_sso: { planId: "sso-addon", kind: "addon" },
};
let n = 0;
const newId = () => `sub_local_${n++}`;
const ctx = (existing: SubscriptionRecord[] = [], eventMs = MS) => ({ eventMs, existing, graceMs: 7 * DAY_MS });

function sub(
  over: Record<string, unknown> = {},
  items: { id: string; price: string }[] = [{ id: "si_1", price: "price_pro" }],
) {
  return stripeSubscription.parse({
    id: "sub_S",
    customer: { id: "cus_C" },
    status: "active",
    start_date: T,
    items: { data: items.map((i) => ({ id: i.id, price: { id: i.price } })) },
    ...over,
  });
}

function applied(plan: ReturnType<typeof planSubscriptionEvent>) {
  if (plan.outcome !== "apply") throw new Error(plan.outcome);
  return plan;
}

describe("planSubscriptionEvent", () => {
  it("one base row keyed by the subscription id, one row per add-on item; a second base item is skipped", () => {
    const plan = applied(
      planSubscriptionEvent(
        "customer.subscription.created",
        sub({}, [
          { id: "si_1", price: "price_pro" },
          { id: "si_2", price: "price_sso" },
          { id: "si_3", price: "price_team" },
        ]),
        "cus_C",
        prices,
        ctx(),
        newId,
      ),
    );
    expect(plan.inserts.map((r) => [r.externalId, r.planId, r.customerId])).toEqual([
      ["sub_S", "pro", "cus_C"],
      ["sub_S/si_2", "sso-addon", "cus_C"],
    ]);
    // One base plan at a time: the second base price is named, not provisioned.
    expect(plan).toMatchObject({ extraBase: ["price_team"], basePlanLive: true });
    expect(plan.inserts[0]).toMatchObject({
      startedAt: MS,
      billingAnchor: MS,
      status: "active",
      externalUpdatedAt: MS,
    });
  });

  it("reads the period from the item (API 2025-03-31+) and cancel_at_period_end as cancel at the period end", () => {
    const s = stripeSubscription.parse({
      id: "sub_S",
      customer: "cus_C",
      status: "active",
      cancel_at_period_end: true,
      items: {
        data: [
          { id: "si_1", price: { id: "price_pro" }, current_period_start: T, current_period_end: T + 30 * 86_400 },
        ],
      },
    });
    const [row] = applied(
      planSubscriptionEvent("customer.subscription.created", s, "cus_C", prices, ctx(), newId),
    ).inserts;
    expect(row).toMatchObject({
      currentPeriodStart: MS,
      currentPeriodEnd: MS + 30 * DAY_MS,
      cancelAt: MS + 30 * DAY_MS,
    });
  });

  it("a removed item ends its row; an unchanged row only moves its provider timestamp", () => {
    const first = applied(
      planSubscriptionEvent(
        "customer.subscription.created",
        sub({}, [
          { id: "si_1", price: "price_pro" },
          { id: "si_2", price: "price_sso" },
        ]),
        "cus_C",
        prices,
        ctx(),
        newId,
      ),
    ).inserts;
    const later = MS + 60_000;
    const plan = applied(
      planSubscriptionEvent("customer.subscription.updated", sub(), "cus_C", prices, ctx(first, later), newId),
    );
    expect(plan.inserts).toEqual([]);
    expect(plan.updates.map((u) => [u.after.externalId, u.after.status, u.after.endedAt, u.relevant])).toEqual([
      ["sub_S", "active", null, false],
      ["sub_S/si_2", "canceled", later, true],
    ]);
  });

  it("stale: older than the rows, or a created event once rows exist", () => {
    const rows = applied(
      planSubscriptionEvent("customer.subscription.created", sub(), "cus_C", prices, ctx([], MS + 1000), newId),
    ).inserts;
    expect(
      planSubscriptionEvent(
        "customer.subscription.updated",
        sub({ status: "canceled" }),
        "cus_C",
        prices,
        ctx(rows, MS),
        newId,
      ),
    ).toEqual({ outcome: "stale" });
    expect(
      planSubscriptionEvent("customer.subscription.created", sub(), "cus_C", prices, ctx(rows, MS + 1000), newId),
    ).toEqual({ outcome: "stale" });
  });

  it("unmapped: refused unless the subscription is ending, which needs no mapping", () => {
    expect(
      planSubscriptionEvent(
        "customer.subscription.updated",
        sub({}, [{ id: "si_1", price: "price_x" }]),
        "cus_C",
        prices,
        ctx(),
        newId,
      ),
    ).toEqual({ outcome: "unmapped", prices: ["price_x"] });
    const rows = applied(
      planSubscriptionEvent("customer.subscription.created", sub(), "cus_C", prices, ctx(), newId),
    ).inserts;
    const plan = applied(
      planSubscriptionEvent(
        "customer.subscription.deleted",
        sub({ status: "canceled", ended_at: T + 5 }, [{ id: "si_1", price: "price_x" }]),
        "cus_C",
        prices,
        ctx(rows, MS + 5000),
        newId,
      ),
    );
    expect(plan.updates.map((u) => [u.after.status, u.after.endedAt])).toEqual([["canceled", MS + 5000]]);
  });
});

describe("planInvoiceEvent", () => {
  it("payment_failed: live rows past_due with grace; already past_due rows keep theirs; paid recovers", () => {
    const rows = applied(
      planSubscriptionEvent("customer.subscription.created", sub(), "cus_C", prices, ctx(), newId),
    ).inserts;
    const failed = planInvoiceEvent("invoice.payment_failed", ctx(rows, MS + 10_000));
    if (failed.outcome !== "apply") throw new Error(failed.outcome);
    const late = failed.updates[0]!.after;
    expect(late).toMatchObject({ status: "past_due", graceUntil: MS + 10_000 + 7 * DAY_MS });
    const again = planInvoiceEvent("invoice.payment_failed", ctx([late], MS + 20_000));
    if (again.outcome !== "apply") throw new Error(again.outcome);
    expect(again.updates[0]).toMatchObject({ relevant: false, after: { graceUntil: MS + 10_000 + 7 * DAY_MS } });
    const paid = planInvoiceEvent("invoice.paid", ctx([late], MS + 30_000));
    if (paid.outcome !== "apply") throw new Error(paid.outcome);
    expect(paid.updates[0]!.after).toMatchObject({
      status: "active",
      graceUntil: null,
      invoiceUpdatedAt: MS + 30_000,
    });
  });
});
