// Guarded grants end to end: elevation, four eyes (support proposes, a different approver approves),
// checks before and after, expiry without anyone acting, rejection, revocation, and the audit trail.
import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createCustomer, createKey, createPlan, loadTestCatalog } from "./helpers/admin";
import { auditOf, parsed } from "./helpers/d1";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { BOOTSTRAP, checker, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let support: string;
let approverA: string;
let approverB: string;
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  support = await operatorToken("support", "sam-support", "sam@example.com");
  approverA = await operatorToken("approver", "ann-approver");
  approverB = await operatorToken("approver", "bob-approver");
  checkKey = await createKey(w, ["check"]);
});
beforeEach(() => w.clock.set(T0));

const check = checker(w, () => checkKey);
const propose = (token: string, body: Record<string, unknown>) =>
  w.call("POST", "/admin/v1/grants", { key: token, body });
const decide = (token: string, id: string, action: "approve" | "reject" | "revoke", reason?: string) =>
  w.call("POST", `/admin/v1/grants/${id}/${action}`, { key: token, ...(reason ? { body: { reason } } : {}) });
/** Support proposes turning a feature on: elevated for a free customer, so it waits for an approver. */
const proposeEnable = (customerId: string, feature: string, reason: string, expiresAt = T0 + DAY_MS) =>
  propose(support, { customerId, feature, spec: { enabled: true }, reason, expiresAt: iso(expiresAt) });
const freeCustomer = async () => (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] })).id;

