import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { BOOTSTRAP, checker, postCheck, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check"]);
});

const check = checker(w, () => key);
const proCustomer = async () => (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;

describe("POST /v1/check", () => {
  it("allows a boolean feature the plan grants, and says which snapshot answered", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const res = await postCheck(w, key, { customerId: c.id, feature: "sso", role: "admin" });
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

  it("answers an unknown customer with a 200 denial, unknown_customer", async () => {
    const unknownCustomer = await postCheck(w, key, { customerId: uid("nobody"), feature: "sso" });
    expect(unknownCustomer.status).toBe(200);
    expect(unknownCustomer.json).toMatchObject({ allowed: false, reason: "unknown_customer" });
  });

  it("answers an unknown feature with a denial, unknown_feature, naming the feature", async () => {
    const customerId = await proCustomer();
    expect(await check(customerId, "teleportation")).toMatchObject({
      allowed: false,
      reason: "unknown_feature",
      feature: "teleportation",
    });
  });

  it("does not mistake a property of every object ('constructor') for a feature", async () => {
    expect((await check(await proCustomer(), "constructor")).reason).toBe("unknown_feature");
  });

  it("denies a feature the plan does not grant (not_entitled)", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    expect(await check(c.id, "sso", { role: "admin" })).toMatchObject({ allowed: false, reason: "not_entitled" });
  });
});

describe("plans and add-ons", () => {
  let customerId: string;
  beforeAll(async () => {
    const subscriptions = [{ planId: "free" }, { planId: "sso-addon" }, { planId: "extra-calls" }];
    customerId = (await createCustomer(w, { id: uid(), subscriptions })).id;
  });

  it("returns a config feature's value", async () => {
    expect(await check(customerId, "max_file_size_mb")).toMatchObject({ allowed: true, type: "config", value: 10 });
  });

  it("an add-on grants a feature the base plan lacks", async () => {
    expect(await check(customerId, "sso")).toMatchObject({ allowed: true, reason: "ok" });
  });

  it("an add-on's limit adds to the base plan's, and the answer says when the period resets", async () => {
    expect(await check(customerId, "api_calls")).toMatchObject({
      allowed: true,
      type: "metered",
      limit: 600,
      resetsAt: "2026-04-01T00:00:00.000Z",
    });
  });
});

describe("roles and regions", () => {
  let customerId: string;
  beforeAll(async () => {
    customerId = await proCustomer();
  });

  it("denies a role the feature does not allow (role_denied)", async () => {
    expect((await check(customerId, "sso", { role: "viewer" })).reason).toBe("role_denied");
  });

  it("denies a role-restricted feature when the request names no role (role_denied)", async () => {
    expect((await check(customerId, "sso")).reason).toBe("role_denied");
  });

  it("an allow-list through a region group admits a country of the group, whatever its case", async () => {
    expect(await check(customerId, "eu_hosting", { country: "de" })).toMatchObject({ allowed: true, reason: "ok" });
  });

  it("an allow-list refuses a country outside it (region_blocked)", async () => {
    expect((await check(customerId, "eu_hosting", { country: "US" })).reason).toBe("region_blocked");
  });

  it("an allow-list cannot be satisfied without a country (region_blocked)", async () => {
    expect((await check(customerId, "eu_hosting")).reason).toBe("region_blocked");
  });

  it("the edge's request.cf.country is used when the body names no country", async () => {
    expect((await postCheck(w, key, { customerId, feature: "eu_hosting" }, { country: "FR" })).json.allowed).toBe(true);
  });

  it("the body's country wins over the edge's", async () => {
    const res = await postCheck(w, key, { customerId, feature: "eu_hosting", country: "US" }, { country: "FR" });
    expect(res.json.allowed).toBe(false);
  });

  it("a deny-list through a region group blocks a country of the group (region_blocked)", async () => {
    const res = await postCheck(w, key, { customerId, feature: "beta_ai" }, { country: "KP" });
    expect(res.json.reason).toBe("region_blocked");
  });

  it("a deny-list blocks a single listed country (region_blocked)", async () => {
    const res = await postCheck(w, key, { customerId, feature: "beta_ai" }, { country: "CN" });
    expect(res.json.reason).toBe("region_blocked");
  });

  it("a deny-list admits a country it does not list", async () => {
    expect((await postCheck(w, key, { customerId, feature: "beta_ai" }, { country: "BR" })).json.allowed).toBe(true);
  });
});

describe("GET /v1/check", () => {
  it("answers like POST", async () => {
    const customerId = await proCustomer();
    const res = await w.call("GET", `/v1/check?customerId=${customerId}&feature=sso&role=owner`, { key });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ allowed: true, reason: "ok", feature: "sso" });
  });
});

