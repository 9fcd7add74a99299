// Plan versions with grandfathering (issue 12): an edit that changes what subscribers get makes a new
// version; `stay` (the default) keeps existing subscribers on theirs while new ones get the new one;
// `now` moves them at once; `at_period_end` moves each at its own period end. A migration is one row
// (checks resolve it), can be previewed, shows progress, can be cancelled, and only one runs per plan.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, createPlan, loadTestCatalog } from "./helpers/admin";
import { auditOf } from "./helpers/d1";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { BOOTSTRAP, checker, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;
const check = checker(w, () => key);
const admin = { key: BOOTSTRAP };
const setLimit = (planId: string, limit: number, migrate?: string) =>
  w.call("PUT", `/admin/v1/plans/${planId}/entitlements/api_calls${migrate ? `?migrate=${migrate}` : ""}`, {
    ...admin,
    body: { limit, reset: "month" },
  });
const limitOf = async (customerId: string) => (await check(customerId, "api_calls")).limit;
const subscriber = async (planId: string, sub: Record<string, unknown> = {}) =>
  (await createCustomer(w, { id: uid(), subscriptions: [{ planId, ...sub }] })).id;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

describe("stay (the default): existing subscribers are grandfathered", () => {
  it("keeps them on their version; a new subscriber gets the new one; the versions say who is where", async () => {
    const plan = uid("plan");
    await createPlan(w, plan, { api_calls: { limit: 100 } });
    const old = await subscriber(plan);
    const edit = await setLimit(plan, 50);
    expect(edit.status).toBe(200);
    expect(edit.json.plan.version).toBe(2);
    expect(edit.json.migration).toBeUndefined();
    const fresh = await subscriber(plan);
    expect(await limitOf(old)).toBe(100);
    expect(await limitOf(fresh)).toBe(50);
    // A fresh isolate composes the same from KV and D1.
    const other = checker(testWorker(), () => key);
    expect((await other(old, "api_calls")).limit).toBe(100);
    const versions = await w.call("GET", `/admin/v1/plans/${plan}/versions`, admin);
    expect(versions.json.items.map((v: any) => [v.version, v.current, v.subscribers])).toEqual([
      [1, false, 1],
      [2, true, 1],
    ]);
    // Explain names the version each source comes from.
    const why = await w.call("GET", `/admin/v1/customers/${old}/entitlements/explain?feature=api_calls`, admin);
    expect(why.json.features.api_calls.sources[0]).toMatchObject({ kind: "plan", id: plan, planVersion: 1 });
  });

  it("a new name or description is no new version", async () => {
    const plan = uid("plan");
    await createPlan(w, plan, { api_calls: { limit: 100 } });
    const res = await w.call("PUT", `/admin/v1/plans/${plan}`, {
      ...admin,
      body: { name: "Renamed", entitlements: { api_calls: { limit: 100 } } },
    });
    expect(res.json.plan).toMatchObject({ name: "Renamed", version: 1 });
  });
});

describe("migrate=now", () => {
  it("moves every existing subscriber at once with one row, audited; usage carries over, the new limit applies", async () => {
    const plan = uid("plan");
    await createPlan(w, plan, { api_calls: { limit: 10 } });
    const a = await subscriber(plan);
    const b = await subscriber(plan);
    const used = await w.call("POST", "/v1/usage", { key, body: { customerId: a, feature: "api_calls", amount: 5 } });
    expect(used.json).toMatchObject({ allowed: true, used: 5 });
    const rows = async () =>
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM plan_migrations WHERE plan_id = ?1")
        .bind(plan)
        .first<{ n: number }>())!.n;
    const edit = await setLimit(plan, 6, "now");
    expect(edit.json.migration).toMatchObject({ mode: "now", toVersion: 2 });
    expect(await rows()).toBe(1);
    expect(await check(a, "api_calls")).toMatchObject({ limit: 6, used: 5, remaining: 1, allowed: true });
    expect(await limitOf(b)).toBe(6);
    // Nothing reset: one more unit fits, a second does not.
    expect(
      (await w.call("POST", "/v1/usage", { key, body: { customerId: a, feature: "api_calls", amount: 1 } })).json
        .allowed,
    ).toBe(true);
    expect(
      (await w.call("POST", "/v1/usage", { key, body: { customerId: a, feature: "api_calls", amount: 1 } })).json
        .allowed,
    ).toBe(false);
    const audits = await auditOf("plan_migration", edit.json.migration.id);
    expect(audits.map((x) => x.action)).toEqual(["plan.migration.start"]);
    const list = await w.call("GET", `/admin/v1/plans/${plan}/migrations`, admin);
    expect(list.json.items).toMatchObject([{ id: edit.json.migration.id, status: "done", pending: 0 }]);
  });
});

