// Per-isolate services: created once by createWorker and shared by every request it serves.
import { Analytics } from "./analytics";
import type { Clock } from "./clock";
import { MeterClient } from "./meter/client";
import { UsageSummaries } from "./meter/usage-summaries";
import { type ApiKeyCacheOptions, ApiKeyStore, DEFAULT_API_KEY_CACHE } from "./store/api-key-store";
import { DEFAULT_SNAPSHOT_CACHE, SnapshotStore, type SnapshotStoreOptions } from "./store/snapshots";

export interface Services {
  clock: Clock;
  snapshots: SnapshotStore;
  keys: ApiKeyStore;
  /** The customers' meters (Durable Objects): the check path's usage read and every usage route. */
  meter: MeterClient;
  /** What this isolate last learnt of each counter: metered checks far from the limit answer from it (check-path.ts). */
  usage: UsageSummaries;
  /** Outbound HTTP (webhook deliveries): the runtime's fetch, or a test's receiver. */
  fetch: typeof fetch;
  /** Usage and entitlement analytics: the sink of each check and consume (src/analytics/). */
  analytics: Analytics;
}

export function createServices(
  clock: Clock,
  cache: Partial<SnapshotStoreOptions> = {},
  keyCache: Partial<ApiKeyCacheOptions> = {},
  outbound: typeof fetch = (input, init) => fetch(input, init),
): Services {
  return {
    clock,
    snapshots: new SnapshotStore({ ...DEFAULT_SNAPSHOT_CACHE, ...cache }),
    keys: new ApiKeyStore({ ...DEFAULT_API_KEY_CACHE, ...keyCache }),
    meter: new MeterClient(),
    usage: new UsageSummaries(),
    fetch: outbound,
    analytics: new Analytics(),
  };
}
