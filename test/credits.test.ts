// Credit systems (issue 17): a `credits` feature is a balance per period; metered features with a
// `creditCost` draw from it in the same meter decision as their own counter.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { testCatalog } from "./fixtures/catalog";
import { createCustomer, createKey } from "./helpers/admin";
import { ledgerEvents, ledgerSum } from "./helpers/ledger";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { BOOTSTRAP, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;

/** The test catalog with a credit system: ai_credits drawn by chat (2 each) and images (5 each). */
const creditCatalog = {
  ...testCatalog,
  features: {
    ...testCatalog.features,
    ai_credits: { type: "credits", unit: "credits" },
    chat_messages: { type: "metered", creditCost: { credits: "ai_credits", cost: 2 } },
    images: { type: "metered", creditCost: { credits: "ai_credits", cost: 5 } },
    tokens: { type: "metered" },
  },
  plans: {
    ...testCatalog.plans,
    "ai-starter": {
      name: "AI starter",
      entitlements: { ai_credits: { limit: 100, reset: "month" }, chat_messages: true, images: { limit: 8 } },
    },
    "ai-chat-only": { name: "AI chat only", entitlements: { chat_messages: true } },
    "rollover-lab": {
      name: "Rollover lab",
      entitlements: { tokens: { limit: 100, reset: "month", rollover: { max: 50, periods: 1 } } },
    },
  },
};

beforeAll(async () => {
  const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: creditCatalog });
  if (res.status !== 200) throw new Error(`catalog load failed: ${res.status} ${res.text}`);
  key = await createKey(w, ["check", "usage"]);
});

const use = (body: Record<string, unknown>) => w.call("POST", "/v1/usage", { key, body });
const check = (body: Record<string, unknown>) => w.call("POST", "/v1/check", { key, body });
const customerOn = async (planId: string) => (await createCustomer(w, { id: uid(), subscriptions: [{ planId }] })).id;

