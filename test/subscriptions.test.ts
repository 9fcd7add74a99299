// /admin/v1/subscriptions: create, read, list, lifecycle actions, roles; asserting D1 rows, audit rows
// and check answers, across time with the injected clock.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, customerWith, loadTestCatalog, subscriptionAction } from "./helpers/admin";
import { auditOf, markProviderManaged, parsed, subscriptionRow } from "./helpers/d1";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { allPages, BOOTSTRAP, checker, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  checkKey = await createKey(w, ["check"]);
});

const check = checker(w, () => checkKey);

describe("create, get, list", () => {
  it("creates a subscription for an existing customer, audited, and checks see it at once", async () => {
    const c = await createCustomer(w, { id: uid() });
    expect((await check(c.id, "audit_export")).allowed).toBe(false);
    const res = await w.call("POST", "/admin/v1/subscriptions", {
      key: BOOTSTRAP,
      body: { customerId: c.id, planId: "pro", currentPeriodEnd: iso(T0 + 30 * DAY_MS), reason: "sales deal 42" },
    });
    expect(res.status).toBe(201);
    const sub = res.json.subscription;
    expect(sub).toMatchObject({
      customerId: c.id,
      planId: "pro",
      status: "active",
      startedAt: iso(T0),
      currentPeriodStart: iso(T0),
      currentPeriodEnd: iso(T0 + 30 * DAY_MS),
      billingAnchor: iso(T0),
    });
    expect(res.json.snapshotVersion).toBeGreaterThan(c.snapshotVersion);
    expect(await subscriptionRow(sub.id)).toMatchObject({
      customer_id: c.id,
      plan_id: "pro",
      status: "active",
      current_period_end: T0 + 30 * DAY_MS,
    });
    const audit = (await auditOf("subscription", sub.id))[0]!;
    expect(audit).toMatchObject({
      action: "subscription.create",
      actor: "bootstrap",
      customer_id: c.id,
      before: null,
      reason: "sales deal 42",
    });
    const { createdAt: _c, updatedAt: _u, ...withoutTimes } = sub;
    expect(parsed(audit.after)).toEqual(withoutTimes);
    expect((await check(c.id, "audit_export")).allowed).toBe(true);
    expect((await w.call("GET", `/admin/v1/subscriptions/${sub.id}`, { key: BOOTSTRAP })).json).toEqual(sub);
  });

  const subscriptionsOf = async (customerId: string) =>
    (await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE customer_id = ?1")
      .bind(customerId)
      .first<{ n: number }>())!.n;
  const createSubscription = (body: Record<string, unknown>) =>
    w.call("POST", "/admin/v1/subscriptions", { key: BOOTSTRAP, body });

  it("refuses an unknown customer with a 400 problem naming json.customerId", async () => {
    const noCustomer = await createSubscription({ customerId: uid("nobody"), planId: "pro" });
    expect(noCustomer.status).toBe(400);
    expect(noCustomer.headers.get("content-type")).toBe("application/problem+json");
    expect(noCustomer.json.errors[0].path).toBe("json.customerId");
  });

  it("refuses an unknown plan (400), writing nothing", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ id: uid("sub"), planId: "free" }] });
    expect((await createSubscription({ customerId: c.id, planId: "platinum" })).status).toBe(400);
    expect(await subscriptionsOf(c.id)).toBe(1);
  });

  it("refuses an id that exists (409), writing nothing", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ id: uid("sub"), planId: "free" }] });
    expect((await createSubscription({ customerId: c.id, id: c.subscriptions[0], planId: "pro" })).status).toBe(409);
    expect(await subscriptionsOf(c.id)).toBe(1);
  });

  it("answers 404 for a subscription that does not exist", async () => {
    expect(await w.call("GET", `/admin/v1/subscriptions/${uid("sub")}`, { key: BOOTSTRAP })).toMatchObject({
      status: 404,
    });
  });

  describe("list", () => {
    let c: Awaited<ReturnType<typeof createCustomer>>;
    beforeAll(async () => {
      c = await createCustomer(w, {
        id: uid(),
        subscriptions: [
          { planId: "pro" },
          { planId: "sso-addon" },
          { planId: "extra-calls" },
          { planId: "sso-addon", status: "canceled" },
        ],
      });
    });

    it("pages through a customer's subscriptions with a cursor, each one once", async () => {
      const seen = (await allPages(w, `/admin/v1/subscriptions?customerId=${c.id}`, BOOTSTRAP, 2)).map((s) => s.id);
      expect(seen.sort()).toEqual([...c.subscriptions].sort());
    });

    it("filters by plan and status", async () => {
      const addons = await w.call("GET", `/admin/v1/subscriptions?customerId=${c.id}&planId=sso-addon&status=active`, {
        key: BOOTSTRAP,
      });
      expect(addons.json).toMatchObject({ items: [{ planId: "sso-addon", status: "active" }], nextCursor: null });
    });

    it("refuses an unknown status (400)", async () => {
      expect((await w.call("GET", "/admin/v1/subscriptions?status=paused", { key: BOOTSTRAP })).status).toBe(400);
    });

    it("refuses a malformed cursor (400)", async () => {
      expect((await w.call("GET", "/admin/v1/subscriptions?cursor=%25%25", { key: BOOTSTRAP })).status).toBe(400);
    });
  });
});

