// The webhook queue's consumer: a message is one delivery of one event to one endpoint, or one page of
// a catalog change's fan-out (events/catalog-events.ts). A delivery is acked once the receiver answers
// 2xx (or there is nothing to send); retried with backoff (events/retry.ts) otherwise; after max_retries Queues moves it to the dead-letter queue, whose consumer (below) marks
// the delivery failed and disables an endpoint that has not succeeded for DISABLE_AFTER_MS.
//
// Per-endpoint rate limit: before its first attempt a delivery claims the endpoint's next send slot
// (store/webhook-endpoints.ts claimSendSlot: slots 1000 / rate_per_second ms apart). A slot later than
// now goes back on the queue with that delay, so a migration that changes 100,000 customers reaches a
// 10/s endpoint over about 2.8 hours instead of all at once.
import { HOUR_MS } from "../domain/time";
import type { Env } from "../env";
import type { Services } from "../services";
import {
  closeDeliveryStatement,
  payloadOf,
  readDelivery,
  recordAttemptStatement,
  scheduleDeliveryStatement,
} from "../store/outbound-events";
import {
  claimSendSlot,
  disableEndpointStatement,
  type EndpointDbRow,
  readEndpoint,
  recordEndpointOutcomeStatement,
} from "../store/webhook-endpoints";
import { commitWrite, SYSTEM } from "../write/commit";
import { type CatalogFanoutMessage, isCatalogFanoutMessage, runCatalogFanoutPage } from "./catalog-events";
import { retryDelaySeconds } from "./retry";
import { webhookHeaders } from "./signing";
import type { DeliveryMessage } from "./types";

export const DELIVERY_TIMEOUT_MS = 15_000;
/** An endpoint whose delivery is dead-lettered and that has not succeeded for this long is disabled. */
export const DISABLE_AFTER_MS = 24 * HOUR_MS;
/** A slot this close to now is taken at once. */
const SLOT_TOLERANCE_MS = 1_000;

const isDeliveryMessage = (body: unknown): body is DeliveryMessage =>
  typeof body === "object" &&
  body !== null &&
  typeof (body as DeliveryMessage).delivery === "string" &&
  ["undefined", "number"].includes(typeof (body as DeliveryMessage).slot);

export async function handleWebhookQueue(batch: MessageBatch, env: Env, services: Services) {
  const dead = batch.queue.endsWith("-dlq");
  for (const message of batch.messages) {
    if (isCatalogFanoutMessage(message.body)) {
      await fanoutPage(env, message as Message<CatalogFanoutMessage>, dead);
      continue;
    }
    if (!isDeliveryMessage(message.body)) {
      console.error(JSON.stringify({ msg: "not a webhook delivery message; dropped", id: message.id }));
      message.ack();
      continue;
    }
    try {
      if (dead) await deadLetter(env, services, message.body);
      else await deliverMessage(env, services, message as Message<DeliveryMessage>);
    } catch (err) {
      // A store failure: the message comes back (its attempt was not recorded).
      console.error(JSON.stringify({ msg: "webhook queue message failed", body: message.body, error: String(err) }));
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    }
  }
}

/** A page of a catalog fan-out (events/catalog-events.ts); dead-lettered pages are logged (their events are lost). */
async function fanoutPage(env: Env, message: Message<CatalogFanoutMessage>, dead: boolean) {
  if (dead) {
    console.error(JSON.stringify({ msg: "catalog fan-out page dead-lettered", job: message.body.catalogChange }));
    return message.ack();
  }
  try {
    await runCatalogFanoutPage(env, message.body.catalogChange);
    message.ack();
  } catch (err) {
    console.error(JSON.stringify({ msg: "catalog fan-out page failed", job: message.body, error: String(err) }));
    message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
  }
}

async function deliverMessage(env: Env, services: Services, message: Message<DeliveryMessage>) {
  const db = env.DB;
  const found = await readDelivery(db, message.body.delivery);
  if (found?.delivery.status !== "pending") return message.ack();
  const endpoint = await readEndpoint(db, found.delivery.endpoint_id);
  if (!endpoint?.enabled) {
    await closeDeliveryStatement(db, found.delivery.id, "skipped", "endpoint disabled").run();
    return message.ack();
  }
  if (message.body.slot === undefined) {
    const now = services.clock.now();
    const slot = (await claimSendSlot(db, endpoint.id, now)) ?? now;
    if (slot > now + SLOT_TOLERANCE_MS) {
      const delaySeconds = Math.ceil((slot - now) / 1000);
      await env.WEBHOOK_QUEUE.send({ delivery: found.delivery.id, slot } satisfies DeliveryMessage, { delaySeconds });
      await scheduleDeliveryStatement(db, found.delivery.id, slot).run();
      return message.ack();
    }
  }
  const body = JSON.stringify(payloadOf(found.event));
  const sent = await send(services, endpoint, found.event.id, body);
  const now = services.clock.now();
  const ok = sent.status === "delivered";
  const delaySeconds = retryDelaySeconds(message.attempts);
  const outcome = { ...sent, nextAttemptAt: ok ? null : now + delaySeconds * 1000 };
  await db.batch([
    recordAttemptStatement(db, found.delivery.id, outcome, now),
    recordEndpointOutcomeStatement(db, endpoint.id, ok, now),
  ]);
  if (ok) message.ack();
  else message.retry({ delaySeconds });
}

/** One attempt: signed with the current secret and, during a rotation's overlap, the previous one too. */
async function send(services: Services, endpoint: EndpointDbRow, eventId: string, body: string) {
  const start = services.clock.now();
  const secrets = [endpoint.secret];
  if (endpoint.previous_secret && (endpoint.previous_secret_until ?? 0) > start) secrets.push(endpoint.previous_secret);
  const headers = await webhookHeaders(secrets, eventId, Math.floor(start / 1000), body);
  try {
    const res = await services.fetch(endpoint.url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await res.body?.cancel();
    const latencyMs = services.clock.now() - start;
    const ok = res.status >= 200 && res.status < 300;
    const error = ok ? null : `HTTP ${res.status}`;
    return { status: ok ? "delivered" : "pending", responseCode: res.status, latencyMs, error } as const;
  } catch (err) {
    const timeout = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    const error = timeout ? `timeout after ${DELIVERY_TIMEOUT_MS} ms` : `network: ${String(err).slice(0, 200)}`;
    return { status: "pending", responseCode: null, latencyMs: services.clock.now() - start, error } as const;
  }
}

/** A delivery that exhausted its retries: failed for good (a replay can still send it). */
async function deadLetter(env: Env, services: Services, body: DeliveryMessage) {
  const db = env.DB;
  const now = services.clock.now();
  const found = await readDelivery(db, body.delivery);
  if (!found) return;
  await closeDeliveryStatement(db, found.delivery.id, "failed", "retries exhausted").run();
  const endpoint = await readEndpoint(db, found.delivery.endpoint_id);
  if (!endpoint?.enabled || endpoint.failing_since === null || now - endpoint.failing_since < DISABLE_AFTER_MS) return;
  const reason = `no successful delivery since ${new Date(endpoint.failing_since).toISOString()}`;
  await commitWrite(
    env,
    services,
    SYSTEM,
    {
      statements: [disableEndpointStatement(db, endpoint.id, reason, now)],
      audits: [
        {
          action: "endpoint.disabled",
          entityType: "webhook_endpoint",
          entityId: endpoint.id,
          customerId: endpoint.customer_id,
          before: { enabled: true },
          after: { enabled: false, disabledReason: reason },
          reason,
        },
      ],
    },
    now,
  );
}
