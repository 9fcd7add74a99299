-- Snapshots are split in two (issue 12): a small part per customer and one shared catalog per catalog
-- revision, composed at check time. History follows: a customer write adds one part row (~1 KB), a
-- catalog change one catalog row, whatever the number of customers. snapshot_history keeps the whole
-- snapshots compiled before the split; time travel still reads it for instants before the first part.
-- A catalog change no longer recompiles customers, so the recompile jobs (table jobs) are gone.
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

DROP TABLE IF EXISTS jobs;
