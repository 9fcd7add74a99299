// The cron handler's work. Snapshots already enforce every time-dependent change as a time window
// (compile.ts), so access changes on time whether or not this runs; this makes D1, the source of
// record, say the same thing: due plan changes, cancellations, trial ends, grace ends and renewals
// are written to the subscription, audited as actor "system", and the customer's snapshot is
// recompiled (its part: catalog changes need no cron work at all).
//
// Bounded: at most `maxChanges` subscriptions per run, read in id-ordered pages (a cursor within the
// run, so a row that fails is passed over rather than retried forever in the same run). Idempotent:
// a row that has been brought up to date is no longer due, and two overlapping runs cannot both
// write one row (compare-and-set in updateSubscriptionStatements; the loser skips it).

import { configOf } from "./config";
import { applyDue } from "./domain/lifecycle";
import { iso } from "./domain/time";
import type { Env } from "./env";
import { emitTimeEvents } from "./events/time-events";
import type { Services } from "./services";
import { dueSubscriptions, isWriteConflict, updateSubscriptionStatements } from "./store/subscriptions";
import { commitWrite, SYSTEM } from "./write/commit";
import { dueAudits } from "./write/subscription-audit";

const PAGE = 50;

export interface LifecycleRunReport {
  /** Subscriptions written. */
  changed: number;
  /** Due events recorded (a subscription may have several: a plan change and a renewal). */
  events: number;
  /** Skipped because another writer changed the row first (the next run looks again). */
  conflicts: number;
  failed: number;
  /** True when the budget ran out with due rows left: the next run continues. */
  more: boolean;
}

// Mirrors nextDue() in domain/lifecycle.ts as a filter (a superset is harmless: applyDue decides).
// Provider-managed subscriptions (external_id) are recorded by their webhooks, never here.

/** Records every lifecycle event due at `now` (up to the budget). */
export async function recordDueLifecycle(
  env: Env,
  services: Services,
  now: number,
  maxChanges = configOf(env).scheduled.maxChanges,
): Promise<LifecycleRunReport> {
  const report: LifecycleRunReport = { changed: 0, events: 0, conflicts: 0, failed: 0, more: false };
  let cursor = "";
  for (;;) {
    const page = await dueSubscriptions(env.DB, cursor, now, PAGE);
    for (const before of page) {
      if (report.changed + report.conflicts + report.failed >= maxChanges) return { ...report, more: true };
      cursor = before.id;
      const { row, steps } = applyDue(before, now);
      if (steps.length === 0) continue;
      const after = { ...row, updatedAt: now };
      try {
        const statements = updateSubscriptionStatements(env.DB, before, after, now);
        await commitWrite(
          env,
          services,
          SYSTEM,
          { statements, audits: dueAudits(steps), customers: [before.customerId] },
          now,
        );
        report.changed++;
        report.events += steps.length;
      } catch (err) {
        if (isWriteConflict(err)) report.conflicts++;
        else {
          report.failed++;
          console.error(
            JSON.stringify({ msg: "scheduled lifecycle change failed", subscriptionId: before.id, error: String(err) }),
          );
        }
      }
    }
    if (page.length < PAGE) return report;
  }
}

/** The whole scheduled run: the lifecycle changes that are due. A failure fails the invocation (visible in Cron Events). */
export async function runScheduled(env: Env, services: Services) {
  const now = services.clock.now();
  try {
    const lifecycle = await recordDueLifecycle(env, services, now);
    // Outbound webhooks: trial.ending, grant.expiring, grant.expired (events/time-events.ts).
    const events = await emitTimeEvents(env, now);
    const report = { at: iso(now), lifecycle, events };
    console.log(JSON.stringify({ msg: "scheduled run", ...report }));
    return report;
  } catch (err) {
    console.error(JSON.stringify({ msg: "scheduled run failed", at: iso(now), error: String(err) }));
    throw err;
  }
}
