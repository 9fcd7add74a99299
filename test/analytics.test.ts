// Usage and entitlement analytics (issue 14): points from real checks and consumes through the worker
// reach the local rollups and come back from each /admin/v1/analytics endpoint with exact values; the
// Analytics Engine sink's point layout (its binding wrapped to record writeDataPoint); the SQL API
// reader against an injected outbound fetch; access, ranges, retention; and a warm check that still
// touches no binding with analytics on.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { LocalRollupSink } from "../src/analytics/local-sink";
import { ManualClock } from "../src/clock";
import { createCustomer, createKey, createPlan, loadTestCatalog, subscriptionAction } from "./helpers/admin";
import { recordingEnv } from "./helpers/counting";
import { customerHourRows, insertUsagePeriod, rollupRows } from "./helpers/d1";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, HOUR_MS, iso, MINUTE_MS, T0 } from "./helpers/time";
import { BOOTSTRAP, expectProblem, type TestWorker, testWorker, uid } from "./helpers/worker";

const local = { ...env, ANALYTICS_MODE: "local" } as Cloudflare.Env;
const engine = { ...env, ANALYTICS_MODE: "engine" } as Cloudflare.Env;

let seq = 0;
/** A feature key of this test file's own (catalog keys: lowercase, at most 64 characters). */
const featureKey = (what: string) => `ax_${what}_${Date.now().toString(36)}${(seq++).toString(36)}`;

async function createFeature(w: TestWorker, key: string, type: "boolean" | "metered") {
  const res = await w.call("POST", "/admin/v1/features", { key: BOOTSTRAP, body: { key, type } });
  expect(res.status).toBe(201);
}

/** Two plans over two new features: basic (10 calls a month, no flag) and plus (100 calls, the flag). */
async function analyticsCatalog(w: TestWorker) {
  const calls = featureKey("calls");
  const flag = featureKey("flag");
  await createFeature(w, calls, "metered");
  await createFeature(w, flag, "boolean");
  const basic = uid("ax-basic");
  const plus = uid("ax-plus");
  await createPlan(w, basic, { [calls]: { limit: 10, reset: "month" } });
  await createPlan(w, plus, { [calls]: { limit: 100, reset: "month" }, [flag]: true });
  return { calls, flag, basic, plus };
}

const customerOn = async (w: TestWorker, planId: string, extra: Record<string, unknown> = {}) =>
  (await createCustomer(w, { id: uid(), subscriptions: [{ id: uid("sub"), planId, ...extra }] })).id;

