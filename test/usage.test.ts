import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { configOf } from "../src/config";
import type { CustomerMeter } from "../src/meter/customer-meter";
import { meterLocation } from "../src/meter/locate";
import { ledgerPrefix } from "../src/store/ledger-objects";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { failingR2, lossyR2 } from "./helpers/faults";
import { ledgerSum, periodTotals } from "./helpers/ledger";
import { DAY_MS, iso, MINUTE_MS, T0 } from "./helpers/time";
import { testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

const use = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  w.call("POST", "/v1/usage", { key, body, headers });
/** A direct D1 change (no admin write) bumps the customer's revision itself, as every write does. */
const bumpRev = (id: string) => env.DB.prepare("UPDATE customers SET rev = rev + 1 WHERE id = ?1").bind(id).run();
const meter = (customerId: string) => env.METER.get(env.METER.idFromName(customerId));
const lab = async (extra: Record<string, unknown> = {}) =>
  (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }], ...extra })).id;

describe("consume", () => {
  it("counts, answers the contract's fields, and checks then report used and remaining", async () => {
    const id = await lab();
    const first = await use({ customerId: id, feature: "api_calls", amount: 5 });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      allowed: true,
      reason: "ok",
      used: 5,
      limit: 50,
      remaining: 45,
      overage: 0,
      resetsAt: "2026-03-11T00:00:00.000Z",
    });
    const check = await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "api_calls" } });
    expect(check.json).toMatchObject({ allowed: true, used: 5, remaining: 45, limit: 50 });
    const tooMany = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: id, feature: "api_calls", quantity: 46 },
    });
    expect(tooMany.json).toMatchObject({ allowed: false, reason: "limit_reached", used: 5, remaining: 45 });
    const all = await w.call("GET", `/v1/entitlements/${id}`, { key });
    expect(all.json.features.api_calls).toMatchObject({ used: 5, remaining: 45 });
  });

  it("exactness: 200 concurrent consumes against a limit of 50 admit exactly 50", async () => {
    const id = await lab();
    const results = await Promise.all(Array.from({ length: 200 }, () => use({ customerId: id, feature: "api_calls" })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.json.allowed).length).toBe(50);
    expect(results.filter((r) => !r.json.allowed).every((r) => r.json.reason === "limit_reached")).toBe(true);
    const counters = await meter(id).counters(T0);
    expect(counters.find((c) => c.feature === "api_calls")?.used).toBe(50);
    await meter(id).flush();
    expect(await ledgerSum(id, "api_calls")).toBe(50);
  });

  it("a consume that does not fit records nothing", async () => {
    const id = await lab();
    await use({ customerId: id, feature: "api_calls", amount: 48 });
    const denied = await use({ customerId: id, feature: "api_calls", amount: 3 });
    expect(denied.json).toMatchObject({ allowed: false, reason: "limit_reached", used: 48, remaining: 2 });
    expect((await use({ customerId: id, feature: "api_calls", amount: 2 })).json).toMatchObject({
      allowed: true,
      used: 50,
      remaining: 0,
    });
  });

  it("not entitled: a denial with the reason, nothing counted", async () => {
    // A trial that ran out just now (created the day before: a trial already over cannot be created).
    const id = (
      await w.at(T0 - DAY_MS, () =>
        createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(T0 - 1) }] }),
      )
    ).id;
    const res = await use({ customerId: id, feature: "api_calls" });
    expect(res.json).toMatchObject({ allowed: false, reason: "trial_expired", used: 0 });
  });
});

