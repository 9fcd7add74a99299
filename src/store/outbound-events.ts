// Outbound events and their deliveries (tables outbound_events, webhook_deliveries). An event is
// recorded once per id (derived from its cause), with the customer's next sequence number; it fans
// out to one delivery per matching enabled endpoint, also once. So emitting the same cause again, from
// a retried write, a second cron run or a replayed meter flush, records nothing new.
import type { EventPayload, EventType, OutboundEvent } from "../events/types";
import { SqlFilter } from "./sql-filter";

/** The statements that record events and fan them out, and the query of their pending deliveries. */
export function recordEventsStatements(db: D1Database, events: OutboundEvent[], now: number): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (const e of events) {
    out.push(
      db
        .prepare(
          `INSERT INTO outbound_events (id, type, customer_id, seq, data, created_at)
           SELECT ?1, ?2, ?3, COALESCE(MAX(seq), 0) + 1, ?4, ?5 FROM outbound_events WHERE customer_id = ?3
           ON CONFLICT (id) DO NOTHING`,
        )
        .bind(e.id, e.type, e.customerId, JSON.stringify(e.data), e.at),
      db
        .prepare(
          `INSERT OR IGNORE INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, created_at)
           SELECT 'dlv_' || lower(hex(randomblob(12))), w.id, ?1, 'pending', 0, ?4 FROM webhook_endpoints w
           WHERE w.enabled = 1 AND (w.customer_id IS NULL OR w.customer_id = ?2)
             AND (w.event_types = '[]' OR EXISTS (SELECT 1 FROM json_each(w.event_types) WHERE value = ?3))`,
        )
        .bind(e.id, e.customerId, e.type, now),
    );
  }
  return out;
}

/**
 * Pending deliveries whose message is overdue by `before`: never enqueued (the queue refused it after the
 * event was recorded) or lost on the way. Marked as sent again at `now`, so the next sweep waits as long.
 */
export async function takeOverdueDeliveries(db: D1Database, before: number, now: number, limit: number) {
  const rows = await db
    .prepare(
      `UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id IN (
         SELECT id FROM webhook_deliveries WHERE status = 'pending' AND COALESCE(next_attempt_at, created_at) < ?1
         ORDER BY COALESCE(next_attempt_at, created_at) LIMIT ?3)
       RETURNING id`,
    )
    .bind(before, now, limit)
    .all<{ id: string }>();
  return rows.results.map((r) => r.id);
}

/** A delivery's message went back on the queue for `at` (the endpoint's rate): the sweep leaves it until then. */
export function scheduleDeliveryStatement(db: D1Database, id: string, at: number): D1PreparedStatement {
  return db
    .prepare("UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1 AND status = 'pending'")
    .bind(id, at);
}

/** Deliveries of these events that have not succeeded yet (to enqueue). */
export async function pendingDeliveriesOf(db: D1Database, eventIds: string[]): Promise<string[]> {
  if (eventIds.length === 0) return [];
  const rows = await db
    .prepare(
      `SELECT id FROM webhook_deliveries WHERE status = 'pending' AND event_id IN (SELECT value FROM json_each(?1))`,
    )
    .bind(JSON.stringify(eventIds))
    .all<{ id: string }>();
  return rows.results.map((r) => r.id);
}

export interface DeliveryDbRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  status: "pending" | "delivered" | "failed" | "skipped";
  attempts: number;
  response_code: number | null;
  latency_ms: number | null;
  last_error: string | null;
  created_at: number;
  last_attempt_at: number | null;
  next_attempt_at: number | null;
  delivered_at: number | null;
}

export interface EventDbRow {
  id: string;
  type: EventType;
  customer_id: string;
  seq: number;
  data: string;
  created_at: number;
}

