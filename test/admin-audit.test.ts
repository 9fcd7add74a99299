// The audit log through GET /admin/v1/audit (filters, pagination, append-only), and entitlements at a
// past instant from the snapshot history.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createPlan, expectProblem, operatorToken } from "./admin-helpers";
import { BOOTSTRAP, createCustomer, DAY, iso, loadTestCatalog, T0, testWorker, uid } from "./helpers";

const w = testWorker();
let viewer: string;
let alice: string;
let bob: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  viewer = await operatorToken("viewer", "val-viewer");
  alice = await operatorToken("admin", "alice", "alice@example.com");
  bob = await operatorToken("approver", "bob");
});

const audit = async (query: string) => {
  const res = await w.call("GET", `/admin/v1/audit?${query}`, { key: viewer });
  expect(res.status).toBe(200);
  return res.json as { items: any[]; nextCursor: string | null };
};

describe("GET /admin/v1/audit", () => {
  it("filters by customer, actor, entity and time, newest first, and pages without gaps", async () => {
    w.clock.set(T0);
    const customerId = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] })).id;
    w.clock.set(T0 + 1000);
    await w.call("PATCH", `/admin/v1/customers/${customerId}`, { key: bob, body: { name: "One" } });
    w.clock.set(T0 + 2000);
    const grant = await w.call("POST", "/admin/v1/grants", {
      key: alice,
      body: {
        customerId,
        feature: "theme",
        spec: { value: "basic" },
        reason: "same as plan",
        expiresAt: iso(T0 + DAY),
      },
    });
    w.clock.set(T0 + 3000);
    await w.call("PATCH", `/admin/v1/customers/${customerId}`, {
      key: alice,
      body: { name: "Two" },
      headers: { "X-Audit-Reason": "typo" },
    });

    const all = await audit(`customerId=${customerId}`);
    expect(all.items.map((e) => e.action)).toEqual([
      "customer.update",
      "grant.create",
      "customer.update",
      "customer.create",
    ]);
    expect(all.items[0]).toMatchObject({
      actor: "alice <alice@example.com>",
      actorType: "operator",
      entityType: "customer",
      entityId: customerId,
      customerId,
      reason: "typo",
      at: iso(T0 + 3000),
    });
    expect(all.items[0].before).toMatchObject({ name: "One" });
    expect(all.items[0].after).toMatchObject({ name: "Two" });
    expect(all.items[0].requestId).toEqual(expect.any(String));

    // An operator is found by id alone or as recorded; the filters combine.
    expect((await audit(`customerId=${customerId}&actor=alice`)).items.map((e) => e.action)).toEqual([
      "customer.update",
      "grant.create",
    ]);
    expect(
      (await audit(`customerId=${customerId}&actor=${encodeURIComponent("alice <alice@example.com>")}`)).items,
    ).toHaveLength(2);
    expect((await audit(`customerId=${customerId}&actor=ali`)).items).toHaveLength(0);
    expect((await audit(`entityType=grant&entityId=${grant.json.grant.id}`)).items.map((e) => e.action)).toEqual([
      "grant.create",
    ]);
    const window = await audit(`customerId=${customerId}&from=${iso(T0 + 1000)}&to=${iso(T0 + 3000)}`);
    expect(window.items.map((e) => e.at)).toEqual([iso(T0 + 2000), iso(T0 + 1000)]);

    const paged: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: any[]; nextCursor: string | null } = await audit(
        `customerId=${customerId}&limit=3${cursor ? `&cursor=${cursor}` : ""}`,
      );
      paged.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all.items.map((e) => e.id));
  });

  it("records the request id the response carried", async () => {
    const key = `f_${uid("x")
      .replace(/[^a-z0-9]/gi, "_")
      .toLowerCase()}`;
    const res = await w.call("POST", "/admin/v1/features", { key: alice, body: { key, type: "boolean" } });
    const entry = (await audit(`entityType=feature&entityId=${key}`)).items[0];
    expect(entry.requestId).toBe(res.headers.get("X-Request-Id"));
  });

  it("no route changes it, and the table refuses updates and deletes", async () => {
    for (const method of ["PUT", "PATCH", "DELETE", "POST"])
      expectProblem(
        await w.call(method, "/admin/v1/audit", { key: BOOTSTRAP, body: method === "DELETE" ? undefined : {} }),
        405,
      );
    await expect(env.DB.prepare("UPDATE audit_log SET actor = 'x'").run()).rejects.toThrow(/append-only/);
    await expect(env.DB.prepare("DELETE FROM audit_log").run()).rejects.toThrow(/append-only/);
  });

  it("rejects bad filters with 400 problems", async () => {
    expectProblem(await w.call("GET", "/admin/v1/audit?from=yesterday", { key: viewer }), 400);
    expectProblem(await w.call("GET", "/admin/v1/audit?cursor=abc", { key: viewer }), 400);
  });
});

describe("GET /admin/v1/customers/{id}/entitlements?at=", () => {
  it("answers from the snapshot compiled at or before the instant, evaluated at that instant", async () => {
    w.clock.set(T0);
    const planId = uid("plan");
    await createPlan(w, planId, { sso: { enabled: true, roles: ["admin"] }, api_calls: { limit: 10 } });
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId, status: "trialing", trialEnd: iso(T0 + 3 * DAY) }],
    });
    w.clock.set(T0 + DAY);
    await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/api_calls`, { key: alice, body: { limit: 500 } });
    w.clock.set(T0 + 5 * DAY);

    const at = (instant: number, extra = "") =>
      w.call("GET", `/admin/v1/customers/${c.id}/entitlements?at=${iso(instant)}${extra}`, { key: viewer });
    const early = await at(T0 + DAY / 2, "&role=admin");
    expect(early.status).toBe(200);
    expect(early.json).toMatchObject({
      customerId: c.id,
      at: iso(T0 + DAY / 2),
      snapshotVersion: c.snapshotVersion,
      compiledAt: iso(T0),
    });
    expect(early.json.features.api_calls).toMatchObject({ allowed: true, limit: 10 });
    expect(early.json.features.sso).toMatchObject({ allowed: true, reason: "ok", expiresAt: iso(T0 + 3 * DAY) });
    expect((await at(T0 + DAY / 2)).json.features.sso.reason).toBe("role_denied");

    const later = await at(T0 + 2 * DAY);
    expect(later.json.snapshotVersion).toBeGreaterThan(c.snapshotVersion);
    expect(later.json.features.api_calls).toMatchObject({ allowed: true, limit: 500 });
    // Evaluated at the instant asked about: after the trial ended, the same snapshot says trial_expired.
    expect((await at(T0 + 4 * DAY)).json.features.api_calls).toMatchObject({ allowed: false, reason: "trial_expired" });
    expect((await at(T0)).json.snapshotVersion).toBe(c.snapshotVersion);

    expectProblem(await at(T0 - 1), 404);
    expectProblem(await at(T0 + 6 * DAY), 400);
    expectProblem(
      await w.call("GET", `/admin/v1/customers/${uid("nobody")}/entitlements?at=${iso(T0)}`, { key: viewer }),
      404,
    );
    // Without `at`: now.
    expect((await w.call("GET", `/admin/v1/customers/${c.id}/entitlements`, { key: viewer })).json.at).toBe(
      iso(T0 + 5 * DAY),
    );
  });
});
