// Entities (issue 17, docs/model.md "Entities"): users or seats inside a customer. Per-entity limits hold
// with the pooled one in one meter decision; a seats feature's seats are assigned to named entities, and
// an entity without a seat of the feature's seats feature is not_entitled.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { TollgateClient } from "../src/client";
import { testCatalog } from "./fixtures/catalog";
import { createCustomer, createKey } from "./helpers/admin";
import { ledgerEvents } from "./helpers/ledger";
import { meterOf } from "./helpers/shards";
import { DAY_MS, T0 } from "./helpers/time";
import { BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;

/** The test catalog with entities: ai_tokens per user per day, a seat-gated editor, a credit balance per user. */
const entityCatalog = {
  ...testCatalog,
  features: {
    ...testCatalog.features,
    team_seats: { type: "seats", description: "Seats of the team" },
    editor: { type: "boolean", seat: "team_seats" },
    ai_tokens: { type: "metered", seat: "team_seats" },
    ai_credits: { type: "credits" },
    chat: { type: "metered", creditCost: { credits: "ai_credits", cost: 2 } },
    exports: { type: "metered" },
  },
  plans: {
    ...testCatalog.plans,
    team: {
      name: "Team",
      entitlements: {
        team_seats: 3,
        editor: true,
        ai_tokens: { limit: 1000, reset: "month", perEntity: { limit: 60, reset: "day" } },
        ai_credits: { limit: 100, perEntity: { limit: 20 } },
        chat: true,
        exports: { limit: 10 },
      },
    },
    "no-seats": { name: "No seats", entitlements: { editor: true } },
    "tight-team": {
      name: "Tight team",
      entitlements: { team_seats: 4, ai_tokens: { limit: 100, perEntity: { limit: 60, reset: "day" } } },
    },
    "big-team": {
      name: "Big team",
      entitlements: {
        team_seats: 20,
        ai_tokens: { limit: 1000, reset: "month", perEntity: { limit: 60, reset: "day" } },
      },
    },
  },
};

beforeAll(async () => {
  const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: entityCatalog });
  if (res.status !== 200) throw new Error(`catalog load failed: ${res.status} ${res.text}`);
  key = await createKey(w, ["check", "usage"]);
});

const use = (body: Record<string, unknown>) => w.call("POST", "/v1/usage", { key, body });
const check = (body: Record<string, unknown>) => w.call("POST", "/v1/check", { key, body });
const seat = (customerId: string, entityId: string, action: "assign" | "release", feature = "team_seats") =>
  w.call("POST", `/v1/entities/${customerId}/${entityId}/${action}`, { key, body: { feature } });
const customerOn = async (planId: string) => (await createCustomer(w, { id: uid(), subscriptions: [{ planId }] })).id;

