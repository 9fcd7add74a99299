// /admin/v1/subscriptions: create, read, list, lifecycle actions, roles; asserting D1 rows, audit rows
// and check answers, across time with the injected clock.
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP, createCustomer, createKey, DAY, iso, loadTestCatalog, T0, testWorker, uid } from "./helpers";

const w = testWorker();
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  checkKey = await createKey(w, ["check"]);
});

/** An operator JWT signed with the test HS256 secret (jose checks exp against the real clock). */
async function operator(role: string) {
  return new SignJWT({ tollgate_role: role, email: `${role}@example.com` })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(String(env.OPERATOR_JWT_ISSUER))
    .setAudience(String(env.OPERATOR_JWT_AUDIENCE))
    .setSubject(`op_${role}`)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(String(env.OPERATOR_JWT_SECRET)));
}

const allowed = async (customerId: string, feature: string) =>
  (await w.call("POST", "/v1/check", { key: checkKey, body: { customerId, feature } })).json;
const row = (id: string) =>
  env.DB.prepare("SELECT * FROM subscriptions WHERE id = ?1").bind(id).first<Record<string, unknown>>();
const audits = async (id: string): Promise<Record<string, any>[]> =>
  (
    await env.DB.prepare("SELECT * FROM audit_log WHERE entity_type = 'subscription' AND entity_id = ?1 ORDER BY id")
      .bind(id)
      .all<Record<string, any>>()
  ).results.map((a) => ({
    ...a,
    before: a.before ? JSON.parse(a.before) : null,
    after: a.after ? JSON.parse(a.after) : null,
  }));
const act = (id: string, action: string, body: Record<string, unknown> = {}, key = BOOTSTRAP) =>
  w.call("POST", `/admin/v1/subscriptions/${id}/${action}`, { key, body });

async function customerWith(sub: Record<string, unknown>) {
  const c = await createCustomer(w, { id: uid(), subscriptions: [{ id: uid("sub"), ...sub }] });
  return { customerId: c.id, subId: c.subscriptions[0]!, version: c.snapshotVersion };
}

