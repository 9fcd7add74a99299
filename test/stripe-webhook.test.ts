// POST /v1/webhooks/stripe with signed fixtures (signStripePayload), and the price mappings it reads.
// Asserts D1 rows, audit rows, webhook_events and check answers after each delivery.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { signStripePayload } from "../src/billing/stripe-signature";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { auditOf, auditOfCustomer, parsed } from "./helpers/d1";
import { operatorToken } from "./helpers/operators";
import { PREVIOUS_WEBHOOK_SECRET, WEBHOOK_SECRET } from "./helpers/stripe";
import { DAY_MS, T0 } from "./helpers/time";
import { BOOTSTRAP, checker, testWorker, uid } from "./helpers/worker";

const bindings = { ...env, STRIPE_WEBHOOK_SECRET: `${WEBHOOK_SECRET}, ${PREVIOUS_WEBHOOK_SECRET}` };
const w = testWorker({ env: bindings });
const T = T0 / 1000; // Stripe speaks unix seconds
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w); // maps price_free -> free, price_pro -> pro
  checkKey = await createKey(w, ["check"]);
  for (const [price, planId] of [
    ["price_sso_addon", "sso-addon"],
    ["price_extra_calls", "extra-calls"],
    ["prod_enterprise", "pro"],
  ]) {
    expect((await w.call("PUT", `/admin/v1/prices/${price}`, { key: BOOTSTRAP, body: { planId } })).status).toBe(200);
  }
});

interface Item {
  id?: string;
  price: string;
  product?: string;
}
function subscription(o: {
  id: string;
  customer: string;
  status: string;
  items: Item[];
  trialEnd?: number;
  periodEnd?: number;
  cancelAt?: number;
  endedAt?: number;
}) {
  return {
    id: o.id,
    object: "subscription",
    customer: o.customer,
    status: o.status,
    start_date: T - DAY_MS / 1000,
    billing_cycle_anchor: T - DAY_MS / 1000,
    current_period_start: T - DAY_MS / 1000,
    current_period_end: o.periodEnd ?? T + 29 * (DAY_MS / 1000),
    trial_end: o.trialEnd ?? null,
    cancel_at: o.cancelAt ?? null,
    cancel_at_period_end: false,
    canceled_at: o.endedAt ?? null,
    ended_at: o.endedAt ?? null,
    items: {
      object: "list",
      data: o.items.map((i, n) => ({
        id: i.id ?? `si_${n}`,
        object: "subscription_item",
        price: { id: i.price, object: "price", product: i.product ?? "prod_x" },
      })),
    },
    metadata: {},
  };
}
const event = (type: string, object: unknown, created: number, id = uid("evt")) => ({
  id,
  object: "event",
  api_version: "2024-06-20",
  type,
  created,
  livemode: false,
  data: { object },
});

async function deliver(
  evt: unknown,
  opts: { secret?: string; t?: number; header?: string | null; body?: string } = {},
) {
  const body = opts.body ?? JSON.stringify(evt);
  const header =
    opts.header !== undefined
      ? opts.header
      : await signStripePayload(body, opts.secret ?? WEBHOOK_SECRET, opts.t ?? w.clock.now() / 1000);
  const headers: Record<string, string> = { "Content-Type": "application/json; charset=utf-8" };
  if (header !== null) headers["Stripe-Signature"] = header;
  return w.call("POST", "/v1/webhooks/stripe", { raw: body, headers });
}

const check = checker(w, () => checkKey);
const rowsOf = async (stripeId: string) =>
  (
    await env.DB.prepare(
      "SELECT * FROM subscriptions WHERE external_id = ?1 OR external_id LIKE ?2 ORDER BY external_id",
    )
      .bind(stripeId, `${stripeId}/%`)
      .all<Record<string, any>>()
  ).results;
const seen = async (eventId: string) =>
  !!(await env.DB.prepare("SELECT 1 FROM webhook_events WHERE id = ?1").bind(eventId).first());
