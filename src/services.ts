// Per-isolate services: created once by createWorker and shared by every request it serves.
import type { Clock } from "./clock";
import type { Snapshot } from "./domain/types";
import type { Env } from "./env";
import { meterReader } from "./meter/client";
import { ApiKeyStore } from "./store/api-key-store";
import { DEFAULT_SNAPSHOT_CACHE, SnapshotStore, type SnapshotStoreOptions } from "./store/snapshots";

/** Reads a customer's usage of the current periods from its meter (one call for many features). */
export interface UsageReader {
  used(
    env: Env,
    snapshot: Snapshot,
    items: { feature: string; period: { start: number; end: number | null } }[],
    now: number,
  ): Promise<Record<string, { used: number; reserved: number }>>;
}

export interface Services {
  clock: Clock;
  snapshots: SnapshotStore;
  keys: ApiKeyStore;
  meter?: UsageReader;
}

export function createServices(clock: Clock, cache: Partial<SnapshotStoreOptions> = {}): Services {
  return {
    clock,
    snapshots: new SnapshotStore({ ...DEFAULT_SNAPSHOT_CACHE, ...cache }),
    keys: new ApiKeyStore(),
    meter: meterReader,
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
