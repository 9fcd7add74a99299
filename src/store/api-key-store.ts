// API key verification on the hot path: isolate cache -> KV -> D1 (read-through). A revoked key
// stops working everywhere within KEY_CACHE_TTL_MS plus KV's propagation (docs/admin.md, "Propagation").
// What a presented key costs before it is known (review M5):
//   - a checksummed key (tg_<43>_<8>) whose checksum fails: one HMAC, no I/O, nothing cached;
//   - a key no store knows: one KV read and one D1 query, then an entry in a small cache of its own
//     (`unknown`), so guesses neither repeat the lookup nor evict the records of real keys.
import {
  type ApiKeyRecord,
  checksumSecretsOf,
  checksumVerifies,
  hashApiKey,
  keyShape,
  sameDigest,
} from "../auth/api-keys";
import { configOf } from "../config";
import type { Env } from "../env";
import { readApiKeyByHash, toApiKeyRecord } from "./api-keys";
import { BoundedCache } from "./bounded-cache";
import { KeyStoreUnavailable } from "./errors";
import { kvKeys } from "./kv";

export { KeyStoreUnavailable };

export const KEY_CACHE_TTL_MS = 30_000;

export interface ApiKeyCacheOptions {
  /** Records of real keys (revoked ones included), by hash: what carries a key through an outage. */
  maxEntries: number;
  maxBytes: number;
  /** Keys that no store knows, by key: refused for KEY_CACHE_TTL_MS without another lookup. */
  unknownMaxEntries: number;
}

export const DEFAULT_API_KEY_CACHE: ApiKeyCacheOptions = {
  maxEntries: 20_000,
  maxBytes: 8 * 1024 * 1024,
  unknownMaxEntries: 2_000,
};

/** What an entry costs, roughly: a record, or an unknown key (the key itself and the map's overhead). */
const RECORD_BYTES = 256;
const UNKNOWN_BYTES = 128;

const active = (record: ApiKeyRecord): ApiKeyRecord | null => (record.revokedAt === null ? record : null);

export class ApiKeyStore {
  readonly cache: BoundedCache<ApiKeyRecord>;
  // Negative results apart: a flood of made-up keys only ever evicts other made-up keys.
  readonly unknown: BoundedCache<true>;
  // SHA-256 of the keys whose record is cached, by key: hashing every request was the largest cost of a
  // cached check. A key in here has passed its checksum, so a hit skips that too. A hash never changes,
  // so no TTL; bounded like the record cache. (The key is in this isolate's memory while its requests
  // are served anyway.)
  readonly #hashes: BoundedCache<string>;

  constructor(readonly options: ApiKeyCacheOptions = DEFAULT_API_KEY_CACHE) {
    this.cache = new BoundedCache(options.maxEntries, options.maxBytes);
    this.#hashes = new BoundedCache(options.maxEntries, options.maxBytes);
    this.unknown = new BoundedCache(options.unknownMaxEntries, options.unknownMaxEntries * UNKNOWN_BYTES);
  }

  /** The active record for a presented key, or null (unknown, malformed, forged or revoked). */
  async verify(
    env: Env,
    presented: string,
    now: number,
    waitUntil?: (p: Promise<unknown>) => void,
  ): Promise<ApiKeyRecord | null> {
    let hash = this.#hashes.get(presented)?.value;
    const unknown = hash === undefined ? this.unknown.get(presented) : undefined;
    if (hash === undefined) {
      const shape = keyShape(presented);
      if (!shape) return null;
      if (shape.checksum !== null && !(await checksumVerifies(shape.body, shape.checksum, checksumSecretsOf(env))))
        return null;
      if (unknown && now - unknown.storedAt < KEY_CACHE_TTL_MS) return null;
      hash = await hashApiKey(presented);
    }
    const entry = this.cache.get(hash);
    if (entry && now - entry.storedAt < KEY_CACHE_TTL_MS) return active(entry.value);
    let found: ApiKeyRecord | null;
    try {
      found = await this.#lookup(env, hash, waitUntil);
    } catch (err) {
      // Stale-if-error, like snapshots: an outage of KV and D1 must not lock out known keys, but only for
      // so long (API_KEY_STALE_IF_ERROR_MS): a key revoked meanwhile must not keep working where no store
      // can be reached. A key known to be unknown stays refused.
      console.error(JSON.stringify({ msg: "api key lookup failed", error: String(err) }));
      if (unknown) return null;
      if (!entry) throw new KeyStoreUnavailable(String(err));
      if (now - entry.storedAt >= configOf(env).apiKeys.staleIfErrorMs)
        throw new KeyStoreUnavailable(`the cached key record is past the stale-if-error bound: ${err}`);
      return active(entry.value);
    }
    // The stored hash is compared with the presented key's in constant time once, as the record
    // enters the cache; every later hit is found under that same hash.
    const record = found && sameDigest(found.hash, hash) ? found : null;
    if (!record) {
      this.cache.delete(hash);
      this.#hashes.delete(presented);
      this.unknown.set(presented, true, now, UNKNOWN_BYTES);
      return null;
    }
    this.cache.set(hash, record, now, RECORD_BYTES);
    this.#hashes.set(presented, hash, 0, RECORD_BYTES);
    this.unknown.delete(presented);
    return active(record);
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
