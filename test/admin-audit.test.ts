// The audit log through GET /admin/v1/audit (filters, pagination, append-only), and entitlements at a
// past instant from the snapshot history.
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createPlan, loadTestCatalog } from "./helpers/admin";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { allPages, BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

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
  describe("a customer's trail: created, renamed by bob, granted and renamed by alice, a second apart", () => {
    let customerId: string;
    let grantId: string;
    let all: { items: any[]; nextCursor: string | null };
    beforeAll(async () => {
      customerId = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] })).id;
      await w.at(T0 + 1000, () =>
        w.call("PATCH", `/admin/v1/customers/${customerId}`, { key: bob, body: { name: "One" } }),
      );
      const grant = await w.at(T0 + 2000, () =>
        w.call("POST", "/admin/v1/grants", {
          key: alice,
          body: {
            customerId,
            feature: "theme",
            spec: { value: "basic" },
            reason: "same as plan",
            expiresAt: iso(T0 + DAY_MS),
          },
        }),
      );
      grantId = grant.json.grant.id;
      await w.at(T0 + 3000, () =>
        w.call("PATCH", `/admin/v1/customers/${customerId}`, {
          key: alice,
          body: { name: "Two" },
          headers: { "X-Audit-Reason": "typo" },
        }),
      );
      all = await audit(`customerId=${customerId}`);
    });

    it("lists a customer's entries newest first", () => {
      expect(all.items.map((e) => e.action)).toEqual([
        "customer.update",
        "grant.create",
        "customer.update",
        "subscription.create", // the customer's subscription has its own entry, written with the customer's
        "customer.create",
      ]);
    });

    it("an entry says who, what, why and when, with before, after and the request id", () => {
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
    });

    it("finds an operator by id alone or as recorded, combined with the other filters", async () => {
      expect((await audit(`customerId=${customerId}&actor=alice`)).items.map((e) => e.action)).toEqual([
        "customer.update",
        "grant.create",
      ]);
      expect(
        (await audit(`customerId=${customerId}&actor=${encodeURIComponent("alice <alice@example.com>")}`)).items,
      ).toHaveLength(2);
    });

    it("does not find an operator by a prefix of the id", async () => {
      expect((await audit(`customerId=${customerId}&actor=ali`)).items).toHaveLength(0);
    });

    it("filters by entity", async () => {
      expect((await audit(`entityType=grant&entityId=${grantId}`)).items.map((e) => e.action)).toEqual([
        "grant.create",
      ]);
    });

    it("filters by a time window that includes from and excludes to", async () => {
      const window = await audit(`customerId=${customerId}&from=${iso(T0 + 1000)}&to=${iso(T0 + 3000)}`);
      expect(window.items.map((e) => e.at)).toEqual([iso(T0 + 2000), iso(T0 + 1000)]);
    });

    it("pages through the same entries without gaps or repeats", async () => {
      const paged = await allPages(w, `/admin/v1/audit?customerId=${customerId}`, viewer, 3);
      expect(paged.map((e) => e.id)).toEqual(all.items.map((e) => e.id));
    });
  });

  it("records the request id the response carried", async () => {
    const key = `f_${uid("x")
      .replace(/[^a-z0-9]/gi, "_")
      .toLowerCase()}`;
    const res = await w.call("POST", "/admin/v1/features", { key: alice, body: { key, type: "boolean" } });
    const entry = (await audit(`entityType=feature&entityId=${key}`)).items[0];
    expect(entry.requestId).toBe(res.headers.get("X-Request-Id"));
  });

  it("no route changes it (405 for every writing method)", async () => {
    for (const method of ["PUT", "PATCH", "DELETE", "POST"])
      expectProblem(
        await w.call(method, "/admin/v1/audit", { key: BOOTSTRAP, body: method === "DELETE" ? undefined : {} }),
        405,
      );
  });

  it("the table refuses updates and deletes (append-only)", async () => {
    await expect(env.DB.prepare("UPDATE audit_log SET actor = 'x'").run()).rejects.toThrow(/append-only/);
    await expect(env.DB.prepare("DELETE FROM audit_log").run()).rejects.toThrow(/append-only/);
  });

  it("rejects bad filters with 400 problems", async () => {
    expectProblem(await w.call("GET", "/admin/v1/audit?from=yesterday", { key: viewer }), 400);
    expectProblem(await w.call("GET", "/admin/v1/audit?cursor=abc", { key: viewer }), 400);
  });
});

