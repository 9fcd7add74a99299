// The events that time alone causes, sent by the cron (src/scheduled.ts): trial.ending (a trial ends
// within the lead time), grant.expiring (likewise) and grant.expired (a grant's end has passed: access
// ended with no write, as snapshots enforce windows themselves). Each run looks at a window and emits
// everything in it; ids come from (subscription or grant, end instant), so the same trial or grant in
// the next run's window is the same event and D1 records it once. A trial's end (trial.ended) is a
// write, so it comes from the write path (events/write-events.ts).
import { configOf } from "../config";
import { DAY_MS, iso } from "../domain/time";
import type { Env } from "../env";
import { type Cursor, type EndingRow, grantsEndingIn, trialsEndingIn } from "../store/event-sources";
import { anyEnabledEndpoint } from "../store/webhook-endpoints";
import { emitEvents } from "./emit";
import { eventId } from "./ids";
import type { EventType, OutboundEvent } from "./types";

const PAGE = 200;
/** At most this many events of each kind per run; the rest are in the next run's window too. */
const MAX_PER_KIND = 2_000;
/** How far back grant.expired looks: runs missed for longer than this send no grant.expired. */
export const EXPIRED_LOOKBACK_MS = 7 * DAY_MS;

export interface TimeEventsReport {
  trialEnding: number;
  grantExpiring: number;
  grantExpired: number;
}

export async function emitTimeEvents(env: Env, now: number): Promise<TimeEventsReport> {
  const report = { trialEnding: 0, grantExpiring: 0, grantExpired: 0 };
  if (!(await anyEnabledEndpoint(env.DB))) return report;
  const { trialEndingLeadMs, grantExpiringLeadMs } = configOf(env).events;
  const trial = (r: EndingRow) => ({ subscriptionId: r.id, planId: r.subject, trialEnd: iso(r.ends_at) });
  const grant = (r: EndingRow) => ({ grantId: r.id, feature: r.subject, expiresAt: iso(r.ends_at) });
  report.trialEnding = await emitWindow(env, now, "trial.ending", trialsEndingIn, now, now + trialEndingLeadMs, trial);
  report.grantExpiring = await emitWindow(
    env,
    now,
    "grant.expiring",
    grantsEndingIn,
    now,
    now + grantExpiringLeadMs,
    grant,
  );
  report.grantExpired = await emitWindow(
    env,
    now,
    "grant.expired",
    grantsEndingIn,
    now - EXPIRED_LOOKBACK_MS,
    now,
    grant,
  );
  return report;
}

type Source = (db: D1Database, from: number, to: number, after: Cursor, limit: number) => Promise<EndingRow[]>;

async function emitWindow(
  env: Env,
  now: number,
  type: EventType,
  source: Source,
  from: number,
  to: number,
  data: (r: EndingRow) => Record<string, unknown>,
): Promise<number> {
  let cursor: Cursor = null;
  let emitted = 0;
  while (emitted < MAX_PER_KIND) {
    const rows = await source(env.DB, from, to, cursor, PAGE);
    const events: OutboundEvent[] = [];
    for (const r of rows)
      events.push({
        id: await eventId(type, r.id, r.ends_at),
        type,
        customerId: r.customer_id,
        at: now,
        data: data(r),
      });
    await emitEvents(env, env.DB, events, now);
    emitted += rows.length;
    const last = rows.at(-1);
    if (!last || rows.length < PAGE) break;
    cursor = [last.ends_at, last.id];
  }
  return emitted;
}
