// The Publisher Durable Objects (src/store/publisher.ts) as tests reach them: a stub by name, and other
// bindings handed to one (a wrapped KV or D1: lagging, failing, counting), the way the meter's ledger is
// swapped (nothing of the runtime is mocked; the wrapper forwards to the real local KV and D1).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { Publisher } from "../../src/store/publisher";

export const publisherStub = (name: string) => env.PUBLISHER.get(env.PUBLISHER.idFromName(name));

/** The named publisher writes through `bindings` until the returned function restores its own. */
export async function rebindPublisher(
  name: string,
  bindings: { kv?: KVNamespace; db?: D1Database },
): Promise<() => Promise<void>> {
  await runInDurableObject(publisherStub(name), (p: Publisher) => {
    if (bindings.kv) p.kv = bindings.kv;
    if (bindings.db) p.db = bindings.db;
  });
  return () =>
    runInDurableObject(publisherStub(name), (p: Publisher) => {
      p.kv = env.SNAPSHOTS;
      p.db = env.DB;
    });
}