describe("plan changes", () => {
  it("upgrades immediately: the check answer changes with the response, audited with before/after", async () => {
    const { customerId, subId, version } = await customerWith(w, { planId: "free" });
    expect((await check(customerId, "audit_export")).reason).toBe("not_entitled");
    const res = await subscriptionAction(w, subId, "change-plan", {
      planId: "pro",
      when: "immediately",
      reason: "upgrade requested",
    });
    expect(res.status).toBe(200);
    expect(res.json.subscription).toMatchObject({ planId: "pro", scheduledPlanId: null });
    expect(res.json.snapshotVersion).toBeGreaterThan(version);
    expect(await subscriptionRow(subId)).toMatchObject({ plan_id: "pro", updated_at: T0 });
    expect((await check(customerId, "audit_export")).allowed).toBe(true);
    const last = (await auditOf("subscription", subId)).at(-1)!;
    expect(last).toMatchObject({ action: "subscription.change_plan", actor: "bootstrap", reason: "upgrade requested" });
    expect(parsed(last.before)).toMatchObject({ planId: "free" });
    expect(parsed(last.after)).toMatchObject({ planId: "pro" });
  });

  it("downgrades at period end: the snapshot switches on time with no request; the cron records it later", async () => {
    const end = T0 + 10 * DAY_MS;
    const { customerId, subId } = await customerWith(w, { planId: "pro", currentPeriodEnd: iso(end) });
    const res = await subscriptionAction(w, subId, "change-plan", { planId: "free", when: "at_period_end" });
    expect(res.json.subscription).toMatchObject({
      planId: "pro",
      scheduledPlanId: "free",
      scheduledChangeAt: iso(end),
    });
    expect(await subscriptionRow(subId)).toMatchObject({
      plan_id: "pro",
      scheduled_plan_id: "free",
      scheduled_change_at: end,
    });
    expect(await check(customerId, "audit_export")).toMatchObject({ allowed: true, expiresAt: iso(end) });
    await w.at(end, async () => {
      // Denied on time, with the reason it will keep once the cron records the change (scheduled.test.ts).
      expect(await check(customerId, "audit_export")).toMatchObject({ allowed: false, reason: "not_entitled" });
      expect((await check(customerId, "api_calls")).limit).toBe(100);
    });
  });

  it("undoes a scheduled change", async () => {
    const { subId } = await customerWith(w, { planId: "pro", currentPeriodEnd: iso(T0 + 5 * DAY_MS) });
    await subscriptionAction(w, subId, "change-plan", { planId: "free", when: "at_period_end" });
    expect(
      (await subscriptionAction(w, subId, "undo-scheduled-change", { reason: "customer stayed" })).json.subscription,
    ).toMatchObject({
      scheduledPlanId: null,
      scheduledChangeAt: null,
    });
  });

  it("refuses to change a base plan into an add-on (400)", async () => {
    const { subId } = await customerWith(w, { planId: "pro", currentPeriodEnd: iso(T0 + 5 * DAY_MS) });
    expect(
      (await subscriptionAction(w, subId, "change-plan", { planId: "sso-addon", when: "immediately" })).status,
    ).toBe(400);
  });

  it("refuses a change to the plan it already has (409 same_plan)", async () => {
    const { subId } = await customerWith(w, { planId: "pro", currentPeriodEnd: iso(T0 + 5 * DAY_MS) });
    const same = await subscriptionAction(w, subId, "change-plan", { planId: "pro", when: "immediately" });
    expect(same.status).toBe(409);
    expect(same.json).toMatchObject({ type: "urn:tollgate:problem:conflict", reason: "same_plan" });
  });
});

