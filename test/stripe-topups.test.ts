// Credit top-ups bought through Stripe (issue 17, docs/billing.md "Credit top-ups"): price mappings
// that name a top-up, signed invoice.paid events of one-off invoices granting them once, the credits
// drawn before the allowance and expiring on time, credit notes ending what is left, and the audit.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { signStripePayload } from "../src/billing/stripe-signature";
import { catalogFile } from "../src/domain/catalog";
import { diffCatalog, stateOfFile } from "../src/domain/catalog-diff";
import { testCatalog } from "./fixtures/catalog";
import { createCustomer, createKey } from "./helpers/admin";
import { auditOf, parsed } from "./helpers/d1";
import { WEBHOOK_SECRET } from "./helpers/stripe";
import { DAY_MS, T0 } from "./helpers/time";
import { createEndpoint, deliveryLog } from "./helpers/webhooks";
import { BOOTSTRAP, testWorker, uid } from "./helpers/worker";

const w = testWorker({ env: { ...env, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET } });
const T = T0 / 1000; // Stripe speaks unix seconds
let key: string;

const topUpCatalog = {
  ...testCatalog,
  features: {
    ...testCatalog.features,
    ai_credits: { type: "credits", unit: "credits" },
    chat_messages: { type: "metered", creditCost: { credits: "ai_credits", cost: 2 } },
  },
  plans: {
    ...testCatalog.plans,
    "ai-starter": {
      name: "AI starter",
      entitlements: { ai_credits: { limit: 100, reset: "month" }, chat_messages: true },
    },
  },
  prices: {
    price_pro: "pro",
    price_credits_500: { credits: "ai_credits", amount: 500, expiresInDays: 30 },
    price_credits_50: { credits: "ai_credits", amount: 50 }, // the default: 365 days
  },
};

beforeAll(async () => {
  const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: topUpCatalog });
  if (res.status !== 200) throw new Error(`catalog load failed: ${res.status} ${res.text}`);
  key = await createKey(w, ["check", "usage"]);
});

interface Line {
  id: string;
  price: string;
  quantity?: number;
  /** API versions from 2025-03-31 name the price under pricing.price_details. */
  newApi?: boolean;
}
/** An invoice.paid event of a one-off invoice (no subscription) of Stripe customer `cus`, paid at `paidAt` (s). */
function invoicePaid(o: {
  invoice: string;
  cus: string;
  lines: Line[];
  paidAt?: number;
  id?: string;
  subscription?: string;
}) {
  const lines = o.lines.map((l) => ({
    id: l.id,
    object: "line_item",
    quantity: l.quantity ?? 1,
    ...(l.newApi
      ? { pricing: { type: "price_details", price_details: { price: l.price, product: "prod_x" } } }
      : { price: { id: l.price, object: "price" } }),
  }));
  return {
    id: o.id ?? uid("evt"),
    object: "event",
    type: "invoice.paid",
    created: o.paidAt ?? T,
    data: {
      object: {
        id: o.invoice,
        object: "invoice",
        customer: o.cus,
        subscription: o.subscription ?? null,
        status: "paid",
        status_transitions: { paid_at: o.paidAt ?? T },
        lines: { object: "list", data: lines, has_more: false },
      },
    },
  };
}

/** Delivers a paid one-off invoice of `lines` ([line id, price]). */
const pay = (cus: string, invoice: string, lines: [string, string][]) =>
  deliver(invoicePaid({ invoice, cus, lines: lines.map(([id, price]) => ({ id, price })) }));
const creditNote = (invoice: string, lineIds: string[], id = uid("evt")) => ({
  id,
  object: "event",
  type: "credit_note.created",
  created: T,
  data: {
    object: {
      id: uid("cn"),
      object: "credit_note",
      invoice,
      lines: { data: lineIds.map((l) => ({ id: uid("cnli"), type: "invoice_line_item", invoice_line_item: l })) },
    },
  },
});

