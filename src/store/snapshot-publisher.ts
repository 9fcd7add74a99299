// The one way a compiled customer part leaves the worker: its history row in D1 first, then KV. History
// first, so a part that checks can see is always one that GET .../entitlements?at= can explain later;
// a failure between the two leaves KV on the older part, which the next compile replaces. Used by
// SnapshotStore.compile (one customer, after a write or a KV miss) and by rebuilds. The catalog has its
// own publisher (store/catalog-store.ts); a catalog change never republishes a customer part.
import type { Env } from "../env";
import { kvKeys } from "./kv";

/** A compiled part as it is stored: its JSON text (KV's value and the history row) and its revision. */
export interface PublishedPart {
  customerId: string;
  rev: number;
  text: string;
}

// D1 binds a string of at most 1,000,000 bytes; history rows go in chunks well below that.
const HISTORY_CHUNK_BYTES = 600_000;

/** Writes the part history, then KV. Throws when either fails (KV is not written when the history fails). */
export async function publishParts(
  env: Pick<Env, "DB" | "SNAPSHOTS">,
  parts: PublishedPart[],
  compiledAt: number,
): Promise<void> {
  if (parts.length === 0) return;
  await env.DB.batch(historyChunks(parts).map((chunk) => historyStatement(env.DB, chunk, compiledAt)));
  await Promise.all(parts.map((p) => env.SNAPSHOTS.put(kvKeys.part(p.customerId), p.text)));
}

/** Consecutive parts whose texts stay under HISTORY_CHUNK_BYTES together (a larger one alone). */
function historyChunks(parts: PublishedPart[]): PublishedPart[][] {
  const chunks: PublishedPart[][] = [];
  let chunk: PublishedPart[] = [];
  let bytes = 0;
  for (const p of parts) {
    if (chunk.length > 0 && bytes + p.text.length >= HISTORY_CHUNK_BYTES) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(p);
    bytes += p.text.length + 64;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

function historyStatement(db: D1Database, chunk: PublishedPart[], compiledAt: number): D1PreparedStatement {
  const [only] = chunk;
  // A lone part is bound as it is: unwrapped, one close to D1's bind limit still fits.
  if (only && chunk.length === 1)
    return db
      .prepare("INSERT OR IGNORE INTO part_history (customer_id, rev, compiled_at, part) VALUES (?1, ?2, ?3, ?4)")
      .bind(only.customerId, only.rev, compiledAt, only.text);
  // Several in one statement: a JSON array of [customerId, rev, text] rows.
  return db
    .prepare(
      `INSERT OR IGNORE INTO part_history (customer_id, rev, compiled_at, part)
       SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?2, json_extract(value, '$[2]') FROM json_each(?1)`,
    )
    .bind(JSON.stringify(chunk.map((p) => [p.customerId, p.rev, p.text])), compiledAt);
}