describe("seats", () => {
  it("a released seat makes its entity not_entitled and frees a seat for another", async () => {
    const id = await customerOn("team");
    for (const u of ["ann", "bob", "cy"]) expect((await seat(id, u, "assign")).json).toMatchObject({ assigned: true });
    // All three seats taken: a fourth user gets none.
    const full = await seat(id, "dee", "assign");
    expect(full.status).toBe(200);
    expect(full.json).toMatchObject({ assigned: false, reason: "limit_reached", used: 3, limit: 3, remaining: 0 });
    expect((await check({ customerId: id, feature: "editor", entityId: "dee" })).json).toMatchObject({
      allowed: false,
      reason: "not_entitled",
      deniedBy: "seat",
      entity: { id: "dee", seat: { feature: "team_seats", held: false } },
    });
    expect((await check({ customerId: id, feature: "editor", entityId: "bob" })).json).toMatchObject({
      allowed: true,
      entity: { id: "bob", seat: { feature: "team_seats", held: true } },
    });
    // Bob leaves: his checks and consumes are refused, and Dee can take the seat.
    expect((await seat(id, "bob", "release")).json).toMatchObject({ assigned: false, used: 2, remaining: 1 });
    expect((await check({ customerId: id, feature: "editor", entityId: "bob" })).json).toMatchObject({
      allowed: false,
      reason: "not_entitled",
      deniedBy: "seat",
    });
    const refused = await use({ customerId: id, feature: "ai_tokens", amount: 1, entityId: "bob" });
    expect(refused.json).toMatchObject({ allowed: false, reason: "not_entitled", deniedBy: "seat", used: 0 });
    expect((await seat(id, "dee", "assign")).json).toMatchObject({ assigned: true, used: 3, remaining: 0 });
    expect((await check({ customerId: id, feature: "editor", entityId: "dee" })).json.allowed).toBe(true);
    // The seats feature's own check counts the seats; with an entity it says whether that entity holds one.
    expect((await check({ customerId: id, feature: "team_seats" })).json).toMatchObject({
      allowed: true,
      type: "seats",
      limit: 3,
      used: 3,
      remaining: 0,
    });
    expect((await check({ customerId: id, feature: "team_seats", entityId: "bob" })).json).toMatchObject({
      allowed: false,
      reason: "not_entitled",
      deniedBy: "seat",
    });
    // Without an entity, a check is the customer's, as before.
    expect((await check({ customerId: id, feature: "editor" })).json.allowed).toBe(true);
    const read = await w.call("GET", `/v1/entities/${id}/dee`, { key });
    expect(read.json.seats).toEqual([{ feature: "team_seats", assignedAt: new Date(T0).toISOString() }]);
  });

  it("assigning twice keeps one seat; 200 concurrent assigns of 20 users never exceed the seats", async () => {
    const id = await customerOn("team");
    expect((await seat(id, "ann", "assign")).json).toMatchObject({ assigned: true, used: 1 });
    expect((await seat(id, "ann", "assign")).json).toMatchObject({ assigned: true, used: 1 });
    const users = Array.from({ length: 20 }, (_, i) => `u${i}`);
    const all = await Promise.all(Array.from({ length: 200 }, (_, i) => seat(id, users[i % 20] as string, "assign")));
    const holders = new Set(all.filter((r) => r.json.assigned).map((r) => r.json.entityId));
    expect(holders.size).toBe(2); // ann holds the third
    expect((await check({ customerId: id, feature: "team_seats" })).json.used).toBe(3);
  });

  it("no seats without the entitlement; bad requests are problems", async () => {
    const id = await customerOn("no-seats");
    expect((await seat(id, "ann", "assign")).json).toMatchObject({ assigned: false, reason: "not_entitled" });
    expectProblem(await seat(id, "ann", "assign", "editor"), 400, "validation");
    expectProblem(await seat(id, "ann", "assign", "nope"), 404, "not-found");
    expectProblem(await seat("nobody-here", "ann", "assign"), 404, "not-found");
    expectProblem(await seat(id, "bad id!", "assign"), 400, "validation");
    expectProblem(await use({ customerId: id, feature: "exports", entityId: "" }), 400, "validation");
  });
});

