// Webhook endpoints (table webhook_endpoints): where events go, the secrets that sign them, and each
// endpoint's health and send schedule. Writes are statements for the audited write path.
import { SqlFilter } from "./sql-filter";

export interface EndpointDbRow {
  id: string;
  url: string;
  description: string;
  event_types: string;
  customer_id: string | null;
  enabled: number;
  disabled_reason: string | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: number | null;
  rate_per_second: number;
  next_slot_at: number;
  failing_since: number | null;
  created_at: number;
  updated_at: number;
}

export function insertEndpointStatement(db: D1Database, r: EndpointDbRow): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO webhook_endpoints (id, url, description, event_types, customer_id, enabled, disabled_reason, secret,
         previous_secret, previous_secret_until, rate_per_second, next_slot_at, failing_since, created_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)`,
    )
    .bind(
      r.id,
      r.url,
      r.description,
      r.event_types,
      r.customer_id,
      r.enabled,
      r.disabled_reason,
      r.secret,
      r.previous_secret,
      r.previous_secret_until,
      r.rate_per_second,
      r.next_slot_at,
      r.failing_since,
      r.created_at,
      r.updated_at,
    );
}

/** Writes the settings and secrets of `r` (not its schedule, which deliveries advance concurrently). */
export function updateEndpointStatement(db: D1Database, r: EndpointDbRow): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE webhook_endpoints SET url = ?2, description = ?3, event_types = ?4, customer_id = ?5, enabled = ?6,
         disabled_reason = ?7, secret = ?8, previous_secret = ?9, previous_secret_until = ?10, rate_per_second = ?11,
         failing_since = ?12, updated_at = ?13
       WHERE id = ?1`,
    )
    .bind(
      r.id,
      r.url,
      r.description,
      r.event_types,
      r.customer_id,
      r.enabled,
      r.disabled_reason,
      r.secret,
      r.previous_secret,
      r.previous_secret_until,
      r.rate_per_second,
      r.failing_since,
      r.updated_at,
    );
}

export const deleteEndpointStatement = (db: D1Database, id: string) =>
  db.prepare("DELETE FROM webhook_endpoints WHERE id = ?1").bind(id);

export const readEndpoint = (db: D1Database, id: string) =>
  db.prepare("SELECT * FROM webhook_endpoints WHERE id = ?1").bind(id).first<EndpointDbRow>();

/** Endpoints, newest first, after a keyset cursor [created_at, id]. */
export async function listEndpoints(
  db: D1Database,
  q: { before: [number, string] | null; limit: number },
): Promise<EndpointDbRow[]> {
  const f = new SqlFilter().when(
    q.before,
    "(created_at < ? OR (created_at = ? AND id < ?))",
    q.before?.[0],
    q.before?.[0],
    q.before?.[1],
  );
  const rows = await db
    .prepare(`SELECT * FROM webhook_endpoints ${f.sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
    .bind(...f.params, q.limit)
    .all<EndpointDbRow>();
  return rows.results;
}

/** Whether any endpoint is enabled: the write path records no events while nobody listens. */
export async function anyEnabledEndpoint(db: D1Database): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM webhook_endpoints WHERE enabled = 1 LIMIT 1").first()) !== null;
}

/**
 * Claims the endpoint's next send slot: slots are 1000 / rate_per_second ms apart, never in the past.
 * One statement, so concurrent consumers never share a slot. Null: no such endpoint.
 */
export async function claimSendSlot(db: D1Database, id: string, now: number): Promise<number | null> {
  const row = await db
    .prepare(
      `UPDATE webhook_endpoints SET next_slot_at = MAX(next_slot_at, ?2) + 1000.0 / rate_per_second
       WHERE id = ?1 RETURNING next_slot_at - 1000.0 / rate_per_second AS slot`,
    )
    .bind(id, now)
    .first<{ slot: number }>();
  return row ? Math.round(row.slot) : null;
}

/** A delivery succeeded: the endpoint is healthy again. A failure: it has been failing since then (or earlier). */
export function recordEndpointOutcomeStatement(db: D1Database, id: string, ok: boolean, now: number) {
  return ok
    ? db.prepare("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?1").bind(id)
    : db
        .prepare("UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1")
        .bind(id, now);
}

/** Disables an endpoint that is still enabled (compare-and-set: two dead letters disable it once). */
export function disableEndpointStatement(db: D1Database, id: string, reason: string, now: number) {
  return db
    .prepare(
      "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1 AND enabled = 1",
    )
    .bind(id, reason, now);
}
