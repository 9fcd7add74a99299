// Every entity an admin write creates or changes has its own audit entry, whose `after` is the entity as
// the API returns it (ids and computed fields included) and whose `before` is what it was: a
// subscription created with its customer, and each feature, plan, region group and price mapping a
// catalog apply creates or changes (not one row holding both whole catalogs, which could outgrow D1's
// 2 MB row limit).
import { beforeAll, describe, expect, it } from "vitest";
import { loadTestCatalog } from "./helpers/admin";
import { BOOTSTRAP, testWorker, uid } from "./helpers/worker";

const w = testWorker();

beforeAll(async () => {
  await loadTestCatalog(w);
});

/** Every audit entry the API lists for this filter, newest first. */
async function audit(query: Record<string, string>) {
  const res = await w.call("GET", `/admin/v1/audit?${new URLSearchParams({ limit: "100", ...query })}`, {
    key: BOOTSTRAP,
  });
  expect(res.status).toBe(200);
  return res.json.items as any[];
}

const get = async (path: string) => {
  const res = await w.call("GET", path, { key: BOOTSTRAP });
  expect(res.status).toBe(200);
  return res.json;
};

describe("a customer created with subscriptions", () => {
  it("audits each subscription on its own, after = the subscription as GET returns it", async () => {
    const id = uid();
    const res = await w.call("POST", "/admin/v1/customers", {
      key: BOOTSTRAP,
      body: { id, name: "Audited", subscriptions: [{ planId: "pro" }, { planId: "extra-calls", status: "trialing" }] },
    });
    expect(res.status).toBe(201);
    const subIds = res.json.subscriptions as string[];
    expect(subIds).toHaveLength(2);
    const entries = await audit({ customerId: id });
    const customer = entries.find((e) => e.entityType === "customer");
    expect(customer).toMatchObject({ action: "customer.create", entityId: id, before: null });
    // The customer's entry is the customer as the API shows it, not the request body.
    const { subscriptions: _s, grants: _g, ...shown } = await get(`/admin/v1/customers/${id}`);
    expect(customer.after).toEqual(shown);
    for (const subId of subIds) {
      const [entry, ...more] = entries.filter((e) => e.entityType === "subscription" && e.entityId === subId);
      expect(more).toEqual([]);
      const { createdAt: _c, updatedAt: _u, ...stored } = await get(`/admin/v1/subscriptions/${subId}`);
      expect(entry).toMatchObject({ action: "subscription.create", customerId: id, before: null, after: stored });
      expect(entry.requestId).toBe(customer.requestId);
    }
  });
});

