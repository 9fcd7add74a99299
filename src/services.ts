// Per-isolate services: created once by createWorker and shared by every request it serves.
import type { Clock } from "./clock";
import { MeterClient } from "./meter/client";
import { type ApiKeyCacheOptions, ApiKeyStore, DEFAULT_API_KEY_CACHE } from "./store/api-key-store";
import { DEFAULT_SNAPSHOT_CACHE, SnapshotStore, type SnapshotStoreOptions } from "./store/snapshots";

export interface Services {
  clock: Clock;
  snapshots: SnapshotStore;
  keys: ApiKeyStore;
  /** The customers' meters (Durable Objects): the check path's usage read and every usage route. */
  meter: MeterClient;
}

export function createServices(
  clock: Clock,
  cache: Partial<SnapshotStoreOptions> = {},
  keyCache: Partial<ApiKeyCacheOptions> = {},
): Services {
  return {
    clock,
    snapshots: new SnapshotStore({ ...DEFAULT_SNAPSHOT_CACHE, ...cache }),
    keys: new ApiKeyStore({ ...DEFAULT_API_KEY_CACHE, ...keyCache }),
    meter: new MeterClient(),
  };
}
