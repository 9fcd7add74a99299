// Customer ids in id order, for the operations that walk every customer a page at a time (snapshot
// verify and rebuild): keyset pages, so a page costs O(limit) however far the walk has come.

export async function customerExists(db: D1Database, id: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(id).first()) !== null;
}

/** At most `limit` customer ids after `after` ("" from the start), in id order. */
export async function customerIdsAfter(db: D1Database, after: string, limit: number): Promise<string[]> {
  const rows = await db
    .prepare("SELECT id FROM customers WHERE id > ?1 ORDER BY id LIMIT ?2")
    .bind(after, limit)
    .all<{ id: string }>();
  return rows.results.map((r) => r.id);
}

/** Every customer: reads every row, so callers count once (a first page's progress bar), not per page. */
export async function countCustomers(db: D1Database): Promise<number> {
  return (await db.prepare("SELECT COUNT(*) AS n FROM customers").first<number>("n")) ?? 0;
}

/**
 * Customers written before `before` whose newest revision KV is not known to have (customers.published_rev
 * behind rev: the publication never reached their publisher, or is still being retried), oldest write first.
 */
export async function unpublishedCustomerIds(db: D1Database, before: number, limit: number): Promise<string[]> {
  const rows = await db
    .prepare("SELECT id FROM customers WHERE published_rev < rev AND updated_at < ?1 ORDER BY updated_at LIMIT ?2")
    .bind(before, limit)
    .all<{ id: string }>();
  return rows.results.map((r) => r.id);
}