describe("credit systems", () => {
  it("a consume draws cost x amount from the balance and answers both; checks report both", async () => {
    const id = await customerOn("ai-starter");
    const r = await use({ customerId: id, feature: "chat_messages", amount: 3 });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      allowed: true,
      used: 3,
      limit: null,
      credits: { feature: "ai_credits", cost: 2, drawn: 6, used: 6, limit: 100, remaining: 94 },
    });
    const c = await check({ customerId: id, feature: "images", quantity: 2 });
    expect(c.json).toMatchObject({
      allowed: true,
      used: 0,
      limit: 8,
      credits: { feature: "ai_credits", cost: 5, used: 6, limit: 100, remaining: 94 },
    });
    const balance = await check({ customerId: id, feature: "ai_credits", quantity: 94 });
    expect(balance.json).toMatchObject({ allowed: true, type: "credits", used: 6, remaining: 94, limit: 100 });
    // 19 images would cost 95 credits: the balance denies before the feature's own limit is reached.
    const tooMuch = await check({ customerId: id, feature: "images", quantity: 19 });
    expect(tooMuch.json).toMatchObject({ allowed: false, reason: "limit_reached" });
    const all = await w.call("GET", `/v1/entitlements/${id}`, { key });
    expect(all.json.features.chat_messages.credits).toMatchObject({ feature: "ai_credits", used: 6 });
    expect(all.json.features.ai_credits).toMatchObject({ type: "credits", used: 6, remaining: 94 });
  });

  it("a denial by either counter applies nothing to the other", async () => {
    const id = await customerOn("ai-starter");
    // images' own limit (8) denies: no credits drawn.
    const own = await use({ customerId: id, feature: "images", amount: 9 });
    expect(own.json).toMatchObject({
      allowed: false,
      reason: "limit_reached",
      used: 0,
      credits: { drawn: 0, used: 0 },
    });
    // The balance denies: images' counter stays where it was.
    await use({ customerId: id, feature: "chat_messages", amount: 40 }); // 80 credits
    const short = await use({ customerId: id, feature: "images", amount: 5 }); // 25 > 20 left
    expect(short.json).toMatchObject({ allowed: false, reason: "limit_reached", used: 0, credits: { used: 80 } });
    const fits = await use({ customerId: id, feature: "images", amount: 4 }); // exactly 20
    expect(fits.json).toMatchObject({ allowed: true, used: 4, credits: { used: 100, remaining: 0 } });
  });

  it("concurrent consumes across two features drawing one balance never overdraw it", async () => {
    const id = await customerOn("ai-starter");
    // 60 chat messages (2 credits) and 30 images (5 credits, own limit 8) race for 100 credits.
    const calls = [
      ...Array.from({ length: 60 }, () => ({ customerId: id, feature: "chat_messages", amount: 1 })),
      ...Array.from({ length: 30 }, () => ({ customerId: id, feature: "images", amount: 1 })),
    ].sort(() => Math.random() - 0.5);
    const results = await Promise.all(calls.map(use));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const admitted = results.filter((r) => r.json.allowed);
    const chats = admitted.filter((r) => r.json.feature === "chat_messages").length;
    const images = admitted.filter((r) => r.json.feature === "images").length;
    expect(images).toBeLessThanOrEqual(8);
    const drawn = chats * 2 + images * 5;
    expect(drawn).toBeLessThanOrEqual(100);
    // Every denial happened because the credits (or images' own limit) could not take one more unit.
    expect(100 - drawn).toBeLessThan(5);
    expect(results.filter((r) => !r.json.allowed).every((r) => r.json.reason === "limit_reached")).toBe(true);
    const balance = await check({ customerId: id, feature: "ai_credits" });
    expect(balance.json.used).toBe(drawn);
    // The ledger (R2) holds every credit drawn, under the credits feature.
    const stub = env.METER.get(env.METER.idFromName(id));
    await stub.flush();
    expect(await ledgerSum(id, "ai_credits")).toBe(drawn);
    expect(await ledgerSum(id, "chat_messages")).toBe(chats);
  });

  it("a feature with a credit cost is not entitled without the balance; reserve is refused for it", async () => {
    const id = await customerOn("ai-chat-only");
    const c = await check({ customerId: id, feature: "chat_messages" });
    expect(c.json).toMatchObject({ allowed: false, reason: "not_entitled" });
    const u = await use({ customerId: id, feature: "chat_messages", amount: 1 });
    expect(u.json).toMatchObject({ allowed: false, reason: "not_entitled", used: 0 });
    const r = await w.call("POST", "/v1/usage/reserve", {
      key,
      body: { customerId: id, feature: "chat_messages", amount: 1, ttlSeconds: 60 },
    });
    expect(r.status).toBe(400);
    expect(r.json.detail).toContain("credit");
  });

  it("the catalog refuses a credit cost on a non-metered feature or naming a non-credits feature", async () => {
    const bad = {
      ...creditCatalog,
      features: { ...creditCatalog.features, x: { type: "metered", creditCost: { credits: "api_calls", cost: 1 } } },
    };
    const r = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: bad });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.json)).toContain("not a credits feature");
    const created = await w.call("POST", "/admin/v1/features", {
      key: BOOTSTRAP,
      body: { key: "y", type: "boolean", creditCost: { credits: "ai_credits", cost: 1 } },
    });
    expect(created.status).toBe(400);
    const exported = await w.call("GET", "/admin/v1/catalog", { key: BOOTSTRAP });
    expect(exported.json.features.images).toMatchObject({
      type: "metered",
      creditCost: { credits: "ai_credits", cost: 5 },
    });
  });
});

