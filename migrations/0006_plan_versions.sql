-- Plan versions with grandfathering (issue 12). A plan's entitlements are kept per version, immutable
-- once written (plan_versions); plans.version is the current one, which new subscriptions get; each
-- subscription pins the version it is on (subscriptions.plan_version; null: the plan's current version,
-- the meaning every row written before this migration has). Moving existing subscribers to a newer
-- version is a migration (plan_migrations): one row, resolved at check time per subscription (at once,
-- or at each subscription's own period end), so it writes O(1) rows whatever the number of subscribers.
ALTER TABLE plans ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE IF NOT EXISTS plan_versions (
  plan_id TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  entitlements TEXT NOT NULL, -- JSON: feature key -> EntitlementSpec
  created_at INTEGER NOT NULL,
  PRIMARY KEY (plan_id, version)
);

-- Every plan as it stands becomes its version 1.
INSERT OR IGNORE INTO plan_versions (plan_id, version, entitlements, created_at)
SELECT p.id, 1,
       COALESCE((SELECT json_group_object(e.feature_key, json(e.spec)) FROM plan_entitlements e WHERE e.plan_id = p.id), '{}'),
       p.updated_at
FROM plans p;

ALTER TABLE subscriptions ADD COLUMN plan_version INTEGER;
-- Every subscription that exists now is on its plan's version 1 (what the plan gives now), so a later edit
-- with migrate=stay grandfathers it. Customer parts in KV from before carry no version: their format (2)
-- is no longer read, so each customer's next check reads its part through from D1 once.
UPDATE subscriptions SET plan_version = 1;

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
