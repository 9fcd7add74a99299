// How long the local rollups keep their rows: 90 days, as Analytics Engine keeps its points (three
// months), so a range answers the same in both modes. The cron deletes what is older, a bounded batch
// per table per run (the oldest rows first by the hour index), so a backlog drains over a few runs
// and no run scans the table.
import { configOf } from "../config";
import { DAY_MS } from "../domain/time";
import type { Env } from "../env";
import type { Services } from "../services";
import { deleteRollupsBefore } from "../store/analytics";

export const ROLLUP_RETENTION_DAYS = 90;
/** Rows deleted per table per cron run at most. */
export const ROLLUP_DELETES_PER_RUN = 5_000;

/** The cron's analytics work: flush this isolate's buffer, then delete the rollups past the retention. */
export async function analyticsUpkeep(env: Env, services: Services, now: number) {
  if (configOf(env).analytics.mode !== "local") return { deleted: 0 };
  await services.analytics.local(env).flush(env);
  const deleted = await deleteRollupsBefore(env.DB, now - ROLLUP_RETENTION_DAYS * DAY_MS, ROLLUP_DELETES_PER_RUN);
  return { deleted };
}
