// Per-isolate services: created once by createWorker and shared by every request it serves.
import type { Clock } from "./clock";
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
