// The events that time alone causes, sent by the cron (src/scheduled.ts): trial.ending (a trial ends
// within the lead time), grant.expiring (likewise), grant.expired (a grant's end has passed: access
// ended with no write, as snapshots enforce windows themselves), and the entitlements.changed of the
// changes nothing writes: a grant's end, and an `at_period_end` migration moving a subscription at its
// period end. Ids come from (subscription or grant, instant), so the same row in the next run's window
// is the same event and D1 records it once. Past windows (the last three) resume after a stored cursor,
// so a mass expiry is sent over successive runs, never the same first page again. A trial's end
// (trial.ended) is a write, so it comes from the write path (events/write-events.ts).
import { configOf } from "../config";
import { compileCatalog } from "../domain/catalog-compile";
import { compose } from "../domain/compose";
import { compilePart } from "../domain/customer-part";
import { entitlementDiff, isEmptyDiff } from "../domain/entitlement-diff";
import { DAY_MS, iso } from "../domain/time";
import { formatVersion } from "../domain/version";
import type { Env } from "../env";
import { loadCatalogRows, loadManyPartRows } from "../store/customer-rows";
import {
  type Cursor,
  type EndingRow,
  eventCursor,
  grantsEndingIn,
  migrationMovesIn,
  saveEventCursorStatement,
  trialsEndingIn,
} from "../store/event-sources";
import { anyEnabledEndpoint } from "../store/webhook-endpoints";
import { emitEvents } from "./emit";
import { eventId } from "./ids";
import type { EventType, OutboundEvent } from "./types";

const PAGE = 200;
/** At most this many events of each kind per run; the rest are in the next run's window too. */
const MAX_PER_KIND = 2_000;
/** How far back the past windows look: runs missed for longer than this send none of those events. */
export const EXPIRED_LOOKBACK_MS = 7 * DAY_MS;

export interface TimeEventsReport {
  trialEnding: number;
  grantExpiring: number;
  grantExpired: number;
  /** entitlements.changed of grants that ended and of migration moves. */
  entitlementsChanged: number;
}

type Source = (db: D1Database, from: number, to: number, after: Cursor, limit: number) => Promise<EndingRow[]>;
type Build = (rows: EndingRow[]) => Promise<OutboundEvent[]>;

export async function emitTimeEvents(env: Env, now: number): Promise<TimeEventsReport> {
  const report = { trialEnding: 0, grantExpiring: 0, grantExpired: 0, entitlementsChanged: 0 };
  if (!(await anyEnabledEndpoint(env.DB))) return report;
  const { trialEndingLeadMs, grantExpiringLeadMs } = configOf(env).events;
  const simple =
    (type: EventType, data: (r: EndingRow) => Record<string, unknown>): Build =>
    async (rows) => {
      const events: OutboundEvent[] = [];
      for (const r of rows)
        events.push({
          id: await eventId(type, r.id, r.ends_at),
          type,
          customerId: r.customer_id,
          at: now,
          data: data(r),
        });
      return events;
    };
  const trial = simple("trial.ending", (r) => ({ subscriptionId: r.id, planId: r.subject, trialEnd: iso(r.ends_at) }));
  const grant = (type: EventType) =>
    simple(type, (r) => ({ grantId: r.id, feature: r.subject, expiresAt: iso(r.ends_at) }));
  const upcoming = (source: Source, lead: number, build: Build) => emitWindow(env, now, source, now, now + lead, build);
  const past = (kind: string, source: Source, build: Build) =>
    emitWindow(env, now, source, now - EXPIRED_LOOKBACK_MS, now, build, kind);
  report.trialEnding = await upcoming(trialsEndingIn, trialEndingLeadMs, trial);
  report.grantExpiring = await upcoming(grantsEndingIn, grantExpiringLeadMs, grant("grant.expiring"));
  report.grantExpired = await past("grant.expired", grantsEndingIn, grant("grant.expired"));
  const changes = timeChanges(env, now);
  report.entitlementsChanged =
    (await past("grant.ended.entitlements", grantsEndingIn, changes("grant_expired"))) +
    (await past("migration.moves", migrationMovesIn, changes("migration")));
  return report;
}

/**
 * entitlements.changed for rows whose instant changed what the customer may do: each customer's part
 * (from D1) composed with the current catalog, granted just before the instant against at it. Rows
 * whose instant changed nothing (another source still grants the feature) send nothing.
 */
function timeChanges(env: Env, now: number) {
  return (kind: "grant_expired" | "migration"): Build =>
    async (rows) => {
      if (rows.length === 0) return [];
      const db = env.DB;
      const catalog = compileCatalog(await loadCatalogRows(db), now);
      const parts = await loadManyPartRows(db, [...new Set(rows.map((r) => r.customer_id))], new Map());
      const events: OutboundEvent[] = [];
      for (const r of rows) {
        const rowsOf = parts.get(r.customer_id);
        if (!rowsOf) continue;
        const part = compilePart(rowsOf, now);
        const snapshot = compose(part, catalog);
        const diff = entitlementDiff(snapshot, snapshot, r.ends_at, r.ends_at - 1);
        if (isEmptyDiff(diff)) continue;
        const cause =
          kind === "grant_expired"
            ? { kind, grantId: r.id, at: iso(r.ends_at) }
            : { kind, migrationId: r.subject, subscriptionId: r.id, at: iso(r.ends_at) };
        events.push({
          id: await eventId("entitlements.changed", r.customer_id, kind, r.id, r.ends_at),
          type: "entitlements.changed",
          customerId: r.customer_id,
          at: r.ends_at,
          data: { version: formatVersion(part.rev, catalog.rev), snapshotVersion: snapshot.version, cause, ...diff },
        });
      }
      return events;
    };
}

/** Sends the events of the rows in (from, to]; `cursorKind` makes the walk resume where the last run stopped. */
async function emitWindow(
  env: Env,
  now: number,
  source: Source,
  from: number,
  to: number,
  build: Build,
  cursorKind?: string,
): Promise<number> {
  const db = env.DB;
  let cursor: Cursor = cursorKind ? await eventCursor(db, cursorKind) : null;
  if (cursor && cursor[0] < from) cursor = null;
  let seen = 0;
  let emitted = 0;
  while (seen < MAX_PER_KIND) {
    const rows = await source(db, from, to, cursor, PAGE);
    const events = await build(rows);
    await emitEvents(env, db, events, now);
    seen += rows.length;
    emitted += events.length;
    const last = rows.at(-1);
    if (!last) break;
    cursor = [last.ends_at, last.id];
    if (cursorKind) await saveEventCursorStatement(db, cursorKind, cursor).run();
    if (rows.length < PAGE) break;
  }
  return emitted;
}
