// Ids that are names of Object.prototype members (toString, constructor, valueOf, ...) as plan ids,
// feature keys or region references must never crash compilation: they are refused at the door, and a
// row that is in D1 all the same (an older version accepted it) compiles like any other id. A recompile
// job that meets a customer it cannot compile skips that customer (logged) and still finishes, and a job
// whose batches keep failing is marked failed after a bounded number of attempts, so later jobs run.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { readJob } from "../src/store/jobs";
import { continueRecompileJobs } from "../src/write/recompile-jobs";
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
    ]);
    const { key } = await createKeyFor(customerId);
    const res = await w.call("POST", "/v1/check", { key, body: { customerId, feature: "sso" } });
    expect(res.status).toBe(200);
    expect(res.json.allowed).toBe(true);
  });
});

describe("recompile jobs survive a customer they cannot compile", () => {
  it("a customer whose rows cannot be compiled is skipped; the job finishes and the others are published", async () => {
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
    const edit = await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/seats`, { ...admin, body: { limit: 7 } });
    expect(edit.status).toBe(200);
    const job = await readJob(env.DB, edit.json.job.id);
    expect(job?.status).toBe("done");
    expect(job?.done).toBe(2);
    const snap = await kvSnapshot(good);
    expect(snap?.features.seats?.sources.some((s) => s.spec.limit === 7)).toBe(true);
  });

  it("a job whose batches keep failing is marked failed after its attempts, and a later job still runs", async () => {
    // A job whose scope names no plan: every batch of it throws (D1 refuses the unbound parameter).
    const broken = `job_${crypto.randomUUID()}`;
    await env.DB.prepare(
      "INSERT INTO jobs (id, kind, params, cursor, done, total, status, created_at, updated_at) VALUES (?1, 'recompile', ?3, NULL, 0, 1, 'running', ?2, ?2)",
    )
      .bind(broken, T0 - 1000, JSON.stringify({ scope: "plan" }))
      .run();
    const later = `job_${crypto.randomUUID()}`;
    await env.DB.prepare(
      "INSERT INTO jobs (id, kind, params, cursor, done, total, status, created_at, updated_at) VALUES (?1, 'recompile', ?3, NULL, 0, 1, 'running', ?2, ?2)",
    )
      .bind(later, T0, JSON.stringify({ scope: "all" }))
      .run();
    await continueRecompileJobs(env, w.services(), T0 + 1);
    // One failed batch does not stop the run: the later job is done after the very first cron run.
    expect((await readJob(env.DB, later))?.status).toBe("done");
    expect((await readJob(env.DB, broken))?.attempts).toBe(1);
    for (let i = 2; i <= 5; i++) await continueRecompileJobs(env, w.services(), T0 + i);
    const failed = await readJob(env.DB, broken);
    expect(failed?.status).toBe("failed");
    expect(failed?.attempts).toBe(5);
    // A failed job is left alone by later runs.
    await continueRecompileJobs(env, w.services(), T0 + 6);
    expect((await readJob(env.DB, broken))?.attempts).toBe(5);
  });
});

async function createKeyFor(customerId: string) {
  const res = await w.call("POST", "/admin/v1/api-keys", {
    ...admin,
    body: { name: "t", scopes: ["check"], customerId },
  });
  return { key: res.json.key as string };
}
