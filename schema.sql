-- Tollgate: the whole current D1 schema (the source of record).
-- Applied by `npm start` (local D1), by the tests (vitest setup) and by deploys.
-- Instants are INTEGER milliseconds since the Unix epoch (UTC). JSON columns are validated
-- with zod before they are written. Changes after the first release also get a numbered
-- file in migrations/ (see README, "Schema changes").

CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
-- catalog_rev grows on every catalog write; a customer's snapshot version is customers.rev + catalog_rev,
-- so any change that can affect a customer yields a new, larger version without touching every customer row.
INSERT OR IGNORE INTO meta (key, value) VALUES ('catalog_rev', 0);

CREATE TABLE IF NOT EXISTS "features" (
  key TEXT PRIMARY KEY,
  type TEXT NOT NULL CHECK (type IN ('boolean', 'metered', 'config', 'credits', 'seats')),
  description TEXT NOT NULL DEFAULT '',
  unit TEXT,
  integer_only INTEGER NOT NULL DEFAULT 1,
  failure_policy TEXT NOT NULL DEFAULT 'closed' CHECK (failure_policy IN ('closed', 'open')),
  credit_feature TEXT, -- metered: the credits feature one unit draws from (NULL: none; migration 0013)
  credit_cost REAL,    -- credits one unit draws
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  seat_feature TEXT    -- the seats feature an entity's use of this one needs (NULL: none; migration 0015)
);

CREATE TABLE IF NOT EXISTS region_groups (
  name TEXT PRIMARY KEY,
  countries TEXT NOT NULL, -- JSON array of ISO 3166-1 alpha-2 codes
  updated_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS plans (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('base', 'addon')),
  description TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1 -- the current version (plan_versions), which new subscriptions get
);

-- Every version of every plan, immutable once written (issue 12: grandfathering).
CREATE TABLE IF NOT EXISTS plan_versions (
  plan_id TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  entitlements TEXT NOT NULL, -- JSON: feature key -> EntitlementSpec
  created_at INTEGER NOT NULL,
  PRIMARY KEY (plan_id, version)
);

-- Moving a plan's existing subscribers to a newer version: one row, resolved at check time.
CREATE TABLE IF NOT EXISTS plan_migrations (
  id TEXT PRIMARY KEY,
  plan_id TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  to_version INTEGER NOT NULL,
  mode TEXT NOT NULL CHECK (mode IN ('now', 'at_period_end')),
  at INTEGER NOT NULL,          -- when it was started: 'now' moves every older subscription then
  cancelled_at INTEGER,         -- 'at_period_end' only: subscriptions not moved by then stay
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS plan_migrations_plan ON plan_migrations (plan_id, at);

CREATE TABLE IF NOT EXISTS plan_entitlements (
  plan_id TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  feature_key TEXT NOT NULL REFERENCES features (key),
  spec TEXT NOT NULL, -- JSON EntitlementSpec
  PRIMARY KEY (plan_id, feature_key)
);
CREATE INDEX IF NOT EXISTS plan_entitlements_feature ON plan_entitlements (feature_key);

-- A price maps to a plan, or (migration 0014) to a credit top-up: exactly one of the two.
CREATE TABLE IF NOT EXISTS "price_mappings" (
  price_id TEXT PRIMARY KEY, -- a billing provider's price or product id
  plan_id TEXT REFERENCES plans (id), -- a plan mapping (NULL: a top-up)
  credits_feature TEXT REFERENCES features (key), -- a top-up: the credits feature it adds to
  credits_amount REAL, -- credits per unit of quantity paid
  credits_expires_days INTEGER, -- usable this many days from the payment
  updated_at INTEGER NOT NULL,
  CHECK ((plan_id IS NULL) <> (credits_feature IS NULL))
);

CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  residency TEXT CHECK (residency IN ('eu', 'fedramp')),
  billing_customer_id TEXT UNIQUE, -- e.g. Stripe's cus_...
  rev INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  published_rev INTEGER NOT NULL DEFAULT 0, -- the newest rev KV is known to have (store/publisher.ts)
  meter_shards INTEGER NOT NULL DEFAULT 1 CHECK (meter_shards BETWEEN 1 AND 64) -- shard meters (domain/leases.ts); 1: one meter
);

-- The cron's repair pass (scheduled.ts): customers written but not yet confirmed in KV, oldest first.
CREATE INDEX IF NOT EXISTS customers_unpublished ON customers (updated_at) WHERE published_rev < rev;

