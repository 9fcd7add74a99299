// Ids that are names of Object.prototype members (toString, constructor, valueOf, ...) as plan ids,
// feature keys or region references must never crash compilation: they are refused at the door, and a
// row that is in D1 all the same (an older version accepted it) compiles like any other id. A customer
// whose rows cannot be compiled never holds back a catalog change for the others (a catalog change
// recompiles no customer at all), and its own checks answer by the failure policy, never a 500.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { kvKeys } from "../src/store/kv";
import { createCustomer, loadTestCatalog } from "./helpers/admin";
import { kvSnapshot } from "./helpers/kv";
import { T0 } from "./helpers/time";
import { BOOTSTRAP, testWorker, uid } from "./helpers/worker";

const w = testWorker();
const admin = { key: BOOTSTRAP };
const PROTOTYPE_NAMES = ["toString", "constructor", "valueOf", "hasOwnProperty", "__proto__"];

beforeAll(async () => {
  await loadTestCatalog(w);
});

describe("ids that name Object.prototype members", () => {
  it.each(PROTOTYPE_NAMES)("a plan id '%s' is refused with 400", async (id) => {
    const res = await w.call("POST", "/admin/v1/plans", {
      ...admin,
      body: { id, name: "x", kind: "base", entitlements: { sso: true } },
    });
    expect(res.status).toBe(400);
    expect(res.json.type).toBe("urn:tollgate:problem:validation");
    expect(JSON.stringify(res.json.errors)).toContain("json.id");
  });

  it("a customer id 'constructor' is refused with 400", async () => {
    const res = await w.call("POST", "/admin/v1/customers", { ...admin, body: { id: "constructor", name: "x" } });
    expect(res.status).toBe(400);
  });

  it("a feature key 'constructor' is refused with 400", async () => {
    const res = await w.call("POST", "/admin/v1/features", {
      ...admin,
      body: { key: "constructor", type: "boolean", description: "x" },
    });
    expect(res.status).toBe(400);
  });

  it("a region reference 'valueOf' in a plan's entitlement is refused with 400, not stored", async () => {
    const planId = uid("plan");
    const res = await w.call("POST", "/admin/v1/plans", {
      ...admin,
      body: { id: planId, name: "x", kind: "base", entitlements: { sso: { regions: { allow: ["valueOf"] } } } },
    });
    expect(res.status).toBe(400);
    expect((await w.call("GET", `/admin/v1/plans/${planId}`, admin)).status).toBe(404);
  });

  it("a catalog file naming region group 'toString' is refused with 400", async () => {
    const current = await w.call("GET", "/admin/v1/catalog", admin);
    const file = structuredClone(current.json);
    file.plans.pro.entitlements.sso = { enabled: true, regions: { allow: ["toString"] } };
    const res = await w.call("PUT", "/admin/v1/catalog", { ...admin, body: file });
    expect(res.status).toBe(400);
  });

  it("a plan row with id 'toString' already in D1 compiles: its subscriber is checked, not a 500", async () => {
    const customerId = uid("proto");
    await env.DB.batch([
      env.DB.prepare("INSERT INTO customers (id, name, rev, created_at, updated_at) VALUES (?1, 'p', 1, ?2, ?2)").bind(
        customerId,
        T0,
      ),
      env.DB.prepare(
        "INSERT OR IGNORE INTO plans (id, name, kind, description, created_at, updated_at) VALUES ('toString', 'x', 'base', '', ?1, ?1)",
      ).bind(T0),
      env.DB.prepare(
        "INSERT OR IGNORE INTO plan_entitlements (plan_id, feature_key, spec) VALUES ('toString', 'sso', '{\"enabled\":true}')",
      ),
      env.DB.prepare(
        "INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at) VALUES (?1, ?2, 'toString', 'active', ?3, ?3, ?3)",
      ).bind(`sub-${customerId}`, customerId, T0),
      // What every catalog write does with its change: a new catalog revision.
      env.DB.prepare("UPDATE meta SET value = value + 1 WHERE key = 'catalog_rev'"),
    ]);
    const { key } = await createKeyFor(customerId);
    const res = await w.call("POST", "/v1/check", { key, body: { customerId, feature: "sso" } });
    expect(res.status).toBe(200);
    expect(res.json.allowed).toBe(true);
  });
});

describe("a customer whose rows cannot be compiled", () => {
  it("does not hold back a catalog change for the others, and its own check is the failure policy, not a 500", async () => {
    const planId = uid("rjplan");
    await w.call("POST", "/admin/v1/plans", {
      ...admin,
      body: { id: planId, name: "x", kind: "base", entitlements: { sso: true } },
    });
    const good = uid("rjgood");
    const bad = uid("rjbad");
    for (const id of [good, bad])
      await createCustomer(w, { id, name: id, subscriptions: [{ planId, status: "active" }] });
    // A corrupt entitlement spec for the bad customer's grant: JSON.parse throws when its rows are compiled.
    await env.DB.prepare(
      "INSERT INTO grants (id, customer_id, feature_key, mode, spec, reason, starts_at, expires_at, status, elevated, proposed_by, decided_by, decided_at, created_at, updated_at) VALUES (?1, ?2, 'sso', 'add', '{not json', 'x', NULL, NULL, 'active', 0, 'test', 'test', ?3, ?3, ?3)",
    )
      .bind(uid("grant"), bad, T0)
      .run();
    const edit = await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/seats?migrate=now`, {
      ...admin,
      body: { limit: 7 },
    });
    expect(edit.status).toBe(200);
    const snap = await kvSnapshot(good);
    expect(snap?.features.seats?.sources.some((s) => s.spec.limit === 7)).toBe(true);
    // A fresh isolate with nothing in KV for the bad customer: its check has to compile it from D1.
    await env.SNAPSHOTS.delete(kvKeys.part(bad));
    const { key } = await createKeyFor(bad);
    const res = await testWorker().call("POST", "/v1/check", { key, body: { customerId: bad, feature: "seats" } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ allowed: false, degraded: true, failurePolicy: "closed" });
  });
});

async function createKeyFor(customerId: string) {
  const res = await w.call("POST", "/admin/v1/api-keys", {
    ...admin,
    body: { name: "t", scopes: ["check"], customerId },
  });
  return { key: res.json.key as string };
}
