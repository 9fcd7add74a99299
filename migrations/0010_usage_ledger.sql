-- The usage ledger leaves D1 (issue 14, docs/storage.md): the meters flush their raw events to R2
-- (binding LEDGER) and D1 keeps only bounded totals per customer, meter, feature and period.
--
-- 1. usage_events stops growing: renamed, kept readable for history until the cron's retention drops it.
ALTER TABLE usage_events RENAME TO usage_events_legacy;
DROP INDEX IF EXISTS usage_events_period;
CREATE INDEX IF NOT EXISTS usage_events_legacy_period ON usage_events_legacy (customer_id, feature_key, period_start);

-- 2. usage_periods holds the running total of an open period too (final = 0), written at most once per
-- flush interval per meter, and the final total when the period closes (final = 1). through_seq is the
-- last meter seq the total includes: a retried write of the same batch is recognised and ignored.
-- Rebuilt (not ALTERed) so the new columns sit before the key; existing rows are closed periods.
CREATE TABLE usage_periods_v10 (
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
INSERT INTO usage_periods_v10 (customer_id, meter_id, feature_key, period_start, period_end, total, final, through_seq, closed_at)
  SELECT customer_id, meter_id, feature_key, period_start, period_end, total, 1, 0, closed_at FROM usage_periods;
DROP TABLE usage_periods;
ALTER TABLE usage_periods_v10 RENAME TO usage_periods;
CREATE INDEX IF NOT EXISTS usage_periods_by_feature ON usage_periods (customer_id, feature_key, period_start);
-- The billing export pages every customer's periods of a time range in (period_start, customer) order.
CREATE INDEX IF NOT EXISTS usage_periods_by_start ON usage_periods (period_start, customer_id, feature_key, period_end);

-- 3. Retention (src/store/retention.ts): how far each table has been archived to R2. Audit rows may be
-- deleted only below that mark, so the log stays append-only for everything not yet archived.
CREATE TABLE IF NOT EXISTS archive_marks (
  name TEXT PRIMARY KEY,
  through_id INTEGER NOT NULL DEFAULT 0, -- audit_log: every id up to this one is archived
  cursor TEXT,                           -- history tables: the key where the next scan starts (JSON)
  updated_at INTEGER NOT NULL
);
DROP TRIGGER IF EXISTS audit_log_no_delete;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
WHEN old.id > COALESCE((SELECT through_id FROM archive_marks WHERE name = 'audit_log'), 0)
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only');
END;