const ids = () => ({ sub: uid("sub_stripe"), cus: uid("cus") });
/** An event about an active subscription `sub` of Stripe customer `cus` to the pro price. */
const proEvent = (type: string, { sub, cus }: { sub: string; cus: string }, created: number) =>
  event(type, subscription({ id: sub, customer: cus, status: "active", items: [{ price: "price_pro" }] }), created);

describe("subscription events", () => {
  it("created -> updated -> deleted: provisions, changes and ends access, audited as webhook:stripe", async () => {
    const { sub, cus } = ids();
    const created = event(
      "customer.subscription.created",
      subscription({
        id: sub,
        customer: cus,
        status: "trialing",
        trialEnd: T + 14 * 86_400,
        items: [{ price: "price_pro" }],
      }),
      T,
    );
    const r1 = await deliver(created);
    expect(r1.status).toBe(200);
    expect(r1.json).toEqual({ received: true, eventId: created.id, outcome: "applied", changed: 1 });
    expect(
      await env.DB.prepare("SELECT id, billing_customer_id FROM customers WHERE id = ?1").bind(cus).first(),
    ).toEqual({ id: cus, billing_customer_id: cus });
    const [base] = await rowsOf(sub);
    expect(base).toMatchObject({
      customer_id: cus,
      plan_id: "pro",
      status: "trialing",
      trial_end: T0 + 14 * DAY_MS,
      external_id: sub,
      external_updated_at: T0,
      current_period_end: T0 + 29 * DAY_MS,
    });
    expect(await check(cus, "audit_export")).toMatchObject({
      allowed: true,
      expiresAt: new Date(T0 + 14 * DAY_MS).toISOString(),
    });
    expect((await auditOfCustomer(cus)).map((a) => [a.action, a.actor, a.actor_type, a.reason])).toEqual([
      ["customer.create", "webhook:stripe", "webhook", `customer.subscription.created ${created.id}`],
      ["subscription.create", "webhook:stripe", "webhook", `customer.subscription.created ${created.id}`],
    ]);

    // Converted and downgraded, with an add-on: base row -> free/active, a second row for the add-on item.
    const updated = event(
      "customer.subscription.updated",
      subscription({
        id: sub,
        customer: cus,
        status: "active",
        items: [
          { id: "si_base", price: "price_free" },
          { id: "si_calls", price: "price_extra_calls" },
        ],
      }),
      T + 60,
    );
    expect((await deliver(updated)).json).toMatchObject({ outcome: "applied", changed: 2 });
    const rows = await rowsOf(sub);
    expect(rows.map((r) => [r.external_id, r.plan_id, r.status])).toEqual([
      [sub, "free", "active"],
      [`${sub}/si_calls`, "extra-calls", "active"],
    ]);
    expect(await check(cus, "audit_export")).toMatchObject({ allowed: false, reason: "not_entitled" });
    expect(await check(cus, "api_calls")).toMatchObject({ allowed: true, limit: 600 });
    const update = (await auditOfCustomer(cus)).find((a) => a.action === "subscription.update")!;
    expect(parsed(update.before)).toMatchObject({ planId: "pro", status: "trialing" });
    expect(parsed(update.after)).toMatchObject({ planId: "free", status: "active" });

    const deleted = event(
      "customer.subscription.deleted",
      subscription({
        id: sub,
        customer: cus,
        status: "canceled",
        endedAt: T + 120,
        items: [
          { id: "si_base", price: "price_free" },
          { id: "si_calls", price: "price_extra_calls" },
        ],
      }),
      T + 120,
    );
    w.clock.set(T0 + 120_000);
    try {
      expect((await deliver(deleted)).json).toMatchObject({ outcome: "applied", changed: 2 });
      expect((await rowsOf(sub)).map((r) => [r.status, r.ended_at])).toEqual([
        ["canceled", T0 + 120_000],
        ["canceled", T0 + 120_000],
      ]);
      expect(await check(cus, "api_calls")).toMatchObject({ allowed: false, reason: "subscription_inactive" });
    } finally {
      w.clock.set(T0);
    }
    expect(await Promise.all([created.id, updated.id, deleted.id].map(seen))).toEqual([true, true, true]);
  });

  it("attaches to an existing customer by billing id, and maps a product id when the price has no mapping", async () => {
    const { sub, cus } = ids();
    const c = await createCustomer(w, { id: uid(), billingCustomerId: cus });
    const res = await deliver(
      event(
        "customer.subscription.created",
        subscription({
          id: sub,
          customer: cus,
          status: "active",
          items: [{ price: uid("price_new"), product: "prod_enterprise" }],
        }),
        T,
      ),
    );
    expect(res.json.outcome).toBe("applied");
    expect((await rowsOf(sub))[0]).toMatchObject({ customer_id: c.id, plan_id: "pro" });
    expect(await env.DB.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(cus).first()).toBeNull();
    expect((await check(c.id, "audit_export")).allowed).toBe(true);
  });

  it("maps Stripe statuses: past_due keeps its first grace, unpaid ends access, incomplete_expired expires", async () => {
    const { sub, cus } = ids();
    await deliver(proEvent("customer.subscription.created", { sub, cus }, T));
    await deliver(
      event(
        "customer.subscription.updated",
        subscription({ id: sub, customer: cus, status: "past_due", items: [{ price: "price_pro" }] }),
        T + 10,
      ),
    );
    expect((await rowsOf(sub))[0]).toMatchObject({ status: "past_due", grace_until: T0 + 10_000 + 7 * DAY_MS });
    await deliver(
      event(
        "customer.subscription.updated",
        subscription({ id: sub, customer: cus, status: "past_due", items: [{ price: "price_pro" }] }),
        T + 3600,
      ),
    );
    expect((await rowsOf(sub))[0]!.grace_until).toBe(T0 + 10_000 + 7 * DAY_MS); // not extended by a repeat
    expect((await check(cus, "audit_export")).allowed).toBe(true);
    w.clock.set(T0 + 7_200_000);
    try {
      await deliver(
        event(
          "customer.subscription.updated",
          subscription({ id: sub, customer: cus, status: "unpaid", items: [{ price: "price_pro" }] }),
          T + 7200,
        ),
      );
      expect((await rowsOf(sub))[0]).toMatchObject({ status: "past_due", grace_until: T0 + 7_200_000 });
      expect((await check(cus, "audit_export")).allowed).toBe(false);
    } finally {
      w.clock.set(T0);
    }

    const other = ids();
    await deliver(
      event(
        "customer.subscription.created",
        subscription({ id: other.sub, customer: other.cus, status: "incomplete", items: [{ price: "price_pro" }] }),
        T,
      ),
    );
    expect((await check(other.cus, "audit_export")).allowed).toBe(false);
    await deliver(
      event(
        "customer.subscription.updated",
        subscription({
          id: other.sub,
          customer: other.cus,
          status: "incomplete_expired",
          items: [{ price: "price_pro" }],
        }),
        T + 60,
      ),
    );
    expect((await rowsOf(other.sub))[0]).toMatchObject({ status: "expired", ended_at: T0 + 60_000 });
  });

  it("cancel_at from Stripe becomes cancel_at, enforced by the snapshot on time", async () => {
    const { sub, cus } = ids();
    await deliver(
      event(
        "customer.subscription.created",
        subscription({
          id: sub,
          customer: cus,
          status: "active",
          cancelAt: T + 5 * 86_400,
          items: [{ price: "price_pro" }],
        }),
        T,
      ),
    );
    expect((await rowsOf(sub))[0]!.cancel_at).toBe(T0 + 5 * DAY_MS);
    expect((await check(cus, "audit_export")).expiresAt).toBe(new Date(T0 + 5 * DAY_MS).toISOString());
  });
});

