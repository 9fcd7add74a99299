// Features, plans and region groups through the admin API: validation, conflicts, the audit record of
// every write, pagination, and the catalog revision each write makes (no customer is recompiled).
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { testCatalog } from "./fixtures/catalog";
import { createCustomer, createKey, createPlan, loadTestCatalog } from "./helpers/admin";
import { auditOf, parsed } from "./helpers/d1";
import { kvPart, kvSnapshot } from "./helpers/kv";
import { operatorToken } from "./helpers/operators";
import { allPages, BOOTSTRAP, checker, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let admin: string;
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  admin = await operatorToken("admin", "op-catalog-admin", "catalog@example.com");
  checkKey = await createKey(w, ["check"]);
});
const check = checker(w, () => checkKey);

const fkey = () =>
  uid("feat")
    .toLowerCase()
    .replace(/[^a-z0-9_.-]/g, "_");

describe("features", () => {
  it("creates a feature, audits it with actor, request id and reason, and puts it in every snapshot", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const key = fkey();
    const res = await w.call("POST", "/admin/v1/features", {
      key: admin,
      body: { key, type: "boolean", description: "New" },
      headers: { "X-Audit-Reason": "launch", "cf-ray": `ray-${key}` },
    });
    expect(res.status).toBe(201);
    expect(res.json.feature).toMatchObject({ key, type: "boolean", description: "New", failurePolicy: "closed" });
    expect(res.json).toMatchObject({ catalogRev: expect.any(Number), version: `0.${res.json.catalogRev}` });
    const [audit] = await auditOf("feature", key);
    expect(audit).toMatchObject({
      action: "feature.create",
      actor: "op-catalog-admin <catalog@example.com>",
      actor_type: "operator",
      reason: "launch",
      request_id: `ray-${key}`,
      before: null,
    });
    expect(parsed(audit!.after)).toMatchObject({ key, type: "boolean" });
    // The customer compiled before the feature existed learns about it at once, with no recompile of its
    // part: unknown_feature becomes not_entitled, and its part in KV is the one of before.
    const part = await kvPart(c.id);
    expect(await check(c.id, key)).toMatchObject({ allowed: false, reason: "not_entitled" });
    expect(await kvPart(c.id)).toEqual(part);
  });

  it("refuses a duplicate (409), an unknown one (404) and a bad key (400), all problem+json", async () => {
    const key = fkey();
    await w.call("POST", "/admin/v1/features", { key: admin, body: { key, type: "metered" } });
    expectProblem(await w.call("POST", "/admin/v1/features", { key: admin, body: { key, type: "metered" } }), 409);
    expectProblem(await w.call("GET", `/admin/v1/features/${fkey()}`, { key: admin }), 404);
    const bad = expectProblem(
      await w.call("POST", "/admin/v1/features", { key: admin, body: { key: "Bad Key", type: "boolean" } }),
      400,
    );
    expect(bad.errors?.[0]?.path).toBe("json.key");
  });

  it("updates a feature (before/after audited) but never its type", async () => {
    const key = fkey();
    await w.call("POST", "/admin/v1/features", { key: admin, body: { key, type: "metered", unit: "calls" } });
    const res = await w.call("PATCH", `/admin/v1/features/${key}`, {
      key: admin,
      body: { failurePolicy: "open", unit: null },
    });
    expect(res.status).toBe(200);
    expect(res.json.feature).toMatchObject({ failurePolicy: "open", unit: null, type: "metered" });
    const audits = await auditOf("feature", key);
    expect(audits.map((a) => a.action)).toEqual(["feature.create", "feature.update"]);
    expect(parsed(audits[1]!.before)).toMatchObject({ failurePolicy: "closed", unit: "calls" });
    expect(parsed(audits[1]!.after)).toMatchObject({ failurePolicy: "open", unit: null });
    expectProblem(await w.call("PATCH", `/admin/v1/features/${key}`, { key: admin, body: { type: "boolean" } }), 400);
  });

  it("deletes only a feature nothing refers to", async () => {
    const key = fkey();
    await w.call("POST", "/admin/v1/features", { key: admin, body: { key, type: "boolean" } });
    const planId = uid("plan");
    await createPlan(w, planId, { [key]: true });
    const refused = expectProblem(await w.call("DELETE", `/admin/v1/features/${key}`, { key: admin }), 409);
    expect(refused.references).toEqual({ plans: 1, grants: 0, prices: 0, features: 0 });
    await w.call("DELETE", `/admin/v1/plans/${planId}/entitlements/${key}`, { key: admin });
    const res = await w.call("DELETE", `/admin/v1/features/${key}`, { key: admin });
    expect(res.status).toBe(200);
    expect(await env.DB.prepare("SELECT 1 FROM features WHERE key = ?1").bind(key).first()).toBeNull();
    expect((await auditOf("feature", key)).at(-1)).toMatchObject({ action: "feature.delete", after: null });
  });

  it("lists with a cursor: pages do not overlap and together hold every feature, filtered by type", async () => {
    const metered = await allPages(w, "/admin/v1/features?type=metered", admin, 2);
    for (const f of metered) expect(f.type).toBe("metered");
    const expected = (
      await env.DB.prepare("SELECT key FROM features WHERE type = 'metered' ORDER BY key").all<{ key: string }>()
    ).results.map((r) => r.key);
    expect(metered.map((f) => f.key)).toEqual(expected);
    expectProblem(await w.call("GET", "/admin/v1/features?cursor=not-a-cursor", { key: admin }), 400);
    expectProblem(await w.call("GET", "/admin/v1/features?limit=1000", { key: admin }), 400);
  });
});

