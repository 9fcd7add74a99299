// Readers of what the worker published to KV, by the keys src/store/kv.ts names.
import { env } from "cloudflare:workers";
import { type ApiKeyRecord, hashApiKey } from "../../src/auth/api-keys";
import type { CompiledCatalog } from "../../src/domain/catalog-compile";
import { compose } from "../../src/domain/compose";
import { type CustomerPart, isCustomerPart } from "../../src/domain/customer-part";
import type { Snapshot } from "../../src/domain/types";
import { kvKeys } from "../../src/store/kv";

/** The customer part KV holds (not the unknown-customer mark), or null. */
export async function kvPart(customerId: string): Promise<CustomerPart | null> {
  const value = await env.SNAPSHOTS.get(kvKeys.part(customerId), "json");
  return isCustomerPart(value) ? value : null;
}

/** The catalog KV's pointer names, or null. */
export async function kvCatalog(): Promise<CompiledCatalog | null> {
  const head = await env.SNAPSHOTS.get<{ rev: number }>(kvKeys.catalogHead, "json");
  return head ? env.SNAPSHOTS.get<CompiledCatalog>(kvKeys.catalog(head.rev), "json") : null;
}

/** The snapshot a fresh isolate would compose from KV alone (the part with the catalog the pointer names), or null. */
export async function kvSnapshot(customerId: string): Promise<Snapshot | null> {
  const [part, catalog] = await Promise.all([kvPart(customerId), kvCatalog()]);
  return part && catalog ? compose(part, catalog) : null;
}

/** The KV key under which an API key's record is published (by the hash of the key). */
export const kvApiKeyKey = async (key: string) => kvKeys.apiKey(await hashApiKey(key));

/** The record the check path reads for an API key, or null. */
export const kvApiKey = async (key: string) => env.SNAPSHOTS.get<ApiKeyRecord>(await kvApiKeyKey(key), "json");
