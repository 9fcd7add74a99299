-- Credit systems (issue 17, docs/model.md "Credits"): a feature of type `credits` is a balance per
-- period, and a metered feature may draw `credit_cost` credits of the credits feature `credit_feature`
-- per unit. SQLite cannot change a CHECK constraint in place, so the table is rebuilt; plan_entitlements
-- and grants refer to features (key), so foreign keys are checked at the end of the migration, when
-- the rebuilt table carries the name again.
PRAGMA defer_foreign_keys = on;
CREATE TABLE features_v13 (
  key TEXT PRIMARY KEY,
  type TEXT NOT NULL CHECK (type IN ('boolean', 'metered', 'config', 'credits')),
  description TEXT NOT NULL DEFAULT '',
  unit TEXT,
  integer_only INTEGER NOT NULL DEFAULT 1,
  failure_policy TEXT NOT NULL DEFAULT 'closed' CHECK (failure_policy IN ('closed', 'open')),
  credit_feature TEXT, -- metered: the credits feature one unit draws from (NULL: none)
  credit_cost REAL,    -- credits one unit draws
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
INSERT INTO features_v13 (key, type, description, unit, integer_only, failure_policy, created_at, updated_at)
  SELECT key, type, description, unit, integer_only, failure_policy, created_at, updated_at FROM features;
DROP TABLE features;
ALTER TABLE features_v13 RENAME TO features;
PRAGMA defer_foreign_keys = off;
