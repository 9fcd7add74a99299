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

import { analyticsUpkeep } from "./analytics/retention";
import { configOf } from "./config";
import { applyDue } from "./domain/lifecycle";
import { iso } from "./domain/time";
import type { Env } from "./env";
import { startCatalogEvents } from "./events/catalog-events";
import { resendUnsent } from "./events/emit";
import { emitTimeEvents } from "./events/time-events";
import type { Services } from "./services";
import { readCatalogRev } from "./store/catalog";
import { unpublishedCustomerIds } from "./store/customer-ids";
import { kvKeys } from "./store/kv";
import { applyRetention } from "./store/retention";
import { refreshCatalog, refreshPart } from "./store/snapshot-publisher";
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

/** Customers the repair pass republishes per run at most; each costs one publisher call and one D1 compile. */
const REPAIR_PER_RUN = 200;
/** A write younger than this is left to its own request, which is still publishing it. */
const REPAIR_GRACE_MS = 60_000;

export interface RepairReport {
  /** Customers whose part was handed to their publisher again. */
  parts: number;
  failed: number;
  /** The catalog pointer: up to date, republished (behind D1 or missing), or could not be checked. */
  catalog: "current" | "republished" | "failed";
  /** True when more unconfirmed customers are left for the next run. */
  more: boolean;
}

/**
 * The backstop of publication (store/publisher.ts): a write whose publication never reached the
 * customer's publisher (the isolate was lost between the D1 commit and the call) is found by
 * customers.published_rev and republished from D1; a catalog pointer behind D1 is republished too. A
 * publication that reached its publisher needs none of this: the publisher retries it itself.
 */
export async function repairPublications(env: Env, now: number): Promise<RepairReport> {
  const ids = await unpublishedCustomerIds(env.DB, now - REPAIR_GRACE_MS, REPAIR_PER_RUN + 1);
  const report: RepairReport = { parts: 0, failed: 0, catalog: "current", more: ids.length > REPAIR_PER_RUN };
  for (const id of ids.slice(0, REPAIR_PER_RUN)) {
    try {
      await refreshPart(env, id, now);
      report.parts++;
    } catch (err) {
      report.failed++;
      console.error(JSON.stringify({ msg: "part repair failed", customerId: id, error: String(err) }));
    }
  }
  try {
    const head = await env.SNAPSHOTS.get<{ rev?: unknown }>(kvKeys.catalogHead, "json");
    const rev = await readCatalogRev(env.DB);
    if (typeof head?.rev !== "number" || head.rev < rev) {
      await refreshCatalog(env, now);
      report.catalog = "republished";
    }
  } catch (err) {
    report.catalog = "failed";
    console.error(JSON.stringify({ msg: "catalog repair failed", error: String(err) }));
  }
  return report;
}

/**
 * The whole scheduled run: the lifecycle changes that are due, then the publication repair pass. A
 * failure fails the invocation (visible in Cron Events).
 */
export async function runScheduled(env: Env, services: Services) {
  const now = services.clock.now();
  try {
    const lifecycle = await recordDueLifecycle(env, services, now);
    const publication = await repairPublications(env, now);
    // Outbound webhooks: the events time causes (events/time-events.ts), a catalog fan-out whose start
    // was lost (events/catalog-events.ts), deliveries whose message was lost (events/emit.ts).
    const events = {
      ...(await emitTimeEvents(env, now)),
      catalogFanout: await startCatalogEvents(env, now, { backstop: true }),
      resent: await resendUnsent(env, now),
    };
    // Analytics (local mode): this isolate's buffered points, then the rollups past their retention.
    const analytics = await analyticsUpkeep(env, services, now);
    // Last: old audit and history rows to R2 (store/retention.ts), a bounded number of pages per run.
    const retention = await applyRetention(env.DB, env.LEDGER, configOf(env).retention, now);
    const report = { at: iso(now), lifecycle, publication, events, analytics, retention };
    console.log(JSON.stringify({ msg: "scheduled run", ...report }));
    return report;
  } catch (err) {
    console.error(JSON.stringify({ msg: "scheduled run failed", at: iso(now), error: String(err) }));
    throw err;
  }
}