describe("create, get, list", () => {
  it("creates a subscription for an existing customer, audited, and checks see it at once", async () => {
    const c = await createCustomer(w, { id: uid() });
    expect((await allowed(c.id, "audit_export")).allowed).toBe(false);
    const res = await w.call("POST", "/admin/v1/subscriptions", {
      key: BOOTSTRAP,
      body: { customerId: c.id, planId: "pro", currentPeriodEnd: iso(T0 + 30 * DAY), reason: "sales deal 42" },
    });
    expect(res.status).toBe(201);
    const sub = res.json.subscription;
    expect(sub).toMatchObject({
      customerId: c.id,
      planId: "pro",
      status: "active",
      startedAt: iso(T0),
      currentPeriodStart: iso(T0),
      currentPeriodEnd: iso(T0 + 30 * DAY),
      billingAnchor: iso(T0),
    });
    expect(res.json.snapshotVersion).toBeGreaterThan(c.snapshotVersion);
    expect(await row(sub.id)).toMatchObject({
      customer_id: c.id,
      plan_id: "pro",
      status: "active",
      current_period_end: T0 + 30 * DAY,
    });
    const audit = (await audits(sub.id))[0]!;
    expect(audit).toMatchObject({
      action: "subscription.create",
      actor: "bootstrap",
      customer_id: c.id,
      before: null,
      reason: "sales deal 42",
    });
    const { createdAt: _c, updatedAt: _u, ...withoutTimes } = sub;
    expect(audit.after).toEqual(withoutTimes);
    expect((await allowed(c.id, "audit_export")).allowed).toBe(true);
    expect((await w.call("GET", `/admin/v1/subscriptions/${sub.id}`, { key: BOOTSTRAP })).json).toEqual(sub);
  });

  it("refuses an unknown customer or plan (400) and an existing id (409), writing nothing", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ id: uid("sub"), planId: "free" }] });
    const noCustomer = await w.call("POST", "/admin/v1/subscriptions", {
      key: BOOTSTRAP,
      body: { customerId: uid("nobody"), planId: "pro" },
    });
    expect(noCustomer.status).toBe(400);
    expect(noCustomer.headers.get("content-type")).toBe("application/problem+json");
    expect(noCustomer.json.errors[0].path).toBe("json.customerId");
    expect(
      (
        await w.call("POST", "/admin/v1/subscriptions", {
          key: BOOTSTRAP,
          body: { customerId: c.id, planId: "platinum" },
        })
      ).status,
    ).toBe(400);
    const dup = await w.call("POST", "/admin/v1/subscriptions", {
      key: BOOTSTRAP,
      body: { customerId: c.id, id: c.subscriptions[0], planId: "pro" },
    });
    expect(dup.status).toBe(409);
    expect(
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE customer_id = ?1")
        .bind(c.id)
        .first<{ n: number }>())!.n,
    ).toBe(1);
    expect(await w.call("GET", `/admin/v1/subscriptions/${uid("sub")}`, { key: BOOTSTRAP })).toMatchObject({
      status: 404,
    });
  });

  it("lists with filters and cursor pagination", async () => {
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [
        { planId: "pro" },
        { planId: "sso-addon" },
        { planId: "extra-calls" },
        { planId: "sso-addon", status: "canceled" },
      ],
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await w.call(
        "GET",
        `/admin/v1/subscriptions?customerId=${c.id}&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { key: BOOTSTRAP },
      );
      expect(page.status).toBe(200);
      expect(page.json.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.items.map((s: { id: string }) => s.id));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual([...c.subscriptions].sort());
    const addons = await w.call("GET", `/admin/v1/subscriptions?customerId=${c.id}&planId=sso-addon&status=active`, {
      key: BOOTSTRAP,
    });
    expect(addons.json).toMatchObject({ items: [{ planId: "sso-addon", status: "active" }], nextCursor: null });
    expect((await w.call("GET", "/admin/v1/subscriptions?status=paused", { key: BOOTSTRAP })).status).toBe(400);
    expect((await w.call("GET", "/admin/v1/subscriptions?cursor=%25%25", { key: BOOTSTRAP })).status).toBe(400);
  });
});

describe("plan changes", () => {
  it("upgrades immediately: the check answer changes with the response, audited with before/after", async () => {
    const { customerId, subId, version } = await customerWith({ planId: "free" });
    expect((await allowed(customerId, "audit_export")).reason).toBe("not_entitled");
    const res = await act(subId, "change-plan", { planId: "pro", when: "immediately", reason: "upgrade requested" });
    expect(res.status).toBe(200);
    expect(res.json.subscription).toMatchObject({ planId: "pro", scheduledPlanId: null });
    expect(res.json.snapshotVersion).toBeGreaterThan(version);
    expect(await row(subId)).toMatchObject({ plan_id: "pro", updated_at: T0 });
    expect((await allowed(customerId, "audit_export")).allowed).toBe(true);
    const last = (await audits(subId)).at(-1)!;
    expect(last).toMatchObject({
      action: "subscription.change_plan",
      actor: "bootstrap",
      reason: "upgrade requested",
      before: { planId: "free" },
      after: { planId: "pro" },
    });
  });

  it("downgrades at period end: the snapshot switches on time with no request; the cron records it later", async () => {
    const end = T0 + 10 * DAY;
    const { customerId, subId } = await customerWith({ planId: "pro", currentPeriodEnd: iso(end) });
    const res = await act(subId, "change-plan", { planId: "free", when: "at_period_end" });
    expect(res.json.subscription).toMatchObject({
      planId: "pro",
      scheduledPlanId: "free",
      scheduledChangeAt: iso(end),
    });
    expect(await row(subId)).toMatchObject({ plan_id: "pro", scheduled_plan_id: "free", scheduled_change_at: end });
    expect(await allowed(customerId, "audit_export")).toMatchObject({ allowed: true, expiresAt: iso(end) });
    w.clock.set(end);
    try {
      // Denied on time, with the reason it will keep once the cron records the change (scheduled.test.ts).
      expect(await allowed(customerId, "audit_export")).toMatchObject({ allowed: false, reason: "not_entitled" });
      expect((await allowed(customerId, "api_calls")).limit).toBe(100);
    } finally {
      w.clock.set(T0);
    }
  });

  it("undoes a scheduled change; refuses a base plan -> add-on change (400) and same plan (409)", async () => {
    const { subId } = await customerWith({ planId: "pro", currentPeriodEnd: iso(T0 + 5 * DAY) });
    await act(subId, "change-plan", { planId: "free", when: "at_period_end" });
    expect((await act(subId, "undo-scheduled-change", { reason: "customer stayed" })).json.subscription).toMatchObject({
      scheduledPlanId: null,
      scheduledChangeAt: null,
    });
    expect((await act(subId, "change-plan", { planId: "sso-addon", when: "immediately" })).status).toBe(400);
    const same = await act(subId, "change-plan", { planId: "pro", when: "immediately" });
    expect(same.status).toBe(409);
    expect(same.json).toMatchObject({ type: "urn:tollgate:problem:conflict", reason: "same_plan" });
  });
});

describe("cancel and resume", () => {
  it("cancel at period end sets cancelAt; resume clears it; cancel now ends access at once", async () => {
    const end = T0 + 20 * DAY;
    const { customerId, subId } = await customerWith({ planId: "pro", currentPeriodEnd: iso(end) });
    expect((await act(subId, "cancel", { when: "at_period_end" })).json.subscription).toMatchObject({
      status: "active",
      cancelAt: iso(end),
    });
    expect(await allowed(customerId, "audit_export")).toMatchObject({ allowed: true, expiresAt: iso(end) });
    expect((await act(subId, "resume")).json.subscription).toMatchObject({ status: "active", cancelAt: null });
    expect((await allowed(customerId, "audit_export")).expiresAt).toBeNull();
    const now = await act(subId, "cancel", { when: "immediately", reason: "fraud" });
    expect(now.json.subscription).toMatchObject({ status: "canceled", endedAt: iso(T0) });
    expect((await allowed(customerId, "audit_export")).reason).toBe("subscription_inactive");
    expect((await audits(subId)).map((a) => a.action)).toEqual([
      "subscription.cancel",
      "subscription.resume",
      "subscription.cancel",
    ]);
  });

  it("a refused transition is a 409 problem with a reason, and changes nothing", async () => {
    const { subId } = await customerWith({ planId: "pro", status: "canceled" });
    const before = await row(subId);
    const auditCount = (await audits(subId)).length;
    const res = await act(subId, "cancel", { when: "immediately" });
    expect(res.status).toBe(409);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.json).toMatchObject({ status: 409, reason: "invalid_transition" });
    expect(await row(subId)).toEqual(before);
    expect((await audits(subId)).length).toBe(auditCount);
    expect((await act(subId, "resume")).json.reason).toBe("invalid_transition");
  });

  it("records events already due before the action, in order, and refuses what time has ended", async () => {
    const { subId } = await customerWith({
      planId: "pro",
      currentPeriodEnd: iso(T0 + DAY),
      cancelAt: iso(T0 + 2 * DAY),
    });
    w.clock.set(T0 + 3 * DAY);
    try {
      const res = await act(subId, "resume");
      expect(res.json.reason).toBe("invalid_transition");
      expect(await row(subId)).toMatchObject({ status: "active", cancel_at: T0 + 2 * DAY }); // refused: nothing written
    } finally {
      w.clock.set(T0);
    }
  });

  it("refuses a subscription a billing provider manages", async () => {
    const { subId } = await customerWith({ planId: "pro" });
    await env.DB.prepare("UPDATE subscriptions SET external_id = ?2 WHERE id = ?1")
      .bind(subId, uid("sub_stripe"))
      .run();
    expect((await act(subId, "cancel", { when: "immediately" })).json).toMatchObject({
      status: 409,
      reason: "managed_externally",
    });
  });
});

describe("trials and past due", () => {
  it("a trial converts to active with a new period; a change scheduled before keeps its instant", async () => {
    const trialEnd = T0 + 14 * DAY;
    const { customerId, subId } = await customerWith({
      planId: "pro",
      status: "trialing",
      trialEnd: iso(trialEnd),
      currentPeriodEnd: iso(trialEnd),
    });
    await act(subId, "change-plan", { planId: "free", when: "at_period_end" });
    const res = await act(subId, "convert-trial", { currentPeriodEnd: iso(T0 + 40 * DAY) });
    expect(res.json.subscription).toMatchObject({
      status: "active",
      currentPeriodStart: iso(T0),
      currentPeriodEnd: iso(T0 + 40 * DAY),
      trialEnd: iso(trialEnd),
    });
    w.clock.set(trialEnd + DAY);
    try {
      // no longer bounded by the trial; the change scheduled for the old period end took effect then
      expect((await allowed(customerId, "audit_export")).allowed).toBe(false);
      expect((await allowed(customerId, "api_calls")).limit).toBe(100);
      const undo = await act(subId, "undo-scheduled-change");
      // the change was due at trialEnd: it has taken effect, so there is nothing left to undo
      expect(undo.json.reason).toBe("nothing_scheduled");
    } finally {
      w.clock.set(T0);
    }
    expect((await act(subId, "convert-trial", {})).json.reason).toBe("invalid_transition");
  });

  it("past_due keeps access for PAST_DUE_GRACE_DAYS (default 7); recover restores active", async () => {
    const { customerId, subId } = await customerWith({ planId: "pro" });
    const res = await act(subId, "past-due", { reason: "card declined" });
    expect(res.json.subscription).toMatchObject({ status: "past_due", graceUntil: iso(T0 + 7 * DAY) });
    w.clock.set(T0 + 7 * DAY - 1);
    try {
      expect((await allowed(customerId, "audit_export")).allowed).toBe(true);
      w.clock.set(T0 + 7 * DAY);
      expect((await allowed(customerId, "audit_export")).reason).toBe("subscription_inactive");
      w.clock.set(T0 + DAY);
      expect((await act(subId, "recover")).json.subscription).toMatchObject({ status: "active", graceUntil: null });
      w.clock.set(T0 + 30 * DAY);
      expect((await allowed(customerId, "audit_export")).allowed).toBe(true);
    } finally {
      w.clock.set(T0);
    }
  });

  it("the grace period comes from PAST_DUE_GRACE_DAYS", async () => {
    const short = testWorker({ env: { ...env, PAST_DUE_GRACE_DAYS: "2" } });
    const { subId } = await customerWith({ planId: "pro" });
    const res = await short.call("POST", `/admin/v1/subscriptions/${subId}/past-due`, { key: BOOTSTRAP, body: {} });
    expect(res.json.subscription.graceUntil).toBe(iso(T0 + 2 * DAY));
  });
});

describe("roles", () => {
  it("viewer and support read but may not change; approver may", async () => {
    const { subId } = await customerWith({ planId: "pro", currentPeriodEnd: iso(T0 + 9 * DAY) });
    for (const role of ["viewer", "support"]) {
      const token = await operator(role);
      expect((await w.call("GET", `/admin/v1/subscriptions/${subId}`, { key: token })).status).toBe(200);
      expect((await w.call("GET", "/admin/v1/subscriptions?limit=1", { key: token })).status).toBe(200);
      const refused = await act(subId, "cancel", { when: "at_period_end" }, token);
      expect(refused.status).toBe(403);
      expect(refused.json.type).toBe("urn:tollgate:problem:forbidden");
      const create = await w.call("POST", "/admin/v1/subscriptions", {
        key: token,
        body: { customerId: "x", planId: "pro" },
      });
      expect(create.status).toBe(403);
    }
    expect((await row(subId))!.cancel_at).toBeNull();
    const ok = await act(subId, "cancel", { when: "at_period_end" }, await operator("approver"));
    expect(ok.status).toBe(200);
    expect((await audits(subId)).at(-1)).toMatchObject({
      actor: "op_approver <approver@example.com>",
      actor_type: "operator",
    });
    expect((await w.call("GET", `/admin/v1/subscriptions/${subId}`)).status).toBe(401);
    const checkOnly = await createKey(w, ["check"]);
    expect((await w.call("GET", `/admin/v1/subscriptions/${subId}`, { key: checkOnly })).status).toBe(403);
  });
});
