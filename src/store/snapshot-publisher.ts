// The one way a compiled snapshot leaves the worker: the snapshot history in D1 first, then KV. History
// first, so a snapshot that checks can see is always one that GET .../entitlements?at= can explain
// later; a failure between the two leaves KV on the older snapshot, which the next compile replaces.
// Both compile paths use it: SnapshotStore.compile (one customer, after a write or a KV miss) and
// compileMany (a recompile job's batch: one KV write per customer plus a few D1 statements per batch).
import { compileSnapshot } from "../domain/compile";
import type { Env } from "../env";
import { loadManyCustomerRows } from "./customer-rows";
import { kvKeys } from "./kv";

/** A compiled snapshot as it is stored: its JSON text (KV's value and the history row) and its version. */
export interface PublishedSnapshot {
  customerId: string;
  version: number;
  text: string;
}

// D1 binds a string of at most 1,000,000 bytes; history rows go in chunks well below that.
const HISTORY_CHUNK_BYTES = 600_000;

/** Writes the snapshot history, then KV. Throws when either fails (KV is not written when the history fails). */
export async function publishSnapshots(
  env: Pick<Env, "DB" | "SNAPSHOTS">,
  snapshots: PublishedSnapshot[],
  compiledAt: number,
): Promise<void> {
  if (snapshots.length === 0) return;
  await env.DB.batch(historyChunks(snapshots).map((chunk) => historyStatement(env.DB, chunk, compiledAt)));
  await Promise.all(snapshots.map((s) => env.SNAPSHOTS.put(kvKeys.snapshot(s.customerId), s.text)));
}

/** Consecutive snapshots whose texts stay under HISTORY_CHUNK_BYTES together (a larger one alone). */
function historyChunks(snapshots: PublishedSnapshot[]): PublishedSnapshot[][] {
  const chunks: PublishedSnapshot[][] = [];
  let chunk: PublishedSnapshot[] = [];
  let bytes = 0;
  for (const s of snapshots) {
    if (chunk.length > 0 && bytes + s.text.length >= HISTORY_CHUNK_BYTES) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(s);
    bytes += s.text.length + 64;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

function historyStatement(db: D1Database, chunk: PublishedSnapshot[], compiledAt: number): D1PreparedStatement {
  const [only] = chunk;
  // A lone snapshot is bound as it is: unwrapped, one close to D1's bind limit still fits.
  if (only && chunk.length === 1)
    return db
      .prepare(
        "INSERT OR IGNORE INTO snapshot_history (customer_id, version, compiled_at, snapshot) VALUES (?1, ?2, ?3, ?4)",
      )
      .bind(only.customerId, only.version, compiledAt, only.text);
  // Several in one statement: a JSON array of [customerId, version, text] rows.
  return db
    .prepare(
      `INSERT OR IGNORE INTO snapshot_history (customer_id, version, compiled_at, snapshot)
       SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?2, json_extract(value, '$[2]') FROM json_each(?1)`,
    )
    .bind(JSON.stringify(chunk.map((s) => [s.customerId, s.version, s.text])), compiledAt);
}

/**
 * Compiles and publishes the snapshots of `customerIds` (missing customers are skipped); returns how
 * many. For recompile jobs: one D1 batch to read, one to write the history, one KV write per customer.
 * Failures propagate (the job's cursor does not move, so the batch is retried).
 */
export async function compileMany(
  env: Env,
  services: { snapshots: { invalidate(customerId: string): void } },
  customerIds: string[],
  now: number,
): Promise<number> {
  const unreadable = new Map<string, unknown>();
  const rows = await loadManyCustomerRows(env.DB, customerIds, unreadable);
  for (const [customerId, err] of unreadable) logCompileFailure(customerId, err);
  const published: PublishedSnapshot[] = [];
  for (const r of rows.values()) {
    // One customer whose rows cannot be compiled must not hold back the others (logCompileFailure).
    try {
      const snapshot = compileSnapshot(r, now);
      published.push({ customerId: r.customer.id, version: snapshot.version, text: JSON.stringify(snapshot) });
    } catch (err) {
      logCompileFailure(r.customer.id, err);
    }
  }
  await publishSnapshots(env, published, now);
  // This isolate reads the new snapshot from KV next time; other isolates within their cache TTL.
  for (const s of published) services.snapshots.invalidate(s.customerId);
  return published.length;
}

/** A customer left out of a batch keeps its current snapshot; it is compiled again on its next write or rebuild. */
function logCompileFailure(customerId: string, err: unknown): void {
  console.error(JSON.stringify({ msg: "snapshot compile failed", customerId, error: String(err) }));
}