describe("overage and gauges", () => {
  it("soft limit with a cap: allowed beyond the limit up to the cap, reported as overage", async () => {
    const id = await lab();
    expect((await use({ customerId: id, feature: "storage_gb", amount: 12.5 })).json).toMatchObject({
      allowed: true,
      used: 12.5,
      limit: 10,
      remaining: 0,
      overage: 2.5,
    });
    expect((await use({ customerId: id, feature: "storage_gb", amount: 2.5 })).json).toMatchObject({
      allowed: true,
      used: 15,
      overage: 5,
    });
    expect((await use({ customerId: id, feature: "storage_gb", amount: 0.5 })).json).toMatchObject({
      allowed: false,
      reason: "limit_reached",
      used: 15,
    });
  });

  it("record: always recorded, and the answer says the customer is over the limit", async () => {
    const id = await lab();
    await use({ customerId: id, feature: "api_calls", amount: 50 });
    const rec = await use({ customerId: id, feature: "api_calls", amount: 7, mode: "record" });
    expect(rec.json).toMatchObject({ allowed: false, reason: "limit_reached", used: 57, overage: 7, remaining: 0 });
    await meter(id).flush();
    expect(await ledgerSum(id, "api_calls")).toBe(57);
  });

  it("gauges take negative amounts and never go below zero, and the ledger holds what was applied", async () => {
    const id = await lab();
    expect((await use({ customerId: id, feature: "seats", amount: 3 })).json).toMatchObject({
      allowed: true,
      used: 3,
      remaining: 0,
      resetsAt: null,
    });
    expect((await use({ customerId: id, feature: "seats" })).json).toMatchObject({
      allowed: false,
      reason: "limit_reached",
    });
    expect((await use({ customerId: id, feature: "seats", amount: -1 })).json).toMatchObject({
      allowed: true,
      used: 2,
    });
    expect((await use({ customerId: id, feature: "seats", amount: -5 })).json).toMatchObject({
      allowed: true,
      used: 0,
    });
    await meter(id).flush();
    expect(await ledgerSum(id, "seats")).toBe(0); // +3 -1 -2: exactly what was applied
  });

  it("a feature that is not a gauge refuses a negative amount (400 naming json.amount)", async () => {
    const id = await lab();
    const neg = await use({ customerId: id, feature: "api_calls", amount: -1 });
    expect(neg.status).toBe(400);
    expect(neg.json.errors[0].path).toBe("json.amount");
  });
});

describe("idempotency", () => {
  it("the same key retried, concurrently too, is counted once and returns the first answer", async () => {
    const id = await lab();
    const body = { customerId: id, feature: "api_calls", amount: 2, idempotencyKey: "job-42" };
    const answers = await Promise.all(Array.from({ length: 20 }, () => use(body)));
    expect(new Set(answers.map((a) => a.json.used))).toEqual(new Set([2]));
    expect(answers.filter((a) => !a.json.replayed).length).toBe(1);
    const later = await use(body);
    expect(later.json).toMatchObject({ used: 2, replayed: true });
    expect((await meter(id).counters(T0)).find((c) => c.feature === "api_calls")?.used).toBe(2);
  });

  it("accepts the Idempotency-Key header, and a key reused with another body is a 409", async () => {
    const id = await lab();
    await use({ customerId: id, feature: "api_calls", amount: 1 }, { "Idempotency-Key": "hdr-1" });
    const again = await use({ customerId: id, feature: "api_calls", amount: 1 }, { "Idempotency-Key": "hdr-1" });
    expect(again.json).toMatchObject({ used: 1, replayed: true });
    const conflict = await use({ customerId: id, feature: "api_calls", amount: 3 }, { "Idempotency-Key": "hdr-1" });
    expect(conflict.status).toBe(409);
    expect(conflict.headers.get("content-type")).toBe("application/problem+json");
    expect((await meter(id).counters(T0))[0]?.used).toBe(1);
  });

  it("keys are remembered for at least 24 hours", async () => {
    const clock = w.clock;
    const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    await use({ customerId: id, feature: "seats", amount: 1, idempotencyKey: "long-lived" });
    clock.advance(DAY_MS + MINUTE_MS);
    await runDurableObjectAlarm(meter(id));
    expect(
      (await use({ customerId: id, feature: "seats", amount: 1, idempotencyKey: "long-lived" })).json,
    ).toMatchObject({ used: 1, replayed: true });
    clock.set(T0);
  });
});

