// Snapshot history in D1 (table snapshot_history), read back: every snapshot that was published is
// kept with the instant it was compiled, so "what was this customer entitled to at T" is answered
// from the snapshot checks saw then, not recomputed from rows that have changed since. (The
// publishers write it: store/snapshots.ts, store/customer-rows-many.ts.)
import type { Snapshot } from "../domain/types";

/** The latest snapshot compiled at or before `at` (ms); null when none was. */
export async function snapshotAt(db: D1Database, customerId: string, at: number): Promise<Snapshot | null> {
  const row = await db
    .prepare(
      "SELECT snapshot FROM snapshot_history WHERE customer_id = ?1 AND compiled_at <= ?2 ORDER BY compiled_at DESC, version DESC LIMIT 1",
    )
    .bind(customerId, at)
    .first<{ snapshot: string }>();
  return row ? (JSON.parse(row.snapshot) as Snapshot) : null;
}
