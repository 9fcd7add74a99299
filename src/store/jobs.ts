// Recompile jobs in D1 (table jobs): creating one (in the write's own batch), the customers a job's
// scope covers, advancing its cursor by compare-and-set, and listing. The runner that drives them is
// src/write/recompile-jobs.ts.
import { SqlFilter } from "./sql-filter";

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
  attempts: number;
  created_at: number;
  updated_at: number;
}

// The customers a scope covers, in id order after a cursor. A plan covers its current and scheduled subscribers.
export async function customersAfter(
  db: D1Database,
  scope: RecompileScope,
  cursor: string,
  limit: number,
): Promise<string[]> {
  const rows = await customersAfterStatement(db, scope, cursor, limit).all<{ id: string }>();
  return rows.results.map((r) => r.id);
}

function customersAfterStatement(
  db: D1Database,
  scope: RecompileScope,
  cursor: string,
  limit: number,
): D1PreparedStatement {
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

export async function readJob(db: D1Database, id: string): Promise<JobRow | null> {
  return db.prepare("SELECT * FROM jobs WHERE id = ?1").bind(id).first<JobRow>();
}

/**
 * Moves a job's cursor by compare-and-set: only if it is still running at the cursor it was read with, so
 * of two runners that raced over the same batch only one counts it. `reached` counts customers reached
 * (a customer deleted meanwhile still moves the cursor). Whether this runner moved it.
 */
export async function advanceJob(
  db: D1Database,
  job: JobRow,
  next: { cursor: string | null; reached: number; status: JobStatus; now: number },
): Promise<boolean> {
  const result = await db
    .prepare(
      `UPDATE jobs SET cursor = ?2, done = done + ?3, total = MAX(total, done + ?3), status = ?4, updated_at = ?5
       WHERE id = ?1 AND status = 'running' AND cursor IS ?6`,
    )
    .bind(job.id, next.cursor, next.reached, next.status, next.now, job.cursor)
    .run();
  return result.meta.changes > 0;
}

/** Running recompile jobs, oldest first. */
export async function runningRecompileJobs(db: D1Database, limit: number): Promise<string[]> {
  const rows = await db
    .prepare("SELECT id FROM jobs WHERE kind = 'recompile' AND status = 'running' ORDER BY created_at, id LIMIT ?1")
    .bind(limit)
    .all<{ id: string }>();
  return rows.results.map((r) => r.id);
}

export interface JobFilter {
  status?: JobStatus;
  /** Keyset cursor, newest first: jobs before this (created_at, id). */
  before: [createdAt: number, id: string] | null;
  /** Rows to read (a page reads one more than it shows: http/pagination.ts). */
  limit: number;
}

/** Jobs, newest first. */
export async function listJobs(db: D1Database, q: JobFilter): Promise<JobRow[]> {
  const f = new SqlFilter()
    .when(q.status, "status = ?")
    .when(q.before, "(created_at, id) < (?, ?)", q.before?.[0], q.before?.[1]);
  const rows = await db
    .prepare(`SELECT * FROM jobs ${f.sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
    .bind(...f.params, q.limit)
    .all<JobRow>();
  return rows.results;
}

/** Counts a failed batch; the job is 'failed' once it has failed `maxAttempts` times (so later jobs run). */
export async function recordFailedAttempt(db: D1Database, jobId: string, maxAttempts: number, now: number) {
  await db
    .prepare(
      `UPDATE jobs SET attempts = attempts + 1, updated_at = ?3,
         status = CASE WHEN attempts + 1 >= ?2 THEN 'failed' ELSE status END
       WHERE id = ?1 AND status = 'running'`,
    )
    .bind(jobId, maxAttempts, now)
    .run();
}
