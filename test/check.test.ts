import { beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP, createCustomer, createKey, DAY, iso, loadTestCatalog, T0, testWorker, uid } from "./helpers";

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check"]);
});

const check = (body: Record<string, unknown>, opts: { cf?: Record<string, unknown>; key?: string } = {}) =>
  w.call("POST", "/v1/check", { key: opts.key ?? key, body, cf: opts.cf });

describe("POST /v1/check", () => {
  it("allows a boolean feature the plan grants, and says which snapshot answered", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const res = await check({ customerId: c.id, feature: "sso", role: "admin" });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      allowed: true,
      reason: "ok",
      customerId: c.id,
      feature: "sso",
      type: "boolean",
      snapshotVersion: c.snapshotVersion,
      evaluatedAt: iso(T0),
    });
    expect(res.json.snapshotAgeMs).toBe(0);
  });

  it("answers unknown_customer and unknown_feature as 200 denials", async () => {
    const unknownCustomer = await check({ customerId: uid("nobody"), feature: "sso" });
    expect(unknownCustomer.status).toBe(200);
    expect(unknownCustomer.json).toMatchObject({ allowed: false, reason: "unknown_customer" });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const unknownFeature = await check({ customerId: c.id, feature: "teleportation" });
    expect(unknownFeature.json).toMatchObject({ allowed: false, reason: "unknown_feature", feature: "teleportation" });
    // "constructor" is a property of every object: it must not be mistaken for a feature.
    expect((await check({ customerId: c.id, feature: "constructor" })).json.reason).toBe("unknown_feature");
  });

  it("denies a feature the plan does not grant (not_entitled)", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    expect((await check({ customerId: c.id, feature: "sso", role: "admin" })).json).toMatchObject({
      allowed: false,
      reason: "not_entitled",
    });
  });

  it("returns config values, and add-ons add to the base plan", async () => {
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "free" }, { planId: "sso-addon" }, { planId: "extra-calls" }],
    });
    expect((await check({ customerId: c.id, feature: "max_file_size_mb" })).json).toMatchObject({
      allowed: true,
      type: "config",
      value: 10,
    });
    expect((await check({ customerId: c.id, feature: "sso" })).json).toMatchObject({ allowed: true, reason: "ok" });
    const calls = await check({ customerId: c.id, feature: "api_calls" });
    expect(calls.json).toMatchObject({
      allowed: true,
      type: "metered",
      limit: 600,
      resetsAt: "2026-04-01T00:00:00.000Z",
    });
  });

  it("enforces roles (role_denied) and geo rules from the body or the edge (region_blocked)", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    expect((await check({ customerId: c.id, feature: "sso", role: "viewer" })).json.reason).toBe("role_denied");
    expect((await check({ customerId: c.id, feature: "sso" })).json.reason).toBe("role_denied");
    // allow-list through a region group
    expect((await check({ customerId: c.id, feature: "eu_hosting", country: "de" })).json).toMatchObject({
      allowed: true,
      reason: "ok",
    });
    expect((await check({ customerId: c.id, feature: "eu_hosting", country: "US" })).json.reason).toBe(
      "region_blocked",
    );
    // no country at all: an allow-list cannot be satisfied
    expect((await check({ customerId: c.id, feature: "eu_hosting" })).json.reason).toBe("region_blocked");
    // the edge's request.cf.country is used when the body has none; the body wins when present
    expect((await check({ customerId: c.id, feature: "eu_hosting" }, { cf: { country: "FR" } })).json.allowed).toBe(
      true,
    );
    expect(
      (await check({ customerId: c.id, feature: "eu_hosting", country: "US" }, { cf: { country: "FR" } })).json.allowed,
    ).toBe(false);
    // deny-list through a group and a single country
    expect((await check({ customerId: c.id, feature: "beta_ai" }, { cf: { country: "KP" } })).json.reason).toBe(
      "region_blocked",
    );
    expect((await check({ customerId: c.id, feature: "beta_ai" }, { cf: { country: "CN" } })).json.reason).toBe(
      "region_blocked",
    );
    expect((await check({ customerId: c.id, feature: "beta_ai" }, { cf: { country: "BR" } })).json.allowed).toBe(true);
  });

  it("GET /v1/check answers like POST", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const res = await w.call("GET", `/v1/check?customerId=${c.id}&feature=sso&role=owner`, { key });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ allowed: true, reason: "ok", feature: "sso" });
  });
});

