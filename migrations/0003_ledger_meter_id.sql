-- The ledger names the meter object that wrote each row. A meter dedupes its flushes by its own
-- sequence numbers, which every meter object counts from 1: keyed by (customer_id, seq), the rows
-- of a customer's second meter object (a residency change, DO_JURISDICTIONS switched on) were
-- dropped as duplicates of the first one's. The key is now (customer_id, meter_id, seq), and a
-- closed period is also the meter's. Rows written before get the default meter id '' (the meters
-- flush entries they queued before this change under that id too, so a retried flush stays
-- idempotent). SQLite cannot change a primary key in place, so both tables are rebuilt.
ALTER TABLE usage_events RENAME TO usage_events_0002;

CREATE TABLE usage_events (
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

INSERT INTO usage_events (customer_id, seq, feature_key, amount, kind, period_start, period_end, occurred_at, idempotency_key)
  SELECT customer_id, seq, feature_key, amount, kind, period_start, period_end, occurred_at, idempotency_key
  FROM usage_events_0002;

DROP TABLE usage_events_0002;

CREATE INDEX usage_events_period ON usage_events (customer_id, feature_key, period_start);

ALTER TABLE usage_periods RENAME TO usage_periods_0002;

CREATE TABLE usage_periods (
  customer_id TEXT NOT NULL,
  meter_id TEXT NOT NULL DEFAULT '',
  feature_key TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_end INTEGER,
  total REAL NOT NULL,
  closed_at INTEGER NOT NULL,
  PRIMARY KEY (customer_id, meter_id, feature_key, period_start, period_end)
);

INSERT INTO usage_periods (customer_id, feature_key, period_start, period_end, total, closed_at)
  SELECT customer_id, feature_key, period_start, period_end, total, closed_at FROM usage_periods_0002;

DROP TABLE usage_periods_0002;