async function deliver(evt: unknown) {
  const body = JSON.stringify(evt);
  const header = await signStripePayload(body, WEBHOOK_SECRET, w.clock.now() / 1000);
  return w.call("POST", "/v1/webhooks/stripe", {
    raw: body,
    headers: { "Content-Type": "application/json", "Stripe-Signature": header },
  });
}
const check = (body: Record<string, unknown>) => w.call("POST", "/v1/check", { key, body });
const use = (body: Record<string, unknown>) => w.call("POST", "/v1/usage", { key, body });
const grantsOf = async (customerId: string) =>
  (
    await env.DB.prepare("SELECT * FROM grants WHERE customer_id = ?1 ORDER BY id")
      .bind(customerId)
      .all<Record<string, any>>()
  ).results;
/** A Tollgate customer on ai-starter, linked to a Stripe customer of the same id. */
async function stripeCustomer() {
  const id = uid("cus");
  await createCustomer(w, { id, billingCustomerId: id, subscriptions: [{ planId: "ai-starter" }] });
  return id;
}

describe("price mappings to top-ups", () => {
  it("the catalog file and the admin API store them next to plain plan mappings", async () => {
    const exported = await w.call("GET", "/admin/v1/catalog", { key: BOOTSTRAP });
    expect(exported.json.prices).toMatchObject({
      price_pro: "pro",
      price_credits_500: { credits: "ai_credits", amount: 500, expiresInDays: 30 },
      price_credits_50: { credits: "ai_credits", amount: 50, expiresInDays: 365 },
    });
    const put = await w.call("PUT", "/admin/v1/prices/price_credits_10", {
      key: BOOTSTRAP,
      body: { topUp: { credits: "ai_credits", amount: 10, expiresInDays: 7 }, reason: "a small pack" },
    });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({
      priceId: "price_credits_10",
      topUp: { credits: "ai_credits", amount: 10, expiresInDays: 7 },
    });
    expect(put.json.planId).toBeUndefined();
    const got = await w.call("GET", "/admin/v1/prices/price_credits_10", { key: BOOTSTRAP });
    expect(got.json).toMatchObject({ topUp: { credits: "ai_credits", amount: 10, expiresInDays: 7 } });
    const pro = await w.call("GET", "/admin/v1/prices/price_pro", { key: BOOTSTRAP });
    expect(pro.json).toMatchObject({ priceId: "price_pro", planId: "pro", kind: "base" });
    const [audit] = await auditOf("price_mapping", "price_credits_10");
    expect(parsed(audit!.after)).toMatchObject({ topUp: { amount: 10 } });
    // A plan mapping can become a top-up and back: one row per price.
    const back = await w.call("PUT", "/admin/v1/prices/price_credits_10", { key: BOOTSTRAP, body: { planId: "pro" } });
    expect(back.json).toMatchObject({ planId: "pro", kind: "base" });
    expect(back.json.topUp).toBeUndefined();
    expect((await w.call("DELETE", "/admin/v1/prices/price_credits_10", { key: BOOTSTRAP })).status).toBe(204);
  });

  it("the catalog diff reports a top-up mapping added or changed, and none when only the default is spelled out", () => {
    const state = (prices: Record<string, unknown>) => stateOfFile(catalogFile.parse({ ...topUpCatalog, prices }));
    const before = state(topUpCatalog.prices);
    const same = state({
      ...topUpCatalog.prices,
      price_credits_50: { credits: "ai_credits", amount: 50, expiresInDays: 365 },
    });
    expect(diffCatalog(before, same)).toEqual([]);
    const after = state({
      ...topUpCatalog.prices,
      price_credits_500: { credits: "ai_credits", amount: 600, expiresInDays: 30 },
      price_credits_5: { credits: "ai_credits", amount: 5 },
      price_pro: { credits: "ai_credits", amount: 1 },
    });
    expect(diffCatalog(before, after).map((c) => [c.id, c.op, c.details])).toEqual([
      ["price_credits_5", "added", ["-> top-up 5 ai_credits for 365 days"]],
      ["price_credits_500", "changed", ["top-up 500 ai_credits for 30 days -> top-up 600 ai_credits for 30 days"]],
      ["price_pro", "changed", ["plan pro -> top-up 1 ai_credits for 365 days"]],
    ]);
  });

  it("naming a feature that is not a credits feature is a validation error, in the file and the API", async () => {
    const bad = await w.call("PUT", "/admin/v1/catalog", {
      key: BOOTSTRAP,
      body: { ...topUpCatalog, prices: { price_x: { credits: "api_calls", amount: 5 } } },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json.errors)).toContain("'api_calls' is a metered feature, not a credits feature");
    const unknown = await w.call("PUT", "/admin/v1/catalog", {
      key: BOOTSTRAP,
      body: { ...topUpCatalog, prices: { price_x: { credits: "nope", amount: 5 } } },
    });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.json.errors)).toContain("unknown feature 'nope'");
    const api = await w.call("PUT", "/admin/v1/prices/price_x", {
      key: BOOTSTRAP,
      body: { topUp: { credits: "sso", amount: 5 } },
    });
    expect(api.status).toBe(400);
    expect(api.json.errors).toEqual([
      { path: "json.topUp.credits", message: "'sso' is a boolean feature, not a credits feature" },
    ]);
    const zero = await w.call("PUT", "/admin/v1/prices/price_x", {
      key: BOOTSTRAP,
      body: { topUp: { credits: "ai_credits", amount: 0 } },
    });
    expect(zero.status).toBe(400);
    expect((await w.call("GET", "/admin/v1/prices/price_x", { key: BOOTSTRAP })).status).toBe(404);
  });

  it("a credits feature a top-up price names cannot be deleted until the mapping is gone", async () => {
    const feature = `gift_${Math.random().toString(36).slice(2, 8)}`;
    expect(
      (await w.call("POST", "/admin/v1/features", { key: BOOTSTRAP, body: { key: feature, type: "credits" } })).status,
    ).toBe(201);
    const price = `price_${feature}`;
    await w.call("PUT", `/admin/v1/prices/${price}`, {
      key: BOOTSTRAP,
      body: { topUp: { credits: feature, amount: 5 } },
    });
    const refused = await w.call("DELETE", `/admin/v1/features/${feature}`, { key: BOOTSTRAP });
    expect(refused.status).toBe(409);
    expect(refused.json.references).toEqual({ plans: 0, grants: 0, prices: 1, features: 0 });
    expect((await w.call("DELETE", `/admin/v1/prices/${price}`, { key: BOOTSTRAP })).status).toBe(204);
    expect((await w.call("DELETE", `/admin/v1/features/${feature}`, { key: BOOTSTRAP })).status).toBe(200);
  });
});

