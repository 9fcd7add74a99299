// Snapshot history in D1, read back: "what was this customer entitled to at T" is answered from what
// checks could see then, not recomputed from rows that have changed since. Since the split (issue 12)
// that is the customer part in force at T (part_history, one row per customer write) composed with the
// catalog in force at T (catalog_history, one row per catalog revision); instants before a customer's
// first part fall back to the whole snapshots compiled before the split (snapshot_history). The
// publishers write them: store/snapshot-publisher.ts, store/catalog-store.ts.
import { type CompiledCatalog, isCompiledCatalog } from "../domain/catalog-compile";
import { compose } from "../domain/compose";
import { type CustomerPart, isCustomerPart } from "../domain/customer-part";
import type { Snapshot } from "../domain/types";
import { batchRows, query } from "./batch";

/** The snapshot in force at `at` (ms); null when nothing had been compiled by then. */
export async function snapshotAt(db: D1Database, customerId: string, at: number): Promise<Snapshot | null> {
  const [parts, catalogs, legacy] = await batchRows(db, [
    query<{ part: string }>(
      db
        .prepare(
          "SELECT part FROM part_history WHERE customer_id = ?1 AND compiled_at <= ?2 ORDER BY compiled_at DESC, rev DESC LIMIT 1",
        )
        .bind(customerId, at),
    ),
    query<{ catalog: string }>(
      db
        .prepare(
          "SELECT catalog FROM catalog_history WHERE compiled_at <= ?1 ORDER BY compiled_at DESC, rev DESC LIMIT 1",
        )
        .bind(at),
    ),
    query<{ snapshot: string }>(
      db
        .prepare(
          "SELECT snapshot FROM snapshot_history WHERE customer_id = ?1 AND compiled_at <= ?2 ORDER BY compiled_at DESC, version DESC LIMIT 1",
        )
        .bind(customerId, at),
    ),
  ]);
  // Parts written before plan versions (format 2) compose as subscriptions on their plan's version 1.
  const part = parse(parts[0]?.part, (v): v is CustomerPart => isCustomerPart(v, [2, 3]));
  if (part) {
    let catalog = parse(catalogs[0]?.catalog, isCompiledCatalog);
    // A part is never composed with a catalog older than the one it was read with (whose history row
    // can carry a later instant when its publication trailed the part's).
    if (!catalog || catalog.rev < part.catalogRev) catalog = await catalogAtLeast(db, part.catalogRev);
    if (catalog) return compose(part, catalog);
  }
  const old = legacy[0]?.snapshot;
  if (!old) return null;
  const snapshot = JSON.parse(old) as Snapshot;
  // Whole snapshots from before the split carry only their summed version.
  return { ...snapshot, customerRev: snapshot.customerRev ?? snapshot.version, catalogRev: snapshot.catalogRev ?? 0 };
}

/** The catalog as compiled at revision `rev`, or the newest before it when that row is missing (null: none). */
export async function catalogAtOrBefore(db: D1Database, rev: number): Promise<CompiledCatalog | null> {
  const row = await db
    .prepare("SELECT catalog FROM catalog_history WHERE rev <= ?1 ORDER BY rev DESC LIMIT 1")
    .bind(rev)
    .first<{ catalog: string }>();
  return parse(row?.catalog, isCompiledCatalog);
}

async function catalogAtLeast(db: D1Database, rev: number): Promise<CompiledCatalog | null> {
  const row = await db
    .prepare("SELECT catalog FROM catalog_history WHERE rev >= ?1 ORDER BY rev LIMIT 1")
    .bind(rev)
    .first<{ catalog: string }>();
  return parse(row?.catalog, isCompiledCatalog);
}

function parse<T>(text: string | undefined, is: (v: unknown) => v is T): T | null {
  if (text === undefined) return null;
  const value = JSON.parse(text) as unknown;
  return is(value) ? value : null;
}
