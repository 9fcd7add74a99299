-- Outbound webhooks (issue 15): endpoints that receive signed events, the events themselves (one row per
-- cause, with a per-customer sequence number), and one delivery per endpoint and event (the delivery log).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  event_types TEXT NOT NULL DEFAULT '[]', -- JSON array of event types; [] receives every type
  customer_id TEXT,                       -- only this customer's events; null: every customer's
  enabled INTEGER NOT NULL DEFAULT 1,
  disabled_reason TEXT,
  secret TEXT NOT NULL,                   -- whsec_...: Tollgate signs with it, so it is kept (never shown again)
  previous_secret TEXT,                   -- after a rotation, also signs until previous_secret_until
  previous_secret_until INTEGER,
  rate_per_second INTEGER NOT NULL DEFAULT 10,
  next_slot_at INTEGER NOT NULL DEFAULT 0, -- the per-endpoint send schedule (events/rate.ts)
  failing_since INTEGER,                   -- first failure since the last success; null: healthy
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS outbound_events (
  id TEXT PRIMARY KEY,                    -- derived from the cause: a retried emission is the same event
  type TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  seq INTEGER NOT NULL,                   -- per customer, from 1, in emission order
  data TEXT NOT NULL,                     -- JSON
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS outbound_events_customer_seq ON outbound_events (customer_id, seq);
CREATE INDEX IF NOT EXISTS outbound_events_created ON outbound_events (created_at);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id TEXT PRIMARY KEY,
  endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  event_id TEXT NOT NULL REFERENCES outbound_events (id),
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
  attempts INTEGER NOT NULL DEFAULT 0,
  response_code INTEGER,
  latency_ms INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  last_attempt_at INTEGER,
  next_attempt_at INTEGER,                -- a failed attempt's retry, as scheduled on the queue
  delivered_at INTEGER,
  UNIQUE (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_event ON webhook_deliveries (event_id);
-- The cron's sweep (events/emit.ts resendUnsent): pending deliveries whose message is overdue.
CREATE INDEX IF NOT EXISTS webhook_deliveries_overdue ON webhook_deliveries (COALESCE(next_attempt_at, created_at))
  WHERE status = 'pending';