describe("invoice events", () => {
  it("payment_failed -> past_due with grace from the event; paid -> active; both API shapes", async () => {
    const { sub, cus } = ids();
    await deliver(proEvent("customer.subscription.created", { sub, cus }, T));
    const failed = await deliver(
      event("invoice.payment_failed", { id: uid("in"), object: "invoice", subscription: sub }, T + 100),
    );
    expect(failed.json).toMatchObject({ outcome: "applied", changed: 1 });
    expect((await rowsOf(sub))[0]).toMatchObject({ status: "past_due", grace_until: T0 + 100_000 + 7 * DAY_MS });
    w.clock.set(T0 + 100_000 + 7 * DAY_MS);
    try {
      expect((await check(cus, "audit_export")).reason).toBe("subscription_inactive");
    } finally {
      w.clock.set(T0);
    }
    // API 2025-03-31+: the subscription id lives under parent.subscription_details
    const paid = await deliver(
      event(
        "invoice.paid",
        {
          id: uid("in"),
          object: "invoice",
          parent: { type: "subscription_details", subscription_details: { subscription: sub } },
        },
        T + 200,
      ),
    );
    expect(paid.json).toMatchObject({ outcome: "applied", changed: 1 });
    expect((await rowsOf(sub))[0]).toMatchObject({
      status: "active",
      grace_until: null,
      // Invoices have their own watermark; the subscription events' one is left where it was.
      invoice_updated_at: T0 + 200_000,
      external_updated_at: T0,
    });
    expect((await auditOfCustomer(cus)).filter((a) => a.action === "subscription.update")).toHaveLength(2);
  });

  it("an invoice for no known subscription is acknowledged and changes nothing", async () => {
    const evt = event("invoice.paid", { id: uid("in"), object: "invoice", subscription: null }, T);
    expect((await deliver(evt)).json).toMatchObject({ outcome: "applied", changed: 0 });
    expect(await seen(evt.id)).toBe(true);
  });
});