describe("GET /admin/v1/customers/{id}/entitlements?at=", () => {
  // A trial customer created at T0 on a plan whose api_calls limit goes from 10 to 500 at T0 + 1 day;
  // "now" is T0 + 5 days.
  let c: Awaited<ReturnType<typeof createCustomer>>;
  beforeAll(async () => {
    w.clock.set(T0);
    const planId = uid("plan");
    await createPlan(w, planId, { sso: { enabled: true, roles: ["admin"] }, api_calls: { limit: 10 } });
    c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId, status: "trialing", trialEnd: iso(T0 + 3 * DAY_MS) }],
    });
    w.clock.set(T0 + DAY_MS);
    await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/api_calls?migrate=now`, {
      key: alice,
      body: { limit: 500 },
    });
    w.clock.set(T0 + 5 * DAY_MS);
  });
  afterAll(() => w.clock.set(T0));

  const at = (instant: number, extra = "") =>
    w.call("GET", `/admin/v1/customers/${c.id}/entitlements?at=${iso(instant)}${extra}`, { key: viewer });

  it("answers from the snapshot compiled at or before the instant", async () => {
    const early = await at(T0 + DAY_MS / 2, "&role=admin");
    expect(early.status).toBe(200);
    expect(early.json).toMatchObject({
      customerId: c.id,
      at: iso(T0 + DAY_MS / 2),
      snapshotVersion: c.snapshotVersion,
      compiledAt: iso(T0),
    });
    expect(early.json.features.api_calls).toMatchObject({ allowed: true, limit: 10 });
    expect((await at(T0)).json.snapshotVersion).toBe(c.snapshotVersion);
  });

  it("evaluates the rules at that instant, with the role given", async () => {
    const early = await at(T0 + DAY_MS / 2, "&role=admin");
    expect(early.json.features.sso).toMatchObject({ allowed: true, reason: "ok", expiresAt: iso(T0 + 3 * DAY_MS) });
    expect((await at(T0 + DAY_MS / 2)).json.features.sso.reason).toBe("role_denied");
  });

  it("an instant after a change reads the snapshot the change compiled", async () => {
    const later = await at(T0 + 2 * DAY_MS);
    expect(later.json.snapshotVersion).toBeGreaterThan(c.snapshotVersion);
    expect(later.json.features.api_calls).toMatchObject({ allowed: true, limit: 500 });
  });

  it("evaluates at the instant asked about: after the trial ended, the same snapshot says trial_expired", async () => {
    expect((await at(T0 + 4 * DAY_MS)).json.features.api_calls).toMatchObject({
      allowed: false,
      reason: "trial_expired",
    });
  });

  it("an instant before the customer's first snapshot is a 404", async () => {
    expectProblem(await at(T0 - 1), 404);
  });

  it("an instant in the future is a 400", async () => {
    expectProblem(await at(T0 + 6 * DAY_MS), 400);
  });

  it("an unknown customer is a 404", async () => {
    expectProblem(
      await w.call("GET", `/admin/v1/customers/${uid("nobody")}/entitlements?at=${iso(T0)}`, { key: viewer }),
      404,
    );
  });

  it("without `at`, answers for now", async () => {
    expect((await w.call("GET", `/admin/v1/customers/${c.id}/entitlements`, { key: viewer })).json.at).toBe(
      iso(T0 + 5 * DAY_MS),
    );
  });
});