describe("cancel and resume", () => {
  it("cancel at period end sets cancelAt; resume clears it; cancel now ends access at once", async () => {
    const end = T0 + 20 * DAY_MS;
    const { customerId, subId } = await customerWith(w, { planId: "pro", currentPeriodEnd: iso(end) });
    expect((await subscriptionAction(w, subId, "cancel", { when: "at_period_end" })).json.subscription).toMatchObject({
      status: "active",
      cancelAt: iso(end),
    });
    expect(await check(customerId, "audit_export")).toMatchObject({ allowed: true, expiresAt: iso(end) });
    expect((await subscriptionAction(w, subId, "resume")).json.subscription).toMatchObject({
      status: "active",
      cancelAt: null,
    });
    expect((await check(customerId, "audit_export")).expiresAt).toBeNull();
    const now = await subscriptionAction(w, subId, "cancel", { when: "immediately", reason: "fraud" });
    expect(now.json.subscription).toMatchObject({ status: "canceled", endedAt: iso(T0) });
    expect((await check(customerId, "audit_export")).reason).toBe("subscription_inactive");
    expect((await auditOf("subscription", subId)).map((a) => a.action)).toEqual([
      "subscription.create", // made with its customer: it has its own entry too
      "subscription.cancel",
      "subscription.resume",
      "subscription.cancel",
    ]);
  });

  it("a refused transition is a 409 problem with a reason, and changes nothing", async () => {
    const { subId } = await customerWith(w, { planId: "pro", status: "canceled" });
    const before = await subscriptionRow(subId);
    const auditCount = (await auditOf("subscription", subId)).length;
    const res = await subscriptionAction(w, subId, "cancel", { when: "immediately" });
    expect(res.status).toBe(409);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.json).toMatchObject({ status: 409, reason: "invalid_transition" });
    expect(await subscriptionRow(subId)).toEqual(before);
    expect((await auditOf("subscription", subId)).length).toBe(auditCount);
    expect((await subscriptionAction(w, subId, "resume")).json.reason).toBe("invalid_transition");
  });

  it("records events already due before the action, in order, and refuses what time has ended", async () => {
    const { subId } = await customerWith(w, {
      planId: "pro",
      currentPeriodEnd: iso(T0 + DAY_MS),
      cancelAt: iso(T0 + 2 * DAY_MS),
    });
    await w.at(T0 + 3 * DAY_MS, async () => {
      const res = await subscriptionAction(w, subId, "resume");
      expect(res.json.reason).toBe("invalid_transition");
      expect(await subscriptionRow(subId)).toMatchObject({ status: "active", cancel_at: T0 + 2 * DAY_MS }); // refused: nothing written
    });
  });

  it("refuses a subscription a billing provider manages", async () => {
    const { subId } = await customerWith(w, { planId: "pro" });
    await markProviderManaged(subId, uid("sub_stripe"));
    expect((await subscriptionAction(w, subId, "cancel", { when: "immediately" })).json).toMatchObject({
      status: 409,
      reason: "managed_externally",
    });
  });
});

