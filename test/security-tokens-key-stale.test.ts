// Issue 11, item 15 (review: "API-key stale-if-error has no age bound"): a key record this isolate holds is
// used when KV and D1 both fail, like a snapshot, but for a bounded time (API_KEY_STALE_IF_ERROR_MS, 24 h by
// default, snapshots' bound). Beyond it the outage answers 503: a key revoked during a long partial outage
// does not keep working forever in the isolates that cannot reach a store.
import { beforeAll, describe, expect, it } from "vitest";
import { createKey, loadTestCatalog } from "./helpers/admin";
import { outage } from "./helpers/faults";
import { HOUR_MS, MINUTE_MS, T0 } from "./helpers/time";
import { expectProblem, testWorker } from "./helpers/worker";

const w = testWorker();
beforeAll(async () => {
  await loadTestCatalog(w);
});

// An invalid body: authentication runs first, so a 400 says the key was accepted and needs no snapshot.
const authenticate = (tw: ReturnType<typeof testWorker>, key: string, e?: Cloudflare.Env) =>
  tw.call("POST", "/v1/check", { key, env: e, body: { customerId: "nobody" } });

describe("API keys in an outage of KV and D1", () => {
  it("a key seen by this isolate keeps working for 24 hours, and is a 503 after that", async () => {
    const key = await createKey(w, ["check"]);
    const tw = testWorker();
    expectProblem(await authenticate(tw, key), 400, "validation"); // verified at T0: in this isolate's cache
    for (const t of [T0 + MINUTE_MS, T0 + 23 * HOUR_MS, T0 + 24 * HOUR_MS - 1])
      expectProblem(await tw.at(t, () => authenticate(tw, key, outage)), 400, "validation");
    for (const t of [T0 + 24 * HOUR_MS, T0 + 30 * 24 * HOUR_MS]) {
      const res = await tw.at(t, () => authenticate(tw, key, outage));
      expectProblem(res, 503, "unavailable");
      expect(res.headers.get("retry-after")).toBeTruthy();
    }
    // Once a store answers again, the key is looked up and works at once.
    expectProblem(await tw.at(T0 + 30 * 24 * HOUR_MS, () => authenticate(tw, key)), 400, "validation");
  });

  it("the bound is API_KEY_STALE_IF_ERROR_MS", async () => {
    const key = await createKey(w, ["check"]);
    const tw = testWorker();
    expectProblem(await authenticate(tw, key), 400, "validation");
    const short = { ...outage, API_KEY_STALE_IF_ERROR_MS: String(HOUR_MS) } as Cloudflare.Env;
    expectProblem(await tw.at(T0 + 59 * MINUTE_MS, () => authenticate(tw, key, short)), 400, "validation");
    expectProblem(await tw.at(T0 + HOUR_MS, () => authenticate(tw, key, short)), 503, "unavailable");
  });
});
