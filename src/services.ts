// Per-isolate services: created once by createWorker and shared by every request it serves.
import type { Clock } from "./clock";
import type { Env } from "./env";
import { MeterClient } from "./meter/client";
import { ApiKeyStore } from "./store/api-key-store";
import { DEFAULT_SNAPSHOT_CACHE, SnapshotStore, type SnapshotStoreOptions } from "./store/snapshots";

export interface Services {
  clock: Clock;
  snapshots: SnapshotStore;
  keys: ApiKeyStore;
  /** The customers' meters (Durable Objects): the check path's usage read and every usage route. */
  meter: MeterClient;
}

export function createServices(clock: Clock, cache: Partial<SnapshotStoreOptions> = {}): Services {
  return {
    clock,
    snapshots: new SnapshotStore({ ...DEFAULT_SNAPSHOT_CACHE, ...cache }),
    keys: new ApiKeyStore(),
    meter: new MeterClient(),
  };
}

/** Snapshot cache options from vars (SNAPSHOT_CACHE_TTL_MS, SNAPSHOT_CACHE_MAX_ENTRIES); an unset or invalid one keeps its default. */
export function snapshotCacheOptions(env: Env): Partial<SnapshotStoreOptions> {
  const out: Partial<SnapshotStoreOptions> = {};
  const ttlMs = Number(env.SNAPSHOT_CACHE_TTL_MS);
  if (ttlMs > 0) out.ttlMs = ttlMs;
  const maxEntries = Number(env.SNAPSHOT_CACHE_MAX_ENTRIES);
  if (Number.isInteger(maxEntries) && maxEntries > 0) out.maxEntries = maxEntries;
  return out;
}