describe("local mode: points from checks and consumes through the worker", () => {
  const clock = new ManualClock(T0);
  const w = testWorker({ clock, env: local });
  let key: string;
  let viewer: string;
  let cat: Awaited<ReturnType<typeof analyticsCatalog>>;
  let c1: string;
  let c2: string;
  let c3: string;

  beforeAll(async () => {
    await loadTestCatalog(w);
    key = await createKey(w, ["check", "usage"]);
    viewer = await operatorToken("viewer");
    cat = await analyticsCatalog(w);
    [c1, c2, c3] = [await customerOn(w, cat.basic), await customerOn(w, cat.basic), await customerOn(w, cat.plus)];
    // The traffic, a minute into the hour of T0: four checks of the flag (three denied), consumes of calls.
    await w.at(T0 + MINUTE_MS, async () => {
      const check = (customerId: string, country: string) =>
        w.call("POST", "/v1/check", { key, body: { customerId, feature: cat.flag, country } });
      expect((await check(c1, "DE")).json.reason).toBe("not_entitled");
      expect((await check(c2, "FR")).json.reason).toBe("not_entitled");
      expect((await check(c3, "US")).json.allowed).toBe(true);
      expect((await check(c1, "DE")).json.reason).toBe("not_entitled");
      const consume = (customerId: string, amount: number) =>
        w.call("POST", "/v1/usage", { key, body: { customerId, feature: cat.calls, amount }, cf: { country: "NL" } });
      expect((await consume(c1, 3)).json.allowed).toBe(true);
      expect((await consume(c2, 5)).json.allowed).toBe(true);
      expect((await consume(c3, 20)).json.allowed).toBe(true);
      expect((await consume(c1, 8)).json).toMatchObject({ allowed: false, reason: "limit_reached" });
    });
    clock.set(T0 + 2 * MINUTE_MS);
  });

  const get = (path: string, as = viewer) => w.call("GET", `/admin/v1/analytics${path}`, { key: as });

  it("are buffered in the isolate, then reach the D1 rollups when the endpoints read (their own flush)", async () => {
    // The flush interval (60 s by the injected clock) has not passed: nothing was written yet.
    expect(await rollupRows(cat.flag)).toEqual([]);
    expect(w.services().analytics.local(local).buffered).toBeGreaterThan(0);
    expect((await get("/features")).status).toBe(200);
    expect(w.services().analytics.local(local).buffered).toBe(0);
    const hour = T0 - (T0 % HOUR_MS);
    expect(await rollupRows(cat.flag)).toEqual([
      {
        hour,
        kind: "check",
        plan_id: cat.basic,
        country: "DE",
        reason: "not_entitled",
        allowed: 0,
        count: 2,
        quantity: 2,
      },
      {
        hour,
        kind: "check",
        plan_id: cat.basic,
        country: "FR",
        reason: "not_entitled",
        allowed: 0,
        count: 1,
        quantity: 1,
      },
      { hour, kind: "check", plan_id: cat.plus, country: "US", reason: "ok", allowed: 1, count: 1, quantity: 1 },
    ]);
    expect(await rollupRows(cat.calls)).toEqual([
      {
        hour,
        kind: "consume",
        plan_id: cat.basic,
        country: "NL",
        reason: "limit_reached",
        allowed: 0,
        count: 1,
        quantity: 8,
      },
      { hour, kind: "consume", plan_id: cat.basic, country: "NL", reason: "ok", allowed: 1, count: 2, quantity: 8 },
      { hour, kind: "consume", plan_id: cat.plus, country: "NL", reason: "ok", allowed: 1, count: 1, quantity: 20 },
    ]);
  });

  it("features: entitled and active customers, adoption, checks, denials, the usage distribution", async () => {
    const res = await get("/features");
    expect(res.status).toBe(200);
    expect(res.json.from).toBe(iso(T0 + 2 * MINUTE_MS - 7 * DAY_MS));
    expect(res.json.to).toBe(iso(T0 + 2 * MINUTE_MS));
    const of = (k: string) => res.json.features.find((f: { featureKey: string }) => f.featureKey === k);
    expect(of(cat.flag)).toEqual({
      featureKey: cat.flag,
      entitledCustomers: 1,
      activeCustomers: 1,
      adoption: 1,
      checks: 4,
      denials: 3,
      usage: { total: 0, p50: 0, p90: 0, max: 0 },
    });
    // Per consuming customer: 3, 5 and 20 units (c1's 8 were refused). Nearest rank: p50 the 2nd, p90 the 3rd.
    expect(of(cat.calls)).toEqual({
      featureKey: cat.calls,
      entitledCustomers: 3,
      activeCustomers: 3,
      adoption: 1,
      checks: 0,
      denials: 0,
      usage: { total: 28, p50: 5, p90: 20, max: 20 },
    });
    // Every catalog feature is listed, used or not.
    expect(of("sso")).toMatchObject({ checks: 0, activeCustomers: 0 });
  });

  it("usage: one gapless point per hour or day, with the customers that consumed", async () => {
    const from = iso(T0 - 2 * HOUR_MS);
    const hourly = await get(`/usage?featureKey=${cat.calls}&interval=hour&from=${from}`);
    expect(hourly.status).toBe(200);
    expect(hourly.json).toEqual({
      featureKey: cat.calls,
      interval: "hour",
      points: [
        { t: iso(T0 - 2 * HOUR_MS), total: 0, customers: 0 },
        { t: iso(T0 - HOUR_MS), total: 0, customers: 0 },
        { t: iso(T0), total: 28, customers: 3 },
      ],
    });
    const daily = await get(`/usage?featureKey=${cat.calls}`);
    expect(daily.json.interval).toBe("day");
    expect(daily.json.points).toHaveLength(8); // 7 days back from mid-day: 8 calendar days touched
    expect(daily.json.points.at(-1)).toEqual({ t: iso(T0 - (T0 % DAY_MS)), total: 28, customers: 3 });
    expect(daily.json.points.slice(0, -1).every((p: { total: number }) => p.total === 0)).toBe(true);
  });

  it("denials by reason, plan and country: which features customers reach for and lack", async () => {
    const rows = async (by: string) => {
      const res = await get(`/denials?by=${by}`);
      expect(res.status).toBe(200);
      expect(res.json.by).toBe(by);
      return res.json.rows.filter((r: { featureKey: string }) => r.featureKey === cat.flag);
    };
    expect(await rows("reason")).toEqual([{ featureKey: cat.flag, key: "not_entitled", count: 3 }]);
    expect(await rows("plan")).toEqual([{ featureKey: cat.flag, key: cat.basic, count: 3 }]);
    expect(await rows("country")).toEqual([
      { featureKey: cat.flag, key: "DE", count: 2 },
      { featureKey: cat.flag, key: "FR", count: 1 },
    ]);
  });

  it("upsell: customers at or near their limit in the current period, paged", async () => {
    const month = { start: Date.parse("2026-03-01T00:00:00Z"), end: Date.parse("2026-04-01T00:00:00Z") };
    await insertUsagePeriod(c1, cat.calls, month.start, month.end, 9); // 9 of 10
    await insertUsagePeriod(c2, cat.calls, month.start, month.end, 5); // 5 of 10: below 0.8
    await insertUsagePeriod(c3, cat.calls, month.start, month.end, 100); // 100 of 100
    await insertUsagePeriod(c2, cat.calls, Date.parse("2026-02-01T00:00:00Z"), month.start, 10); // a closed period
    const all = await get(`/upsell?featureKey=${cat.calls}`);
    expect(all.status).toBe(200);
    const expected = [
      { customerId: c1, planId: cat.basic, featureKey: cat.calls, used: 9, limit: 10, ratio: 0.9 },
      { customerId: c3, planId: cat.plus, featureKey: cat.calls, used: 100, limit: 100, ratio: 1 },
    ].sort((a, b) => (a.customerId < b.customerId ? -1 : 1));
    expect(all.json).toEqual({ candidates: expected, nextCursor: null });
    const first = await get(`/upsell?featureKey=${cat.calls}&limit=1`);
    expect(first.json.candidates).toEqual([expected[0]]);
    const second = await get(`/upsell?featureKey=${cat.calls}&limit=1&cursor=${first.json.nextCursor}`);
    expect(second.json).toEqual({ candidates: [expected[1]], nextCursor: null });
    expect((await get(`/upsell?featureKey=${cat.calls}&threshold=0.5`)).json.candidates).toHaveLength(3);
    // An add-on adds to the base plan's limit: 18 of 10 + 10 is 0.9; an unlimited one takes the customer out.
    const more = uid("ax-more");
    const unlimited = uid("ax-unlimited");
    await createPlan(w, more, { [cat.calls]: { limit: 10, reset: "month" } }, "addon");
    await createPlan(w, unlimited, { [cat.calls]: { limit: null, reset: "month" } }, "addon");
    const c4 = await customerOn(w, cat.basic);
    const c5 = await customerOn(w, cat.basic);
    await w.call("POST", "/admin/v1/subscriptions", { key: BOOTSTRAP, body: { customerId: c4, planId: more } });
    await w.call("POST", "/admin/v1/subscriptions", { key: BOOTSTRAP, body: { customerId: c5, planId: unlimited } });
    await insertUsagePeriod(c4, cat.calls, month.start, month.end, 18);
    await insertUsagePeriod(c5, cat.calls, month.start, month.end, 50);
    const stacked = await get(`/upsell?featureKey=${cat.calls}`);
    expect(
      stacked.json.candidates.filter((x: { customerId: string }) => x.customerId === c4 || x.customerId === c5),
    ).toEqual([{ customerId: c4, planId: cat.basic, featureKey: cat.calls, used: 18, limit: 20, ratio: 0.9 }]);
    await expectProblem(await get(`/upsell?threshold=-1`), 400, "validation");
    await expectProblem(await get(`/upsell?cursor=forged`), 400, "validation");
  });

  it("trials: started, converted, expired and the conversion rate per plan", async () => {
    const plan = uid("ax-trial");
    await createPlan(w, plan, { [cat.flag]: true });
    const trial = { status: "trialing", trialEnd: iso(T0 + 14 * DAY_MS) };
    const subs = [];
    for (let i = 0; i < 4; i++) {
      const c = await createCustomer(w, { id: uid(), subscriptions: [{ id: uid("sub"), planId: plan, ...trial }] });
      subs.push(c.subscriptions[0]!);
    }
    expect((await subscriptionAction(w, subs[0]!, "convert-trial", { reason: "paid" })).status).toBe(200);
    expect((await subscriptionAction(w, subs[1]!, "convert-trial", { reason: "paid" })).status).toBe(200);
    expect((await subscriptionAction(w, subs[2]!, "cancel", { when: "immediately", reason: "left" })).status).toBe(200);
    const res = await get(`/trials?to=${iso(T0 + HOUR_MS)}`); // they started now: "to" is exclusive
    expect(res.status).toBe(200);
    expect(res.json.plans.find((p: { planId: string }) => p.planId === plan)).toEqual({
      planId: plan,
      started: 4,
      converted: 2,
      expired: 1,
      conversionRate: 0.6667,
    });
  });

  it("viewers may read; no key, or a key without admin, may not", async () => {
    expect((await get("/features", viewer)).status).toBe(200);
    await expectProblem(await w.call("GET", "/admin/v1/analytics/features"), 401);
    await expectProblem(await get("/denials", key), 403);
  });

  it("bad ranges are 400 problems, never 500s", async () => {
    await expectProblem(await get(`/features?from=${iso(T0)}&to=${iso(T0 - HOUR_MS)}`), 400, "validation");
    await expectProblem(await get(`/features?from=${iso(T0 - 32 * DAY_MS)}&to=${iso(T0)}`), 400, "validation");
    await expectProblem(await get(`/usage?featureKey=${cat.calls}&from=yesterday`), 400, "validation");
    await expectProblem(await get(`/usage?featureKey=${cat.calls}&interval=minute`), 400, "validation");
    await expectProblem(await get("/usage"), 400, "validation");
    await expectProblem(await get("/denials?by=customer"), 400, "validation");
    // Trials may span a year, not more.
    expect((await get(`/trials?from=${iso(T0 - 300 * DAY_MS)}`)).status).toBe(200);
    await expectProblem(await get(`/trials?from=${iso(T0 - 400 * DAY_MS)}`), 400, "validation");
  });

  it("a flush of many cells (multi-row upserts over D1's 100 parameters) and a second flush add up exactly", async () => {
    const wide = featureKey("wide");
    await createFeature(w, wide, "boolean");
    const ids = [c1, c2, c3];
    ids.push(...(await Promise.all(Array.from({ length: 17 }, () => customerOn(w, cat.plus)))));
    const checkAll = () =>
      Promise.all(
        ids.map((customerId, i) =>
          w.call("POST", "/v1/check", { key, body: { customerId, feature: wide, country: i % 2 ? "DE" : "FR" } }),
        ),
      );
    await checkAll();
    await w.services().analytics.local(local).flush(local);
    await checkAll();
    const of = async () =>
      (await get("/features")).json.features.find((f: { featureKey: string }) => f.featureKey === wide);
    // 20 customers x 2 checks (20 customer cells: 140 parameters, two statements); the wide flag is in no
    // plan, so every check is a denial and nobody is active.
    expect(await of()).toMatchObject({
      checks: 40,
      denials: 40,
      activeCustomers: 0,
      entitledCustomers: 0,
      adoption: 0,
    });
    const byCountry = (await get("/denials?by=country")).json.rows.filter(
      (r: { featureKey: string }) => r.featureKey === wide,
    );
    expect(byCountry).toEqual([
      { featureKey: wide, key: "DE", count: 20 },
      { featureKey: wide, key: "FR", count: 20 },
    ]);
  }, 30_000);

  it("the cron deletes rollup rows past the 90-day retention, and keeps the rest", async () => {
    const old = featureKey("old");
    await createFeature(w, old, "boolean");
    await w.at(T0 - 91 * DAY_MS, () => w.call("POST", "/v1/check", { key, body: { customerId: c1, feature: old } }));
    await w.at(T0 - 89 * DAY_MS, () => w.call("POST", "/v1/check", { key, body: { customerId: c2, feature: old } }));
    await w.services().analytics.local(local).flush(local);
    expect((await rollupRows(old)).map((r) => r.hour)).toHaveLength(2);
    const ctx = createExecutionContext();
    await w.worker.scheduled(
      createScheduledController({ scheduledTime: new Date(T0), cron: "*/5 * * * *" }),
      local,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const kept = await rollupRows(old);
    expect(kept.map((r) => r.hour)).toEqual([T0 - 89 * DAY_MS - ((T0 - 89 * DAY_MS) % HOUR_MS)]);
  });
});

describe("the local sink", () => {
  it("loses and doubles nothing: whatever the interleaving of points, scheduled flushes and reads, D1 ends with every point counted once", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              customer: fc.integer({ min: 0, max: 3 }),
              hour: fc.integer({ min: 0, max: 2 }),
              allowed: fc.boolean(),
              consume: fc.boolean(),
              quantity: fc.integer({ min: 1, max: 5 }),
            }),
            fc.constant("flush" as const),
          ),
          { minLength: 1, maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 8 }),
        async (steps, maxCells) => {
          const feature = `ax_prop_${run++}_${Date.now().toString(36)}`;
          const sink = new LocalRollupSink({ flushMs: 0, maxCells });
          const pending: Promise<unknown>[] = [];
          const io = { env: local, waitUntil: (p: Promise<unknown>) => void pending.push(p) };
          const expected = { checks: 0, denials: 0, used: 0 };
          for (const step of steps) {
            if (step === "flush") {
              pending.push(sink.flush(local));
              continue;
            }
            const point = {
              at: T0 + step.hour * HOUR_MS,
              feature,
              customerId: `c${step.customer}`,
              plan: "p",
              country: "DE",
              allowed: step.allowed,
              reason: step.allowed ? "ok" : "limit_reached",
              quantity: step.quantity,
              entityId: "",
              deniedBy: "",
            };
            if (step.consume) sink.consume(point, io);
            else sink.check(point, io);
            if (!step.consume) expected.checks++;
            if (!step.consume && !step.allowed) expected.denials++;
            if (step.consume && step.allowed) expected.used += step.quantity;
          }
          await Promise.all(pending);
          await sink.flush(local);
          expect(sink.buffered).toBe(0);
          const rows = await customerHourRows(feature);
          const sum = (k: "checks" | "denials" | "used") => rows.reduce((n, r) => n + Number(r[k]), 0);
          expect({ checks: sum("checks"), denials: sum("denials"), used: sum("used") }).toEqual(expected);
          const rollups = await rollupRows(feature);
          expect(rollups.reduce((n, r) => n + Number(r.count), 0)).toBe(steps.filter((x) => x !== "flush").length);
        },
      ),
      { numRuns: 25 },
    );
  }, 60_000);
});