describe("bad input: a clear problem, and no counter changes", () => {
  it.each([
    ["amount 0", { amount: 0 }, 400],
    ["a fraction of a whole unit", { amount: 1.5 }, 400],
    ["NaN as a string", { amount: "NaN" }, 400],
    ["beyond 2^53", { amount: 2 ** 53 + 2 }, 400],
    ["an unknown feature", { feature: "warp_drive" }, 404],
    ["a non-metered feature", { feature: "max_file_size_mb" }, 400],
    ["an unknown mode", { mode: "borrow" }, 400],
    ["a timestamp on consume", { timestamp: iso(T0) }, 400],
  ])("%s", async (_name, patch, status) => {
    const id = await lab();
    const res = await use({ customerId: id, feature: "api_calls", ...patch });
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.json.detail).toBeTruthy();
    expect(await meter(id).counters(T0)).toEqual([]);
  });

  it("a missing customer is a 404", async () => {
    const res = await use({ customerId: uid("ghost"), feature: "api_calls" });
    expect(res.status).toBe(404);
    expect(res.json.type).toBe("urn:tollgate:problem:not-found");
  });

  it("malformed JSON is a 400, not a 500", async () => {
    const res = await w.call("POST", "/v1/usage", {
      key,
      raw: "{not json",
      headers: { "Content-Type": "application/json" },
    });
    expect(res.status).toBe(400);
    expect(res.json.type).toBe("urn:tollgate:problem:malformed-json");
  });
});

describe("ledger: at least once, applied idempotently, nothing lost", () => {
  it("a failed flush is retried with backoff; after recovery the ledger equals the counters", async () => {
    const id = await lab();
    const stub = meter(id);
    await runInDurableObject(stub, (m: CustomerMeter) => {
      m.ledgerBucket = failingR2();
    });
    for (let i = 0; i < 5; i++) await use({ customerId: id, feature: "api_calls", amount: 2 });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.pending()).toBe(5);
    expect(await ledgerSum(id, "api_calls")).toBe(0);
    const retryAt = await runInDurableObject(stub, (_m, state) => state.storage.getAlarm());
    expect(retryAt).not.toBeNull();
    await runInDurableObject(stub, (m: CustomerMeter) => {
      m.ledgerBucket = env.LEDGER;
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.pending()).toBe(0);
    expect(await ledgerSum(id, "api_calls")).toBe(10);
    expect(await periodTotals(id, true)).toMatchObject([{ feature: "api_calls", total: 10, final: 0 }]);
  });

  it("a flush whose acknowledgement is lost rewrites the same object: counted once", async () => {
    const id = await lab();
    const stub = meter(id);
    // R2 stores the object, then the answer is lost: the meter must send the same batch again.
    await runInDurableObject(stub, (m: CustomerMeter) => {
      m.ledgerBucket = lossyR2();
    });
    for (let i = 0; i < 3; i++) await use({ customerId: id, feature: "api_calls", amount: 3 });
    await runDurableObjectAlarm(stub);
    expect(await stub.pending()).toBe(3);
    await use({ customerId: id, feature: "api_calls", amount: 1 }); // queued after the batch was sealed
    await runInDurableObject(stub, (m: CustomerMeter) => {
      m.ledgerBucket = env.LEDGER;
    });
    await runDurableObjectAlarm(stub);
    expect(await stub.pending()).toBe(0);
    expect(await ledgerSum(id, "api_calls")).toBe(10);
    const keys = (await env.LEDGER.list({ prefix: ledgerPrefix(id) })).objects.map((o) => o.key.split("/").at(-1));
    expect(keys).toEqual(["000000000001-000000000003.ndjson", "000000000004-000000000004.ndjson"]);
  });
});

