// A customer has one base plan at a time, plus any add-ons: a second base-plan subscription while one is
// still current (not ended, not cancelled) is a 409 `base_plan_exists` naming the subscription to
// change instead, from POST /admin/v1/subscriptions and POST /admin/v1/customers alike, and two
// concurrent creates cannot both pass (a guard in the write's own D1 batch).
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, customerWith, loadTestCatalog, subscriptionAction } from "./helpers/admin";
import { auditCount, auditOfCustomer } from "./helpers/d1";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { BOOTSTRAP, checker, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  checkKey = await createKey(w, ["check"]);
});

const check = checker(w, () => checkKey);
const createSubscription = (body: Record<string, unknown>, wk = w) =>
  wk.call("POST", "/admin/v1/subscriptions", { key: BOOTSTRAP, body });
const subscriptionsOf = async (customerId: string) =>
  (
    await env.DB.prepare("SELECT id, plan_id FROM subscriptions WHERE customer_id = ?1 ORDER BY id")
      .bind(customerId)
      .all<{ id: string; plan_id: string }>()
  ).results;

describe("one base plan per customer", () => {
  it("a second base plan is a 409 base_plan_exists naming the subscription to change; nothing is written", async () => {
    const { customerId, subId } = await customerWith(w, { planId: "pro" });
    const audits = await auditCount();
    const res = await createSubscription({ customerId, planId: "pro" });
    const problem = expectProblem(res, 409, "base_plan_exists");
    expect(problem.detail).toContain(subId);
    expect(problem.detail).toContain(`/admin/v1/subscriptions/${subId}/change-plan`);
    expect(problem).toMatchObject({ subscriptionId: subId, planId: "pro" });
    expectProblem(await createSubscription({ customerId, planId: "free" }), 409, "base_plan_exists");
    expect(await subscriptionsOf(customerId)).toEqual([{ id: subId, plan_id: "pro" }]);
    expect(await auditCount()).toBe(audits);
    // The limits are Pro's once, not twice.
    expect(await check(customerId, "api_calls")).toMatchObject({ allowed: true, limit: 1000 });
  });

  it("two base plans in one POST /admin/v1/customers body: 409, and no customer is created", async () => {
    const id = uid();
    const res = await w.call("POST", "/admin/v1/customers", {
      key: BOOTSTRAP,
      body: { id, subscriptions: [{ planId: "pro" }, { planId: "extra-calls" }, { planId: "free" }] },
    });
    expect(expectProblem(res, 409, "base_plan_exists").detail).toMatch(/one base plan/);
    expectProblem(await w.call("GET", `/admin/v1/customers/${id}`, { key: BOOTSTRAP }), 404);
    expect(await auditOfCustomer(id)).toEqual([]);
  });

  it("one scheduled to end still counts: change its plan instead", async () => {
    const { customerId, subId } = await customerWith(w, {
      planId: "pro",
      currentPeriodEnd: iso(T0 + 30 * DAY_MS),
    });
    expect((await subscriptionAction(w, subId, "cancel", { when: "at_period_end" })).status).toBe(200);
    expectProblem(await createSubscription({ customerId, planId: "free" }), 409, "base_plan_exists");
    expect((await subscriptionAction(w, subId, "change-plan", { planId: "free", when: "immediately" })).status).toBe(
      200,
    );
  });

  it("one that has ended or is cancelled does not count, also when its end is due but not yet recorded", async () => {
    const { customerId, subId } = await customerWith(w, { planId: "free" });
    expect((await subscriptionAction(w, subId, "cancel", { when: "immediately" })).status).toBe(200);
    expect((await createSubscription({ customerId, planId: "pro" })).status).toBe(201);

    // A trial whose end has passed: the cron has not recorded it yet, but the snapshot already says so.
    const trial = await customerWith(w, { planId: "pro", status: "trialing", trialEnd: iso(T0 + DAY_MS) });
    await w.at(T0 + 2 * DAY_MS, async () => {
      expect((await createSubscription({ customerId: trial.customerId, planId: "free" })).status).toBe(201);
    });
    // A cancellation that was due yesterday.
    const due = await customerWith(w, { planId: "pro", cancelAt: iso(T0 + DAY_MS) });
    await w.at(T0 + 2 * DAY_MS, async () => {
      expect((await createSubscription({ customerId: due.customerId, planId: "free" })).status).toBe(201);
    });
  });

  it("add-ons are unaffected, the same add-on twice included (each adds its entitlements)", async () => {
    const { customerId } = await customerWith(w, { planId: "free" });
    expect((await createSubscription({ customerId, planId: "extra-calls" })).status).toBe(201);
    expect((await createSubscription({ customerId, planId: "extra-calls" })).status).toBe(201);
    expect(await check(customerId, "api_calls")).toMatchObject({ allowed: true, limit: 100 + 500 + 500 });
    const alone = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "sso-addon" }, { planId: "pro" }] });
    expect(alone.subscriptions).toHaveLength(2);
  });

  it("two concurrent creates of a base plan: exactly one succeeds, the other is a 409", async () => {
    const { id: customerId } = await createCustomer(w, { id: uid() });
    const { DB, release } = barrierOnSubscriptionInserts(2);
    const racing = testWorker({ env: { ...env, DB } as Cloudflare.Env });
    // Both requests pass the read-time check before either commits: only the guard in the batch can refuse one.
    const results = await Promise.all([
      createSubscription({ customerId, planId: "pro" }, racing),
      createSubscription({ customerId, planId: "free" }, racing),
    ]);
    release();
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const refused = results.find((r) => r.status === 409)!;
    expectProblem(refused, 409, "base_plan_exists");
    const winner = results.find((r) => r.status === 201)!.json.subscription;
    expect(refused.json.subscriptionId).toBe(winner.id);
    expect(await subscriptionsOf(customerId)).toEqual([{ id: winner.id, plan_id: winner.planId }]);
  });
});

/**
 * The test D1 with a barrier: a batch that inserts a subscription waits until `parties` such batches
 * have arrived, so concurrent writers have all done their reads before any of them commits.
 */
function barrierOnSubscriptionInserts(parties: number) {
  const inserts = new WeakSet<object>();
  const waiting: (() => void)[] = [];
  let open = false;
  const release = () => {
    open = true;
    for (const go of waiting.splice(0)) go();
  };
  const arrive = () =>
    new Promise<void>((go) => {
      if (open) return go();
      waiting.push(go);
      if (waiting.length >= parties) release();
    });
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare")
        return (sql: string) => {
          const stmt = target.prepare(sql);
          if (!/^\s*INSERT INTO subscriptions/.test(sql)) return stmt;
          return new Proxy(stmt, {
            get(s, p) {
              if (p === "bind")
                return (...args: unknown[]) => {
                  const bound = s.bind(...args);
                  inserts.add(bound);
                  return bound;
                };
              const v = Reflect.get(s, p, s);
              return typeof v === "function" ? v.bind(s) : v;
            },
          });
        };
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          if (statements.some((s) => inserts.has(s))) await arrive();
          return target.batch(statements);
        };
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { DB, release };
}
