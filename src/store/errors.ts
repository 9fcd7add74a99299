// Errors a store throws when the bindings it needs cannot answer. A leaf module, so the one
// problem+json builder (src/http/problem.ts) can map them to a 503 without depending on the stores.

/** KV and D1 both failed, and the isolate holds no copy that may be served. */
export class StoreUnavailable extends Error {}

/**
 * Why a check was answered degraded: KV and D1 could not give the part (`stores_unavailable`), or this
 * isolate's read-through budget for D1 was spent (`read_through_limited`, store/read-budget.ts).
 */
export type DegradedReason = "stores_unavailable" | "read_through_limited";

/** No snapshot of the customer could be read (KV and D1 failed, or D1 was not asked: the read-through budget was spent). */
export class SnapshotUnavailable extends StoreUnavailable {
  constructor(
    message: string,
    readonly reason: DegradedReason = "stores_unavailable",
  ) {
    super(message);
  }
}

/** No API key record could be read (KV and D1 failed) for a key this isolate has not seen. */
export class KeyStoreUnavailable extends StoreUnavailable {}