describe("top-ups", () => {
  let support: string;
  let approver: string;
  beforeAll(async () => {
    support = await operatorToken("support", "sue-support");
    approver = await operatorToken("approver", "abe-approver");
  });

  /** A top-up of `credits` until `until`, proposed by support and approved by a second person (four eyes). */
  async function topUp(customerId: string, credits: number, until: number) {
    const body = {
      customerId,
      feature: "ai_credits",
      spec: { limit: credits, topUp: true },
      reason: "bought a credit pack",
      expiresAt: iso(until),
    };
    const proposed = await w.call("POST", "/admin/v1/grants", { key: support, body });
    expect(proposed.status).toBe(201);
    expect(proposed.json.grant.status).toBe("pending");
    expect(proposed.json.elevation.gains).toEqual([`top-up of ${credits} credits`]);
    const id = proposed.json.grant.id as string;
    const approved = await w.call("POST", `/admin/v1/grants/${id}/approve`, { key: approver, body: {} });
    expect(approved.status).toBe(200);
    return id;
  }

  it("are drawn soonest-expiring first, then the period allowance, and expire on time", async () => {
    w.clock.set(T0);
    const id = await customerOn("ai-starter");
    const late = await topUp(id, 30, T0 + 20 * DAY_MS);
    const soon = await topUp(id, 10, T0 + 2 * DAY_MS);
    const before = await check({ customerId: id, feature: "ai_credits" });
    expect(before.json).toMatchObject({ used: 0, limit: 100, remaining: 140, topUpRemaining: 40 });
    // 8 chat messages = 16 credits: 10 from the soonest top-up, 6 from the later one, none from the period.
    const r = await use({ customerId: id, feature: "chat_messages", amount: 8 });
    expect(r.json.credits).toMatchObject({ drawn: 16, used: 0, topUpRemaining: 24, remaining: 124 });
    // 30 credits directly: 24 from the later top-up, 6 from the period allowance.
    const direct = await use({ customerId: id, feature: "ai_credits", amount: 30 });
    expect(direct.json).toMatchObject({ allowed: true, used: 6, topUpRemaining: 0, remaining: 94 });
    const stub = env.METER.get(env.METER.idFromName(id));
    await stub.flush();
    const events = (await ledgerEvents(id)).filter((e) => e.feature === "ai_credits");
    // Each top-up's draws are filed under its own window; the period's under the month.
    const byPeriodEnd = (end: number | null) => events.filter((e) => e.periodEnd === end).map((e) => e.amount);
    expect(byPeriodEnd(T0 + 2 * DAY_MS)).toEqual([10]);
    expect(byPeriodEnd(T0 + 20 * DAY_MS).sort((a, b) => a - b)).toEqual([6, 24]);
    expect(byPeriodEnd(Date.parse("2026-04-01T00:00:00Z"))).toEqual([6]);
    expect(await ledgerSum(id, "ai_credits")).toBe(46);
    const grants = await w.call("GET", `/admin/v1/grants?customerId=${id}`, { key: BOOTSTRAP });
    expect(grants.json.items.map((g: { id: string }) => g.id).sort()).toEqual([soon, late].sort());

    // A new top-up that expires: usable before its expiry, gone at it.
    const short = await topUp(id, 50, T0 + 3 * DAY_MS);
    expect(short).toMatch(/^grant_/);
    const open = await w.at(T0 + 3 * DAY_MS - 1, () => check({ customerId: id, feature: "ai_credits", quantity: 144 }));
    expect(open.json).toMatchObject({ allowed: true, topUpRemaining: 50, remaining: 144 });
    const expired = await w.at(T0 + 3 * DAY_MS, () => check({ customerId: id, feature: "ai_credits", quantity: 95 }));
    expect(expired.json).toMatchObject({ allowed: false, reason: "limit_reached", remaining: 94 });
    const spent = await w.at(T0 + 3 * DAY_MS, () => use({ customerId: id, feature: "ai_credits", amount: 95 }));
    expect(spent.json).toMatchObject({ allowed: false, used: 6 });
  });

  it("a top-up alone grants the balance; topUp is refused on plans and on other features", async () => {
    w.clock.set(T0);
    const id = await customerOn("ai-chat-only");
    await topUp(id, 6, T0 + DAY_MS);
    const ok = await use({ customerId: id, feature: "chat_messages", amount: 3 });
    expect(ok.json).toMatchObject({ allowed: true, credits: { drawn: 6, topUpRemaining: 0 } });
    const none = await use({ customerId: id, feature: "chat_messages", amount: 1 });
    expect(none.json).toMatchObject({ allowed: false, reason: "limit_reached" });
    const bad = await w.call("POST", "/admin/v1/grants", {
      key: support,
      body: { customerId: id, feature: "api_calls", spec: { limit: 5, topUp: true }, expiresAt: iso(T0 + DAY_MS) },
    });
    expect(bad.status).toBe(400);
    const plan = {
      ...creditCatalog,
      plans: { ...creditCatalog.plans, x: { name: "X", entitlements: { ai_credits: { limit: 5, topUp: true } } } },
    };
    const refused = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: plan });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.json)).toContain("topUp applies to grants only");
  });
});

