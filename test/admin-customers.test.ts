// Customers through the admin API: list (filters, cursor), detail, update (audited, residency fixed)
// and delete (only while nothing hangs off the customer).
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, createPlan, loadTestCatalog } from "./helpers/admin";
import { auditOf, parsed } from "./helpers/d1";
import { kvSnapshot } from "./helpers/kv";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { allPages, checker, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let approver: string;
let viewer: string;
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  approver = await operatorToken("approver", "ada");
  viewer = await operatorToken("viewer", "vi");
  checkKey = await createKey(w, ["check"]);
});
const check = checker(w, () => checkKey);

describe("customers", () => {
  it("lists a plan's customers in id order, a page at a time", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { sso: true });
    const ids = [];
    for (let i = 0; i < 5; i++)
      ids.push((await createCustomer(w, { id: `${planId}-c${i}`, subscriptions: [{ planId }] })).id);
    await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const seen = (await allPages(w, `/admin/v1/customers?planId=${planId}`, viewer, 2)).map((c) => c.id);
    expect(seen).toEqual(ids);
  });

  it("shows a customer with its subscriptions and live grants", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    await w.call("POST", "/admin/v1/grants", {
      key: await operatorToken("support"),
      body: { customerId: c.id, feature: "sso", spec: { enabled: true }, reason: "r", expiresAt: iso(T0 + DAY_MS) },
    });
    const res = await w.call("GET", `/admin/v1/customers/${c.id}`, { key: viewer });
    expect(res.json).toMatchObject({
      id: c.id,
      residency: null,
      subscriptions: [{ id: c.subscriptions[0], planId: "free", status: "active", scheduledPlanId: null }],
    });
    expect(res.json.grants).toEqual([
      expect.objectContaining({ feature: "sso", status: "pending", elevated: true, expiresAt: iso(T0 + DAY_MS) }),
    ]);
  });

  it("finds a customer by billing id", async () => {
    const c = await createCustomer(w, { id: uid(), billingCustomerId: `cus_${uid("b")}` });
    const billingId = (await w.call("GET", `/admin/v1/customers/${c.id}`, { key: viewer })).json.billingCustomerId;
    const byBilling = await w.call("GET", `/admin/v1/customers?billingCustomerId=${billingId}`, { key: viewer });
    expect(byBilling.json.items.map((x: { id: string }) => x.id)).toEqual([c.id]);
  });

  it("answers 404 for a customer that does not exist", async () => {
    expectProblem(await w.call("GET", `/admin/v1/customers/${uid("nobody")}`, { key: viewer }), 404);
  });

  const patch = (id: string, body: Record<string, unknown>, headers?: Record<string, string>) =>
    w.call("PATCH", `/admin/v1/customers/${id}`, { key: approver, body, headers });

  it("updates name and billing id, audited with before and after, and leaves the snapshot alone", async () => {
    const c = await createCustomer(w, { id: uid(), name: "Old", residency: "eu", subscriptions: [{ planId: "free" }] });
    const res = await patch(
      c.id,
      { name: "New", billingCustomerId: `cus_new_${c.id}` },
      { "X-Audit-Reason": "rebrand" },
    );
    expect(res.json).toMatchObject({ name: "New", billingCustomerId: `cus_new_${c.id}`, residency: "eu" });
    const last = (await auditOf("customer", c.id)).at(-1)!;
    expect(last).toMatchObject({ action: "customer.update", actor: "ada", reason: "rebrand" });
    expect([parsed(last.before).name, parsed(last.after).name]).toEqual(["Old", "New"]);
    expect((await kvSnapshot(c.id))!.version).toBe(c.snapshotVersion);
  });

  it("residency is fixed: changing it is a 409, restating it is fine", async () => {
    const c = await createCustomer(w, { id: uid(), residency: "eu", subscriptions: [{ planId: "free" }] });
    expectProblem(await patch(c.id, { residency: null }), 409);
    expect((await patch(c.id, { residency: "eu" })).status).toBe(200);
  });

  it("a billing id another customer has is a 409", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const taken = await createCustomer(w, { id: uid(), billingCustomerId: `cus_${uid("t")}` });
    const tk = (await w.call("GET", `/admin/v1/customers/${taken.id}`, { key: viewer })).json.billingCustomerId;
    expectProblem(await patch(c.id, { billingCustomerId: tk }), 409);
  });

  it("refuses to delete a customer with something attached: a 409 that counts it", async () => {
    const busy = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const refused = expectProblem(await w.call("DELETE", `/admin/v1/customers/${busy.id}`, { key: approver }), 409);
    expect(refused.references).toEqual({ subscriptions: 1, grants: 0, apiKeys: 0, usageEvents: 0 });
  });

  it("deletes a customer with nothing attached, audited; checks then answer unknown_customer", async () => {
    const bare = await createCustomer(w, { id: uid() });
    expect((await check(bare.id, "sso")).reason).toBe("not_entitled");
    const res = await w.call("DELETE", `/admin/v1/customers/${bare.id}`, {
      key: approver,
      headers: { "X-Audit-Reason": "created by mistake" },
    });
    expect(res.json).toEqual({ id: bare.id, deleted: true });
    expect(await env.DB.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(bare.id).first()).toBeNull();
    expect(await kvSnapshot(bare.id)).toBeNull();
    expect((await check(bare.id, "sso")).reason).toBe("unknown_customer");
    expect((await auditOf("customer", bare.id)).map((a) => [a.action, a.reason])).toEqual([
      ["customer.create", null],
      ["customer.delete", "created by mistake"],
    ]);
  });
});
