// Metered checks without a meter round trip (domain/usage-summary.ts, check-path.ts): usage that cannot
// change the answer is never read, a fresh summary far from the limit answers with its age, and near the
// limit, for a large quantity, past the bound or in a new period the meter is always asked.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock";
import {
  admissionBound,
  answersFromSummary,
  NEAR_LIMIT_FRACTION,
  observe,
  type UsageObservation,
} from "../src/domain/usage-summary";
import { createCustomer, createKey, createPlan, loadTestCatalog } from "./helpers/admin";
import { observedMeterEnv } from "./helpers/counting";
import { DAY_MS, T0 } from "./helpers/time";
import { testWorker, uid } from "./helpers/worker";

const admin = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(admin);
  await createPlan(admin, "summary-unlimited", { api_calls: { limit: null, reset: "month" } });
  key = await createKey(admin, ["check", "usage"]);
});

/** A worker of its own (its own isolate caches and summary), its meter calls observed, on its own clock. */
async function isolate(planId: string) {
  const customerId = (await createCustomer(admin, { id: uid(), subscriptions: [{ planId }] })).id;
  const seen = observedMeterEnv();
  const clock = new ManualClock(T0);
  const w = testWorker({ env: seen.env, clock });
  const check = async (feature: string, body: Record<string, unknown> = {}) => {
    const res = await w.call("POST", "/v1/check", { key, body: { customerId, feature, ...body } });
    expect(res.status).toBe(200);
    return res.json;
  };
  const consume = async (amount: number) => {
    const res = await w.call("POST", "/v1/usage", { key, body: { customerId, feature: "api_calls", amount } });
    expect(res.status).toBe(200);
    return res.json;
  };
  const peeks = () => seen.calls.filter((c) => c.method === "peek").length;
  return { customerId, clock, check, consume, peeks, seen };
}

describe("usage that cannot change the answer", () => {
  it("an unlimited feature never asks the meter; maxUsageAgeMs: 0 asks for the exact usage", async () => {
    const s = await isolate("summary-unlimited");
    for (let i = 0; i < 3; i++)
      expect(await s.check("api_calls", { quantity: 1_000_000 })).toMatchObject({ allowed: true });
    expect(s.peeks()).toBe(0);
    expect((await s.check("api_calls")).used).toBeUndefined();
    expect(await s.check("api_calls", { maxUsageAgeMs: 0 })).toMatchObject({ allowed: true, used: 0, usageAgeMs: 0 });
    expect(s.peeks()).toBe(1);
    // What was learnt is shown with its age while it is fresh, still without asking.
    s.clock.advance(1_200);
    expect(await s.check("api_calls")).toMatchObject({ used: 0, usageAgeMs: 1_200 });
    expect(s.peeks()).toBe(1);
  });

  it("a soft limit without a cap (storage_gb on pro) never asks the meter", async () => {
    const s = await isolate("pro");
    expect(await s.check("storage_gb", { quantity: 500 })).toMatchObject({ allowed: true, limit: 50 });
    expect(s.peeks()).toBe(0);
  });
});