describe("invoice.paid of a one-off invoice", () => {
  it("grants each mapped line once (amount x quantity), under redelivery and a second event for the invoice", async () => {
    const cus = await stripeCustomer();
    const invoice = uid("in");
    const evt = invoicePaid({
      invoice,
      cus,
      lines: [
        { id: "il_a", price: "price_credits_500", quantity: 2 },
        { id: "il_b", price: "price_credits_50", newApi: true },
        { id: "il_c", price: "price_unmapped" },
        { id: "il_d", price: "price_pro" },
      ],
    });
    const r = await deliver(evt);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ received: true, eventId: evt.id, outcome: "applied", changed: 2 });
    const again = await deliver(evt);
    expect(again.json).toMatchObject({ outcome: "duplicate", changed: 0 });
    const other = await deliver({ ...evt, id: uid("evt") }); // the same invoice, another event id
    expect(other.json).toMatchObject({ outcome: "applied", changed: 0 });
    const grants = await grantsOf(cus);
    expect(grants).toHaveLength(2);
    expect(grants.map((g) => [g.id, g.feature_key, JSON.parse(g.spec), g.starts_at, g.expires_at])).toEqual([
      [`grant_stripe_${invoice}_il_a`, "ai_credits", { enabled: true, limit: 1000, topUp: true }, T0, T0 + 30 * DAY_MS],
      [`grant_stripe_${invoice}_il_b`, "ai_credits", { enabled: true, limit: 50, topUp: true }, T0, T0 + 365 * DAY_MS],
    ]);
    expect(grants.every((g) => g.status === "active" && g.proposed_by === "webhook:stripe")).toBe(true);
    expect(grants.every((g) => g.decided_by === "webhook:stripe" && g.elevated === 1)).toBe(true);
  });

  it("two events about the same invoice delivered at once grant each line once (the grant id is the line's)", async () => {
    const cus = await stripeCustomer();
    const invoice = uid("in");
    const lines = [
      { id: "il_1", price: "price_credits_50" },
      { id: "il_2", price: "price_credits_500" },
    ];
    const results = await Promise.all([1, 2, 3].map(() => deliver(invoicePaid({ invoice, cus, lines }))));
    expect(results.every((r) => r.status === 200 || r.status === 409)).toBe(true);
    expect(results.filter((r) => r.status === 200).reduce((n, r) => n + r.json.changed, 0)).toBe(2);
    expect((await grantsOf(cus)).map((g) => JSON.parse(g.spec).limit)).toEqual([50, 500]);
    const ok = await check({ customerId: cus, feature: "ai_credits" });
    expect(ok.json).toMatchObject({ topUpRemaining: 550 });
  });

  it("the credits show in checks and are drawn before the allowance, and each top-up expires on time", async () => {
    const cus = await stripeCustomer();
    const invoice = uid("in");
    await pay(cus, invoice, [
      ["il_big", "price_credits_500"],
      ["il_small", "price_credits_50"],
    ]);
    const before = await check({ customerId: cus, feature: "ai_credits" });
    expect(before.json).toMatchObject({ allowed: true, used: 0, limit: 100, topUpRemaining: 550, remaining: 650 });
    // 20 chat messages = 40 credits, all from the top-up expiring first (the 500, in 30 days).
    const r = await use({ customerId: cus, feature: "chat_messages", amount: 20 });
    expect(r.json).toMatchObject({ allowed: true, credits: { drawn: 40, used: 0, topUpRemaining: 510 } });
    const last = await w.at(T0 + 30 * DAY_MS - 1, () => check({ customerId: cus, feature: "ai_credits" }));
    expect(last.json).toMatchObject({ topUpRemaining: 510 });
    const expired = await w.at(T0 + 30 * DAY_MS, () => check({ customerId: cus, feature: "ai_credits" }));
    expect(expired.json).toMatchObject({ allowed: true, used: 0, limit: 100, topUpRemaining: 50, remaining: 150 });
    const gone = await w.at(T0 + 365 * DAY_MS, () => check({ customerId: cus, feature: "ai_credits" }));
    expect(gone.json).toMatchObject({ allowed: true, remaining: 100 });
    expect(gone.json.topUpRemaining).toBeUndefined(); // no top-up open any more
  });

  it("is audited as grant.create by webhook:stripe with the event, invoice, line and price", async () => {
    const cus = await stripeCustomer();
    const invoice = uid("in");
    const evt = invoicePaid({
      invoice,
      cus,
      lines: [
        { id: "il_1", price: "price_credits_50", quantity: 3 },
        { id: "il_2", price: "price_unmapped" },
      ],
    });
    await deliver(evt);
    const audits = await auditOf("grant", `grant_stripe_${invoice}_il_1`);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: "webhook:stripe", actor_type: "webhook", action: "grant.create" });
    expect(audits[0]!.reason).toBe(
      `Stripe payment: invoice ${invoice} line il_1 price price_credits_50 x 3 (invoice.paid ${evt.id}); unmapped prices ignored: price_unmapped`,
    );
    expect(parsed(audits[0]!.after)).toMatchObject({ spec: { limit: 150, topUp: true }, proposedBy: "webhook:stripe" });
    // The grant is listed like any other; an approver may still revoke it.
    const listed = await w.call("GET", `/admin/v1/grants?customerId=${cus}`, { key: BOOTSTRAP });
    expect(listed.json.items.map((g: { id: string }) => g.id)).toEqual([`grant_stripe_${invoice}_il_1`]);
  });

  it("ignores unmapped prices, subscription invoices and failed payments; an unknown customer is created", async () => {
    const cus = await stripeCustomer();
    const unmapped = await deliver(
      invoicePaid({ invoice: uid("in"), cus, lines: [{ id: "il_1", price: "price_unmapped" }] }),
    );
    expect(unmapped.json).toMatchObject({ outcome: "applied", changed: 0 });
    const sub = await deliver(
      invoicePaid({
        invoice: uid("in"),
        cus,
        subscription: "sub_unknown",
        lines: [{ id: "il_1", price: "price_credits_50" }],
      }),
    );
    expect(sub.json).toMatchObject({ outcome: "applied", changed: 0 });
    const failed = invoicePaid({ invoice: uid("in"), cus, lines: [{ id: "il_1", price: "price_credits_50" }] });
    expect((await deliver({ ...failed, type: "invoice.payment_failed" })).json).toMatchObject({ changed: 0 });
    expect(await grantsOf(cus)).toEqual([]);

    const stranger = uid("cus");
    const r = await deliver(
      invoicePaid({ invoice: uid("in"), cus: stranger, lines: [{ id: "il_1", price: "price_credits_50" }] }),
    );
    expect(r.json).toMatchObject({ outcome: "applied", changed: 1 });
    expect(
      await env.DB.prepare("SELECT billing_customer_id FROM customers WHERE id = ?1").bind(stranger).first(),
    ).toEqual({ billing_customer_id: stranger });
    // A top-up alone grants the balance (no plan): 50 credits.
    expect((await check({ customerId: stranger, feature: "ai_credits", quantity: 50 })).json).toMatchObject({
      allowed: true,
      topUpRemaining: 50,
    });
  });

  it("publishes the customer and emits entitlements.changed when the top-up grants a balance", async () => {
    const cus = uid("cus");
    await createCustomer(w, { id: cus, billingCustomerId: cus });
    const endpoint = await createEndpoint(w, {
      url: "https://app.example/hooks",
      customerId: cus,
      eventTypes: ["entitlements.changed"],
    });
    await deliver(invoicePaid({ invoice: uid("in"), cus, lines: [{ id: "il_1", price: "price_credits_500" }] }));
    const log = await deliveryLog(w, endpoint.id);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ eventType: "entitlements.changed" });
  });
});

