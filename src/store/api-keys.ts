// API keys in D1 (table api_keys): stored hashed, never in clear. The admin API creates, lists and
// revokes them here; the check path reads one by hash through store/api-key-store.ts (with its
// isolate cache and KV in front). Statements that are part of a write are returned, not run, so the
// caller can put them in one batch with the audit records (src/write/commit.ts).
import type { ApiKeyRecord } from "../auth/api-keys";
import type { Scope } from "../domain/types";
import { SqlFilter } from "./sql-filter";

/** An api_keys row as D1 returns it. `scopes` is a JSON array; `created_by` a four-eyes identity (write/accountable.ts). */
export interface ApiKeyDbRow {
  id: string;
  hash: string;
  prefix: string;
  name: string;
  scopes: string;
  customer_id: string | null;
  created_by: string;
  created_at: number;
  revoked_at: number | null;
}

/** The columns the check path needs to verify a key. */
export type ApiKeyAuthRow = Pick<ApiKeyDbRow, "id" | "hash" | "scopes" | "customer_id" | "revoked_at">;

/** What the check path caches and KV holds (key:<hash>) for a key. */
export const toApiKeyRecord = (r: ApiKeyAuthRow): ApiKeyRecord => ({
  id: r.id,
  hash: r.hash,
  scopes: JSON.parse(r.scopes) as Scope[],
  customerId: r.customer_id,
  revokedAt: r.revoked_at,
});

export async function readApiKey(db: D1Database, id: string): Promise<ApiKeyDbRow | null> {
  return db.prepare("SELECT * FROM api_keys WHERE id = ?1").bind(id).first<ApiKeyDbRow>();
}

/** The stored created_by of a key (revoked or not); null when there is no such key. */
export async function readApiKeyCreator(db: D1Database, id: string): Promise<string | null> {
  const row = await db
    .prepare("SELECT created_by FROM api_keys WHERE id = ?1")
    .bind(id)
    .first<{ created_by: string }>();
  return row?.created_by ?? null;
}

/** The key with this SHA-256 hash (hex), revoked or not. */
export async function readApiKeyByHash(db: D1Database, hash: string): Promise<ApiKeyAuthRow | null> {
  return db
    .prepare("SELECT id, hash, scopes, customer_id, revoked_at FROM api_keys WHERE hash = ?1")
    .bind(hash)
    .first<ApiKeyAuthRow>();
}

export interface ApiKeyFilter {
  customerId?: string;
  revoked?: boolean;
  /** Keyset cursor, newest first: keys before this (created_at, id). */
  before: [createdAt: number, id: string] | null;
  /** Rows to read (a page reads one more than it shows: http/pagination.ts). */
  limit: number;
}

/** API keys, newest first. */
export async function listApiKeys(db: D1Database, q: ApiKeyFilter): Promise<ApiKeyDbRow[]> {
  const f = new SqlFilter()
    .when(q.customerId, "customer_id = ?")
    .when(q.revoked, q.revoked ? "revoked_at IS NOT NULL" : "revoked_at IS NULL")
    .when(q.before, "(created_at, id) < (?, ?)", q.before?.[0], q.before?.[1]);
  const rows = await db
    .prepare(`SELECT * FROM api_keys ${f.sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
    .bind(...f.params, q.limit)
    .all<ApiKeyDbRow>();
  return rows.results;
}

export function insertApiKeyStatement(db: D1Database, k: Omit<ApiKeyDbRow, "revoked_at">): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO api_keys (id, hash, prefix, name, scopes, customer_id, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(k.id, k.hash, k.prefix, k.name, k.scopes, k.customer_id, k.created_by, k.created_at);
}

/** "AND revoked_at IS NULL": a racing second revoke keeps the first instant. */
export function revokeApiKeyStatement(db: D1Database, id: string, now: number): D1PreparedStatement {
  return db.prepare("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL").bind(id, now);
}