CREATE TABLE IF NOT EXISTS subscriptions (
  id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers (id),
  plan_id TEXT NOT NULL REFERENCES plans (id),
  status TEXT NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled', 'expired')),
  started_at INTEGER NOT NULL,
  trial_end INTEGER,
  current_period_start INTEGER,
  current_period_end INTEGER,
  billing_anchor INTEGER,      -- anchors billing-anchored usage resets
  cancel_at INTEGER,           -- scheduled cancellation (access ends then)
  grace_until INTEGER,         -- past_due: access continues until then
  ended_at INTEGER,
  scheduled_plan_id TEXT REFERENCES plans (id), -- plan change that takes effect at scheduled_change_at
  scheduled_change_at INTEGER,
  external_id TEXT UNIQUE,     -- billing provider's subscription id
  external_updated_at INTEGER, -- provider event time of the last applied change (out-of-order guard)
  invoice_updated_at INTEGER, -- provider event time of the last applied invoice event (its own guard)
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  plan_version INTEGER         -- the version of plan_id it is on; null: the plan's current version
);
CREATE INDEX IF NOT EXISTS subscriptions_customer ON subscriptions (customer_id);
CREATE INDEX IF NOT EXISTS subscriptions_plan ON subscriptions (plan_id, customer_id);
-- A plan's scheduled subscribers, for the catalog diff's blast radius (store/catalog.ts customersOnPlans).
CREATE INDEX IF NOT EXISTS subscriptions_scheduled_plan ON subscriptions (scheduled_plan_id, customer_id);
-- GET /admin/v1/analytics/trials reads trials by start, without scanning every subscription.
CREATE INDEX IF NOT EXISTS subscriptions_trials ON subscriptions (started_at) WHERE trial_end IS NOT NULL;

-- Overrides (grants): customer-specific entitlements that add to or replace what plans give.
CREATE TABLE IF NOT EXISTS grants (
  id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers (id),
  feature_key TEXT NOT NULL REFERENCES features (key),
  mode TEXT NOT NULL CHECK (mode IN ('add', 'replace')),
  spec TEXT NOT NULL, -- JSON EntitlementSpec
  reason TEXT NOT NULL,
  starts_at INTEGER,
  expires_at INTEGER,
  status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'rejected', 'revoked')),
  elevated INTEGER NOT NULL DEFAULT 0, -- gives more than the customer's plans do
  proposed_by TEXT NOT NULL,
  decided_by TEXT,
  decided_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS grants_customer ON grants (customer_id, status);

CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE, -- hex SHA-256 of the whole key; the key itself is never stored
  prefix TEXT NOT NULL,      -- first characters, to recognise a key in lists and logs
  name TEXT NOT NULL DEFAULT '',
  scopes TEXT NOT NULL,      -- JSON array of 'check' | 'usage' | 'admin'
  customer_id TEXT REFERENCES customers (id),
  created_by TEXT NOT NULL DEFAULT 'system',
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

-- The raw usage ledger lives in R2 (binding LEDGER, meter/ledger.ts): one immutable NDJSON object per
-- flushed batch. The per-consume rows D1 held before migration 0010 stay readable here until the
-- cron's retention drops them (store/retention.ts); nothing writes them any more.
CREATE TABLE IF NOT EXISTS "usage_events_legacy" (
  customer_id TEXT NOT NULL,
  meter_id TEXT NOT NULL DEFAULT '',
  seq INTEGER NOT NULL,
  feature_key TEXT NOT NULL,
  amount REAL NOT NULL,
  kind TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_end INTEGER,
  occurred_at INTEGER NOT NULL,
  idempotency_key TEXT,
  PRIMARY KEY (customer_id, meter_id, seq)
);
CREATE INDEX IF NOT EXISTS usage_events_legacy_period ON usage_events_legacy (customer_id, feature_key, period_start);

-- Totals per customer, meter object, feature and period (store/usage-ledger.ts): the running total of
-- an open period (final = 0), written at most once per flush interval per meter, and the final total
-- when the period closes (final = 1). through_seq: the last meter seq the total includes, so a retried
-- write is ignored. closed_at: when the total was last written. A period is its start and its end: a
-- feature whose reset changed has periods of two definitions that may start at the same instant.
CREATE TABLE IF NOT EXISTS "usage_periods" (
  customer_id TEXT NOT NULL,
  meter_id TEXT NOT NULL DEFAULT '',
  feature_key TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_end INTEGER,
  total REAL NOT NULL,
  final INTEGER NOT NULL DEFAULT 1,
  through_seq INTEGER NOT NULL DEFAULT 0,
  closed_at INTEGER NOT NULL,
  PRIMARY KEY (customer_id, meter_id, feature_key, period_start, period_end)
);
-- GET /v1/usage reads a page of periods by customer, feature and start, newest first.
CREATE INDEX IF NOT EXISTS usage_periods_by_feature ON usage_periods (customer_id, feature_key, period_start);
-- The billing export pages every customer's periods of a time range in (period_start, customer) order.
CREATE INDEX IF NOT EXISTS usage_periods_by_start ON usage_periods (period_start, customer_id, feature_key, period_end);

