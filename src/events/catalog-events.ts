// entitlements.changed for catalog writes. A plan edit, a migration "now", a feature's or a region
// group's change reaches existing customers without any customer write (checks compose each customer's
// part with the catalog they hold), so the write path (events/write-events.ts) sees none of it. After a
// catalog write, one fan-out starts over the webhook queue: a message per page of PAGE customers the
// change can reach (domain/catalog-reach.ts: a plan's subscribers, or everyone), each composing every
// customer's part (from D1) with the catalog before and after and emitting the differences, then
// sending the next page. 100,000 customers are 1,000 messages; what reaches a receiver is paced by its
// endpoint's rate limit (events/deliver.ts).
//
// The watermark meta.events_catalog_rev is the revision whose fan-out has started. The fan-out is
// enqueued before the watermark moves, so a failed enqueue leaves it behind and the cron starts it again
// (scheduled.ts); two overlapping starts send a change twice at worst, under the same id (customer,
// revision), which D1 records once. Ids come from (customer, catalog revision): a retried page emits
// nothing new.
import { type CompiledCatalog, compileCatalog } from "../domain/catalog-compile";
import { catalogReach } from "../domain/catalog-reach";
import { compose } from "../domain/compose";
import { compilePart } from "../domain/customer-part";
import { entitlementDiff, isEmptyDiff } from "../domain/entitlement-diff";
import { formatVersion } from "../domain/version";
import type { Env } from "../env";
import { customersOnPlanAfter, readCatalogRev } from "../store/catalog";
import { customerIdsAfter } from "../store/customer-ids";
import { loadCatalogRows, loadManyPartRows } from "../store/customer-rows";
import { advanceEventsCatalogRev, eventsCatalogRev } from "../store/event-sources";
import { catalogAtOrBefore } from "../store/snapshot-history";
import { anyEnabledEndpoint } from "../store/webhook-endpoints";
import { emitEvents } from "./emit";
import { eventId } from "./ids";
import type { OutboundEvent } from "./types";

/** Customers per fan-out message. */
export const FANOUT_PAGE = 100;

/**
 * A page of a catalog fan-out: for the change fromRev -> toRev at `at`, the customers after `after` (id
 * order), `limit` of them (default FANOUT_PAGE); when the change reaches some plans only, of the
 * `plan`-th of them (default 0; plans in id order), each walked in turn.
 */
export interface CatalogFanoutMessage {
  catalogChange: { fromRev: number; toRev: number; at: number; after: string; limit?: number; plan?: number };
}

export const isCatalogFanoutMessage = (body: unknown): body is CatalogFanoutMessage => {
  const c = (body as Partial<CatalogFanoutMessage> | null)?.catalogChange;
  return (
    typeof c === "object" &&
    c !== null &&
    Number.isInteger(c.fromRev) &&
    Number.isInteger(c.toRev) &&
    Number.isFinite(c.at) &&
    typeof c.after === "string" &&
    (c.limit === undefined || (Number.isInteger(c.limit) && c.limit > 0 && c.limit <= FANOUT_PAGE)) &&
    (c.plan === undefined || (Number.isInteger(c.plan) && c.plan >= 0))
  );
};

/**
 * After a catalog write, and from the cron (`backstop`): starts the fan-out of the revisions since the watermark.
 * Answers the revisions it covers (null: nothing to send). With no endpoint enabled it only moves the
 * watermark, so enabling one later does not replay old catalog changes.
 */
export async function startCatalogEvents(
  env: Env,
  now: number,
  opts: { backstop?: boolean } = {},
): Promise<{ fromRev: number; toRev: number } | null> {
  const db = env.DB;
  const [mark, rev] = await Promise.all([eventsCatalogRev(db), readCatalogRev(db)]);
  if (mark !== null && rev <= mark) return null;
  // The cron's backstop never guesses where an unset watermark stood: it only sets it.
  if ((mark === null && opts.backstop) || !(await anyEnabledEndpoint(db))) {
    await advanceEventsCatalogRev(db, mark, rev);
    return null;
  }
  // No watermark yet (the first catalog write since events exist): this write's change is the one to send.
  const fromRev = mark ?? rev - 1;
  const message: CatalogFanoutMessage = { catalogChange: { fromRev, toRev: rev, at: now, after: "" } };
  await env.WEBHOOK_QUEUE.send(message);
  await advanceEventsCatalogRev(db, mark, rev);
  return { fromRev, toRev: rev };
}

/** One page: emits the page's differences, then sends the next page (a failure retries this one). */
export async function runCatalogFanoutPage(env: Env, job: CatalogFanoutMessage["catalogChange"]): Promise<number> {
  const db = env.DB;
  const [before, after] = await Promise.all([catalogAtOrBefore(db, job.fromRev), catalogAtRev(db, job.toRev, job.at)]);
  if (!before || !after || after.rev <= before.rev) return 0;
  const reach = catalogReach(before, after);
  if (!reach.everyone && reach.plans.length === 0) return 0;
  const limit = job.limit ?? FANOUT_PAGE;
  const plan = job.plan ?? 0;
  const planId = reach.everyone ? null : reach.plans[plan];
  if (planId === undefined) return 0;
  const ids =
    planId === null
      ? await customerIdsAfter(db, job.after, limit)
      : await customersOnPlanAfter(db, planId, job.at, job.after, limit);
  const unreadable = new Map<string, unknown>();
  const parts = await loadManyPartRows(db, ids, unreadable);
  const events: OutboundEvent[] = [];
  for (const [customerId, rows] of parts) {
    const part = compilePart(rows, job.at);
    const snapshot = compose(part, after);
    const diff = entitlementDiff(compose(part, before), snapshot, job.at);
    if (isEmptyDiff(diff)) continue;
    events.push({
      id: await eventId("entitlements.changed", customerId, "catalog", after.rev),
      type: "entitlements.changed",
      customerId,
      at: job.at,
      data: {
        version: formatVersion(part.rev, after.rev),
        snapshotVersion: snapshot.version,
        cause: { kind: "catalog", fromCatalogRev: before.rev, catalogRev: after.rev },
        ...diff,
      },
    });
  }
  for (const [customerId, error] of unreadable)
    console.error(JSON.stringify({ msg: "catalog fan-out: customer unreadable", customerId, error: String(error) }));
  await emitEvents(env, db, events, job.at);
  // The next page: this plan's (or everyone's) next customers, or the next plan's first. A customer on
  // two of the plans is visited twice and sends once (the same event id).
  const last = ids.at(-1);
  const next =
    ids.length === limit && last !== undefined
      ? { ...job, after: last }
      : !reach.everyone && plan + 1 < reach.plans.length
        ? { ...job, after: "", plan: plan + 1 }
        : null;
  if (next) await env.WEBHOOK_QUEUE.send({ catalogChange: next } satisfies CatalogFanoutMessage);
  return events.length;
}

/** The catalog of exactly `rev`: its history row, or the catalog compiled now if that is still `rev`. */
async function catalogAtRev(db: D1Database, rev: number, at: number): Promise<CompiledCatalog | null> {
  const found = await catalogAtOrBefore(db, rev);
  if (found?.rev === rev) return found;
  const now = compileCatalog(await loadCatalogRows(db), at);
  return now.rev === rev ? now : null;
}