describe("once, in order", () => {
  it("a duplicate delivery is acknowledged and applied once", async () => {
    const { sub, cus } = ids();
    const evt = proEvent("customer.subscription.created", { sub, cus }, T);
    expect((await deliver(evt)).json.outcome).toBe("applied");
    const audits = (await auditOfCustomer(cus)).length;
    const again = await deliver(evt);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ outcome: "duplicate", changed: 0 });
    expect(await rowsOf(sub)).toHaveLength(1);
    expect((await auditOfCustomer(cus)).length).toBe(audits);
    // Concurrent duplicates: exactly one applies.
    const evt2 = event(
      "customer.subscription.updated",
      subscription({ id: sub, customer: cus, status: "active", items: [{ price: "price_free" }] }),
      T + 10,
    );
    const outcomes = (await Promise.all([deliver(evt2), deliver(evt2)])).map((r) => r.json.outcome).sort();
    expect(outcomes).toEqual(["applied", "duplicate"]);
    expect((await auditOfCustomer(cus)).filter((a) => a.action === "subscription.update")).toHaveLength(1);
  });

  it("an older event delivered after a newer one never rolls the subscription back", async () => {
    const { sub, cus } = ids();
    await deliver(
      event(
        "customer.subscription.created",
        subscription({ id: sub, customer: cus, status: "active", items: [{ price: "price_free" }] }),
        T,
      ),
    );
    const newer = proEvent("customer.subscription.updated", { sub, cus }, T + 100);
    const older = event(
      "customer.subscription.updated",
      subscription({ id: sub, customer: cus, status: "past_due", items: [{ price: "price_free" }] }),
      T + 50,
    );
    expect((await deliver(newer)).json.outcome).toBe("applied");
    const res = await deliver(older);
    expect(res.json).toMatchObject({ outcome: "stale", changed: 0 });
    expect((await rowsOf(sub))[0]).toMatchObject({
      plan_id: "pro",
      status: "active",
      external_updated_at: T0 + 100_000,
    });
    expect(await seen(older.id)).toBe(true); // remembered: a redelivery is a duplicate
    expect((await check(cus, "audit_export")).allowed).toBe(true);
    // A late invoice event is just as stale.
    expect(
      (await deliver(event("invoice.payment_failed", { id: uid("in"), subscription: sub }, T + 99))).json.outcome,
    ).toBe("stale");
  });

  it("a created event arriving after an update of the same second is ignored", async () => {
    const { sub, cus } = ids();
    const created = event(
      "customer.subscription.created",
      subscription({ id: sub, customer: cus, status: "incomplete", items: [{ price: "price_pro" }] }),
      T,
    );
    const updated = proEvent("customer.subscription.updated", { sub, cus }, T);
    await deliver(updated);
    expect((await deliver(created)).json.outcome).toBe("stale");
    expect((await rowsOf(sub))[0]!.status).toBe("active");
  });
});

