// Security review M6: four eyes avoided without an elevated grant.
// (a) A grant that enables anything and has no expiry, or lasts longer than GRANT_MAX_LIFETIME_DAYS,
//     is elevated: it would outlive the plans it copies, so it needs a reason, a bounded expiry and a
//     second person. Restrictions and short grants that copy the plans still apply at once.
// (b) A manual subscription, a customer created with subscriptions, or a plan change that gives the
//     customer more than its current plans is an upgrade: it needs the admin role (403 naming it for an
//     approver). Downgrades, history and lifecycle actions stay with approvers.
import { beforeAll, describe, expect, it } from "vitest";
import { gainsOf } from "../src/domain/grant-elevation";
import {
  BOOTSTRAP,
  createCustomer,
  DAY_MS as DAY,
  expectProblem,
  iso,
  loadTestCatalog,
  T0,
  testWorker,
  uid,
} from "./helpers";
import { operatorToken } from "./helpers/operators";

const w = testWorker();
let approver: string;
let admin: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  approver = await operatorToken("approver", "ann-upgrades");
  admin = await operatorToken("admin", "kim-upgrades");
});

const customerOn = async (planId: string) =>
  await createCustomer(w, { id: uid(), subscriptions: [{ planId, currentPeriodEnd: iso(T0 + 30 * DAY) }] });
const grant = (key: string, body: Record<string, unknown>) => w.call("POST", "/admin/v1/grants", { key, body });
const changePlan = (key: string, subId: string, planId: string, when = "immediately") =>
  w.call("POST", `/admin/v1/subscriptions/${subId}/change-plan`, { key, body: { planId, when } });

describe("(a) a grant that would outlive the plans is elevated", () => {
  it("an open-ended grant that copies the plan is elevated: it needs an expiry (400), then a second person", async () => {
    const { id: customerId } = await customerOn("pro");
    const open = await grant(approver, { customerId, feature: "audit_export", spec: { enabled: true } });
    const problem = expectProblem(open, 400);
    expect(problem.errors).toContainEqual({ path: "json.expiresAt", message: "an elevated grant needs an expiry" });

    const far = await grant(approver, {
      customerId,
      feature: "audit_export",
      spec: { enabled: true },
      reason: "contract",
      expiresAt: iso(T0 + 365 * DAY),
    });
    expect(expectProblem(far, 400).errors).toContainEqual({
      path: "json.expiresAt",
      message: "an elevated grant may last at most 90 days",
    });
    const none = await w.call("GET", `/admin/v1/grants?customerId=${customerId}`, { key: approver });
    expect(none.json.items).toEqual([]);
  });

  it("a bounded copy of the plan and an open-ended restriction still apply at once; more than the plan waits", async () => {
    const { id: customerId } = await customerOn("pro");
    const copy = await grant(approver, {
      customerId,
      feature: "audit_export",
      spec: { enabled: true },
      expiresAt: iso(T0 + 30 * DAY),
    });
    expect(copy.status).toBe(201);
    expect(copy.json.grant).toMatchObject({ status: "active", elevated: false });

    const restriction = await grant(approver, {
      customerId,
      feature: "beta_ai",
      mode: "replace",
      spec: { enabled: false },
      reason: "abuse",
    });
    expect(restriction.json.grant).toMatchObject({ status: "active", elevated: false, expiresAt: null });

    const proposal = await grant(await operatorToken("support", "sue-upgrades"), {
      customerId,
      feature: "audit_export",
      spec: { enabled: true },
      reason: "renewal pending",
      expiresAt: iso(T0 + 200 * DAY),
    });
    expectProblem(proposal, 400);
    const elevated = await grant(approver, {
      customerId,
      feature: "api_calls",
      spec: { limit: 10 },
      reason: "pilot",
      expiresAt: iso(T0 + 60 * DAY),
    });
    expect(elevated.json.grant).toMatchObject({ status: "pending", elevated: true });
    expect(elevated.json.elevation.gains).toEqual(["raises the limit from 1000 to 1010"]);
    const open = await grant(approver, { customerId, feature: "api_calls", spec: { limit: 10 }, reason: "pilot" });
    expect(expectProblem(open, 400).errors).toEqual([
      { path: "json.expiresAt", message: "an elevated grant needs an expiry" },
    ]);
  });

  it("a bounded copy of the plan proposed by support is approved as not elevated", async () => {
    const { id: customerId } = await customerOn("free");
    const support = await operatorToken("support", "sue-upgrades");
    const proposed = await grant(support, {
      customerId,
      feature: "theme",
      spec: { value: "basic" },
      reason: "same as plan",
      expiresAt: iso(T0 + 10 * DAY),
    });
    expect(proposed.json.grant).toMatchObject({ status: "pending", elevated: false });
    const approved = await w.call("POST", `/admin/v1/grants/${proposed.json.grant.id}/approve`, {
      key: approver,
      body: {},
    });
    expect(approved.json.grant).toMatchObject({ status: "active", elevated: false });
  });
});

