// The revision counters a snapshot's version is built from: a customer's `rev` and the catalog's
// `catalog_rev` (meta). A write bumps them in the same D1 batch as the change itself, so a snapshot
// compiled after the write always carries a higher version than any compiled before it.

/** customers.rev + 1: the customer's entitlements changed. */
export function bumpCustomerRevStatement(db: D1Database, customerId: string, now: number): D1PreparedStatement {
  return db.prepare("UPDATE customers SET rev = rev + 1, updated_at = ?2 WHERE id = ?1").bind(customerId, now);
}

/** meta.catalog_rev + 1: features, plans, region groups or prices changed, for every customer. */
export function bumpCatalogRevStatement(db: D1Database): D1PreparedStatement {
  return db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'catalog_rev'");
}