describe("four eyes", () => {
  it("support proposes an elevated grant: pending and invisible to checks until a different approver approves", async () => {
    const customerId = await freeCustomer();
    const proposed = await proposeEnable(customerId, "sso", "Pilot for ACME", T0 + 7 * DAY_MS);
    expect(proposed.status).toBe(201);
    expect(proposed.json.grant).toMatchObject({
      status: "pending",
      elevated: true,
      proposedBy: "operator:sam-support",
      decidedBy: null,
      expiresAt: iso(T0 + 7 * DAY_MS),
    });
    expect(proposed.json.elevation).toEqual({ elevated: true, gains: ["enables a feature the plans do not grant"] });
    const id = proposed.json.grant.id;
    expect(await check(customerId, "sso")).toMatchObject({ allowed: false, reason: "not_entitled" });

    // support cannot approve (role); nobody approves their own proposal (see the approver test below).
    expectProblem(await decide(support, id, "approve"), 403);
    expect(await check(customerId, "sso")).toMatchObject({ allowed: false });

    const approved = await decide(approverA, id, "approve", "checked with sales");
    expect(approved.status).toBe(200);
    expect(approved.json.grant).toMatchObject({
      status: "active",
      decidedBy: "operator:ann-approver",
      decidedAt: iso(T0),
    });
    const allowed = await check(customerId, "sso");
    expect(allowed).toMatchObject({
      allowed: true,
      reason: "ok",
      expiresAt: iso(T0 + 7 * DAY_MS),
      snapshotVersion: approved.json.snapshotVersion,
    });

    const audits = await auditOf("grant", id);
    expect(audits.map((a) => [a.action, a.actor, a.customer_id])).toEqual([
      ["grant.propose", "sam-support <sam@example.com>", customerId],
      ["grant.approve", "ann-approver", customerId],
    ]);
    expect(audits[0]).toMatchObject({ reason: "Pilot for ACME", before: null });
    expect(parsed(audits[0]!.after)).toMatchObject({
      status: "pending",
      gains: ["enables a feature the plans do not grant"],
    });
    expect(audits[1]).toMatchObject({ reason: "checked with sales" });
    expect(parsed(audits[1]!.before).status).toBe("pending");
    expect(parsed(audits[1]!.after).status).toBe("active");
    expect(audits[1]!.request_id).toBeTruthy();
  });

  it("an approver's own elevated grant waits for a second person: self-approval is a 403", async () => {
    const customerId = await freeCustomer();
    const proposed = await propose(approverA, {
      customerId,
      feature: "api_calls",
      spec: { limit: 5000 },
      reason: "load test",
      expiresAt: iso(T0 + DAY_MS),
    });
    expect(proposed.json.grant.status).toBe("pending");
    expect(proposed.json.elevation.gains).toEqual(["raises the limit from 100 to 5100"]);
    const self = expectProblem(await decide(approverA, proposed.json.grant.id, "approve"), 403);
    expect(self.detail).toMatch(/Four eyes/);
    // The same person with another credential is still the same operator id.
    expectProblem(await decide(await operatorToken("admin", "ann-approver"), proposed.json.grant.id, "approve"), 403);
    expect((await check(customerId, "api_calls")).limit).toBe(100);
    expect((await decide(approverB, proposed.json.grant.id, "approve")).status).toBe(200);
    expect((await check(customerId, "api_calls")).limit).toBe(5100);
  });

  it("an elevated grant is approved by a person: not by an admin API key or the bootstrap key", async () => {
    const customerId = await freeCustomer();
    const { json } = await proposeEnable(customerId, "beta_ai", "beta");
    const adminKey = await createKey(w, ["admin"]);
    expect(expectProblem(await decide(adminKey, json.grant.id, "approve"), 403).detail).toMatch(/person/);
    expectProblem(await decide(BOOTSTRAP, json.grant.id, "approve"), 403);
    expect((await w.call("GET", `/admin/v1/grants/${json.grant.id}`, { key: BOOTSTRAP })).json.status).toBe("pending");
  });

  it("a racing approve and reject: exactly one decision happens, and only it is audited", async () => {
    const customerId = await freeCustomer();
    const { json } = await proposeEnable(customerId, "sso", "race");
    const [a, b] = await Promise.all([
      decide(approverA, json.grant.id, "approve"),
      decide(approverB, json.grant.id, "reject"),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const decisions = (await auditOf("grant", json.grant.id)).filter((r) => r.action !== "grant.propose");
    expect(decisions).toHaveLength(1);
  });
});

describe("what needs four eyes", () => {
  it("a grant that gives no more than the plans applies at once when an approver makes it", async () => {
    const customerId = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;
    // Lower limit (replace), a disabling grant, and an add that the plan already covers.
    const lower = await propose(approverA, {
      customerId,
      feature: "api_calls",
      mode: "replace",
      spec: { limit: 50, anchor: "billing" },
      reason: "abuse",
      expiresAt: iso(T0 + 30 * DAY_MS),
    });
    expect(lower.json).toMatchObject({
      grant: { status: "active", elevated: false, decidedBy: "operator:ann-approver" },
      elevation: { elevated: false, gains: [] },
    });
    expect((await check(customerId, "api_calls")).limit).toBe(50);
    const off = await propose(approverA, { customerId, feature: "beta_ai", mode: "replace", spec: { enabled: false } });
    expect(off.json.grant.status).toBe("active");
    expect(await check(customerId, "beta_ai", { country: "BR" })).toMatchObject({
      allowed: false,
      reason: "not_entitled",
    });
    // The same harmless grant from support still waits for an approver.
    const fromSupport = await propose(support, {
      customerId,
      feature: "audit_export",
      spec: { enabled: true },
      expiresAt: iso(T0 + 30 * DAY_MS),
    });
    expect(fromSupport.json.grant).toMatchObject({ status: "pending", elevated: false });
    expect((await auditOf("grant", lower.json.grant.id))[0]!.action).toBe("grant.create");
  });

  it("judges the whole window: matching the plans only until a trial ends is elevated", async () => {
    const trialEnd = T0 + 3 * DAY_MS;
    const customerId = (
      await createCustomer(w, {
        id: uid(),
        subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) }],
      })
    ).id;
    const within = await propose(approverA, {
      customerId,
      feature: "audit_export",
      spec: { enabled: true },
      expiresAt: iso(trialEnd),
    });
    expect(within.json.grant).toMatchObject({ status: "active", elevated: false });
    const beyond = await propose(approverA, {
      customerId,
      feature: "audit_export",
      spec: { enabled: true },
      reason: "extend",
      expiresAt: iso(trialEnd + DAY_MS),
    });
    expect(beyond.json.grant).toMatchObject({ status: "pending", elevated: true });
  });

  it("widening roles or regions, allowing overage or changing a config value is elevated", async () => {
    const customerId = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;
    const gains = async (feature: string, spec: unknown, mode = "add") =>
      (await propose(approverA, { customerId, feature, mode, spec, reason: "r", expiresAt: iso(T0 + DAY_MS) })).json
        .elevation.gains;
    expect(await gains("sso", { enabled: true, roles: ["member"] })).toEqual(["widens the allowed roles"]);
    expect(await gains("eu_hosting", { enabled: true, regions: { allow: ["US"] } })).toEqual([
      "widens the allowed regions",
    ]);
    expect(await gains("beta_ai", { enabled: true, regions: { deny: ["KP"] } }, "replace")).toEqual([
      "lifts a region block",
    ]);
    expect(await gains("api_calls", { limit: 0, overage: "allow" })).toEqual(["allows overage"]);
    expect(await gains("max_file_size_mb", { value: 100 })).toEqual([]);
    expect(await gains("max_file_size_mb", { value: 500 })).toEqual(["changes the configured value"]);
  });
});