describe("per-entity limits", () => {
  it("per-entity and pooled limits both hold under 200 concurrent consumes from 20 entities", async () => {
    // A pool of 1,000 a month, 60 per user a day; each of 20 users asks 10 x 7 = 70: both bounds bind.
    const id = await customerOn("big-team");
    const users = Array.from({ length: 20 }, (_, i) => `user${i}`);
    for (const u of users) expect((await seat(id, u, "assign")).json.assigned).toBe(true);
    const calls = Array.from({ length: 200 }, (_, i) => ({
      customerId: id,
      feature: "ai_tokens",
      amount: 7,
      entityId: users[i % 20],
    })).sort(() => Math.random() - 0.5);
    const results = await Promise.all(calls.map(use));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const byUser = new Map<string, number>();
    for (const r of results.filter((r) => r.json.allowed))
      byUser.set(r.json.entity.id, (byUser.get(r.json.entity.id) ?? 0) + 7);
    const total = [...byUser.values()].reduce((a, b) => a + b, 0);
    // Each user at most 8 x 7 = 56 (of 60); 20 x 56 = 1,120 could fit them all, so the pool binds at 142 x 7.
    expect(Math.max(...byUser.values())).toBeLessThanOrEqual(56);
    expect(total).toBe(994);
    const denied = results.filter((r) => !r.json.allowed);
    expect(denied).toHaveLength(58);
    expect(denied.every((r) => r.json.reason === "limit_reached")).toBe(true);
    expect(denied.every((r) => r.json.deniedBy === undefined || r.json.deniedBy === "entity_limit")).toBe(true);
    // The meter's own counters agree: the pooled one, and each entity's.
    for (const u of users.slice(0, 3)) {
      const read = await w.call("GET", `/v1/entities/${id}/${u}`, { key });
      expect(read.json.usage).toContainEqual(
        expect.objectContaining({ feature: "ai_tokens", used: byUser.get(u) ?? 0 }),
      );
    }
    const c = await check({ customerId: id, feature: "ai_tokens", entityId: "user3" });
    expect(c.json.entity).toMatchObject({ id: "user3", limit: 60, used: byUser.get("user3") ?? 0 });
    expect(c.json.used).toBe(994);
    expect(c.json.remaining).toBe(Math.min(6, 60 - (byUser.get("user3") ?? 0)));
  });

  it("an entity's own limit denies with deniedBy entity_limit while the pool has room, and resets with its period", async () => {
    const id = await customerOn("team");
    await seat(id, "ann", "assign");
    expect((await use({ customerId: id, feature: "ai_tokens", amount: 60, entityId: "ann" })).json).toMatchObject({
      allowed: true,
      used: 60,
      remaining: 0,
      entity: { id: "ann", limit: 60, used: 60, remaining: 0 },
    });
    const over = await use({ customerId: id, feature: "ai_tokens", amount: 1, entityId: "ann" });
    expect(over.json).toMatchObject({ allowed: false, reason: "limit_reached", deniedBy: "entity_limit", used: 60 });
    const checked = await check({ customerId: id, feature: "ai_tokens", entityId: "ann" });
    expect(checked.json).toMatchObject({ allowed: false, reason: "limit_reached", deniedBy: "entity_limit" });
    expect(checked.json.entity.resetsAt).toBe("2026-03-11T00:00:00.000Z");
    // The customer as a whole still has room; so does ann the next day.
    expect((await check({ customerId: id, feature: "ai_tokens" })).json).toMatchObject({
      allowed: true,
      remaining: 940,
    });
    const nextDay = await w.at(T0 + DAY_MS, () =>
      use({ customerId: id, feature: "ai_tokens", amount: 5, entityId: "ann" }),
    );
    expect(nextDay.json).toMatchObject({ allowed: true, used: 65, entity: { used: 5, remaining: 55 } });
    // The ledger names the entity of each consume.
    await meterOf(id, 0).flush();
    const lines = (await ledgerEvents(id)).filter((e) => e.feature === "ai_tokens" && e.kind === "consume");
    expect(lines.map((e) => [e.amount, e.entityId])).toEqual([
      [60, "ann"],
      [5, "ann"],
    ]);
  });

  it("a credit balance's per-entity limit holds for the features drawing from it", async () => {
    const id = await customerOn("team");
    // 20 credits per entity; chat costs 2: ten chats, then the entity's credits are spent.
    const first = await use({ customerId: id, feature: "chat", amount: 10, entityId: "ann" });
    expect(first.json).toMatchObject({ allowed: true, credits: { used: 20 } });
    const more = await use({ customerId: id, feature: "chat", amount: 1, entityId: "ann" });
    expect(more.json).toMatchObject({ allowed: false, reason: "limit_reached", deniedBy: "entity_limit" });
    expect((await check({ customerId: id, feature: "chat", entityId: "ann" })).json).toMatchObject({
      allowed: false,
      deniedBy: "entity_limit",
    });
    expect((await use({ customerId: id, feature: "chat", amount: 1, entityId: "bob" })).json.allowed).toBe(true);
    const read = await w.call("GET", `/v1/entities/${id}/ann`, { key });
    expect(read.json.usage).toContainEqual({
      feature: "ai_credits",
      used: 20,
      limit: 20,
      remaining: 0,
      resetsAt: expect.any(String),
    });
  });

  it("an idempotent retry for an entity is replayed, and the same key for another entity is a conflict", async () => {
    const id = await customerOn("team");
    const body = { customerId: id, feature: "exports", amount: 2, entityId: "ann", idempotencyKey: uid("k") };
    expect((await use(body)).json).toMatchObject({ allowed: true, used: 2 });
    expect((await use(body)).json).toMatchObject({ allowed: true, used: 2, replayed: true });
    expectProblem(await use({ ...body, entityId: "bob" }), 409, "conflict");
    // A feature with neither a seat nor a per-entity limit is the customer's; the answer still names the entity.
    expect((await check({ customerId: id, feature: "exports", entityId: "bob" })).json).toMatchObject({
      allowed: true,
      used: 2,
      entity: { id: "bob" },
    });
  });

  it("GET /v1/entitlements?entityId= evaluates every feature for the entity in one read", async () => {
    const id = await customerOn("team");
    await seat(id, "ann", "assign");
    await use({ customerId: id, feature: "ai_tokens", amount: 7, entityId: "ann" });
    const ann = await w.call("GET", `/v1/entitlements/${id}?entityId=ann`, { key });
    expect(ann.json.entityId).toBe("ann");
    expect(ann.json.features.editor).toMatchObject({ allowed: true, entity: { seat: { held: true } } });
    expect(ann.json.features.ai_tokens).toMatchObject({ allowed: true, used: 7, entity: { used: 7, remaining: 53 } });
    expect(ann.json.features.exports).toMatchObject({ allowed: true });
    const bob = await w.call("GET", `/v1/entitlements/${id}?entityId=bob`, { key });
    expect(bob.json.features.editor).toMatchObject({ allowed: false, reason: "not_entitled", deniedBy: "seat" });
    expect(bob.json.features.exports.allowed).toBe(true);
  });

  it("a sharded customer's entity calls go to shard 0, leased: both bounds hold", async () => {
    const id = await customerOn("team");
    const res = await w.call("PATCH", `/admin/v1/customers/${id}`, { key: BOOTSTRAP, body: { meterShards: 4 } });
    expect(res.status).toBe(200);
    await seat(id, "ann", "assign");
    const results = await Promise.all(
      Array.from({ length: 15 }, () => use({ customerId: id, feature: "ai_tokens", amount: 5, entityId: "ann" })),
    );
    expect(results.filter((r) => r.json.allowed)).toHaveLength(12);
    const counters = await meterOf(id, 0).counters(T0);
    expect(counters.find((c) => c.feature === "ai_tokens")?.used).toBe(60);
    expect((await check({ customerId: id, feature: "ai_tokens", entityId: "ann" })).json.entity.used).toBe(60);
  });
});