describe("the check path with analytics on", () => {
  it("a warm check touches no binding (local mode: the point waits in the isolate)", async () => {
    const clock = new ManualClock(T0);
    // A flush interval shorter than the snapshot cache's 5 s, to see a flush while the customer is still warm.
    const flushing = { ...local, ANALYTICS_FLUSH_MS: "2000" } as Cloudflare.Env;
    const w = testWorker({ clock, env: flushing });
    await loadTestCatalog(w);
    const key = await createKey(w, ["check"]);
    const id = await customerOn(w, "pro");
    expect(
      (await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso", role: "admin" } })).status,
    ).toBe(200);
    const { recorded, env: counted } = recordingEnv(flushing);
    for (let i = 0; i < 20; i++) {
      const res = await w.call("POST", "/v1/check", {
        key,
        body: { customerId: id, feature: "sso", role: "admin" },
        env: counted,
      });
      expect(res.json.allowed).toBe(true);
    }
    expect(recorded.calls).toEqual([]);
    // Past the flush interval, the next check flushes in waitUntil: D1 writes, no read of KV.
    clock.set(T0 + 3_000);
    await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso", role: "admin" }, env: counted });
    expect(recorded.calls.filter((c) => !c.startsWith("DB."))).toEqual([]);
    expect(recorded.calls).toContain("DB.batch");
    expect(w.services().analytics.local(flushing).buffered).toBe(0);
  });

  it("engine mode: one data point per check and consume, laid out as documented, and no other binding touched", async () => {
    const w = testWorker({ env: engine });
    await loadTestCatalog(w);
    const key = await createKey(w, ["check", "usage"]);
    const id = await customerOn(w, "free");
    await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso" } });
    const { recorded, env: counted } = recordingEnv(engine);
    const check = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: id, feature: "sso", country: "DE" },
      env: counted,
    });
    expect(check.json).toMatchObject({ allowed: false, reason: "not_entitled" });
    expect(recorded.calls).toEqual(["ANALYTICS.writeDataPoint"]);
    const consume = await w.call("POST", "/v1/usage", {
      key,
      body: { customerId: id, feature: "api_calls", amount: 7 },
      cf: { country: "FR" },
      env: counted,
    });
    expect(consume.json.allowed).toBe(true);
    // A quantity check and an OFREP evaluation are checks too; an unknown feature is not recorded.
    await w.call("POST", "/v1/check", {
      key,
      body: { customerId: id, feature: "api_calls", quantity: 4 },
      env: counted,
    });
    await w.call("POST", "/ofrep/v1/evaluate/flags/theme", {
      key,
      body: { context: { targetingKey: id } },
      env: counted,
    });
    await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "nope" }, env: counted });
    expect(recorded.dataPoints).toEqual([
      { indexes: ["sso"], blobs: ["check", "sso", id, "free", "DE", "not_entitled", "", ""], doubles: [0, 1] },
      { indexes: ["api_calls"], blobs: ["consume", "api_calls", id, "free", "FR", "ok", "", ""], doubles: [1, 7] },
      { indexes: ["api_calls"], blobs: ["check", "api_calls", id, "free", "", "ok", "", ""], doubles: [1, 4] },
      { indexes: ["theme"], blobs: ["check", "theme", id, "free", "", "ok", "", ""], doubles: [1, 1] },
    ]);
  });
});

