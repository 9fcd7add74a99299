// Outbound events: what Tollgate tells a customer's app, and the messages that carry them through the
// webhook queue. Plain data, no bindings (the meter, the write path and the cron all build these).

/** Every event type an endpoint can ask for (docs/webhooks.md has a payload of each). */
export const EVENT_TYPES = [
  "entitlements.changed",
  "usage.threshold",
  "usage.limit_reached",
  "trial.ending",
  "trial.ended",
  "grant.expiring",
  "grant.expired",
  "subscription.changed",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** An event as emitted: its id is derived from its cause (events/ids.ts), so emitting it twice is one event. */
export interface OutboundEvent {
  id: string;
  type: EventType;
  customerId: string;
  /** When the cause happened (ms). */
  at: number;
  data: Record<string, unknown>;
}

/** The body a receiver gets (Standard Webhooks: type, timestamp, data; plus id, customer and sequence). */
export interface EventPayload {
  id: string;
  type: EventType;
  timestamp: string;
  customerId: string;
  /** Per customer, from 1, in emission order: receivers order by it (gaps are events of types not subscribed to). */
  sequence: number;
  data: Record<string, unknown>;
}

/**
 * A queue message: one delivery of one event to one endpoint (the event and endpoint are in D1).
 * `slot`: the instant the endpoint's rate limit gave this delivery (events/deliver.ts), once it has one.
 */
export interface DeliveryMessage {
  delivery: string;
  slot?: number;
}
