// Emitting events: record them in D1 (once per id, fanned out to the matching endpoints), then enqueue
// one message per pending delivery. D1 is the record: a message that cannot be enqueued leaves its
// delivery pending in the delivery log, where a replay sends it (docs/webhooks.md).
import type { Env } from "../env";
import { pendingDeliveriesOf, recordEventsStatements } from "../store/outbound-events";
import type { DeliveryMessage, OutboundEvent } from "./types";

/** Events per D1 batch (two statements each) and messages per sendBatch (Queues takes at most 100). */
const EVENTS_PER_BATCH = 50;
const MESSAGES_PER_SEND = 100;

export async function emitEvents(env: Env, db: D1Database, events: OutboundEvent[], now: number): Promise<void> {
  for (let i = 0; i < events.length; i += EVENTS_PER_BATCH) {
    const chunk = events.slice(i, i + EVENTS_PER_BATCH);
    await db.batch(recordEventsStatements(db, chunk, now));
    await enqueueDeliveries(
      env,
      await pendingDeliveriesOf(
        db,
        chunk.map((e) => e.id),
      ),
    );
  }
}

/** One message per delivery; `delaySeconds` for those the endpoint's rate limit scheduled later. */
export async function enqueueDeliveries(env: Env, ids: string[], delaySeconds?: number): Promise<void> {
  for (let i = 0; i < ids.length; i += MESSAGES_PER_SEND) {
    const messages = ids
      .slice(i, i + MESSAGES_PER_SEND)
      .map((delivery) => ({ body: { delivery } satisfies DeliveryMessage, delaySeconds }));
    await env.WEBHOOK_QUEUE.sendBatch(messages);
  }
}

/** emitEvents for a caller whose own work is done (a committed write): a failure is logged, never thrown. */
export async function emitAfterWrite(env: Env, events: OutboundEvent[], now: number): Promise<void> {
  if (events.length === 0) return;
  try {
    await emitEvents(env, env.DB, events, now);
  } catch (err) {
    const msg = "outbound events could not be recorded; the write itself is committed";
    console.error(JSON.stringify({ msg, events: events.map((e) => e.id), error: String(err) }));
  }
}