describe("a summary far from the limit", () => {
  it("answers within maxUsageAgeMs with its age, and asks again after it", async () => {
    const s = await isolate("pro"); // api_calls: 1,000 a month
    expect(await s.check("api_calls")).toMatchObject({ allowed: true, used: 0, usageAgeMs: 0 });
    s.clock.advance(2_000);
    expect(await s.check("api_calls")).toMatchObject({ allowed: true, used: 0, remaining: 1000, usageAgeMs: 2_000 });
    expect(s.peeks()).toBe(1);
    expect(await s.check("api_calls", { maxUsageAgeMs: 1_000 })).toMatchObject({ usageAgeMs: 0 }); // asked: older than this check accepts
    s.clock.advance(5_001);
    expect(await s.check("api_calls")).toMatchObject({ usageAgeMs: 0 }); // older than USAGE_SUMMARY_MAX_AGE_MS
    expect(s.peeks()).toBe(3);
  });

  it("one meter read teaches it the customer's other metered features", async () => {
    const s = await isolate("pro"); // api_calls 1,000 a month, seats 10
    await s.check("api_calls");
    s.clock.advance(50);
    expect(await s.check("seats")).toMatchObject({ allowed: true, used: 0, limit: 10, usageAgeMs: 50 });
    expect(s.peeks()).toBe(1);
    const read = s.seen.calls[0]!.result as { usage: Record<string, unknown> };
    expect(Object.keys(read.usage).sort()).toEqual(["api_calls", "seats", "storage_gb"]);
  });

  it("past half its bound it is refreshed in the background: steady traffic never waits for the meter", async () => {
    const s = await isolate("pro");
    await s.check("api_calls");
    s.clock.advance(3_000); // more than half of 5 s
    expect(await s.check("api_calls")).toMatchObject({ allowed: true, usageAgeMs: 3_000 });
    expect(s.peeks()).toBe(2); // the refresh, after the answer (waitUntil)
    s.clock.advance(10);
    expect(await s.check("api_calls")).toMatchObject({ usageAgeMs: 10 });
    expect(s.peeks()).toBe(2);
  });

  it("learns from consumes' answers: the next check needs no meter read", async () => {
    const s = await isolate("pro");
    expect(await s.consume(10)).toMatchObject({ used: 10 });
    s.clock.advance(100);
    expect(await s.check("api_calls")).toMatchObject({ allowed: true, used: 10, remaining: 990, usageAgeMs: 100 });
    expect(s.peeks()).toBe(0);
  });

  it("asks the meter near the limit and for a large quantity, whatever the summary's age", async () => {
    const s = await isolate("meter-lab"); // api_calls: 50 a day
    await s.consume(46); // 4 left: less than the margin (10% of 50)
    expect(await s.check("api_calls")).toMatchObject({ allowed: true, used: 46, usageAgeMs: 0 });
    expect(await s.check("api_calls", { quantity: 5 })).toMatchObject({ allowed: false, reason: "limit_reached" });
    expect(s.peeks()).toBe(2);
    const far = await isolate("pro"); // 1,000 a month, margin 100
    await far.check("api_calls");
    far.clock.advance(10);
    expect(await far.check("api_calls", { quantity: 950 })).toMatchObject({ allowed: true, usageAgeMs: 0 });
    far.clock.advance(10);
    expect(await far.check("api_calls", { quantity: 901 })).toMatchObject({ allowed: true, usageAgeMs: 0 });
    far.clock.advance(10);
    expect(await far.check("api_calls", { quantity: 850 })).toMatchObject({ allowed: true, usageAgeMs: 10 });
    expect(far.peeks()).toBe(3); // the first, 950 and 901 (less than the margin left); 850 leaves 150
  });

  it("asks sooner when usage grows fast: the observed rate widens the margin", async () => {
    const s = await isolate("pro"); // 1,000 a month
    await s.consume(100);
    s.clock.advance(100);
    await s.consume(300); // 300 units in 100 ms: 3 units/ms
    s.clock.advance(200); // 3/ms x 200 ms = 600 might have been used since: 400 + 1 + 600 + 100 margin > 1000
    expect(await s.check("api_calls")).toMatchObject({ allowed: true, used: 400, usageAgeMs: 0 });
    expect(s.peeks()).toBe(1);
  });

  it("never reuses a summary across a period reset", async () => {
    const s = await isolate("meter-lab"); // daily reset
    await s.consume(30);
    s.clock.advance(DAY_MS);
    expect(await s.check("api_calls")).toMatchObject({ allowed: true, used: 0, usageAgeMs: 0 });
    expect(s.peeks()).toBe(1);
  });
});

describe("the rule (pure)", () => {
  it("the bound is the limit, plus the overage cap; none without a limit or a cap", () => {
    expect(admissionBound({ limit: 10, overage: "block", overageCap: null })).toBe(10);
    expect(admissionBound({ limit: 10, overage: "allow", overageCap: 5 })).toBe(15);
    expect(admissionBound({ limit: 10, overage: "allow", overageCap: null })).toBeNull();
    expect(admissionBound({ limit: null, overage: "block", overageCap: null })).toBeNull();
  });

  it("a rise in rate is taken at once, a fall halves it; a new period starts from zero", () => {
    const a = observe(undefined, 10, 0, 1_000, 0);
    const b = observe(a, 30, 0, 1_010, 0);
    expect(b.rate).toBe(2);
    expect(observe(b, 30, 0, 2_010, 0).rate).toBe(1);
    expect(observe(b, 0, 0, 2_010, DAY_MS).rate).toBe(0);
  });

  // The invariant: whenever the summary answers, and usage grew no faster than the rate it observed,
  // its answer is the exact one (and exact answers near the bound are never taken from it).
  it("answers exactly whenever it answers, if usage grew no faster than observed", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 1_000 }),
        fc.double({ min: 0, max: 5, noNaN: true }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (bound, used, reserved, rate, age, quantity, growthShare) => {
          const o: UsageObservation = { used, reserved, at: T0, periodStart: 0, rate };
          const q = { bound, quantity, now: T0 + age, maxAgeMs: 10_000, periodStart: 0 };
          if (!answersFromSummary(o, q)) return;
          const actual = used + rate * age * growthShare; // what the meter would say now
          const exact = actual + reserved + quantity <= bound;
          const fromSummary = used + reserved + quantity <= bound;
          expect(fromSummary).toBe(true);
          expect(exact).toBe(fromSummary);
          expect(bound - actual - reserved - quantity).toBeGreaterThanOrEqual(
            Math.max(1, bound * NEAR_LIMIT_FRACTION) - 1e-9,
          );
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