describe("reservations for an entity", () => {
  it("hold the entity's room until settled, charge its counter, and need its seat", async () => {
    const id = await customerOn("team");
    await seat(id, "ann", "assign");
    const reserve = (body: Record<string, unknown>) =>
      w.call("POST", "/v1/usage/reserve", { key, body: { customerId: id, feature: "ai_tokens", ...body } });
    const held = await reserve({ amount: 50, entityId: "ann" });
    expect(held.json).toMatchObject({ allowed: true, reserved: 50, entity: { id: "ann", used: 0, remaining: 10 } });
    // 50 held of ann's 60 today: 20 more do not fit her, whether consumed or reserved; the pool has room.
    expect((await use({ customerId: id, feature: "ai_tokens", amount: 20, entityId: "ann" })).json).toMatchObject({
      allowed: false,
      deniedBy: "entity_limit",
    });
    // A check counts what her reservations hold too.
    expect((await check({ customerId: id, feature: "ai_tokens", entityId: "ann", quantity: 20 })).json).toMatchObject({
      allowed: false,
      deniedBy: "entity_limit",
      entity: { used: 0, remaining: 10 },
    });
    expect((await check({ customerId: id, feature: "ai_tokens", entityId: "ann", quantity: 10 })).json.allowed).toBe(
      true,
    );
    expect((await reserve({ amount: 20, entityId: "ann" })).json).toMatchObject({
      allowed: false,
      reason: "limit_reached",
      deniedBy: "entity_limit",
    });
    const settled = await w.call("POST", "/v1/usage/settle", {
      key,
      body: { customerId: id, reservationId: held.json.reservationId, amount: 30 },
    });
    expect(settled.json).toMatchObject({ used: 30, reserved: 0, entity: { id: "ann", used: 30, remaining: 30 } });
    expect((await use({ customerId: id, feature: "ai_tokens", amount: 20, entityId: "ann" })).json).toMatchObject({
      allowed: true,
      used: 50,
      entity: { used: 50, remaining: 10 },
    });
    expect((await reserve({ amount: 1, entityId: "bob" })).json).toMatchObject({
      allowed: false,
      reason: "not_entitled",
      deniedBy: "seat",
    });
    await meterOf(id, 0).flush();
    const lines = (await ledgerEvents(id)).filter((e) => e.feature === "ai_tokens");
    expect(lines.map((e) => [e.kind, e.amount, e.entityId])).toEqual([
      ["settle", 30, "ann"],
      ["consume", 20, "ann"],
    ]);
  });
});