describe("rollover", () => {
  const at = (s: string) => Date.parse(s);
  const tokens = (id: string, t: string, quantity = 1) =>
    w.at(at(t), () => check({ customerId: id, feature: "tokens", quantity }));

  it("carries exactly the unused allowance (capped) across month ends, February included, and the ledger shows it", async () => {
    w.clock.set(at("2026-01-15T00:00:00Z"));
    const id = await customerOn("rollover-lab");
    expect((await use({ customerId: id, feature: "tokens", amount: 30 })).json).toMatchObject({ used: 30 });
    // January left 70 unused: 50 (the cap) carry into February, usable until March 1.
    const feb = await tokens(id, "2026-02-10T00:00:00Z", 150);
    expect(feb.json).toMatchObject({ allowed: true, used: 0, limit: 100, remaining: 150, rolledOver: 50 });
    expect((await tokens(id, "2026-02-10T00:00:00Z", 151)).json).toMatchObject({ allowed: false });
    // 120 tokens: the carried 50 first, then 70 of February's allowance.
    const spent = await w.at(at("2026-02-10T00:00:00Z"), () => use({ customerId: id, feature: "tokens", amount: 120 }));
    expect(spent.json).toMatchObject({ allowed: true, used: 70, remaining: 30 });
    const lastMinute = await tokens(id, "2026-02-28T23:59:59Z");
    expect(lastMinute.json).toMatchObject({ used: 70, remaining: 30, rolledOver: 0 });
    // February (28 days) left 30: they carry into March, whatever January carried.
    const march = await tokens(id, "2026-03-01T00:00:00Z");
    expect(march.json).toMatchObject({ used: 0, remaining: 130, rolledOver: 30 });
    // March untouched: 100 unused, capped at 50; March's own carry of 30 expired at April 1.
    const april = await tokens(id, "2026-04-01T00:00:00Z");
    expect(april.json).toMatchObject({ used: 0, remaining: 150, rolledOver: 50 });
    const usage = await w.at(at("2026-04-01T00:00:00Z"), () =>
      w.call("GET", `/v1/usage/${id}?feature=tokens`, { key }),
    );
    expect(usage.json.features[0]).toMatchObject({ feature: "tokens", remaining: 150, rolledOver: 50 });
    // The ledger: January 30 and February 70 in their months; the 50 drawn from the carry under its window.
    const stub = env.METER.get(env.METER.idFromName(id));
    await stub.flush();
    const events = (await ledgerEvents(id)).filter((e) => e.feature === "tokens" && e.kind === "consume");
    expect(events.map((e) => [iso(e.periodStart), e.periodEnd === null ? null : iso(e.periodEnd), e.amount])).toEqual(
      expect.arrayContaining([
        ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", 30],
        ["2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z", 70],
        ["2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z", 50],
      ]),
    );
    expect(events.length).toBe(3);
  });
});