describe("reason, expiry and lifetime", () => {
  it("an elevated grant without a reason or an expiry, or beyond the maximum lifetime, is a 400", async () => {
    const customerId = await freeCustomer();
    const base = { customerId, feature: "sso", spec: { enabled: true } };
    const noReason = expectProblem(await propose(support, { ...base, expiresAt: iso(T0 + DAY_MS) }), 400);
    expect(noReason.errors).toEqual([{ path: "json.reason", message: "an elevated grant needs a reason" }]);
    expect(expectProblem(await propose(support, { ...base, reason: "r" }), 400).errors).toEqual([
      { path: "json.expiresAt", message: "an elevated grant needs an expiry" },
    ]);
    expect(
      expectProblem(await propose(support, { ...base, reason: "r", expiresAt: iso(T0 + 91 * DAY_MS) }), 400).errors![0]!
        .message,
    ).toMatch(/at most 90 days/);
    expect((await propose(support, { ...base, reason: "r", expiresAt: iso(T0 + 90 * DAY_MS) })).status).toBe(201);
    expectProblem(await propose(support, { ...base, reason: "r", expiresAt: iso(T0 - 1) }), 400);
    expectProblem(
      await propose(support, {
        ...base,
        feature: "sso",
        spec: { enabled: true, limit: 3 },
        reason: "r",
        expiresAt: iso(T0 + DAY_MS),
      }),
      400,
    );
    expect(
      await env.DB.prepare("SELECT COUNT(*) AS n FROM grants WHERE customer_id = ?1").bind(customerId).first("n"),
    ).toBe(1);
  });

  it("GRANT_MAX_LIFETIME_DAYS configures the maximum lifetime", async () => {
    const short = testWorker({ env: { ...env, GRANT_MAX_LIFETIME_DAYS: "7" } });
    const customerId = await freeCustomer();
    const res = await short.call("POST", "/admin/v1/grants", {
      key: support,
      body: { customerId, feature: "sso", spec: { enabled: true }, reason: "r", expiresAt: iso(T0 + 8 * DAY_MS) },
    });
    expect(expectProblem(res, 400).errors![0]!.message).toMatch(/at most 7 days/);
  });

  it("an expired grant stops counting without anyone acting", async () => {
    const customerId = await freeCustomer();
    const expiresAt = T0 + 2 * DAY_MS;
    const { json } = await proposeEnable(customerId, "sso", "trial of sso", expiresAt);
    await decide(approverA, json.grant.id, "approve");
    w.clock.set(expiresAt - 1);
    expect(await check(customerId, "sso")).toMatchObject({ allowed: true });
    w.clock.set(expiresAt);
    expect(await check(customerId, "sso")).toMatchObject({ allowed: false, reason: "grant_expired" });
    // Nothing was written: the snapshot already held the window.
    expect((await auditOf("grant", json.grant.id)).map((a) => a.action)).toEqual(["grant.propose", "grant.approve"]);
  });

  it("a pending grant that expired, or became elevated since its proposal, cannot be approved as is", async () => {
    const customerId = await freeCustomer();
    const late = await proposeEnable(customerId, "sso", "r");
    w.clock.set(T0 + 2 * DAY_MS);
    expect(expectProblem(await decide(approverA, late.json.grant.id, "approve"), 409).errors![0]!.path).toBe(
      "json.expiresAt",
    );

    w.clock.set(T0);
    const planId = uid("plan");
    await createPlan(w, planId, { sso: true });
    const other = (await createCustomer(w, { id: uid(), subscriptions: [{ planId }] })).id;
    const harmless = await propose(support, {
      customerId: other,
      feature: "sso",
      spec: { enabled: true },
      expiresAt: iso(T0 + 30 * DAY_MS),
    });
    expect(harmless.json.grant).toMatchObject({ status: "pending", elevated: false, expiresAt: iso(T0 + 30 * DAY_MS) });
    await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/sso?migrate=now`, { key: BOOTSTRAP, body: false });
    const refused = expectProblem(await decide(approverA, harmless.json.grant.id, "approve"), 409);
    expect(refused.errors).toContainEqual({ path: "json.reason", message: "an elevated grant needs a reason" });
  });
});

describe("reject and revoke", () => {
  it("a rejected grant never counts and cannot be approved later", async () => {
    const customerId = await freeCustomer();
    const { json } = await proposeEnable(customerId, "sso", "r");
    const rejected = await decide(approverB, json.grant.id, "reject", "not in contract");
    expect(rejected.json.grant).toMatchObject({ status: "rejected", decidedBy: "operator:bob-approver" });
    expectProblem(await decide(approverA, json.grant.id, "approve"), 409);
    expect(await check(customerId, "sso")).toMatchObject({ allowed: false, reason: "not_entitled" });
    expect((await auditOf("grant", json.grant.id)).at(-1)).toMatchObject({
      action: "grant.reject",
      reason: "not in contract",
    });
  });

  it("a pending grant cannot be revoked (409)", async () => {
    const { json } = await proposeEnable(await freeCustomer(), "sso", "r");
    expectProblem(await decide(approverA, json.grant.id, "revoke"), 409);
  });

  it("a decision with a field it does not take is a 400", async () => {
    const { json } = await proposeEnable(await freeCustomer(), "sso", "r");
    expectProblem(
      await w.call("POST", `/admin/v1/grants/${json.grant.id}/approve`, {
        key: approverA,
        body: { reason: "ok", extra: 1 },
      }),
      400,
    );
  });

  it("revoking an active grant takes it away at once, and the list shows it revoked", async () => {
    const customerId = await freeCustomer();
    const { json } = await proposeEnable(customerId, "sso", "r");
    await decide(approverA, json.grant.id, "approve");
    expect((await check(customerId, "sso")).allowed).toBe(true);
    const revoked = await decide(approverB, json.grant.id, "revoke", "customer churned");
    expect(revoked.json.grant.status).toBe("revoked");
    expect(await check(customerId, "sso")).toMatchObject({
      allowed: false,
      snapshotVersion: revoked.json.snapshotVersion,
    });
    const list = await w.call("GET", `/admin/v1/grants?customerId=${customerId}&status=revoked`, { key: support });
    expect(list.json.items.map((g: { id: string }) => g.id)).toEqual([json.grant.id]);
  });
});
