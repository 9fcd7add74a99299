// The isolate's usage summary: what it last learnt of each (customer, feature, period) counter, from
// the check path's meter reads and from consumes' answers, so that a metered check far from its limit
// can answer without a meter round trip (domain/usage-summary.ts has the rule). Bounded like the other
// per-isolate caches (store/bounded-cache.ts); an entry is a handful of numbers.
import { observe, type UsageObservation } from "../domain/usage-summary";
import { BoundedCache } from "../store/bounded-cache";

const MAX_ENTRIES = 20_000;
const ENTRY_BYTES = 160; // key (customer id + feature) and five numbers, as V8 holds them
const key = (customerId: string, feature: string) => `${customerId}\u0000${feature}`;

export class UsageSummaries {
  readonly #cache = new BoundedCache<UsageObservation>(MAX_ENTRIES, MAX_ENTRIES * ENTRY_BYTES);
  /** Customers whose background refresh is in flight: one at a time each. */
  readonly #refreshing = new Set<string>();

  get(customerId: string, feature: string): UsageObservation | undefined {
    return this.#cache.get(key(customerId, feature))?.value;
  }

  /** Records what the meter said of a counter at `at`. */
  learn(customerId: string, feature: string, used: number, reserved: number, at: number, periodStart: number | null) {
    const k = key(customerId, feature);
    const next = observe(this.#cache.get(k)?.value, used, reserved, at, periodStart);
    this.#cache.set(k, next, at, ENTRY_BYTES);
  }

  /** Runs `refresh` in the background unless one for this customer is already running; its failure is only logged. */
  refreshOnce(customerId: string, refresh: () => Promise<unknown>, waitUntil: (p: Promise<unknown>) => void) {
    if (this.#refreshing.has(customerId)) return;
    this.#refreshing.add(customerId);
    const run = refresh()
      .catch((err) =>
        console.warn(JSON.stringify({ msg: "usage summary refresh failed", customerId, error: String(err) })),
      )
      .finally(() => this.#refreshing.delete(customerId));
    waitUntil(run);
  }

  get size(): number {
    return this.#cache.size;
  }
}
