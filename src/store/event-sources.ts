// What the cron reads to send the time-based events (events/time-events.ts): trials and grants whose
// end falls in a window, and migration moves, in (end, id) order after a keyset cursor; and what the
// catalog fan-out (events/catalog-events.ts) reads: its watermark (the catalogs: store/snapshot-history.ts).
import { LIVE_STATUSES } from "../domain/lifecycle";

export interface EndingRow {
  id: string;
  customer_id: string;
  ends_at: number;
  /** The plan (trials) or the feature (grants). */
  subject: string;
}

export type Cursor = [number, string] | null;

export async function trialsEndingIn(db: D1Database, from: number, to: number, after: Cursor, limit: number) {
  const rows = await db
    .prepare(
      `SELECT id, customer_id, trial_end AS ends_at, plan_id AS subject FROM subscriptions
       WHERE status = 'trialing' AND trial_end > ?1 AND trial_end <= ?2 AND (trial_end > ?3 OR (trial_end = ?3 AND id > ?4))
       ORDER BY trial_end, id LIMIT ?5`,
    )
    .bind(from, to, after?.[0] ?? from, after?.[1] ?? "", limit)
    .all<EndingRow>();
  return rows.results;
}

export async function grantsEndingIn(db: D1Database, from: number, to: number, after: Cursor, limit: number) {
  const rows = await db
    .prepare(
      `SELECT id, customer_id, expires_at AS ends_at, feature_key AS subject FROM grants
       WHERE status = 'active' AND expires_at > ?1 AND expires_at <= ?2 AND (expires_at > ?3 OR (expires_at = ?3 AND id > ?4))
       ORDER BY expires_at, id LIMIT ?5`,
    )
    .bind(from, to, after?.[0] ?? from, after?.[1] ?? "", limit)
    .all<EndingRow>();
  return rows.results;
}

/**
 * Subscriptions an `at_period_end` migration moves to a newer version at an instant in (from, to]:
 * the end of the period in force when the migration started, or the start of a period begun since
 * (domain/plan-versions.ts moveInstant). Nothing is written when they move, so the cron sends their
 * entitlements.changed (events/time-events.ts). In (instant, id) order after a keyset cursor;
 * `subject` is the migration's id.
 */
export async function migrationMovesIn(db: D1Database, from: number, to: number, after: Cursor, limit: number) {
  const rows = await db
    .prepare(
      `WITH moves AS (
         SELECT s.id, s.customer_id, m.id AS subject, m.cancelled_at,
           CASE WHEN s.current_period_start IS NOT NULL AND s.current_period_start >= m.at THEN s.current_period_start
                WHEN s.current_period_end IS NOT NULL AND s.current_period_end > m.at THEN s.current_period_end
                ELSE m.at END AS ends_at
         FROM plan_migrations m JOIN subscriptions s ON s.plan_id = m.plan_id
         WHERE m.mode = 'at_period_end' AND m.at < ?2
           AND COALESCE(s.plan_version, (SELECT version FROM plans WHERE id = m.plan_id)) < m.to_version
           AND s.status IN (SELECT value FROM json_each(?6)))
       SELECT id, customer_id, ends_at, subject FROM moves
       WHERE ends_at > ?1 AND ends_at <= ?2 AND (cancelled_at IS NULL OR ends_at < cancelled_at)
         AND (ends_at > ?3 OR (ends_at = ?3 AND id > ?4))
       ORDER BY ends_at, id LIMIT ?5`,
    )
    .bind(from, to, after?.[0] ?? from, after?.[1] ?? "", limit, JSON.stringify([...LIVE_STATUSES]))
    .all<EndingRow>();
  return rows.results;
}

/**
 * The catalog revision whose entitlements.changed fan-out has been started (meta.events_catalog_rev;
 * null: never, the first catalog write with an endpoint enabled starts the watermark).
 */
export async function eventsCatalogRev(db: D1Database): Promise<number | null> {
  return db.prepare("SELECT value FROM meta WHERE key = 'events_catalog_rev'").first<number>("value");
}

/** Moves the watermark from `from` (null: unset) to `to`; false when another run moved it first. */
export async function advanceEventsCatalogRev(db: D1Database, from: number | null, to: number): Promise<boolean> {
  const res =
    from === null
      ? await db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('events_catalog_rev', ?1)").bind(to).run()
      : await db
          .prepare("UPDATE meta SET value = ?2 WHERE key = 'events_catalog_rev' AND value = ?1")
          .bind(from, to)
          .run();
  return res.meta.changes > 0;
}

/** Where the cron's walk of a past window of `kind` stopped (null: nowhere yet). */
export async function eventCursor(db: D1Database, kind: string): Promise<Cursor> {
  const row = await db.prepare("SELECT ends_at, id FROM event_cursors WHERE kind = ?1").bind(kind).first<{
    ends_at: number;
    id: string;
  }>();
  return row ? [row.ends_at, row.id] : null;
}

export function saveEventCursorStatement(db: D1Database, kind: string, cursor: [number, string]): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO event_cursors (kind, ends_at, id) VALUES (?1, ?2, ?3) ON CONFLICT (kind) DO UPDATE SET ends_at = excluded.ends_at, id = excluded.id",
    )
    .bind(kind, cursor[0], cursor[1]);
}
