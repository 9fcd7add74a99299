// Errors a store throws when the bindings it needs cannot answer. A leaf module, so the one
// problem+json builder (src/http/problem.ts) can map them to a 503 without depending on the stores.

/** KV and D1 both failed, and the isolate holds no copy that may be served. */
export class StoreUnavailable extends Error {}

/** No snapshot of the customer could be read (KV and D1 failed). */
export class SnapshotUnavailable extends StoreUnavailable {}

/** No API key record could be read (KV and D1 failed) for a key this isolate has not seen. */
export class KeyStoreUnavailable extends StoreUnavailable {}
