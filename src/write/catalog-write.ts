// A catalog write (features, plans, region groups): the change, its audit entry and the recompile job
// that propagates it commit in one D1 batch; the first batch of customers is recompiled before the
// write answers, the rest by the job (see recompile-jobs.ts).
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { type RecompileScope, readJob, recompileJobStatement } from "../store/jobs";
import { type AuditEntry, commitAdminWrite } from "./commit";
import { type JobView, runRecompileBatch, toJobView } from "./recompile-jobs";

export async function commitCatalogWrite(
  c: Context<AppEnv>,
  statements: D1PreparedStatement[],
  audits: AuditEntry[],
  scope: RecompileScope,
): Promise<JobView> {
  const now = c.var.services.clock.now();
  const job = recompileJobStatement(c.env.DB, scope, now);
  await commitAdminWrite(c, [...statements, job.statement], audits, { catalog: true });
  try {
    const { job: row } = await runRecompileBatch(c.env, c.var.services, job.id, now);
    if (row) return toJobView(row);
    throw new Error(`recompile job ${job.id} vanished after its insert`);
  } catch (err) {
    // The write is committed and the job is recorded: the cron (or /continue) picks it up from here.
    console.error(
      JSON.stringify({
        msg: "inline recompile batch failed",
        jobId: job.id,
        requestId: c.var.requestId,
        error: String(err),
      }),
    );
    const row = await readJob(c.env.DB, job.id);
    if (row) return toJobView(row);
    throw err;
  }
}