describe("credit notes", () => {
  it("end the unused credits of the credited line's top-up, once, audited", async () => {
    const cus = await stripeCustomer();
    const invoice = uid("in");
    await pay(cus, invoice, [
      ["il_keep", "price_credits_50"],
      ["il_refund", "price_credits_500"],
    ]);
    await use({ customerId: cus, feature: "ai_credits", amount: 30 }); // from il_refund (expires first)
    const note = creditNote(invoice, ["il_refund", "il_other"]);
    const r = await deliver(note);
    expect(r.json).toMatchObject({ outcome: "applied", changed: 1 });
    expect((await deliver(note)).json).toMatchObject({ outcome: "duplicate" });
    expect((await deliver({ ...note, id: uid("evt") })).json).toMatchObject({ outcome: "applied", changed: 0 });
    const statuses = (await grantsOf(cus)).map((g) => [g.id, g.status]);
    expect(statuses).toEqual([
      [`grant_stripe_${invoice}_il_keep`, "active"],
      [`grant_stripe_${invoice}_il_refund`, "revoked"],
    ]);
    const after = await check({ customerId: cus, feature: "ai_credits" });
    expect(after.json).toMatchObject({ used: 0, topUpRemaining: 50, remaining: 150 });
    const [, revoke] = await auditOf("grant", `grant_stripe_${invoice}_il_refund`);
    expect(revoke).toMatchObject({ actor: "webhook:stripe", action: "grant.revoke" });
    expect(revoke!.reason).toContain(note.id);
  });
});