describe("(b) a manual upgrade needs the admin role", () => {
  it("POST /subscriptions to a plan that gives more: 403 for an approver, naming the role; 201 for an admin", async () => {
    const { id: customerId } = await createCustomer(w, { id: uid() });
    const refused = await w.call("POST", "/admin/v1/subscriptions", {
      key: approver,
      body: { customerId, planId: "pro" },
    });
    const problem = expectProblem(refused, 403);
    expect(problem.detail).toMatch(/'admin' role/);
    expect(problem.gains).toEqual(expect.arrayContaining(["sso: enables a feature the plans do not grant"]));
    const listed = await w.call("GET", `/admin/v1/subscriptions?customerId=${customerId}`, { key: approver });
    expect(listed.json.items).toEqual([]);
    const created = await w.call("POST", "/admin/v1/subscriptions", {
      key: admin,
      body: { customerId, planId: "pro" },
    });
    expect(created.status).toBe(201);
  });

  it("an add-on that raises a limit is an upgrade too", async () => {
    const { id: customerId } = await customerOn("free");
    const addon = await w.call("POST", "/admin/v1/subscriptions", {
      key: approver,
      body: { customerId, planId: "extra-calls" },
    });
    expect(expectProblem(addon, 403).gains).toEqual(["api_calls: raises the limit from 100 to 600"]);
  });

  it("POST /customers with subscriptions that give something: 403 for an approver; without: 201", async () => {
    const id = uid();
    const refused = await w.call("POST", "/admin/v1/customers", {
      key: approver,
      body: { id, subscriptions: [{ planId: "free" }] },
    });
    expect(expectProblem(refused, 403).detail).toMatch(/'admin' role/);
    expectProblem(await w.call("GET", `/admin/v1/customers/${id}`, { key: approver }), 404);
    expect((await w.call("POST", "/admin/v1/customers", { key: approver, body: { id } })).status).toBe(201);
    const history = await w.call("POST", "/admin/v1/customers", {
      key: approver,
      body: { id: uid(), subscriptions: [{ planId: "pro", status: "canceled" }] },
    });
    expect(history.status).toBe(201);
    const byAdmin = await w.call("POST", "/admin/v1/customers", {
      key: admin,
      body: { id: uid(), subscriptions: [{ planId: "pro" }] },
    });
    expect(byAdmin.status).toBe(201);
  });

  it("change-plan up (now or at period end) is an admin's; down is an approver's", async () => {
    const free = await customerOn("free");
    expect(expectProblem(await changePlan(approver, free.subscriptions[0]!, "pro"), 403).detail).toMatch(/'admin'/);
    expectProblem(await changePlan(approver, free.subscriptions[0]!, "pro", "at_period_end"), 403);
    expect((await changePlan(admin, free.subscriptions[0]!, "pro", "at_period_end")).status).toBe(200);

    const pro = await customerOn("pro");
    const down = await changePlan(approver, pro.subscriptions[0]!, "free");
    expect(down.status).toBe(200);
    expect(down.json.subscription.planId).toBe("free");
  });

  it("lifecycle actions that are not plan choices stay with approvers", async () => {
    const pro = await customerOn("pro");
    const sub = pro.subscriptions[0]!;
    const act = (action: string, body: Record<string, unknown>) =>
      w.call("POST", `/admin/v1/subscriptions/${sub}/${action}`, { key: approver, body });
    expect((await act("cancel", { when: "at_period_end" })).status).toBe(200);
    expect((await act("resume", {})).status).toBe(200);
    expect((await act("past-due", {})).status).toBe(200);
    expect((await act("recover", {})).status).toBe(200);
    expect((await w.call("GET", `/admin/v1/subscriptions/${sub}`, { key: BOOTSTRAP })).json.status).toBe("active");
  });
});

describe("what 'more' means between plans (gainsOf, plan measure)", () => {
  const metered = (
    limit: number | null,
    reset: "day" | "month" | "none",
    anchor: "calendar" | "billing" = "calendar",
  ) => ({ enabled: true, limit, reset, anchor }) as const;
  it("limits with other reset periods compare per unit of time; anchors and config values do not count", () => {
    expect(gainsOf("metered", metered(1000, "month", "billing"), metered(100, "month"), "plan")).toEqual([]);
    expect(gainsOf("metered", metered(1000, "month"), metered(100, "day"), "plan")).toEqual([
      "raises the limit from 1000 per month to 100 per day",
    ]);
    expect(gainsOf("metered", metered(100, "day"), metered(1000, "month"), "plan")).toEqual([]);
    expect(gainsOf("metered", metered(10, "none"), metered(10, "month"), "plan")).toHaveLength(1);
    expect(gainsOf("config", { enabled: true, value: 10 }, { enabled: true, value: 100 }, "plan")).toEqual([]);
    // The grant measure is unchanged: any change it cannot order is more.
    expect(gainsOf("metered", metered(1000, "month", "billing"), metered(100, "month"), "grant")).toEqual([
      "changes the reset period",
    ]);
  });
});
