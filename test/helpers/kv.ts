// Readers of what the worker published to KV, by the keys src/store/kv.ts names.
import { env } from "cloudflare:workers";
import { type ApiKeyRecord, hashApiKey } from "../../src/auth/api-keys";
import type { Snapshot } from "../../src/domain/types";
import { kvKeys } from "../../src/store/kv";

/** The snapshot a check would read from KV, or null. */
export const kvSnapshot = (customerId: string) => env.SNAPSHOTS.get<Snapshot>(kvKeys.snapshot(customerId), "json");

/** The KV key under which an API key's record is published (by the hash of the key). */
export const kvApiKeyKey = async (key: string) => kvKeys.apiKey(await hashApiKey(key));

/** The record the check path reads for an API key, or null. */
export const kvApiKey = async (key: string) => env.SNAPSHOTS.get<ApiKeyRecord>(await kvApiKeyKey(key), "json");