describe("signatures: verified before anything else", () => {
  const counts = async () =>
    (await env.DB.prepare(
      "SELECT (SELECT COUNT(*) FROM webhook_events) AS e, (SELECT COUNT(*) FROM subscriptions) AS s, (SELECT COUNT(*) FROM customers) AS c, (SELECT COUNT(*) FROM audit_log) AS a",
    ).first())!;

  /** Delivers with `opts` and asserts that nothing was recorded: no event, row, customer or audit entry. */
  async function refused(evt: unknown, opts: Parameters<typeof deliver>[1]) {
    const before = await counts();
    const res = await deliver(evt, opts);
    expect(await counts()).toEqual(before);
    return res;
  }
  const created = () => proEvent("customer.subscription.created", ids(), T);

  it("a signature made with another secret is a 400 validation problem naming the header, and changes nothing", async () => {
    const evt = created();
    const wrong = await refused(evt, { secret: "whsec_attacker" });
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get("content-type")).toBe("application/problem+json");
    expect(wrong.json).toMatchObject({
      type: "urn:tollgate:problem:validation",
      errors: [{ path: "header.stripe-signature", message: "no_matching_signature" }],
    });
    expect(await seen(evt.id)).toBe(false);
  });

  it("a body changed after signing is a 400 and changes nothing", async () => {
    const evt = created();
    const signed = await signStripePayload(JSON.stringify(evt), WEBHOOK_SECRET, T);
    const tampered = JSON.stringify(evt).replace("price_pro", "price_free");
    expect((await refused(evt, { header: signed, body: tampered })).status).toBe(400);
    expect(await seen(evt.id)).toBe(false);
  });

  it("a missing Stripe-Signature header is a 400 (missing_header) and changes nothing", async () => {
    expect((await refused(created(), { header: null })).json.errors[0].message).toBe("missing_header");
  });

  it("a malformed Stripe-Signature header is a 400 (malformed_header) and changes nothing", async () => {
    expect((await refused(created(), { header: "garbage" })).json.errors[0].message).toBe("malformed_header");
  });

  it("a body that is not even JSON fails on its signature first", async () => {
    const res = await refused(null, { body: "{not json", secret: "whsec_attacker" });
    expect(res.json.errors[0].message).toBe("no_matching_signature");
  });

  it("a timestamp more than 300 s old is a 400 (timestamp_out_of_tolerance) and changes nothing", async () => {
    const stale = await refused(created(), { t: T - 301 });
    expect(stale.status).toBe(400);
    expect(stale.json.errors[0].message).toBe("timestamp_out_of_tolerance");
  });

  it("a timestamp within the 300 s tolerance is accepted", async () => {
    expect((await deliver(created(), { t: T - 299 })).json.outcome).toBe("applied");
  });

  it("accepts the previous secret during a rotation (comma-separated STRIPE_WEBHOOK_SECRET)", async () => {
    expect((await deliver(created(), { secret: PREVIOUS_WEBHOOK_SECRET })).json.outcome).toBe("applied");
  });

  it("without STRIPE_WEBHOOK_SECRET the endpoint answers 503 (Stripe retries) and applies nothing", async () => {
    const bare = testWorker({ env: { ...env, STRIPE_WEBHOOK_SECRET: "" } });
    const body = JSON.stringify(event("customer.subscription.created", {}, T));
    const res = await bare.call("POST", "/v1/webhooks/stripe", {
      raw: body,
      headers: {
        "Content-Type": "application/json",
        "Stripe-Signature": await signStripePayload(body, WEBHOOK_SECRET, T),
      },
    });
    expect(res.status).toBe(503);
  });
});