describe("plans", () => {
  it("validates every entitlement against its feature's type and the region groups", async () => {
    const res = await w.call("POST", "/admin/v1/plans", {
      key: admin,
      body: {
        id: uid("plan"),
        name: "Bad",
        entitlements: {
          sso: { enabled: true, limit: 5 },
          theme: 3,
          api_calls: { limit: 1, regions: { allow: ["NOWHERE"] } },
          nope: true,
        },
      },
    });
    const p = expectProblem(res, 400);
    expect(p.errors!.map((e) => e.path).sort()).toEqual([
      "json.entitlements.api_calls",
      "json.entitlements.nope",
      "json.entitlements.sso",
    ]);
    expect(p.errors!.find((e) => e.path === "json.entitlements.sso")!.message).toMatch(
      /limit applies to metered, credits and seats features only/,
    );
  });

  it("a plan change reaches its customers' checks with no recompile, and the audit has the plan before and after", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { sso: false, api_calls: { limit: 10 } });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId }] });
    expect((await check(c.id, "sso")).allowed).toBe(false);
    const res = await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/sso?migrate=now`, {
      key: admin,
      body: true,
      headers: { "X-Audit-Reason": "sso for all" },
    });
    expect(res.status).toBe(200);
    expect(res.json.plan.entitlements).toEqual({ sso: { enabled: true }, api_calls: { enabled: true, limit: 10 } });
    const answer = await check(c.id, "sso");
    expect(answer).toMatchObject({ allowed: true, snapshotVersion: (await kvSnapshot(c.id))!.version });
    expect(answer.snapshotVersion).toBeGreaterThan(c.snapshotVersion);
    expect(answer.version).toBe(`${c.version.split(".")[0]}.${res.json.catalogRev}`);
    const last = (await auditOf("plan", planId)).at(-1)!;
    expect(last).toMatchObject({ action: "plan.entitlement.set", reason: "sso for all" });
    expect(parsed(last.before).entitlements.sso).toEqual({ enabled: false });
    expect(parsed(last.after).entitlements.sso).toEqual({ enabled: true });
  });

  it("a plan's kind changes only while nothing refers to it (PUT and the catalog file)", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { sso: true });
    const asAddon = { name: planId, kind: "addon", entitlements: { sso: true } };
    // Unused: it may become an add-on, and back.
    expect((await w.call("PUT", `/admin/v1/plans/${planId}`, { key: admin, body: asAddon })).json.plan.kind).toBe(
      "addon",
    );
    const asBase = { ...asAddon, kind: "base" };
    expect((await w.call("PUT", `/admin/v1/plans/${planId}`, { key: admin, body: asBase })).status).toBe(200);
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId }] });
    const refused = await w.call("PUT", `/admin/v1/plans/${planId}`, { key: admin, body: asAddon });
    expect(expectProblem(refused, 409, "conflict")).toMatchObject({
      reason: "plan_in_use",
      references: { subscriptions: 1, prices: 0 },
    });
    const body = { features: { sso: testCatalog.features.sso }, plans: { [planId]: asAddon } };
    const file = await w.call("PUT", "/admin/v1/catalog", { key: admin, body });
    expect(expectProblem(file, 409, "conflict").reason).toBe("plan_in_use");
    // Nothing was written: still a base plan, and the customer still holds it.
    expect((await w.call("GET", `/admin/v1/plans/${planId}`, { key: admin })).json.kind).toBe("base");
    expect((await check(c.id, "sso")).allowed).toBe(true);
  });

  it("replaces a plan whole (PUT), and deletes only an unused one", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { sso: true });
    const put = await w.call("PUT", `/admin/v1/plans/${planId}`, {
      key: admin,
      body: { name: "Renamed", kind: "addon", entitlements: { theme: "dark" } },
    });
    expect(put.json.plan).toMatchObject({
      name: "Renamed",
      kind: "addon",
      entitlements: { theme: { enabled: true, value: "dark" } },
    });
    expect((await w.call("GET", `/admin/v1/plans/${planId}`, { key: admin })).json.entitlements).toEqual({
      theme: { enabled: true, value: "dark" },
    });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }, { planId }] });
    expect(expectProblem(await w.call("DELETE", `/admin/v1/plans/${planId}`, { key: admin }), 409).references).toEqual({
      subscriptions: 1,
      prices: 0,
    });
    const unused = uid("plan");
    await createPlan(w, unused, {});
    expect((await w.call("DELETE", `/admin/v1/plans/${unused}`, { key: admin })).status).toBe(200);
    expectProblem(await w.call("GET", `/admin/v1/plans/${unused}`, { key: admin }), 404);
    expect(c.id).toBeTruthy();
  });

  it("lists plans with their entitlements, filtered by kind", async () => {
    const res = await w.call("GET", "/admin/v1/plans?kind=addon&limit=200", { key: admin });
    expect(res.status).toBe(200);
    expect(res.json.items.every((p: { kind: string }) => p.kind === "addon")).toBe(true);
    expect(res.json.items.find((p: { id: string }) => p.id === "extra-calls")).toMatchObject({
      entitlements: { api_calls: { limit: 500 } },
    });
  });
});

describe("region groups", () => {
  const putGroup = (group: string, countries: string[]) =>
    w.call("PUT", `/admin/v1/region-groups/${group}`, { key: admin, body: { countries } });
  /** A new group of DE and FR, allow-listed for beta_ai by a new plan that one new customer is on. */
  async function groupInUse() {
    const group = `G${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
    const created = await putGroup(group, ["DE", "FR", "DE"]);
    const planId = uid("plan");
    await createPlan(w, planId, { beta_ai: { enabled: true, regions: { allow: [group] } } });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId }] });
    return { group, created, customerId: c.id };
  }

  it("stores a group's countries once each", async () => {
    expect((await groupInUse()).created.json.regionGroup.countries).toEqual(["DE", "FR"]);
  });

  it("a group change reaches checks at once, audited with before and after", async () => {
    const { group, customerId } = await groupInUse();
    const from = (country: string) => check(customerId, "beta_ai", { country });
    expect((await from("IT")).reason).toBe("region_blocked");
    expect((await putGroup(group, ["DE", "IT"])).status).toBe(200);
    expect((await from("IT")).allowed).toBe(true);
    const audits = await auditOf("region_group", group);
    expect(audits.map((a) => a.action)).toEqual(["region_group.create", "region_group.update"]);
    expect(parsed(audits[1]!.before).countries).toEqual(["DE", "FR"]);
  });

  it("a group in use cannot be deleted: a 409 that counts what refers to it", async () => {
    const { group } = await groupInUse();
    expect(
      expectProblem(await w.call("DELETE", `/admin/v1/region-groups/${group}`, { key: admin }), 409).references,
    ).toEqual({ plans: 1, grants: 0 });
  });

  it("refuses a country that is not an ISO 3166 code (400)", async () => {
    const { group } = await groupInUse();
    expectProblem(await putGroup(group, ["germany"]), 400);
  });

  it("lists groups by name", async () => {
    const res = await w.call("GET", "/admin/v1/region-groups?limit=200", { key: BOOTSTRAP });
    expect(res.json.items.find((g: { name: string }) => g.name === "EU")?.countries).toContain("DE");
  });
});