-- How far each table has been archived to R2 by the cron's retention (store/retention.ts). Audit rows
-- may be deleted only below that mark: the log stays append-only for everything not yet archived.
CREATE TABLE IF NOT EXISTS archive_marks (
  name TEXT PRIMARY KEY,
  through_id INTEGER NOT NULL DEFAULT 0, -- audit_log: every id up to this one is archived
  cursor TEXT,                           -- history tables: the key where the next scan starts (JSON)
  updated_at INTEGER NOT NULL
);

-- Append-only audit trail: the triggers refuse any update, and any delete of a row not yet archived
-- to R2 (archive_marks; the cron's retention, store/retention.ts).
CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  actor_type TEXT NOT NULL, -- 'operator' | 'api_key' | 'bootstrap' | 'system' | 'webhook'
  action TEXT NOT NULL,
  entity_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  customer_id TEXT,
  before TEXT,
  after TEXT,
  reason TEXT,
  request_id TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_customer ON audit_log (customer_id, at);
CREATE INDEX IF NOT EXISTS audit_log_entity ON audit_log (entity_type, entity_id, at);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, at);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
WHEN old.id > COALESCE((SELECT through_id FROM archive_marks WHERE name = 'audit_log'), 0)
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Every compiled snapshot version, for "what was this customer entitled to at instant T".
CREATE TABLE IF NOT EXISTS snapshot_history (
  customer_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  compiled_at INTEGER NOT NULL,
  snapshot TEXT NOT NULL,
  PRIMARY KEY (customer_id, version)
);
CREATE INDEX IF NOT EXISTS snapshot_history_time ON snapshot_history (customer_id, compiled_at);

-- Split snapshots (issue 12): one part row per customer write, one catalog row per catalog revision;
-- time travel composes the part and the catalog in force at an instant.
CREATE TABLE IF NOT EXISTS part_history (
  customer_id TEXT NOT NULL,
  rev INTEGER NOT NULL,
  compiled_at INTEGER NOT NULL,
  part TEXT NOT NULL,
  PRIMARY KEY (customer_id, rev)
);
CREATE INDEX IF NOT EXISTS part_history_time ON part_history (customer_id, compiled_at);

CREATE TABLE IF NOT EXISTS catalog_history (
  rev INTEGER PRIMARY KEY,
  compiled_at INTEGER NOT NULL,
  catalog TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_history_time ON catalog_history (compiled_at);

-- Billing webhook events already applied (dedupe by provider event id).
CREATE TABLE IF NOT EXISTS webhook_events (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  received_at INTEGER NOT NULL
);

-- Outbound webhooks (migrations/0008_outbound_webhooks.sql): endpoints, events, deliveries.
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

-- How far the cron's sends of past-window events have come (events/time-events.ts), per kind.
CREATE TABLE IF NOT EXISTS event_cursors (
  kind TEXT PRIMARY KEY,
  ends_at INTEGER NOT NULL,
  id TEXT NOT NULL
);

-- Usage and entitlement analytics, local mode (issue 14; src/analytics/local-sink.ts): aggregated
-- counters per isolate, flushed as upserts into rollups keyed by dimensions, so a table grows with
-- hours x features x plans x countries x reasons (and active customer-features per hour), never with
-- requests. Production writes Workers Analytics Engine instead and these stay empty. Rows older than
-- the retention (src/analytics/retention.ts, 90 days) are deleted by the cron, a bounded batch per run.
CREATE TABLE IF NOT EXISTS analytics_rollups (
  hour INTEGER NOT NULL,          -- start of the UTC hour, ms
  kind TEXT NOT NULL CHECK (kind IN ('check', 'consume')),
  feature_key TEXT NOT NULL,
  plan_id TEXT NOT NULL,          -- the customer's base plan; '' for none
  country TEXT NOT NULL,          -- ISO 3166-1 alpha-2; '' when unknown
  reason TEXT NOT NULL,
  allowed INTEGER NOT NULL,
  count INTEGER NOT NULL,
  quantity REAL NOT NULL,
  PRIMARY KEY (hour, kind, feature_key, plan_id, country, reason, allowed)
);
-- Per customer and feature and hour: adoption (distinct active customers) and the distribution of usage.
CREATE TABLE IF NOT EXISTS analytics_customer_hours (
  hour INTEGER NOT NULL,
  feature_key TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  checks INTEGER NOT NULL,
  denials INTEGER NOT NULL,
  consumes INTEGER NOT NULL,
  used REAL NOT NULL,             -- units of admitted consumes
  PRIMARY KEY (hour, feature_key, customer_id)
);
CREATE INDEX IF NOT EXISTS analytics_customer_hours_feature ON analytics_customer_hours (feature_key, hour);
