-- GET /v1/usage/{customerId} reads closed periods from usage_periods a page at a time, by customer,
-- feature and period start (newest first); the primary key starts with the meter id, so without
-- this index each page would scan all of the customer's periods.
CREATE INDEX IF NOT EXISTS usage_periods_by_feature ON usage_periods (customer_id, feature_key, period_start);
