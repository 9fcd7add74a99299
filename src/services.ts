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
