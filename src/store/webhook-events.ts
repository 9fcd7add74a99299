// Billing webhook events already applied (table webhook_events): the dedupe of redeliveries. The
// event's row goes into the same D1 batch as the change it makes, so an event is recorded exactly when
// it was applied.

export async function webhookEventSeen(db: D1Database, eventId: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM webhook_events WHERE id = ?1").bind(eventId).first()) !== null;
}

export function recordWebhookEventStatement(
  db: D1Database,
  event: { id: string; type: string },
  now: number,
): D1PreparedStatement {
  return db
    .prepare("INSERT INTO webhook_events (id, type, received_at) VALUES (?1, ?2, ?3)")
    .bind(event.id, event.type, now);
}
