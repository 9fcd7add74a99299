-- Allowance leases for hot customers (issue 16, domain/leases.ts): how many shard meters a customer's
-- consumes are spread over. 1 (the default) is one meter, as before; more is opt-in per customer,
-- set through PATCH /admin/v1/customers/{id} (docs/operations.md, "Hot customers").
ALTER TABLE customers ADD COLUMN meter_shards INTEGER NOT NULL DEFAULT 1 CHECK (meter_shards BETWEEN 1 AND 64);