describe("a catalog apply", () => {
  const groupOf = (suffix: string) => `G${suffix}`.toUpperCase();
  const catalogWith = (suffix: string, over: { description?: string; limit?: number; countries?: string[] } = {}) => ({
    regionGroups: { [groupOf(suffix)]: over.countries ?? ["DE", "FR"] },
    features: {
      [`f_${suffix}`]: { type: "metered", description: over.description ?? "one", unit: "calls" },
      [`g_${suffix}`]: { type: "boolean" },
    },
    plans: {
      [`p-${suffix}`]: { name: "P", entitlements: { [`f_${suffix}`]: over.limit ?? 10, [`g_${suffix}`]: true } },
      [`a-${suffix}`]: { name: "A", kind: "addon", entitlements: { [`g_${suffix}`]: true } },
    },
    prices: { [`price_${suffix}`]: `p-${suffix}` },
  });

  it("audits each entity it creates, with the stored entity as after", async () => {
    const s = uid("c")
      .toLowerCase()
      .replaceAll(/[^a-z0-9]/g, "");
    const group = groupOf(s);
    const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: catalogWith(s) });
    expect(res.status).toBe(200);
    const entries = await audit({ from: new Date(0).toISOString() });
    const mine = entries.filter((e) => e.requestId === res.headers.get("x-request-id"));
    const of = (type: string, id: string) => mine.filter((e) => e.entityType === type && e.entityId === id);
    expect(of("feature", `f_${s}`)).toEqual([
      expect.objectContaining({
        action: "feature.create",
        before: null,
        after: await get(`/admin/v1/features/f_${s}`),
      }),
    ]);
    expect(of("feature", `g_${s}`)).toHaveLength(1);
    expect(of("plan", `p-${s}`)).toEqual([
      expect.objectContaining({ action: "plan.create", before: null, after: await get(`/admin/v1/plans/p-${s}`) }),
    ]);
    expect(of("plan", `a-${s}`)[0].after).toMatchObject({ kind: "addon" });
    expect(of("region_group", group)).toEqual([
      expect.objectContaining({
        action: "region_group.create",
        before: null,
        after: await get(`/admin/v1/region-groups/${group}`),
      }),
    ]);
    expect(of("price_mapping", `price_${s}`)).toEqual([
      expect.objectContaining({
        action: "price_mapping.put",
        before: null,
        after: await get(`/admin/v1/prices/price_${s}`),
      }),
    ]);
    // No entry carries a whole catalog.
    expect(mine.every((e) => JSON.stringify(e).length < 4000)).toBe(true);
  });

  it("a second apply audits only what changed, with before and after of that entity; unchanged ones keep their row", async () => {
    const s = uid("c")
      .toLowerCase()
      .replaceAll(/[^a-z0-9]/g, "");
    expect((await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: catalogWith(s) })).status).toBe(200);
    const before = {
      feature: await get(`/admin/v1/features/f_${s}`),
      unchanged: await get(`/admin/v1/features/g_${s}`),
      plan: await get(`/admin/v1/plans/p-${s}`),
      group: await get(`/admin/v1/region-groups/${groupOf(s)}`),
    };
    await w.at(w.clock.now() + 60_000, async () => {
      const res = await w.call("PUT", "/admin/v1/catalog", {
        key: BOOTSTRAP,
        body: catalogWith(s, { description: "two", limit: 20, countries: ["FR", "IT"] }),
      });
      expect(res.status).toBe(200);
      const mine = (await audit({ from: new Date(0).toISOString() })).filter(
        (e) => e.requestId === res.headers.get("x-request-id"),
      );
      const byEntity = Object.fromEntries(mine.map((e) => [`${e.entityType}:${e.entityId}`, e]));
      expect(byEntity[`feature:f_${s}`]).toMatchObject({
        action: "feature.update",
        before: before.feature,
        after: await get(`/admin/v1/features/f_${s}`),
      });
      expect(byEntity[`feature:f_${s}`].after).toMatchObject({
        description: "two",
        createdAt: before.feature.createdAt,
      });
      expect(byEntity[`plan:p-${s}`]).toMatchObject({
        action: "plan.update",
        before: before.plan,
        after: await get(`/admin/v1/plans/p-${s}`),
      });
      expect(byEntity[`region_group:${groupOf(s)}`]).toMatchObject({
        action: "region_group.update",
        before: before.group,
        after: { countries: ["FR", "IT"] },
      });
      // What did not change has no entry, and its stored row is untouched.
      expect(byEntity[`feature:g_${s}`]).toBeUndefined();
      expect(byEntity[`plan:a-${s}`]).toBeUndefined();
      expect(byEntity[`price_mapping:price_${s}`]).toBeUndefined();
      expect(await get(`/admin/v1/features/g_${s}`)).toEqual(before.unchanged);
    });
  });

  it("a catalog of about 1.5 MB applies, and applies again changed (no 500), audited entity by entity", async () => {
    const s = uid("big")
      .toLowerCase()
      .replaceAll(/[^a-z0-9]/g, "");
    const big = (description: string) => {
      const features: Record<string, unknown> = {};
      for (let i = 0; i < 3000; i++) features[`big_${s}_${i}`] = { type: "boolean", description };
      return { features };
    };
    const first = big("x".repeat(480));
    expect(JSON.stringify(first).length).toBeGreaterThan(1_500_000);
    const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: first });
    expect(res.status).toBe(200);
    expect(res.json.applied.features).toBe(3000);
    const again = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: big("y".repeat(480)) });
    expect(again.status).toBe(200);
    const entries = await audit({ entityType: "feature", entityId: `big_${s}_7` });
    expect(entries.map((e) => e.action)).toEqual(["feature.update", "feature.create"]);
    expect(entries[0].before.description).toBe("x".repeat(480));
    expect(entries[0].after.description).toBe("y".repeat(480));
  }, 30_000); // two 1.5 MB bodies parsed, validated and written: seconds on a loaded 2-core machine
});
