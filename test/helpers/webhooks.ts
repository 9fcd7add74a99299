// Outbound webhooks in tests: a receiver standing in for the customer's app (injected as the worker's
// outbound fetch: it records every request and answers as told: 2xx, 5xx, a timeout), endpoints made
// through the admin API, and the queue's consumer run on the deliveries the log shows pending, with
// batches made by cloudflare:test (createMessageBatch / getQueueResult): the handler's real ack and
// retry calls are read back, nothing of Queues is mocked.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { vi } from "vitest";
import { BOOTSTRAP, type TestWorker } from "./worker";

export interface Received {
  url: string;
  headers: Record<string, string>;
  body: string;
  json: any;
}

export type Answer = number | "timeout" | "network";

/** A receiver: `answers` are used in order (then 200); every request is kept in `received`. */
export function receiver(onRequest?: () => void) {
  const received: Received[] = [];
  const answers: Answer[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    const body = await req.text();
    received.push({ url: req.url, headers: Object.fromEntries(req.headers), body, json: JSON.parse(body) });
    onRequest?.();
    const answer = answers.shift() ?? 200;
    if (answer === "timeout") throw new DOMException("The operation was aborted due to timeout", "TimeoutError");
    if (answer === "network") throw new TypeError("Network connection lost.");
    return new Response(null, { status: answer });
  }) as typeof globalThis.fetch;
  return { fetch, received, answers };
}

export async function createEndpoint(w: TestWorker, body: Record<string, unknown>) {
  const res = await w.call("POST", "/admin/v1/webhook-endpoints", { key: BOOTSTRAP, body });
  if (res.status !== 201) throw new Error(`endpoint create failed: ${res.status} ${res.text}`);
  return res.json as { id: string; secret: string; [k: string]: unknown };
}

export async function deliveryLog(w: TestWorker, endpointId: string, status?: string) {
  const q = status ? `?status=${status}&limit=200` : "?limit=200";
  const res = await w.call("GET", `/admin/v1/webhook-endpoints/${endpointId}/deliveries${q}`, { key: BOOTSTRAP });
  if (res.status !== 200) throw new Error(`delivery log failed: ${res.status} ${res.text}`);
  return res.json.items as any[];
}

export const QUEUE = "tollgate-webhooks";
export const DEAD_LETTERS = "tollgate-webhooks-dlq";

let messageSeq = 0;

/** Runs the worker's queue handler on these message bodies, as delivery `attempts`; answers its ack/retry result. */
export async function runQueue(
  w: TestWorker,
  bodies: unknown[],
  opts: { attempts?: number; queue?: string; env?: Cloudflare.Env } = {},
) {
  const batch = createMessageBatch(
    opts.queue ?? QUEUE,
    bodies.map((body) => ({ id: `msg-${messageSeq++}`, timestamp: w.clock.now(), attempts: opts.attempts ?? 1, body })),
  );
  const ctx = createExecutionContext();
  await w.worker.queue(batch, opts.env ?? env, ctx);
  return { result: await getQueueResult(batch, ctx), ids: batch.messages.map((m) => m.id) };
}

/** Hands every pending delivery of the endpoint to the consumer once (attempt `attempts`). */
export async function deliverPending(w: TestWorker, endpointId: string, attempts = 1) {
  const pending = await deliveryLog(w, endpointId, "pending");
  return runQueue(
    w,
    pending.map((d) => ({ delivery: d.id })),
    { attempts },
  );
}

/** Verifies a received request with the standardwebhooks library, at the instant `at` (its tolerance is 5 min of Date.now()). */
export function verify(secret: string, r: Received, at: number) {
  vi.useFakeTimers({ toFake: ["Date"], now: at });
  try {
    return new Webhook(secret).verify(r.body, r.headers);
  } finally {
    vi.useRealTimers();
  }
}

/**
 * The webhook queue's producer, wrapped: every body sent is kept (then sent on to the real queue), so a
 * test can hand what the worker enqueued (a catalog fan-out's pages) to the consumer itself; `failing`
 * makes sends throw, as a queue that refuses them.
 */
export function recordingQueue(queue: Queue) {
  const sent: unknown[] = [];
  const state = { failing: false };
  const refuse = () => {
    if (state.failing) throw new Error("Queue send failed (injected)");
  };
  const wrapped = {
    send: async (body: unknown, opts?: QueueSendOptions) => {
      refuse();
      sent.push(body);
      return queue.send(body, opts);
    },
    sendBatch: async (messages: Iterable<MessageSendRequest>, opts?: QueueSendBatchOptions) => {
      refuse();
      const list = [...messages];
      for (const m of list) sent.push(m.body);
      return queue.sendBatch(list, opts);
    },
  } as unknown as Queue;
  return { queue: wrapped, sent, state };
}