describe("what is acknowledged and what is refused", () => {
  it("an event larger than the API's 64 KB body limit is accepted (webhooks allow 1 MB)", async () => {
    const evt = event(
      "charge.refunded",
      { id: uid("ch"), object: "charge", metadata: { note: "x".repeat(200_000) } },
      T,
    );
    const res = await deliver(evt);
    expect(res.status).toBe(200);
    expect(res.json.outcome).toBe("ignored");
  });

  it("an unknown event type is acknowledged with 200 and ignored (not recorded)", async () => {
    const evt = event("charge.refunded", { id: uid("ch"), object: "charge" }, T);
    const res = await deliver(evt);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ received: true, eventId: evt.id, outcome: "ignored", changed: 0 });
    expect(await seen(evt.id)).toBe(false);
  });

  it("an unmapped price is refused with 422 (not recorded, so Stripe retries) and applies once it is mapped", async () => {
    const { sub, cus } = ids();
    const price = uid("price_unmapped");
    const evt = event(
      "customer.subscription.created",
      subscription({ id: sub, customer: cus, status: "active", items: [{ price, product: uid("prod_unknown") }] }),
      T,
    );
    const refused = await deliver(evt);
    expect(refused.status).toBe(422);
    expect(refused.json).toMatchObject({ unmappedPrices: [price] });
    expect(await seen(evt.id)).toBe(false);
    expect(await rowsOf(sub)).toEqual([]);
    expect(await env.DB.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(cus).first()).toBeNull();
    await w.call("PUT", `/admin/v1/prices/${price}`, {
      key: BOOTSTRAP,
      body: { planId: "pro", reason: "new Stripe price" },
    });
    expect((await deliver(evt)).json.outcome).toBe("applied");
    expect((await check(cus, "audit_export")).allowed).toBe(true);
  });

  it("an item without a mapping next to mapped ones is skipped and named in the audit reason", async () => {
    const { sub, cus } = ids();
    const evt = event(
      "customer.subscription.created",
      subscription({
        id: sub,
        customer: cus,
        status: "active",
        items: [{ price: "price_pro" }, { id: "si_misc", price: "price_merch" }],
      }),
      T,
    );
    expect((await deliver(evt)).json).toMatchObject({ outcome: "applied", changed: 1 });
    expect((await auditOfCustomer(cus)).at(-1)!.reason).toBe(
      `customer.subscription.created ${evt.id}; unmapped prices ignored: price_merch`,
    );
  });

  it("a second price mapping to a base plan in one subscription is skipped and named in the audit reason", async () => {
    const { sub, cus } = ids();
    const evt = event(
      "customer.subscription.created",
      subscription({
        id: sub,
        customer: cus,
        status: "active",
        items: [
          { price: "price_pro" },
          { id: "si_sso", price: "price_sso_addon" },
          { id: "si_f", price: "price_free" },
        ],
      }),
      T,
    );
    expect((await deliver(evt)).json).toMatchObject({ outcome: "applied", changed: 2 });
    expect((await rowsOf(sub)).map((r) => [r.external_id, r.plan_id])).toEqual([
      [sub, "pro"],
      [`${sub}/si_sso`, "sso-addon"],
    ]);
    expect((await auditOfCustomer(cus)).at(-1)!.reason).toBe(
      `customer.subscription.created ${evt.id}; second base plan prices ignored: price_free`,
    );
    expect(await check(cus, "api_calls")).toMatchObject({ limit: 1000 }); // Pro's, not Pro's plus Free's
  });

  it("a Stripe base plan replaces the customer's other current base plan: ended in the same batch, audited", async () => {
    const { sub, cus } = ids();
    const c = await createCustomer(w, {
      id: uid(),
      billingCustomerId: cus,
      subscriptions: [{ id: uid("sub_manual"), planId: "pro" }],
    });
    const manual = c.subscriptions[0]!;
    const evt = event(
      "customer.subscription.created",
      subscription({ id: sub, customer: cus, status: "active", items: [{ price: "price_free" }] }),
      T,
    );
    expect((await deliver(evt)).json).toMatchObject({ outcome: "applied", changed: 2 });
    expect(await seen(evt.id)).toBe(true);
    const ended = await env.DB.prepare("SELECT status, ended_at FROM subscriptions WHERE id = ?1").bind(manual).first();
    expect(ended).toEqual({ status: "canceled", ended_at: T0 });
    const replaced = (await auditOf("subscription", manual)).at(-1)!;
    expect(replaced).toMatchObject({ action: "subscription.replaced", actor: "webhook:stripe" });
    expect(replaced.reason).toContain(evt.id);
    expect(parsed(replaced.after)).toMatchObject({ status: "canceled" });
    expect(await check(c.id, "api_calls")).toMatchObject({ limit: 100 }); // Free alone
  });

  it("a signed event of an unexpected shape is a 422 and is not recorded", async () => {
    const evt = event(
      "customer.subscription.updated",
      { id: uid("sub"), customer: "cus_x", status: "paused_forever", items: { data: [] } },
      T,
    );
    const res = await deliver(evt);
    expect(res.status).toBe(422);
    expect(res.json.errors[0].path).toBe("data.object.status");
    expect(await seen(evt.id)).toBe(false);
  });
});

