-- A closed period is its start AND its end. A feature whose reset changes (a plan change from a
-- monthly to a daily reset, say) has a counter per period definition in its meter, and two
-- definitions can have periods that start at the same instant (a day and a month both starting on
-- the 1st); each closes with its own total, and the second one was dropped as a duplicate of the
-- first. SQLite cannot change a primary key in place, so the table is rebuilt with its rows.
ALTER TABLE usage_periods RENAME TO usage_periods_0001;

CREATE TABLE usage_periods (
  customer_id TEXT NOT NULL,
  feature_key TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_end INTEGER,
  total REAL NOT NULL,
  closed_at INTEGER NOT NULL,
  PRIMARY KEY (customer_id, feature_key, period_start, period_end)
);

INSERT INTO usage_periods (customer_id, feature_key, period_start, period_end, total, closed_at)
  SELECT customer_id, feature_key, period_start, period_end, total, closed_at FROM usage_periods_0001;

DROP TABLE usage_periods_0001;
