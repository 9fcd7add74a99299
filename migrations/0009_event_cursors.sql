-- How far the cron's sends of past-window events have come (events/time-events.ts): per kind, the
-- (instant, id) of the last row sent, so a run resumes after it instead of starting the window again;
-- 100,000 grants expiring at one instant are sent over successive runs, not the same first page each time.
CREATE TABLE IF NOT EXISTS event_cursors (
  kind TEXT PRIMARY KEY,
  ends_at INTEGER NOT NULL,
  id TEXT NOT NULL
);
