// Emitting events: record them in D1 (once per id, fanned out to the matching endpoints), then enqueue
// one message per pending delivery. D1 is the record: a message that cannot be enqueued leaves its
// delivery pending in the delivery log, and the cron sends it again once it is an hour overdue
// (resendUnsent), as a replay would (docs/webhooks.md).
import type { Env } from "../env";
import { pendingDeliveriesOf, recordEventsStatements, takeOverdueDeliveries } from "../store/outbound-events";
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

/** How overdue a pending delivery's message must be before the cron sends it again. */
export const RESEND_AFTER_MS = 60 * 60_000;
const RESEND_PER_RUN = 500;

/**
 * The cron's sweep: pending deliveries whose message is an hour overdue (never enqueued, or lost) are
 * enqueued again, 500 per run. A message that was only late may then be delivered twice: receivers
 * deduplicate by `webhook-id`, as at-least-once delivery asks of them anyway.
 */
export async function resendUnsent(env: Env, now: number): Promise<number> {
  const ids = await takeOverdueDeliveries(env.DB, now - RESEND_AFTER_MS, now, RESEND_PER_RUN);
  await enqueueDeliveries(env, ids);
  return ids.length;
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