describe("time windows (injected clock)", () => {
  it("trial: allowed until trialEnd, then trial_expired, and expiresAt says when", async () => {
    const trialEnd = T0 + 3 * DAY_MS;
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) }],
    });
    expect(await check(c.id, "audit_export")).toMatchObject({ allowed: true, expiresAt: iso(trialEnd) });
    await w.at(trialEnd - 1, async () => {
      expect((await check(c.id, "audit_export")).allowed).toBe(true);
    });
    await w.at(trialEnd, async () => {
      expect(await check(c.id, "audit_export")).toMatchObject({ allowed: false, reason: "trial_expired" });
    });
  });

  it("a canceled subscription is subscription_inactive", async () => {
    const canceled = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro", status: "canceled" }] });
    expect((await check(canceled.id, "audit_export")).reason).toBe("subscription_inactive");
  });

  it("a past-due subscription keeps access until graceUntil, then is subscription_inactive", async () => {
    const pastDue = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "past_due", graceUntil: iso(T0 + DAY_MS) }],
    });
    expect((await check(pastDue.id, "audit_export")).allowed).toBe(true);
    await w.at(T0 + DAY_MS, async () => {
      expect((await check(pastDue.id, "audit_export")).reason).toBe("subscription_inactive");
    });
  });

  it("a scheduled cancellation ends access at cancelAt", async () => {
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", cancelAt: iso(T0 + 2 * DAY_MS) }],
    });
    expect(await check(c.id, "audit_export")).toMatchObject({ allowed: true, expiresAt: iso(T0 + 2 * DAY_MS) });
    await w.at(T0 + 2 * DAY_MS, async () => {
      expect((await check(c.id, "audit_export")).reason).toBe("subscription_inactive");
    });
  });
});

describe("auth", () => {
  it("401 without a key, as problem+json with a Bearer challenge", async () => {
    const none = await w.call("POST", "/v1/check", { body: { customerId: "x", feature: "sso" } });
    expect(none.status).toBe(401);
    expect(none.headers.get("content-type")).toBe("application/problem+json");
    expect(none.headers.get("www-authenticate")).toMatch(/Bearer/);
    expect(none.json).toMatchObject({ type: "urn:tollgate:problem:unauthorized", status: 401 });
  });

  it("401 for a well-formed key that does not exist", async () => {
    expect((await postCheck(w, `tg_${"A".repeat(43)}`, { customerId: "x", feature: "sso" })).status).toBe(401);
  });

  it("401 for a malformed key", async () => {
    expect((await postCheck(w, "hunter2", { customerId: "x", feature: "sso" })).status).toBe(401);
  });

  it("403 for a key without the check scope, naming the scope", async () => {
    const usageOnly = await createKey(w, ["usage"]);
    const noScope = await postCheck(w, usageOnly, { customerId: await proCustomer(), feature: "sso" });
    expect(noScope.status).toBe(403);
    expect(noScope.json.detail).toMatch(/check/);
  });

  it("a key bound to a customer checks that customer, and gets a 403 for another one", async () => {
    const [a, b] = [await proCustomer(), await proCustomer()];
    const bound = await createKey(w, ["check"], a);
    expect((await postCheck(w, bound, { customerId: a, feature: "audit_export" })).json.allowed).toBe(true);
    const other = await postCheck(w, bound, { customerId: b, feature: "audit_export" });
    expect(other.status).toBe(403);
    expect(other.json.type).toBe("urn:tollgate:problem:forbidden");
  });

  it("stores API keys hashed, never in clear", async () => {
    const k = await createKey(w, ["check"]);
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