describe("per-entity and pooled bounds, as a model", () => {
  it("every consume is admitted exactly when both the entity's and the pool's room take it (fast-check)", async () => {
    // Pool 100 a month, 60 a day per entity (tight-team): 4 entities could use 240, so both bounds bind.
    const step = fc.record({ entity: fc.integer({ min: 0, max: 3 }), amount: fc.integer({ min: 1, max: 40 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
        const id = await customerOn("tight-team");
        for (let e = 0; e < 4; e++) await seat(id, `e${e}`, "assign");
        const own = [0, 0, 0, 0];
        let pool = 0;
        for (const s of steps) {
          const r = await use({ customerId: id, feature: "ai_tokens", amount: s.amount, entityId: `e${s.entity}` });
          const fitsPool = pool + s.amount <= 100;
          const fitsOwn = (own[s.entity] ?? 0) + s.amount <= 60;
          expect(r.json.allowed).toBe(fitsPool && fitsOwn);
          if (!r.json.allowed) expect(r.json.deniedBy).toBe(fitsPool ? "entity_limit" : undefined);
          if (r.json.allowed) {
            pool += s.amount;
            own[s.entity] = (own[s.entity] ?? 0) + s.amount;
          }
          expect([r.json.used, r.json.entity.used]).toEqual([pool, own[s.entity]]);
        }
      }),
      { numRuns: 15 },
    );
  });
});

describe("entities elsewhere: OFREP, tokens, RPC", () => {
  it("OFREP's targetingKey customer/entity evaluates for the entity", async () => {
    const id = await customerOn("team");
    await seat(id, "ann", "assign");
    const flag = (targetingKey: string) =>
      w.call("POST", "/ofrep/v1/evaluate/flags/editor", { key, body: { context: { targetingKey } } });
    expect((await flag(`${id}/ann`)).json).toMatchObject({ value: true, variant: "ok", metadata: { entityId: "ann" } });
    expect((await flag(`${id}/bob`)).json).toMatchObject({
      value: false,
      variant: "not_entitled",
      metadata: { deniedBy: "seat", entityId: "bob" },
    });
    expect((await flag(id)).json).toMatchObject({ value: true, variant: "ok" });
    const bad = await flag(`${id}/bad id`);
    expect(bad.status).toBe(400);
    expect(bad.json.errorCode).toBe("INVALID_CONTEXT");
  });

  it("a token minted for an entity turns off what needs a seat it does not hold", async () => {
    const id = await customerOn("team");
    await seat(id, "ann", "assign");
    const signer = await createKey(w, ["sign"]);
    const claims = async (entityId: string) => {
      const r = await w.call("POST", "/v1/tokens", { key: signer, body: { customerId: id, entityId } });
      expect(r.status).toBe(200);
      return JSON.parse(atob(String(r.json.token).split(".")[1]?.replace(/-/g, "+").replace(/_/g, "/") ?? ""));
    };
    const ann = await claims("ann");
    expect(ann.context).toEqual({ entityId: "ann" });
    expect(ann.entitlements.editor).toMatchObject({ enabled: true });
    expect(ann.entitlements.ai_tokens).toMatchObject({ enabled: true, perEntity: { limit: 60, reset: "day" } });
    const bob = await claims("bob");
    expect(bob.entitlements.editor).toMatchObject({ enabled: false, reason: "not_entitled" });
    expect(bob.entitlements.exports.enabled).toBe(true);
  });

  it("TollgateRpc assigns and releases seats and consumes for an entity, as the HTTP API does", async () => {
    const id = await customerOn("team");
    const rpc = async (method: string, input: unknown) => {
      const res = await env.RPC_CALLER.fetch("https://caller.test/", {
        method: "POST",
        body: JSON.stringify({ binding: "TOLLGATE", method, input }),
      });
      return (await res.json()) as { ok: boolean; value?: any; problem?: any };
    };
    expect((await rpc("assignSeat", { customerId: id, entityId: "ann", feature: "team_seats" })).value).toMatchObject({
      assigned: true,
      used: 1,
    });
    const used = await rpc("consume", { customerId: id, feature: "ai_tokens", amount: 5, entityId: "ann" });
    expect(used.value).toMatchObject({ allowed: true, entity: { id: "ann", used: 5 } });
    expect((await rpc("entity", { customerId: id, entityId: "ann" })).value.seats).toHaveLength(1);
    expect((await rpc("releaseSeat", { customerId: id, entityId: "ann", feature: "team_seats" })).value).toMatchObject({
      assigned: false,
      used: 0,
    });
    const all = await rpc("entitlements", { customerId: id, entityId: "ann" });
    expect(all.value.features.editor).toMatchObject({ allowed: false, deniedBy: "seat" });
    expect((await rpc("assignSeat", { customerId: id, entityId: "ann", feature: "nope" })).problem.status).toBe(404);
  });
});

describe("10,000 entities in one customer", () => {
  it("seats and per-entity counters live in the meter; the snapshot and the check stay the same size", async () => {
    const id = await customerOn("big-team");
    const part = async () => (await env.SNAPSHOTS.get(`part:${id}`))?.length ?? 0;
    await check({ customerId: id, feature: "ai_tokens" }); // the part is published
    const before = await part();
    expect(before).toBeGreaterThan(0);
    // Seed 10,000 users straight into the meter's tables (as 10,000 assigns and consumes would leave them).
    const dayStart = Date.parse("2026-03-10T00:00:00.000Z");
    await runInDurableObject(meterOf(id, 0), (_m: unknown, state: DurableObjectState) => {
      const sql = state.storage.sql;
      for (let i = 0; i < 10_000; i++) {
        sql.exec("INSERT INTO seats (feature, entity_id, assigned_at) VALUES ('team_seats', ?, ?)", `u${i}`, T0);
        sql.exec(
          "INSERT INTO entity_counters (feature, entity_id, period_start, period_end, used) VALUES ('ai_tokens', ?, ?, ?, ?)",
          `u${i}`,
          dayStart,
          dayStart + DAY_MS,
          i % 61,
        );
      }
    });
    // 10,000 seats held, 20 granted: the next user gets none until one is released.
    expect((await seat(id, "newcomer", "assign")).json).toMatchObject({ assigned: false, reason: "limit_reached" });
    expect((await check({ customerId: id, feature: "team_seats" })).json).toMatchObject({ used: 10_000, limit: 20 });
    // u9998 used 9998 % 61 = 55 of its 60 today: 5 more fit, 6 do not.
    const ask = (quantity: number) => check({ customerId: id, feature: "ai_tokens", entityId: "u9998", quantity });
    expect((await ask(5)).json).toMatchObject({ allowed: true, entity: { used: 55, limit: 60, remaining: 5 } });
    expect((await ask(6)).json).toMatchObject({ allowed: false, deniedBy: "entity_limit" });
    expect((await use({ customerId: id, feature: "ai_tokens", amount: 3, entityId: "u100" })).json).toMatchObject({
      allowed: true,
      entity: { used: (100 % 61) + 3 },
    });
    expect(await part()).toBe(before);
  });
});

describe("the typed client", () => {
  it("assigns and releases seats, checks and consumes for an entity, and never serves an entity's check from cache", async () => {
    const id = await customerOn("team");
    let calls = 0;
    const client = new TollgateClient({
      baseUrl: "https://tollgate.test",
      apiKey: key,
      fetch: async (input, init) => {
        calls++;
        const ctx = createExecutionContext();
        const res = await w.worker.fetch(new Request(input, init), env, ctx);
        await waitOnExecutionContext(ctx);
        return res;
      },
    });
    expect(await client.assignSeat(id, "ann", "team_seats")).toMatchObject({ assigned: true, used: 1, limit: 3 });
    expect(await client.check({ customerId: id, feature: "editor", entityId: "ann" })).toMatchObject({ allowed: true });
    const consumed = await client.consume({ customerId: id, feature: "ai_tokens", amount: 4, entityId: "ann" });
    expect(consumed.entity).toMatchObject({ id: "ann", used: 4, limit: 60 });
    expect((await client.entity(id, "ann")).seats.map((s) => s.feature)).toEqual(["team_seats"]);
    expect(await client.releaseSeat(id, "ann", "team_seats")).toMatchObject({ assigned: false, used: 0 });
    const before = calls;
    expect(await client.check({ customerId: id, feature: "editor", entityId: "ann" })).toMatchObject({
      allowed: false,
      deniedBy: "seat",
    });
    expect(calls).toBe(before + 1);
    const all = await client.entitlements(id, { entityId: "ann" });
    expect(all.entityId).toBe("ann");
    expect(all.features.editor).toMatchObject({ allowed: false, deniedBy: "seat" });
  });
});