describe("engine mode: the endpoints query Analytics Engine's SQL API", () => {
  it("answer 503 with what is missing while the account id or the token is not set", async () => {
    const w = testWorker({ env: engine });
    const res = await w.call("GET", "/admin/v1/analytics/features", { key: BOOTSTRAP });
    await expectProblem(res, 503, "unavailable");
    expect(res.json.detail).toContain("ANALYTICS_ACCOUNT_ID");
    expect(res.json.detail).toContain("ANALYTICS_API_TOKEN");
    // Upsell and trials read D1 only: they answer in every mode.
    expect((await w.call("GET", "/admin/v1/analytics/trials", { key: BOOTSTRAP })).status).toBe(200);
  });

  it("send the documented SQL with the token, and shape the answer for charts", async () => {
    const sent: { url: string; auth: string | null; body: string }[] = [];
    const answers: Record<string, unknown[]> = {
      "COUNT(DISTINCT blob3) AS active": [{ feature: "sso", active: 2 }],
      quantileExactWeighted: [{ feature: "sso", total: 0, max: 0, p50: 0, p90: 0 }],
      "SUM(_sample_interval) AS checks": [{ feature: "sso", checks: "12", denials: 5 }],
      toStartOfInterval: [{ t: T0 / 1000 - 3600, total: 9, customers: 2 }],
      "ORDER BY count DESC": [{ featureKey: "sso", key: "not_entitled", count: 5 }],
    };
    const outbound: typeof fetch = async (input, init) => {
      const body = String(init?.body);
      sent.push({ url: String(input), auth: new Headers(init?.headers).get("Authorization"), body });
      const match = Object.keys(answers).find((k) => body.includes(k));
      return Response.json({ data: match ? answers[match] : [] });
    };
    const configured = { ...engine, ANALYTICS_ACCOUNT_ID: "acc123", ANALYTICS_API_TOKEN: "tok" } as Cloudflare.Env;
    const w = testWorker({ env: configured, fetch: outbound });
    await loadTestCatalog(w);
    const features = await w.call("GET", "/admin/v1/analytics/features", { key: BOOTSTRAP });
    expect(features.status).toBe(200);
    expect(features.json.features.find((f: { featureKey: string }) => f.featureKey === "sso")).toMatchObject({
      activeCustomers: 2,
      checks: 12,
      denials: 5,
    });
    expect(sent[0]).toMatchObject({
      url: "https://api.cloudflare.com/client/v4/accounts/acc123/analytics_engine/sql",
      auth: "Bearer tok",
    });
    expect(sent.every((s) => s.body.includes("FROM tollgate_analytics") && s.body.endsWith("FORMAT JSON"))).toBe(true);
    const usage = await w.call(
      "GET",
      `/admin/v1/analytics/usage?featureKey=it's&interval=hour&from=${iso(T0 - 2 * HOUR_MS)}`,
      {
        key: BOOTSTRAP,
      },
    );
    expect(usage.json.points).toEqual([
      { t: iso(T0 - 2 * HOUR_MS), total: 0, customers: 0 },
      { t: iso(T0 - HOUR_MS), total: 9, customers: 2 },
    ]);
    // Caller text enters the SQL only as an escaped string literal.
    expect(sent.at(-1)!.body).toContain("blob2 = 'it\\'s'");
    const denials = await w.call("GET", "/admin/v1/analytics/denials?by=country", { key: BOOTSTRAP });
    expect(denials.json).toEqual({ by: "country", rows: [{ featureKey: "sso", key: "not_entitled", count: 5 }] });
    expect(sent.at(-1)!.body).toContain("blob5 AS key");
  });

  it("answer 503 when the SQL API refuses", async () => {
    const outbound: typeof fetch = async () => new Response("bad token", { status: 403 });
    const configured = { ...engine, ANALYTICS_ACCOUNT_ID: "acc", ANALYTICS_API_TOKEN: "bad" } as Cloudflare.Env;
    const w = testWorker({ env: configured, fetch: outbound });
    const res = await w.call("GET", "/admin/v1/analytics/denials", { key: BOOTSTRAP });
    await expectProblem(res, 503, "unavailable");
    expect(res.json.detail).toContain("403");
  });
});
