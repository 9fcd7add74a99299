-- Credit top-ups bought through Stripe (issue 17, docs/billing.md "Credit top-ups"): a price may map to
-- a top-up of a credits feature instead of a plan. SQLite cannot make plan_id nullable in place, so the
-- table is rebuilt; nothing refers to price_mappings, and its own references are checked at the end.
PRAGMA defer_foreign_keys = on;
CREATE TABLE price_mappings_v14 (
  price_id TEXT PRIMARY KEY, -- a billing provider's price or product id
  plan_id TEXT REFERENCES plans (id), -- a plan mapping (NULL: a top-up)
  credits_feature TEXT REFERENCES features (key), -- a top-up: the credits feature it adds to
  credits_amount REAL, -- credits per unit of quantity paid
  credits_expires_days INTEGER, -- usable this many days from the payment
  updated_at INTEGER NOT NULL,
  CHECK ((plan_id IS NULL) <> (credits_feature IS NULL))
);
INSERT INTO price_mappings_v14 (price_id, plan_id, updated_at) SELECT price_id, plan_id, updated_at FROM price_mappings;
DROP TABLE price_mappings;
ALTER TABLE price_mappings_v14 RENAME TO price_mappings;
PRAGMA defer_foreign_keys = off;
