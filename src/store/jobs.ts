// Recompile jobs in D1 (table jobs), as the admin API lists them. Creating, advancing and reading one
// job belongs to the job runner (src/write/recompile-jobs.ts), which owns the row type.
import type { JobRow, JobStatus } from "../write/recompile-jobs";
import { SqlFilter } from "./sql-filter";

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
