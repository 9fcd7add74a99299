// Customers in D1 (table customers): the rows the admin API reads and writes. A customer's `rev` is
// bumped by the write path (store/revisions.ts), never here; its snapshot is read by
// store/customer-rows.ts. Statements that are part of a write are returned, not run, so the caller
// can put them in one batch with the audit records (src/write/commit.ts).
import { iso } from "../domain/time";
import type { Residency } from "../domain/types";
import { SqlFilter } from "./sql-filter";

export interface CustomerDbRow {
  id: string;
  name: string;
  residency: Residency | null;
  billing_customer_id: string | null;
  /** Shard meters (domain/leases.ts); 1: one meter. */
  meter_shards: number;
  rev: number;
  created_at: number;
  updated_at: number;
}

/** The wire form (GET /admin/v1/customers, without the detail's lists), which the audit log records too. */
export const customerWire = (r: CustomerDbRow) => ({
  id: r.id,
  name: r.name,
  residency: r.residency,
  billingCustomerId: r.billing_customer_id,
  meterShards: r.meter_shards,
  rev: r.rev,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

/** A new customer's row as the write that creates it leaves it (its rev bumped once by commitWrite). */
export const newCustomerRow = (
  c: { id: string; name: string; residency: Residency | null; billingCustomerId: string | null },
  now: number,
): CustomerDbRow => ({
  id: c.id,
  name: c.name,
  residency: c.residency,
  billing_customer_id: c.billingCustomerId,
  meter_shards: 1,
  rev: 1,
  created_at: now,
  updated_at: now,
});

/** A subscription as the customer's detail lists it. */
export interface CustomerSubscriptionDbRow {
  id: string;
  plan_id: string;
  status: string;
  scheduled_plan_id: string | null;
}

/** A live (pending or active) grant as the customer's detail lists it. */
export interface CustomerGrantDbRow {
  id: string;
  feature_key: string;
  status: string;
  elevated: number;
  expires_at: number | null;
}

/** What hangs off a customer, by kind: a customer with any of it is not deleted. */
export interface CustomerReferences {
  subscriptions: number;
  grants: number;
  apiKeys: number;
  usageEvents: number;
}

export async function readCustomer(db: D1Database, id: string): Promise<CustomerDbRow | null> {
  return db.prepare("SELECT * FROM customers WHERE id = ?1").bind(id).first<CustomerDbRow>();
}

export async function customerExists(db: D1Database, id: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(id).first()) !== null;
}

/** Whether some customer is linked to this billing provider customer id. */
export async function billingIdTaken(db: D1Database, billingCustomerId: string): Promise<boolean> {
  return (
    (await db.prepare("SELECT 1 FROM customers WHERE billing_customer_id = ?1").bind(billingCustomerId).first()) !==
    null
  );
}

export interface CustomerFilter {
  /** Customers with a subscription to this plan, now or scheduled (any status). */
  planId?: string;
  billingCustomerId?: string;
  /** Customers whose id or name contains this text (case-insensitive; % and _ match themselves). */
  q?: string;
  /** Keyset cursor: customers with a greater id. */
  afterId: string | null;
  /** Rows to read (a page reads one more than it shows: http/pagination.ts). */
  limit: number;
}

/** A LIKE pattern for "contains `text`", its wildcards escaped (SQLite's LIKE ignores ASCII case). */
const likeContains = (text: string | undefined) => `%${(text ?? "").replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;

/** Customers, by id. */
export async function listCustomers(db: D1Database, q: CustomerFilter): Promise<CustomerDbRow[]> {
  const f = new SqlFilter()
    .when(q.afterId, "c.id > ?")
    .when(
      q.planId,
      "EXISTS (SELECT 1 FROM subscriptions s WHERE s.customer_id = c.id AND (s.plan_id = ? OR s.scheduled_plan_id = ?))",
      q.planId,
      q.planId,
    )
    .when(q.billingCustomerId, "c.billing_customer_id = ?")
    .when(q.q, "c.id LIKE ? ESCAPE '\\' OR c.name LIKE ? ESCAPE '\\'", likeContains(q.q), likeContains(q.q));
  const rows = await db
    .prepare(`SELECT c.* FROM customers c ${f.sql} ORDER BY c.id LIMIT ?`)
    .bind(...f.params, q.limit)
    .all<CustomerDbRow>();
  return rows.results;
}

/** The customer's subscriptions (in start order) and its live grants (in creation order), in one round trip. */
export async function customerLinks(
  db: D1Database,
  id: string,
): Promise<{ subscriptions: CustomerSubscriptionDbRow[]; grants: CustomerGrantDbRow[] }> {
  const [subscriptions, grants] = await db.batch<Record<string, unknown>>([
    db
      .prepare(
        "SELECT id, plan_id, status, scheduled_plan_id FROM subscriptions WHERE customer_id = ?1 ORDER BY started_at, id",
      )
      .bind(id),
    db
      .prepare(
        "SELECT id, feature_key, status, elevated, expires_at FROM grants WHERE customer_id = ?1 AND status IN ('pending', 'active') ORDER BY created_at, id",
      )
      .bind(id),
  ]);
  return {
    subscriptions: (subscriptions?.results ?? []) as unknown as CustomerSubscriptionDbRow[],
    grants: (grants?.results ?? []) as unknown as CustomerGrantDbRow[],
  };
}

/** Counts of everything that refers to the customer. */
export async function customerReferences(db: D1Database, id: string): Promise<CustomerReferences | null> {
  return db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM subscriptions WHERE customer_id = ?1) AS subscriptions, (SELECT COUNT(*) FROM grants WHERE customer_id = ?1) AS grants,
              (SELECT COUNT(*) FROM api_keys WHERE customer_id = ?1) AS apiKeys, (SELECT COUNT(*) FROM usage_periods WHERE customer_id = ?1) + (SELECT COUNT(*) FROM usage_events_legacy WHERE customer_id = ?1) AS usageEvents`,
    )
    .bind(id)
    .first<CustomerReferences>();
}

/** The customer whose billing provider id this is, if any. */
export async function customerIdByBillingId(db: D1Database, billingId: string): Promise<string | null> {
  const row = await db
    .prepare("SELECT id FROM customers WHERE billing_customer_id = ?1")
    .bind(billingId)
    .first<{ id: string }>();
  return row?.id ?? null;
}

/** A new customer at rev 0 (the write path's bump makes its first snapshot version 1). */
export function insertCustomerStatement(
  db: D1Database,
  c: { id: string; name: string; residency: Residency | null; billingCustomerId: string | null },
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO customers (id, name, residency, billing_customer_id, rev, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
    )
    .bind(c.id, c.name, c.residency, c.billingCustomerId, now);
}

/**
 * Name, billing id and shard count. The first two are not in the snapshot; meter_shards is (the
 * worker routes consumes by it), so a write that changes it names the customer as affected and its
 * rev is bumped by the write path.
 */
export function updateCustomerStatement(db: D1Database, after: CustomerDbRow): D1PreparedStatement {
  return db
    .prepare(
      "UPDATE customers SET name = ?2, billing_customer_id = ?3, updated_at = ?4, meter_shards = ?5 WHERE id = ?1",
    )
    .bind(after.id, after.name, after.billing_customer_id, after.updated_at, after.meter_shards);
}

export function deleteCustomerStatement(db: D1Database, id: string): D1PreparedStatement {
  return db.prepare("DELETE FROM customers WHERE id = ?1").bind(id);
}
