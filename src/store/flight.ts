// A load one request started and others may wait for, without being resumed by the starter's I/O.
//
// workerd runs a promise's continuations in the I/O context of whatever resolved it: a request that
// `await`s a KV read another request started goes on (its meter call, its Response) inside that other
// request, and when that one has finished, workerd fails it with a 500 "Cannot perform I/O on behalf of a
// different request" after the handler returned (docs/benchmark.md, "Errors under load"). So a flight
// records its outcome in plain data, and a request that joins it never awaits its promise: it watches the
// outcome on timers of its own, which fire in its own context.
//
// Joining is the exception, not the rule: a request past a TTL while a refresh is in flight serves what
// the isolate holds (store/catalog-store.ts, store/snapshots.ts); only one that has nothing it may serve
// (a cold isolate, a minVersion the held copy does not satisfy) joins.

/** How often a joining request looks at a flight's outcome (a timer of its own each time). */
export const JOIN_POLL_MS = 1;

export interface Flight<T> {
  /** The starter's own promise: only the request that started the flight awaits it. */
  readonly promise: Promise<T>;
  /** Set, synchronously with the promise settling, for the requests that join. */
  outcome: { ok: true; value: T } | { ok: false; error: unknown } | null;
}

export function startFlight<T>(promise: Promise<T>): Flight<T> {
  const flight: Flight<T> = { promise, outcome: null };
  promise.then(
    (value) => {
      flight.outcome = { ok: true, value };
    },
    (error: unknown) => {
      flight.outcome = { ok: false, error };
    },
  );
  return flight;
}

/** The flight's result, for a request that did not start it: watched on the caller's own timers. */
export async function joinFlight<T>(flight: Flight<T>): Promise<T> {
  while (flight.outcome === null) await new Promise((resolve) => setTimeout(resolve, JOIN_POLL_MS));
  if (flight.outcome.ok) return flight.outcome.value;
  throw flight.outcome.error;
}
