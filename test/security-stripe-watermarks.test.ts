// Invoice events and subscription events have separate out-of-order watermarks: an invoice delivered
// before an older subscription change does not make that change stale (it used to be acknowledged as
// "stale" and lost forever), and invoices still keep their own order.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { signStripePayload } from "../src/billing/stripe-signature";
import { loadTestCatalog } from "./helpers/admin";
import { WEBHOOK_SECRET } from "./helpers/stripe";
import { DAY_MS, T0 } from "./helpers/time";
import { testWorker, uid } from "./helpers/worker";

const w = testWorker({ env: { ...env, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET } });
const T = T0 / 1000;

beforeAll(async () => {
  await loadTestCatalog(w); // maps price_free -> free, price_pro -> pro
});

const subscription = (id: string, customer: string, status: string, price = "price_pro") => ({
  id,
  object: "subscription",
  customer,
  status,
  start_date: T - DAY_MS / 1000,
  billing_cycle_anchor: T - DAY_MS / 1000,
  current_period_start: T - DAY_MS / 1000,
  current_period_end: T + 29 * (DAY_MS / 1000),
  trial_end: null,
  cancel_at: null,
  cancel_at_period_end: false,
  canceled_at: status === "canceled" ? T + 5 : null,
  ended_at: status === "canceled" ? T + 5 : null,
  items: { object: "list", data: [{ id: "si_0", object: "subscription_item", price: { id: price, object: "price" } }] },
  metadata: {},
});

async function deliver(type: string, object: unknown, created: number) {
  const body = JSON.stringify({ id: uid("evt"), object: "event", type, created, livemode: false, data: { object } });
  const header = await signStripePayload(body, WEBHOOK_SECRET, w.clock.now() / 1000);
  const res = await w.call("POST", "/v1/webhooks/stripe", {
    raw: body,
    headers: { "Content-Type": "application/json", "Stripe-Signature": header },
  });
  expect(res.status).toBe(200);
  return res.json.outcome as string;
}

const rowOf = (stripeId: string) =>
  env.DB.prepare("SELECT status, plan_id FROM subscriptions WHERE external_id = ?1")
    .bind(stripeId)
    .first<{ status: string; plan_id: string }>();

describe("Stripe watermarks", () => {
  it("created(T), invoice.paid(T+10), then subscription.updated(T+5, canceled): the cancellation applies", async () => {
    const [sub, cus] = [uid("sub_wm"), uid("cus_wm")];
    expect(await deliver("customer.subscription.created", subscription(sub, cus, "active"), T)).toBe("applied");
    const invoice = { id: uid("in"), object: "invoice", subscription: sub };
    expect(await deliver("invoice.paid", invoice, T + 10)).toBe("applied");
    expect(await deliver("customer.subscription.updated", subscription(sub, cus, "canceled"), T + 5)).toBe("applied");
    expect((await rowOf(sub))?.status).toBe("canceled");
  });

  it("an older invoice.payment_failed delivered after a newer invoice.paid is stale: no past_due", async () => {
    const [sub, cus] = [uid("sub_wm"), uid("cus_wm")];
    await deliver("customer.subscription.created", subscription(sub, cus, "active"), T);
    expect(await deliver("invoice.paid", { id: uid("in"), object: "invoice", subscription: sub }, T + 20)).toBe(
      "applied",
    );
    const failed = { id: uid("in"), object: "invoice", subscription: sub };
    expect(await deliver("invoice.payment_failed", failed, T + 10)).toBe("stale");
    expect((await rowOf(sub))?.status).toBe("active");
  });

  it("an invoice older than the newest subscription event is stale (that state already reflects it)", async () => {
    const [sub, cus] = [uid("sub_wm"), uid("cus_wm")];
    await deliver("customer.subscription.created", subscription(sub, cus, "active"), T);
    await deliver("customer.subscription.updated", subscription(sub, cus, "active"), T + 30);
    const failed = { id: uid("in"), object: "invoice", subscription: sub };
    expect(await deliver("invoice.payment_failed", failed, T + 10)).toBe("stale");
    expect((await rowOf(sub))?.status).toBe("active");
  });
});
