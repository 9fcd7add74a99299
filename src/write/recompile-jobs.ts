// Recompile jobs: after a catalog write, every affected customer's snapshot is recompiled in batches,
// so a plan with 100,000 customers never meets a Worker's CPU or ~1000-subrequest limit in one
// invocation. The job row (table `jobs`) is created in the same D1 batch as the write itself, so a
// write can never commit without the work that propagates it. The first batch runs inside the write
// request; the rest run from the scheduled handler (continueRecompileJobs) and from
// POST /admin/v1/jobs/{id}/continue. Batches are idempotent (recompiling twice writes the same snapshot)
// and the cursor only moves by compare-and-set, so overlapping runners never double-count progress.
//
// Scopes: a feature, region group or catalog file change reaches every customer ("all"); a plan change
// only the plan's current and scheduled subscribers ("plan"). catalog_rev grows either way, so the
// snapshots of customers outside a plan's scope keep an older version number until their next
// recompile; their content is what a fresh compile gives, so no check answers differently.
import { configOf } from "../config";
import type { Env } from "../env";
import type { Services } from "../services";
import { compileMany } from "../store/snapshot-publisher";

export type RecompileScope = { scope: "all" } | { scope: "plan"; planId: string };
export type JobStatus = "running" | "done" | "failed";

export interface JobRow {
  id: string;
  kind: string;
  params: string;
  cursor: string | null;
  done: number;
  total: number;
  status: JobStatus;
  created_at: number;
  updated_at: number;
}

export interface JobView {
  id: string;
  kind: string;
  params: RecompileScope;
  status: JobStatus;
  done: number;
  total: number;
  createdAt: string;
  updatedAt: string;
}

// The customers a scope covers, in id order after a cursor. A plan covers its current and scheduled subscribers.
function customersAfter(db: D1Database, scope: RecompileScope, cursor: string, limit: number): D1PreparedStatement {
  if (scope.scope === "all")
    return db.prepare("SELECT id FROM customers WHERE id > ?1 ORDER BY id LIMIT ?2").bind(cursor, limit);
  return db
    .prepare(
      `SELECT customer_id AS id FROM subscriptions WHERE plan_id = ?1 AND customer_id > ?2
       UNION SELECT customer_id AS id FROM subscriptions WHERE scheduled_plan_id = ?1 AND customer_id > ?2
       ORDER BY id LIMIT ?3`,
    )
    .bind(scope.planId, cursor, limit);
}

function totalSql(scope: RecompileScope): string {
  return scope.scope === "all"
    ? "(SELECT COUNT(*) FROM customers)"
    : "(SELECT COUNT(*) FROM (SELECT customer_id FROM subscriptions WHERE plan_id = ?4 UNION SELECT customer_id FROM subscriptions WHERE scheduled_plan_id = ?4))";
}

/** The statement that creates a job; put it in the write's own commit batch. */
export function recompileJobStatement(
  db: D1Database,
  scope: RecompileScope,
  now: number,
): { id: string; statement: D1PreparedStatement } {
  const id = `job_${crypto.randomUUID()}`;
  const sql = `INSERT INTO jobs (id, kind, params, cursor, done, total, status, created_at, updated_at)
               SELECT ?1, 'recompile', ?2, NULL, 0, ${totalSql(scope)}, 'running', ?3, ?3`;
  const params: unknown[] = [id, JSON.stringify(scope), now];
  if (scope.scope === "plan") params.push(scope.planId);
  return { id, statement: db.prepare(sql).bind(...params) };
}

export const toJobView = (r: JobRow): JobView => ({
  id: r.id,
  kind: r.kind,
  params: JSON.parse(r.params) as RecompileScope,
  status: r.status,
  done: r.done,
  total: r.total,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});

export async function readJob(db: D1Database, id: string): Promise<JobRow | null> {
  return db.prepare("SELECT * FROM jobs WHERE id = ?1").bind(id).first<JobRow>();
}

/** Recompiles the next batch of a job and records the progress: the job as it stands after, and how far this run moved it. */
export async function runRecompileBatch(
  env: Env,
  services: Services,
  jobId: string,
  now: number,
  batchSize = configOf(env).recompile.batchSize,
): Promise<{ job: JobRow | null; moved: number }> {
  const job = await readJob(env.DB, jobId);
  if (job?.status !== "running") return { job, moved: 0 };
  const scope = JSON.parse(job.params) as RecompileScope;
  const page = await customersAfter(env.DB, scope, job.cursor ?? "", batchSize).all<{ id: string }>();
  const ids = page.results.map((r) => r.id);
  const compiled = await compileMany(env, services, ids, now);
  const finished = ids.length < batchSize;
  // Compare-and-set on the cursor: when two runners raced over the same batch, only one counts it.
  // `done` counts customers reached (a customer deleted meanwhile still moves the cursor).
  const advanced = await env.DB.prepare(
    `UPDATE jobs SET cursor = ?2, done = done + ?3, total = MAX(total, done + ?3), status = ?4, updated_at = ?5
     WHERE id = ?1 AND status = 'running' AND cursor IS ?6`,
  )
    .bind(jobId, ids.at(-1) ?? job.cursor, ids.length, finished ? "done" : "running", now, job.cursor)
    .run();
  const moved = advanced.meta.changes > 0 ? ids.length : 0;
  if (moved === 0 && ids.length > 0) console.warn(JSON.stringify({ msg: "recompile batch raced", jobId, compiled }));
  return { job: await readJob(env.DB, jobId), moved };
}

/**
 * For the scheduled handler: advances running recompile jobs, oldest first, until `budget` customers
 * have been recompiled or no job is left. Returns what it did (for the log).
 */
export async function continueRecompileJobs(
  env: Env,
  services: Services,
  now: number,
  budget = configOf(env).recompile.cronBudget,
): Promise<{ jobs: string[]; customers: number }> {
  const size = configOf(env).recompile.batchSize;
  const running = await env.DB.prepare(
    "SELECT id FROM jobs WHERE kind = 'recompile' AND status = 'running' ORDER BY created_at, id LIMIT 20",
  ).all<{ id: string }>();
  const touched = new Set<string>();
  let left = budget;
  let customers = 0;
  for (const { id } of running.results) {
    while (left > 0) {
      const { job, moved } = await runRecompileBatch(env, services, id, now, Math.min(size, left));
      touched.add(id);
      customers += moved;
      left -= Math.max(moved, 1); // a raced or empty batch still spends budget: no spinning
      if (job?.status !== "running") break;
    }
    if (left <= 0) break;
  }
  return { jobs: [...touched], customers };
}
