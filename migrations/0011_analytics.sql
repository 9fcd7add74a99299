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
-- GET /admin/v1/analytics/trials reads trials by start, without scanning every subscription.
CREATE INDEX IF NOT EXISTS subscriptions_trials ON subscriptions (started_at) WHERE trial_end IS NOT NULL;
