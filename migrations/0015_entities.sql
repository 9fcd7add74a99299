-- Entities (issue 17, docs/model.md "Entities"): a feature of type `seats` is a number of seats an
-- entity (user, seat, device inside the customer) is assigned one of, and any other feature may name
-- in `seat_feature` the seats feature an entity's checks and usage of it need. SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt (as in 0013); plan_entitlements, grants and
-- price_mappings refer to features (key), so foreign keys are checked at the end of the migration,
-- when the rebuilt table carries the name again.
PRAGMA defer_foreign_keys = on;
CREATE TABLE features_v15 (
  key TEXT PRIMARY KEY,
  type TEXT NOT NULL CHECK (type IN ('boolean', 'metered', 'config', 'credits', 'seats')),
  description TEXT NOT NULL DEFAULT '',
  unit TEXT,
  integer_only INTEGER NOT NULL DEFAULT 1,
  failure_policy TEXT NOT NULL DEFAULT 'closed' CHECK (failure_policy IN ('closed', 'open')),
  credit_feature TEXT, -- metered: the credits feature one unit draws from (NULL: none)
  credit_cost REAL,    -- credits one unit draws
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  seat_feature TEXT    -- the seats feature an entity's use of this one needs (NULL: none)
);
INSERT INTO features_v15 (key, type, description, unit, integer_only, failure_policy, credit_feature, credit_cost, created_at, updated_at)
  SELECT key, type, description, unit, integer_only, failure_policy, credit_feature, credit_cost, created_at, updated_at FROM features;
DROP TABLE features;
ALTER TABLE features_v15 RENAME TO features;
PRAGMA defer_foreign_keys = off;