describe("trials and past due", () => {
  it("a trial converts to active with a new period; a change scheduled before keeps its instant", async () => {
    const trialEnd = T0 + 14 * DAY_MS;
    const { customerId, subId } = await customerWith(w, {
      planId: "pro",
      status: "trialing",
      trialEnd: iso(trialEnd),
      currentPeriodEnd: iso(trialEnd),
    });
    await subscriptionAction(w, subId, "change-plan", { planId: "free", when: "at_period_end" });
    const res = await subscriptionAction(w, subId, "convert-trial", { currentPeriodEnd: iso(T0 + 40 * DAY_MS) });
    expect(res.json.subscription).toMatchObject({
      status: "active",
      currentPeriodStart: iso(T0),
      currentPeriodEnd: iso(T0 + 40 * DAY_MS),
      trialEnd: iso(trialEnd),
    });
    await w.at(trialEnd + DAY_MS, async () => {
      // no longer bounded by the trial; the change scheduled for the old period end took effect then
      expect((await check(customerId, "audit_export")).allowed).toBe(false);
      expect((await check(customerId, "api_calls")).limit).toBe(100);
      const undo = await subscriptionAction(w, subId, "undo-scheduled-change");
      // the change was due at trialEnd: it has taken effect, so there is nothing left to undo
      expect(undo.json.reason).toBe("nothing_scheduled");
    });
    expect((await subscriptionAction(w, subId, "convert-trial", {})).json.reason).toBe("invalid_transition");
  });

  it("past_due keeps access for PAST_DUE_GRACE_DAYS (default 7); recover restores active", async () => {
    const { customerId, subId } = await customerWith(w, { planId: "pro" });
    const res = await subscriptionAction(w, subId, "past-due", { reason: "card declined" });
    expect(res.json.subscription).toMatchObject({ status: "past_due", graceUntil: iso(T0 + 7 * DAY_MS) });
    await w.at(T0 + 7 * DAY_MS - 1, async () => {
      expect((await check(customerId, "audit_export")).allowed).toBe(true);
      w.clock.set(T0 + 7 * DAY_MS);
      expect((await check(customerId, "audit_export")).reason).toBe("subscription_inactive");
      w.clock.set(T0 + DAY_MS);
      expect((await subscriptionAction(w, subId, "recover")).json.subscription).toMatchObject({
        status: "active",
        graceUntil: null,
      });
      w.clock.set(T0 + 30 * DAY_MS);
      expect((await check(customerId, "audit_export")).allowed).toBe(true);
    });
  });

  it("the grace period comes from PAST_DUE_GRACE_DAYS", async () => {
    const short = testWorker({ env: { ...env, PAST_DUE_GRACE_DAYS: "2" } });
    const { subId } = await customerWith(w, { planId: "pro" });
    const res = await short.call("POST", `/admin/v1/subscriptions/${subId}/past-due`, { key: BOOTSTRAP, body: {} });
    expect(res.json.subscription.graceUntil).toBe(iso(T0 + 2 * DAY_MS));
  });
});

describe("roles", () => {
  const readers = ["viewer", "support"] as const;
  const withPeriod = () => customerWith(w, { planId: "pro", currentPeriodEnd: iso(T0 + 9 * DAY_MS) });

  it.each(readers)("%s reads subscriptions", async (role) => {
    const { subId } = await withPeriod();
    const token = await operatorToken(role);
    expect((await w.call("GET", `/admin/v1/subscriptions/${subId}`, { key: token })).status).toBe(200);
    expect((await w.call("GET", "/admin/v1/subscriptions?limit=1", { key: token })).status).toBe(200);
  });

  it.each(readers)("%s may not change or create a subscription (403), and nothing changes", async (role) => {
    const { subId } = await withPeriod();
    const token = await operatorToken(role);
    const refused = await subscriptionAction(w, subId, "cancel", { when: "at_period_end" }, token);
    expect(refused.status).toBe(403);
    expect(refused.json.type).toBe("urn:tollgate:problem:forbidden");
    const create = await w.call("POST", "/admin/v1/subscriptions", {
      key: token,
      body: { customerId: "x", planId: "pro" },
    });
    expect(create.status).toBe(403);
    expect((await subscriptionRow(subId))!.cancel_at).toBeNull();
  });

  it("an approver may change a subscription, audited as the operator with their email", async () => {
    const { subId } = await withPeriod();
    const approver = await operatorToken("approver", "op_approver", "approver@example.com");
    const ok = await subscriptionAction(w, subId, "cancel", { when: "at_period_end" }, approver);
    expect(ok.status).toBe(200);
    expect((await auditOf("subscription", subId)).at(-1)).toMatchObject({
      actor: "op_approver <approver@example.com>",
      actor_type: "operator",
    });
  });

  it("401 without credentials", async () => {
    const { subId } = await withPeriod();
    expect((await w.call("GET", `/admin/v1/subscriptions/${subId}`)).status).toBe(401);
  });

  it("403 for an API key with only the check scope", async () => {
    const { subId } = await withPeriod();
    const checkOnly = await createKey(w, ["check"]);
    expect((await w.call("GET", `/admin/v1/subscriptions/${subId}`, { key: checkOnly })).status).toBe(403);
  });
});
