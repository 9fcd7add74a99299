-- Publication you can trust (issue 13). Every customer part reaches KV through its Publisher Durable
-- Object, which confirms here the newest revision KV has (customers.published_rev); a customer whose rev is
-- ahead of it had a write whose publication never reached the publisher (an isolate lost mid-request),
-- and the cron republishes it. Every customer as it stands counts as published: its part was written
-- to KV by the write that made it.
ALTER TABLE customers ADD COLUMN published_rev INTEGER NOT NULL DEFAULT 0;

UPDATE customers SET published_rev = rev;

CREATE INDEX IF NOT EXISTS customers_unpublished ON customers (updated_at) WHERE published_rev < rev;
