// API key verification on the hot path: isolate cache -> KV -> D1 (read-through). A revoked key
// stops working everywhere within KEY_CACHE_TTL_MS plus KV's propagation (docs/admin.md, "Propagation").
import { type ApiKeyRecord, hashApiKey, looksLikeApiKey, sameDigest } from "../auth/api-keys";
import type { Env } from "../env";
import { readApiKeyByHash, toApiKeyRecord } from "./api-keys";
import { BoundedCache } from "./bounded-cache";
import { KeyStoreUnavailable } from "./errors";
import { kvKeys } from "./kv";

export { KeyStoreUnavailable };

export const KEY_CACHE_TTL_MS = 30_000;

export class ApiKeyStore {
  // Unknown keys are cached too (as null), so guessing keys cannot push load onto KV and D1.
  readonly cache = new BoundedCache<ApiKeyRecord | null>(20_000, 8 * 1024 * 1024);
  // SHA-256 of recently presented keys, by key: hashing every request was the largest cost of a
  // cached check. A hash never changes, so no TTL; bounded like the record cache. (The key is in
  // this isolate's memory while its requests are served anyway.)
  readonly #hashes = new BoundedCache<string>(20_000, 8 * 1024 * 1024);

  /** The active record for a presented key, or null (unknown, malformed or revoked). */
  async verify(
    env: Env,
    presented: string,
    now: number,
    waitUntil?: (p: Promise<unknown>) => void,
  ): Promise<ApiKeyRecord | null> {
    if (!looksLikeApiKey(presented)) return null;
    const hash = this.#hashes.get(presented)?.value ?? (await this.#hash(presented));
    let entry = this.cache.get(hash);
    if (!entry || now - entry.storedAt >= KEY_CACHE_TTL_MS) {
      try {
        const found = await this.#lookup(env, hash, waitUntil);
        // The stored hash is compared with the presented key's in constant time once, as the record
        // enters the cache; every later hit is found under that same hash.
        const record = found && sameDigest(found.hash, hash) ? found : null;
        this.cache.set(hash, record, now, 256);
        entry = { value: record, storedAt: now, bytes: 256 };
      } catch (err) {
        // Stale-if-error, like snapshots: an outage of KV and D1 must not lock out known keys.
        console.error(JSON.stringify({ msg: "api key lookup failed", error: String(err) }));
        if (!entry) throw new KeyStoreUnavailable(String(err));
      }
    }
    const record = entry.value;
    if (!record || record.revokedAt !== null) return null;
    return record;
  }

  async #hash(key: string): Promise<string> {
    const hash = await hashApiKey(key);
    this.#hashes.set(key, hash, 0, 256);
    return hash;
  }

  async #lookup(env: Env, hash: string, waitUntil?: (p: Promise<unknown>) => void): Promise<ApiKeyRecord | null> {
    const cached = await env.SNAPSHOTS.get<ApiKeyRecord>(kvKeys.apiKey(hash), "json").catch(() => null); // KV down: D1 decides
    if (cached) return cached;
    const row = await readApiKeyByHash(env.DB, hash);
    if (!row) return null;
    const record = toApiKeyRecord(row);
    const write = env.SNAPSHOTS.put(kvKeys.apiKey(hash), JSON.stringify(record)).catch(() => undefined);
    if (waitUntil) waitUntil(write);
    return record;
  }

  /** Called after a key is created or revoked through the admin API. */
  async publish(env: Env, record: ApiKeyRecord): Promise<void> {
    await env.SNAPSHOTS.put(kvKeys.apiKey(record.hash), JSON.stringify(record));
    this.cache.delete(record.hash);
  }
}
