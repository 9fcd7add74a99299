// Recompile jobs: a plan change with hundreds of customers, in small batches. The write answers with
// the job after its first batch; the cron's continueRecompileJobs and POST /jobs/{id}/continue do the
// rest; at the end every customer's snapshot in KV is the new one, and the counts add up.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { readJob } from "../src/store/jobs";
import { continueRecompileJobs } from "../src/write/recompile-jobs";
import { testCatalog } from "./fixtures/catalog";
import { createPlan, loadTestCatalog } from "./helpers/admin";
import { kvSnapshot } from "./helpers/kv";
import { operatorToken } from "./helpers/operators";
import { T0 } from "./helpers/time";
import { BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

const BATCH = 40;
const w = testWorker({ env: { ...env, RECOMPILE_BATCH_SIZE: String(BATCH) } });
const N = 300;
let planId: string;
let ids: string[];
let bystander: string;

/** N customers on a fresh plan, inserted straight into D1 (the API would compile each one on the way). */
async function seedCustomers(plan: string, n: number): Promise<string[]> {
  const prefix = uid("rc");
  const out = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}`);
  const stmts = out.flatMap((id) => [
    env.DB.prepare("INSERT INTO customers (id, name, rev, created_at, updated_at) VALUES (?1, '', 1, ?2, ?2)").bind(
      id,
      T0,
    ),
    env.DB.prepare(
      "INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at) VALUES (?1, ?2, ?3, 'active', ?4, ?4, ?4)",
    ).bind(`sub-${id}`, id, plan, T0),
  ]);
  await env.DB.batch(stmts);
  return out;
}

const newestVersionOf = async (id: string) =>
  (await env.DB.prepare(
    "SELECT c.rev + m.value AS v FROM customers c, meta m WHERE c.id = ?1 AND m.key = 'catalog_rev'",
  )
    .bind(id)
    .first<{ v: number }>())!.v;

beforeAll(async () => {
  await loadTestCatalog(w);
  planId = uid("plan");
  await createPlan(w, planId, { sso: false, api_calls: { limit: 10 } });
  ids = await seedCustomers(planId, N);
  // One customer of another plan, compiled now: a change to planId must leave it alone.
  bystander = (await seedCustomers("free", 1))[0]!;
  await w.services().snapshots.compile(env, bystander, T0);
});

describe("recompile jobs", () => {
  it("a plan change answers after the first batch, and the job finishes from the cron and /continue", async () => {
    const bystanderBefore = await kvSnapshot(bystander);
    const put = await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/sso`, { key: BOOTSTRAP, body: true });
    expect(put.status).toBe(200);
    const job = put.json.job;
    expect(job).toMatchObject({
      kind: "recompile",
      params: { scope: "plan", planId },
      status: "running",
      done: BATCH,
      total: N,
    });
    const floor = await newestVersionOf(ids[0]!); // the version every customer of the plan must reach

    // Progress is readable, and /continue moves it by exactly one batch.
    const admin = await operatorToken("admin");
    expect((await w.call("GET", `/admin/v1/jobs/${job.id}`, { key: admin })).json).toMatchObject({
      done: BATCH,
      total: N,
      status: "running",
    });
    expect((await w.call("POST", `/admin/v1/jobs/${job.id}/continue`, { key: admin })).json).toMatchObject({
      done: 2 * BATCH,
      status: "running",
    });

    // The first 80 customers (id order) are new; the rest are not compiled yet.
    expect((await kvSnapshot(ids[2 * BATCH - 1]!))!.features.sso!.sources[0]!.spec.enabled).toBe(true);
    expect(await kvSnapshot(ids[2 * BATCH]!)).toBeNull();

    // The scheduled handler's share: never more than its budget per run, until the job is done.
    for (let run = 0; run < 50 && (await readJob(env.DB, job.id))!.status === "running"; run++) {
      const report = await continueRecompileJobs(env, w.services(), T0, 100);
      expect(report.customers).toBeLessThanOrEqual(100);
    }
    const finished = (await w.call("GET", `/admin/v1/jobs/${job.id}`, { key: admin })).json;
    expect(finished).toMatchObject({ status: "done", done: N, total: N });

    for (const id of ids) {
      const snap = await kvSnapshot(id);
      expect(snap!.version).toBeGreaterThanOrEqual(floor);
      expect(snap!.features.sso!.sources[0]).toMatchObject({ kind: "plan", id: planId, spec: { enabled: true } });
    }
    // The history has the new version too (GET .../entitlements?at= relies on it).
    const history = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM snapshot_history WHERE customer_id IN (SELECT value FROM json_each(?1)) AND version >= ?2",
    )
      .bind(JSON.stringify(ids), floor)
      .first<{ n: number }>();
    expect(history!.n).toBe(N);
    expect(await kvSnapshot(bystander)).toEqual(bystanderBefore);
    // A done job stays done.
    expect((await w.call("POST", `/admin/v1/jobs/${job.id}/continue`, { key: admin })).json).toMatchObject({
      status: "done",
      done: N,
    });
  });

  it("a plan nobody is on finishes its job at once", async () => {
    const empty = uid("plan");
    const res = await w.call("POST", "/admin/v1/plans", {
      key: BOOTSTRAP,
      body: { id: empty, name: "Empty", entitlements: {} },
    });
    expect(res.json.job).toMatchObject({ status: "done", done: 0, total: 0 });
  });

  it("an unknown job is a 404 problem, to read or to continue", async () => {
    expectProblem(await w.call("GET", "/admin/v1/jobs/job_nope", { key: BOOTSTRAP }), 404);
    expectProblem(await w.call("POST", "/admin/v1/jobs/job_nope/continue", { key: BOOTSTRAP }), 404);
  });

  it("the catalog file (PUT /catalog) starts a job over every customer and answers after one batch", async () => {
    const res = await w.call("PUT", "/admin/v1/catalog", {
      key: BOOTSTRAP,
      body: testCatalog,
    });
    expect(res.status).toBe(200);
    const customers = (await env.DB.prepare("SELECT COUNT(*) AS n FROM customers").first<{ n: number }>())!.n;
    expect(res.json.job).toMatchObject({ params: { scope: "all" }, status: "running", done: BATCH });
    expect(res.json.job.total).toBeGreaterThanOrEqual(N);
    expect(res.json.job.total).toBeLessThanOrEqual(customers);
    expect(res.json.recompiled).toBe(BATCH);
  });

  it("two runners over the same batch count it once (compare-and-set on the cursor)", async () => {
    const plan = uid("plan");
    await createPlan(w, plan, { sso: false });
    const few = await seedCustomers(plan, 3 * BATCH);
    const put = await w.call("PUT", `/admin/v1/plans/${plan}/entitlements/sso`, { key: BOOTSTRAP, body: true });
    const id = put.json.job.id;
    const [a, b] = await Promise.all([
      w.call("POST", `/admin/v1/jobs/${id}/continue`, { key: BOOTSTRAP }),
      w.call("POST", `/admin/v1/jobs/${id}/continue`, { key: BOOTSTRAP }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const after = (await readJob(env.DB, id))!;
    // Either they raced (one batch counted) or ran one after the other (two): never a double count.
    expect([2 * BATCH, 3 * BATCH]).toContain(after.done);
    expect(after.done).toBeLessThanOrEqual(few.length);
  });
});

describe("recompile jobs when KV fails", () => {
  it("the write still commits and answers with its job; a later run finishes it", async () => {
    const broken = {
      ...env.SNAPSHOTS,
      put: async () => {
        throw new Error("KV unavailable");
      },
      get: env.SNAPSHOTS.get.bind(env.SNAPSHOTS),
    } as unknown as KVNamespace;
    const failing = testWorker({ env: { ...env, SNAPSHOTS: broken, RECOMPILE_BATCH_SIZE: String(BATCH) } });
    const plan = uid("plan");
    await createPlan(w, plan, { sso: false });
    const few = await seedCustomers(plan, 5);
    const res = await failing.call("PUT", `/admin/v1/plans/${plan}/entitlements/sso`, { key: BOOTSTRAP, body: true });
    expect(res.status).toBe(200);
    expect(res.json.job).toMatchObject({ status: "running", done: 0, total: 5 });
    expect(
      await env.DB.prepare("SELECT spec FROM plan_entitlements WHERE plan_id = ?1 AND feature_key = 'sso'")
        .bind(plan)
        .first("spec"),
    ).toBe('{"enabled":true}');
    const done = await w.call("POST", `/admin/v1/jobs/${res.json.job.id}/continue`, { key: BOOTSTRAP });
    expect(done.json).toMatchObject({ status: "done", done: 5 });
    for (const id of few) expect((await kvSnapshot(id))!.features.sso!.sources[0]!.spec.enabled).toBe(true);
  });
});