describe("time windows (injected clock)", () => {
  it("trial: allowed until trialEnd, then trial_expired, and expiresAt says when", async () => {
    const trialEnd = T0 + 3 * DAY;
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) }],
    });
    const before = await check({ customerId: c.id, feature: "audit_export" });
    expect(before.json).toMatchObject({ allowed: true, expiresAt: iso(trialEnd) });
    w.clock.set(trialEnd - 1);
    expect((await check({ customerId: c.id, feature: "audit_export" })).json.allowed).toBe(true);
    w.clock.set(trialEnd);
    expect((await check({ customerId: c.id, feature: "audit_export" })).json).toMatchObject({
      allowed: false,
      reason: "trial_expired",
    });
    w.clock.set(T0);
  });

  it("canceled and past-due-beyond-grace subscriptions are subscription_inactive", async () => {
    const canceled = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro", status: "canceled" }] });
    expect((await check({ customerId: canceled.id, feature: "audit_export" })).json.reason).toBe(
      "subscription_inactive",
    );
    const pastDue = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "past_due", graceUntil: iso(T0 + DAY) }],
    });
    expect((await check({ customerId: pastDue.id, feature: "audit_export" })).json.allowed).toBe(true);
    w.clock.set(T0 + DAY);
    expect((await check({ customerId: pastDue.id, feature: "audit_export" })).json.reason).toBe(
      "subscription_inactive",
    );
    w.clock.set(T0);
  });

  it("a scheduled cancellation ends access at cancelAt", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro", cancelAt: iso(T0 + 2 * DAY) }] });
    expect((await check({ customerId: c.id, feature: "audit_export" })).json).toMatchObject({
      allowed: true,
      expiresAt: iso(T0 + 2 * DAY),
    });
    w.clock.set(T0 + 2 * DAY);
    expect((await check({ customerId: c.id, feature: "audit_export" })).json.reason).toBe("subscription_inactive");
    w.clock.set(T0);
  });
});

describe("auth", () => {
  it("401 without a key or with a bad one, as problem+json with a challenge", async () => {
    const none = await w.call("POST", "/v1/check", { body: { customerId: "x", feature: "sso" } });
    expect(none.status).toBe(401);
    expect(none.headers.get("content-type")).toBe("application/problem+json");
    expect(none.headers.get("www-authenticate")).toMatch(/Bearer/);
    expect(none.json).toMatchObject({ type: "urn:tollgate:problem:unauthorized", status: 401 });
    const bad = await check({ customerId: "x", feature: "sso" }, { key: `tg_${"A".repeat(43)}` });
    expect(bad.status).toBe(401);
    const malformed = await check({ customerId: "x", feature: "sso" }, { key: "hunter2" });
    expect(malformed.status).toBe(401);
  });

  it("403 for a key without the scope, and for a key bound to another customer", async () => {
    const a = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const b = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const usageOnly = await createKey(w, ["usage"]);
    const noScope = await check({ customerId: a.id, feature: "sso" }, { key: usageOnly });
    expect(noScope.status).toBe(403);
    expect(noScope.json.detail).toMatch(/check/);
    const bound = await createKey(w, ["check"], a.id);
    expect((await check({ customerId: a.id, feature: "audit_export" }, { key: bound })).json.allowed).toBe(true);
    const other = await check({ customerId: b.id, feature: "audit_export" }, { key: bound });
    expect(other.status).toBe(403);
    expect(other.json.type).toBe("urn:tollgate:problem:forbidden");
  });

  it("stores API keys hashed, never in clear", async () => {
    const k = await createKey(w, ["check"]);
    const { env } = await import("cloudflare:workers");
    const rows = await env.DB.prepare("SELECT * FROM api_keys").all();
    const dump = JSON.stringify(rows.results);
    expect(dump).not.toContain(k);
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(k)))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    expect(dump).toContain(digest);
  });

  it("the bootstrap key works and any other long string does not", async () => {
    expect(BOOTSTRAP.length).toBeGreaterThanOrEqual(32);
    const res = await w.call("POST", "/v1/check", {
      key: `${BOOTSTRAP.slice(0, -1)}x`,
      body: { customerId: "x", feature: "sso" },
    });
    expect(res.status).toBe(401);
  });
});