/** One delivery with its event (null: gone, e.g. its endpoint was deleted). */
export async function readDelivery(
  db: D1Database,
  id: string,
): Promise<{ delivery: DeliveryDbRow; event: EventDbRow } | null> {
  const row = await db
    .prepare(
      `SELECT d.*, e.type AS e_type, e.customer_id AS e_customer_id, e.seq AS e_seq, e.data AS e_data,
              e.created_at AS e_created_at
       FROM webhook_deliveries d JOIN outbound_events e ON e.id = d.event_id WHERE d.id = ?1`,
    )
    .bind(id)
    .first<DeliveryDbRow & Record<`e_${string}`, unknown>>();
  if (!row) return null;
  const { e_type, e_customer_id, e_seq, e_data, e_created_at, ...delivery } = row;
  const event = {
    id: delivery.event_id,
    type: e_type as EventType,
    customer_id: String(e_customer_id),
    seq: Number(e_seq),
    data: String(e_data),
    created_at: Number(e_created_at),
  };
  return { delivery: delivery as DeliveryDbRow, event };
}

/** The body as delivered: the same bytes on every attempt and replay. */
export function payloadOf(e: EventDbRow): EventPayload {
  return {
    id: e.id,
    type: e.type,
    timestamp: new Date(e.created_at).toISOString(),
    customerId: e.customer_id,
    sequence: e.seq,
    data: JSON.parse(e.data) as Record<string, unknown>,
  };
}

export interface AttemptOutcome {
  status: DeliveryDbRow["status"];
  responseCode: number | null;
  latencyMs: number | null;
  error: string | null;
  /** When the queue brings a failed attempt back (null: delivered). */
  nextAttemptAt: number | null;
}

export function recordAttemptStatement(db: D1Database, id: string, o: AttemptOutcome, now: number) {
  return db
    .prepare(
      `UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1, response_code = ?3, latency_ms = ?4,
         last_error = ?5, last_attempt_at = ?6, next_attempt_at = ?7,
         delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_at END
       WHERE id = ?1`,
    )
    .bind(id, o.status, o.responseCode, o.latencyMs, o.error, now, o.nextAttemptAt);
}

/** A delivery that will not be attempted (endpoint disabled) or was given up (dead-lettered). */
export function closeDeliveryStatement(db: D1Database, id: string, status: "failed" | "skipped", error: string) {
  return db
    .prepare(
      "UPDATE webhook_deliveries SET status = ?2, last_error = ?3, next_attempt_at = NULL WHERE id = ?1 AND status = 'pending'",
    )
    .bind(id, status, error);
}

/** An endpoint's deliveries, newest first, after a keyset cursor [created_at, id]. */
export async function listDeliveries(
  db: D1Database,
  q: { endpointId: string; status?: string; before: [number, string] | null; limit: number },
): Promise<(DeliveryDbRow & { event_type: string; customer_id: string; seq: number })[]> {
  const f = new SqlFilter()
    .when(q.endpointId, "d.endpoint_id = ?")
    .when(q.status, "d.status = ?")
    .when(
      q.before,
      "(d.created_at < ? OR (d.created_at = ? AND d.id < ?))",
      q.before?.[0],
      q.before?.[0],
      q.before?.[1],
    );
  const rows = await db
    .prepare(
      `SELECT d.*, e.type AS event_type, e.customer_id, e.seq FROM webhook_deliveries d
       JOIN outbound_events e ON e.id = d.event_id ${f.sql} ORDER BY d.created_at DESC, d.id DESC LIMIT ?`,
    )
    .bind(...f.params, q.limit)
    .all<DeliveryDbRow & { event_type: string; customer_id: string; seq: number }>();
  return rows.results;
}

/**
 * Puts deliveries of an endpoint back to pending for a replay: one by id, or those of events created in
 * [from, to) (at most `limit`, oldest first). Answers the ids to enqueue.
 */
export async function reopenDeliveries(
  db: D1Database,
  q: { endpointId: string; deliveryId?: string; from?: number; to?: number; limit: number },
): Promise<string[]> {
  const f = new SqlFilter()
    .when(q.endpointId, "d.endpoint_id = ?")
    .when(q.deliveryId, "d.id = ?")
    .when(q.from, "e.created_at >= ?")
    .when(q.to, "e.created_at < ?");
  const rows = await db
    .prepare(
      `UPDATE webhook_deliveries SET status = 'pending' WHERE id IN (
         SELECT d.id FROM webhook_deliveries d JOIN outbound_events e ON e.id = d.event_id ${f.sql}
         ORDER BY e.created_at, d.id LIMIT ?) RETURNING id`,
    )
    .bind(...f.params, q.limit)
    .all<{ id: string }>();
  return rows.results.map((r) => r.id);
}
