// Loads that concurrent requests share (one KV read or D1 read-through per customer, one catalog refresh
// per isolate) are awaited by each request through a promise of its own. Awaiting another request's
// promise directly resumes the awaiting request's code in that other request's I/O context, and what it
// then creates (a meter call, its Response) belongs to the wrong request: workerd answers it with a 500,
// "Cannot perform I/O on behalf of a different request", after the handler returned, so the worker never
// sees the error. Found by `npm run bench` (a few per run in the Durable Object scenarios, at each TTL
// refresh of a shared customer; docs/benchmark.md, "Errors under load"); with this, none in any run.

/** `shared`, settled through a promise created in (and so resumed in) the calling request. */
export function ownPromise<T>(shared: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    shared.then(resolve, reject);
  });
}