describe("price mappings API", () => {
  const put = (price: string, key: string, body: Record<string, unknown>) =>
    w.call("PUT", `/admin/v1/prices/${price}`, { key, body });

  it("an approver may not write a price mapping (403), and nothing is audited", async () => {
    const price = uid("price_api");
    expect((await put(price, await operatorToken("approver"), { planId: "pro" })).status).toBe(403);
    expect(await auditOf("price_mapping", price)).toEqual([]);
  });

  it("a mapping to an unknown plan is refused (400), and nothing is audited", async () => {
    const price = uid("price_api");
    expect((await put(price, BOOTSTRAP, { planId: "nope" })).status).toBe(400);
    expect(await auditOf("price_mapping", price)).toEqual([]);
  });

  it("an admin's write answers the mapping, viewers read and list it, and every write is audited", async () => {
    const price = uid("price_api");
    const viewer = await operatorToken("viewer");
    const written = await put(price, await operatorToken("admin", "op_admin"), { planId: "pro", reason: "launch" });
    expect(written.json).toEqual({
      priceId: price,
      planId: "pro",
      kind: "base",
      updatedAt: new Date(T0).toISOString(),
    });
    expect((await w.call("GET", `/admin/v1/prices/${price}`, { key: viewer })).json.planId).toBe("pro");
    await put(price, BOOTSTRAP, { planId: "free" });
    const audits = await auditOf("price_mapping", price);
    expect(audits.map((a) => [a.action, a.actor, a.reason])).toEqual([
      ["price_mapping.put", "op_admin", "launch"],
      ["price_mapping.put", "bootstrap", null],
    ]);
    expect(parsed(audits[1]!.before)).toMatchObject({ planId: "pro" });
    const list = await w.call("GET", "/admin/v1/prices?planId=free&limit=1", { key: viewer });
    expect(list.json.items).toHaveLength(1);
  });

  it("a viewer may not delete a mapping (403); once an admin deletes it, it is 404", async () => {
    const price = uid("price_api");
    const viewer = await operatorToken("viewer");
    await put(price, BOOTSTRAP, { planId: "pro" });
    expect((await w.call("DELETE", `/admin/v1/prices/${price}`, { key: viewer })).status).toBe(403);
    expect((await w.call("DELETE", `/admin/v1/prices/${price}`, { key: BOOTSTRAP })).status).toBe(204);
    expect((await w.call("GET", `/admin/v1/prices/${price}`, { key: viewer })).status).toBe(404);
  });
});
