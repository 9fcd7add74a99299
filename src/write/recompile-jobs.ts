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
import { iso } from "../domain/time";
import type { Env } from "../env";
import type { Services } from "../services";
import {
  advanceJob,
  customersAfter,
  type JobRow,
  type JobStatus,
  type RecompileScope,
  readJob,
  recordFailedAttempt,
  runningRecompileJobs,
} from "../store/jobs";
import { compileMany } from "../store/snapshot-publisher";

export interface JobView {
  id: string;
  kind: string;
  params: RecompileScope;
  status: JobStatus;
  done: number;
  total: number;
  /** Batches that failed; the job is failed after RECOMPILE_MAX_ATTEMPTS of them. */
  attempts: number;
  createdAt: string;
  updatedAt: string;
}

export const toJobView = (r: JobRow): JobView => ({
  id: r.id,
  kind: r.kind,
  params: JSON.parse(r.params) as RecompileScope,
  status: r.status,
  done: r.done,
  total: r.total,
  attempts: r.attempts,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

/** Recompiles the next batch of a job and records the progress: the job as it stands after, and how far this run moved it. */
export async function runRecompileBatch(
  env: Env,
  services: Services,
  jobId: string,
  now: number,
  batchSize = configOf(env).recompile.batchSize,
): Promise<{ job: JobRow | null; moved: number; failed?: true }> {
  const job = await readJob(env.DB, jobId);
  if (job?.status !== "running") return { job, moved: 0 };
  try {
    return await runBatch(env, services, job, now, batchSize);
  } catch (err) {
    // A batch that throws (not one that raced) counts as an attempt; after maxAttempts the job is
    // failed, so one job that cannot proceed never holds back the jobs after it. If D1 itself is
    // down, recording fails too and the attempt is not counted: an outage does not fail jobs.
    console.error(JSON.stringify({ msg: "recompile batch failed", jobId, error: String(err) }));
    const { maxAttempts } = configOf(env).recompile;
    await recordFailedAttempt(env.DB, jobId, maxAttempts, now).catch(() => undefined);
    return { job: await readJob(env.DB, jobId).catch(() => job), moved: 0, failed: true };
  }
}

async function runBatch(env: Env, services: Services, job: JobRow, now: number, batchSize: number) {
  const jobId = job.id;
  const scope = JSON.parse(job.params) as RecompileScope;
  const ids = await customersAfter(env.DB, scope, job.cursor ?? "", batchSize);
  const compiled = await compileMany(env, services, ids, now);
  const finished = ids.length < batchSize;
  // Compare-and-set on the cursor: when two runners raced over the same batch, only one counts it.
  // `done` counts customers reached (a customer deleted meanwhile still moves the cursor).
  const advanced = await advanceJob(env.DB, job, {
    cursor: ids.at(-1) ?? job.cursor,
    reached: ids.length,
    status: finished ? "done" : "running",
    now,
  });
  const moved = advanced ? ids.length : 0;
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
  const running = await runningRecompileJobs(env.DB, 20);
  const touched = new Set<string>();
  let left = budget;
  let customers = 0;
  for (const id of running) {
    while (left > 0) {
      const { job, moved, failed } = await runRecompileBatch(env, services, id, now, Math.min(size, left));
      touched.add(id);
      customers += moved;
      left -= Math.max(moved, 1); // a raced or empty batch still spends budget: no spinning
      if (failed || job?.status !== "running") break; // a failed batch is retried on the next run, not now
    }
    if (left <= 0) break;
  }
  return { jobs: [...touched], customers };
}