describe("periods", () => {
  it("a counter rolls over lazily at its first touch after the boundary; the closed total goes to the ledger", async () => {
    const clock = w.clock;
    const id = await lab();
    await use({ customerId: id, feature: "api_calls", amount: 50 });
    clock.set(Date.parse("2026-03-11T00:00:00.000Z"));
    expect((await use({ customerId: id, feature: "api_calls", amount: 1 })).json).toMatchObject({
      allowed: true,
      used: 1,
      resetsAt: "2026-03-12T00:00:00.000Z",
    });
    await meter(id).flush();
    const closed = await env.DB.prepare(
      "SELECT period_start, total FROM usage_periods WHERE customer_id = ?1 AND feature_key = 'api_calls' AND final = 1",
    )
      .bind(id)
      .all();
    expect(closed.results).toEqual([{ period_start: Date.parse("2026-03-10T00:00:00.000Z"), total: 50 }]);
    const usage = await w.call("GET", `/v1/usage/${id}?feature=api_calls`, { key });
    expect(usage.json.features[0]).toMatchObject({
      feature: "api_calls",
      used: 1,
      limit: 50,
      past: [{ periodStart: "2026-03-10T00:00:00.000Z", total: 50 }],
    });
    clock.set(T0);
  });

  it("a billing anchor on the 31st resets on Feb 28 in 2027 (and Feb 29 in 2028)", async () => {
    const clock = w.clock;
    for (const [year, feb] of [
      [2027, "2027-02-28"],
      [2028, "2028-02-29"],
    ] as const) {
      clock.set(Date.parse(`${year}-01-31T09:00:00.000Z`));
      const id = (
        await createCustomer(w, {
          id: uid(),
          subscriptions: [{ planId: "meter-billing", billingAnchor: `${year - 1}-12-31T09:00:00.000Z` }],
        })
      ).id;
      expect((await use({ customerId: id, feature: "api_calls", amount: 20 })).json).toMatchObject({
        used: 20,
        resetsAt: `${feb}T09:00:00.000Z`,
      });
      clock.set(Date.parse(`${feb}T08:59:59.999Z`));
      expect((await use({ customerId: id, feature: "api_calls" })).json.reason).toBe("limit_reached");
      clock.set(Date.parse(`${feb}T09:00:00.000Z`));
      expect((await use({ customerId: id, feature: "api_calls" })).json).toMatchObject({
        allowed: true,
        used: 1,
        resetsAt: `${year}-03-31T09:00:00.000Z`,
      });
    }
    clock.set(T0);
  });

  it("a plan change on the boundary: the new plan's limit and period apply from that instant", async () => {
    const clock = w.clock;
    const id = await lab();
    const boundary = Date.parse("2026-03-11T00:00:00.000Z");
    await use({ customerId: id, feature: "api_calls", amount: 50 });
    await env.DB.prepare(
      "UPDATE subscriptions SET scheduled_plan_id = 'pro', scheduled_change_at = ?1 WHERE customer_id = ?2",
    )
      .bind(boundary, id)
      .run();
    await bumpRev(id);
    await w.services().snapshots.compile(env, id, T0);
    clock.set(boundary - 1);
    expect((await use({ customerId: id, feature: "api_calls" })).json).toMatchObject({ allowed: false, limit: 50 });
    clock.set(boundary);
    // pro: 1000 a month, anchored to billing (the subscription started at T0 = Mar 10 12:00)
    expect((await use({ customerId: id, feature: "api_calls" })).json).toMatchObject({
      allowed: true,
      used: 1,
      limit: 1000,
      resetsAt: "2026-04-10T12:00:00.000Z",
    });
    clock.set(T0);
  });
});

describe("limit changes apply to the next call", () => {
  it("an add-on bought mid-period raises the limit at once", async () => {
    const id = await lab();
    await use({ customerId: id, feature: "api_calls", amount: 50 });
    expect((await use({ customerId: id, feature: "api_calls" })).json.allowed).toBe(false);
    await env.DB.prepare(
      "INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at) VALUES (?1, ?2, 'extra-calls', 'active', ?3, ?3, ?3)",
    )
      .bind(uid("sub"), id, T0)
      .run();
    await bumpRev(id);
    await w.services().snapshots.compile(env, id, T0);
    expect((await use({ customerId: id, feature: "api_calls" })).json).toMatchObject({
      allowed: true,
      used: 51,
      limit: 550,
    });
  });
});

