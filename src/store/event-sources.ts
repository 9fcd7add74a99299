// What the cron reads to send the time-based events (events/time-events.ts): trials and grants whose
// end falls in a window, in (end, id) order after a keyset cursor.

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