describe("migrate=at_period_end", () => {
  it("moves each subscriber at the end of its own period; one migration runs at a time; cancelling keeps the rest", async () => {
    const plan = uid("plan");
    await createPlan(w, plan, { api_calls: { limit: 100 } });
    const start = iso(T0 - DAY_MS);
    const soon = await subscriber(plan, { currentPeriodStart: start, currentPeriodEnd: iso(T0 + 2 * DAY_MS) });
    const later = await subscriber(plan, { currentPeriodStart: start, currentPeriodEnd: iso(T0 + 5 * DAY_MS) });
    const unbilled = await subscriber(plan);
    const edit = await setLimit(plan, 40, "at_period_end");
    expect(edit.json.migration).toMatchObject({ mode: "at_period_end", toVersion: 2 });
    const id = edit.json.migration.id;
    expect(await limitOf(soon)).toBe(100);
    expect(await limitOf(later)).toBe(100);
    expect(await limitOf(unbilled)).toBe(40); // no period end: moves at once
    // The answer says when it changes: at the subscriber's period end.
    expect((await check(soon, "api_calls")).expiresAt).toBe(iso(T0 + 2 * DAY_MS));
    const progress = async () => (await w.call("GET", `/admin/v1/plans/${plan}/migrations`, admin)).json.items[0];
    expect(await progress()).toMatchObject({ status: "running", pending: 2 });

    // A second migration of the plan while this one runs is refused.
    expectProblem(await setLimit(plan, 30, "now"), 409, "migration_running");
    expect((await w.call("GET", `/admin/v1/plans/${plan}`, admin)).json.version).toBe(2);

    await w.at(T0 + 3 * DAY_MS, async () => {
      expect(await limitOf(soon)).toBe(40);
      expect(await limitOf(later)).toBe(100);
      expect(await progress()).toMatchObject({ status: "running", pending: 1 });
      const cancel = await w.call("POST", `/admin/v1/plans/${plan}/migrations/${id}/cancel`, admin);
      expect(cancel.json.migration).toMatchObject({ status: "cancelled" });
    });
    await w.at(T0 + 6 * DAY_MS, async () => {
      expect(await limitOf(soon)).toBe(40); // moved before the cancellation: stays moved
      expect(await limitOf(later)).toBe(100); // not moved by then: stays on version 1
      expectProblem(await w.call("POST", `/admin/v1/plans/${plan}/migrations/${id}/cancel`, admin), 409);
    });
  });
});

describe("an explicit migration", () => {
  it("previews who gains or loses what without writing, then moves grandfathered subscribers", async () => {
    const plan = uid("plan");
    await createPlan(w, plan, { api_calls: { limit: 100 }, sso: true });
    const old = await subscriber(plan, { status: "active" });
    await w.call("PUT", `/admin/v1/plans/${plan}`, {
      ...admin,
      body: { name: plan, entitlements: { api_calls: { limit: 200, reset: "month" } } },
    });
    const rev = async () =>
      (await env.DB.prepare("SELECT value FROM meta WHERE key = 'catalog_rev'").first<{ value: number }>())!.value;
    const before = await rev();
    const preview = await w.call("POST", `/admin/v1/plans/${plan}/migrations`, {
      ...admin,
      body: { mode: "now", preview: true },
    });
    expect(preview.status).toBe(200);
    const [v1] = preview.json.preview.versions;
    expect(v1).toMatchObject({ fromVersion: 1, subscribers: 1 });
    expect(v1.changes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ feature: "api_calls", effect: "gain" }),
        expect.objectContaining({ feature: "sso", effect: "loss" }),
      ]),
    );
    expect(await rev()).toBe(before);
    expect((await check(old, "sso", { role: "admin" })).allowed).toBe(true);
    const started = await w.call("POST", `/admin/v1/plans/${plan}/migrations`, { ...admin, body: { mode: "now" } });
    expect(started.status).toBe(201);
    expect(started.json).toMatchObject({ migration: { status: "done", toVersion: 2 }, version: `0.${before + 1}` });
    expect((await check(old, "sso", { role: "admin" })).allowed).toBe(false);
    expect(await limitOf(old)).toBe(200);
  });

  it("a catalog file states the migration of a plan it changes", async () => {
    const current = await w.call("GET", "/admin/v1/catalog", admin);
    const plan = uid("plan");
    await createPlan(w, plan, { api_calls: { limit: 100 } });
    const old = await subscriber(plan);
    const file = structuredClone(current.json);
    file.plans[plan] = { name: plan, entitlements: { api_calls: { limit: 70, reset: "month" } }, migrate: "now" };
    const res = await w.call("PUT", "/admin/v1/catalog", { ...admin, body: file });
    expect(res.status).toBe(200);
    expect(res.json.migrations).toMatchObject([{ planId: plan, toVersion: 2, mode: "now" }]);
    expect(await limitOf(old)).toBe(70);
  });
});