describe("reservations", () => {
  const reserve = (body: Record<string, unknown>) => w.call("POST", "/v1/usage/reserve", { key, body });
  const settle = (body: Record<string, unknown>) => w.call("POST", "/v1/usage/settle", { key, body });

  it("hold units, settle the actual amount, free the rest; settling twice is idempotent", async () => {
    const id = await lab();
    const r = await reserve({ customerId: id, feature: "api_calls", amount: 30, ttlSeconds: 60 });
    expect(r.json).toMatchObject({ allowed: true, used: 0, reserved: 30, remaining: 20, expiresAt: iso(T0 + 60_000) });
    expect((await use({ customerId: id, feature: "api_calls", amount: 21 })).json.reason).toBe("limit_reached");
    const s = await settle({ customerId: id, reservationId: r.json.reservationId, amount: 12 });
    expect(s.json).toMatchObject({
      allowed: true,
      feature: "api_calls",
      used: 12,
      reserved: 0,
      remaining: 38,
      settled: 12,
    });
    const again = await settle({ customerId: id, reservationId: r.json.reservationId, amount: 12 });
    expect(again.json).toMatchObject({ used: 12, replayed: true });
    expect((await meter(id).counters(T0))[0]?.used).toBe(12);
    const over = await reserve({ customerId: id, feature: "api_calls", amount: 5 });
    expect((await settle({ customerId: id, reservationId: over.json.reservationId, amount: 6 })).status).toBe(400);
  });

  it("release frees everything the reservation held", async () => {
    const id = await lab();
    const r = await reserve({ customerId: id, feature: "api_calls", amount: 50 });
    expect((await reserve({ customerId: id, feature: "api_calls", amount: 1 })).json.reason).toBe("limit_reached");
    const rel = await w.call("POST", "/v1/usage/release", {
      key,
      body: { customerId: id, reservationId: r.json.reservationId },
    });
    expect(rel.json).toMatchObject({ used: 0, reserved: 0, remaining: 50, settled: 0 });
  });

  it("releasing an unknown reservation is a 404", async () => {
    const id = await lab();
    expect(
      (await w.call("POST", "/v1/usage/release", { key, body: { customerId: id, reservationId: "res_nope" } })).status,
    ).toBe(404);
  });

  it("a reservation not settled in time is released by the alarm", async () => {
    const id = await lab();
    const r = await reserve({ customerId: id, feature: "api_calls", amount: 40, ttlSeconds: 30 });
    w.clock.advance(31_000);
    await meter(id).peek(id, [], w.clock.now()); // the meter learns the time (a check does this)
    expect(await runDurableObjectAlarm(meter(id))).toBe(true);
    const state = await runInDurableObject(
      meter(id),
      (_m, s) => s.storage.sql.exec("SELECT state FROM reservations").one().state,
    );
    expect(state).toBe("expired");
    expect((await settle({ customerId: id, reservationId: r.json.reservationId, amount: 1 })).status).toBe(409);
    expect((await use({ customerId: id, feature: "api_calls", amount: 50 })).json.allowed).toBe(true);
    w.clock.set(T0);
  });

  it("a period that rolls over while a reservation is open: the hold carries over, the charge lands in the new period", async () => {
    const id = await lab();
    w.clock.set(Date.parse("2026-03-10T23:59:00.000Z"));
    const r = await reserve({ customerId: id, feature: "api_calls", amount: 10, ttlSeconds: 600 });
    await use({ customerId: id, feature: "api_calls", amount: 40 });
    w.clock.set(Date.parse("2026-03-11T00:01:00.000Z"));
    // New period: used resets, the open hold still counts.
    expect((await use({ customerId: id, feature: "api_calls", amount: 41 })).json).toMatchObject({
      allowed: false,
      used: 0,
      reserved: 10,
    });
    const s = await settle({ customerId: id, reservationId: r.json.reservationId, amount: 4 });
    expect(s.json).toMatchObject({ used: 4, reserved: 0, resetsAt: "2026-03-12T00:00:00.000Z" });
    await meter(id).flush();
    const closed = await env.DB.prepare("SELECT total FROM usage_periods WHERE customer_id = ?1 AND final = 1")
      .bind(id)
      .first<{ total: number }>();
    expect(closed?.total).toBe(40);
    w.clock.set(T0);
  });
});

describe("data residency", () => {
  it("routes a resident customer to its jurisdiction only where jurisdictions are switched on", () => {
    const vars = (DO_JURISDICTIONS?: string) => configOf({ ...env, DO_JURISDICTIONS } as Cloudflare.Env);
    expect(meterLocation(vars("on"), "acme", "eu")).toEqual({ name: "acme", jurisdiction: "eu" });
    expect(meterLocation(vars("on"), "gov", "fedramp")).toEqual({
      name: "gov",
      jurisdiction: "fedramp",
    });
    expect(meterLocation(vars("on"), "acme", null)).toEqual({ name: "acme", jurisdiction: null });
    expect(meterLocation(vars("off"), "acme", "eu")).toEqual({ name: "acme", jurisdiction: null });
    expect(meterLocation(vars(undefined), "acme", "eu").jurisdiction).toBeNull();
  });

  it("a resident customer is metered locally (local workerd has no jurisdictions)", async () => {
    const id = await lab({ residency: "eu" });
    expect((await use({ customerId: id, feature: "api_calls" })).json).toMatchObject({ allowed: true, used: 1 });
  });
});
