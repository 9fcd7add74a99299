// Consumes do not re-read a customer's part every SNAPSHOT_CACHE_TTL_MS while the customer's meter keeps
// confirming it (issue 16): every customer write pushes its version to the meter, which refuses older
// terms, so a consume the meter decided on revision r says no write it was told of is newer than r. The
// part then stays fresh for consumes up to USAGE_CONFIRMED_PART_MAX_MS (60 s) after it was read; checks
// keep the TTL; a write reaches the next consume at once through stale_terms, confirmed or not.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock";
import { kvKeys } from "../src/store/kv";
import { createCustomer, createKey, loadTestCatalog, subscriptionAction } from "./helpers/admin";
import { T0 } from "./helpers/time";
import { type TestWorker, testWorker, uid } from "./helpers/worker";

const setup = testWorker();
let key: string;
beforeAll(async () => {
  await loadTestCatalog(setup);
  key = await createKey(setup, ["check", "usage"]);
});

/** The bindings, with KV's reads of customer parts counted. */
function countingParts() {
  const reads = { parts: 0 };
  const kv = new Proxy(env.SNAPSHOTS, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if ((prop !== "get" && prop !== "getWithMetadata") || typeof value !== "function") return value;
      return (k: string, ...rest: unknown[]) => {
        if (k.startsWith(kvKeys.part(""))) reads.parts++;
        return (value as (...a: unknown[]) => unknown).call(target, k, ...rest);
      };
    },
  });
  return { reads, env: { ...env, SNAPSHOTS: kv } as Cloudflare.Env };
}

const consume = (w: TestWorker, customerId: string, e: Cloudflare.Env, amount = 1) =>
  w.call("POST", "/v1/usage", { key, body: { customerId, feature: "api_calls", amount }, env: e });
const check = (w: TestWorker, customerId: string, e: Cloudflare.Env) =>
  w.call("POST", "/v1/check", { key, body: { customerId, feature: "api_calls", maxUsageAgeMs: 0 }, env: e });

describe("a busy customer's consumes", () => {
  it("keep the part the meter confirms past the TTL, up to 60 s after it was read; checks re-read after the TTL", async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;
    const counted = countingParts();
    // A consume every 4 s for 56 s: the part this isolate's write stored stays fresh, confirmed each time.
    for (let t = 0; t <= 56_000; t += 4_000) {
      clock.set(T0 + t);
      const res = await consume(w, id, counted.env);
      expect(res.json).toMatchObject({ allowed: true, used: t / 4_000 + 1 });
    }
    expect(counted.reads.parts).toBe(0);
    // 60 s after it was read: the next consume reads KV again (a push the meter missed is seen by then).
    clock.set(T0 + 60_000);
    expect((await consume(w, id, counted.env)).json.allowed).toBe(true);
    expect(counted.reads.parts).toBe(1);
    // A check past the TTL of what it holds reads the part, confirmed or not.
    clock.set(T0 + 66_000);
    expect((await check(w, id, counted.env)).json).toMatchObject({ allowed: true, used: 16 });
    expect(counted.reads.parts).toBe(2);
  });

  it("stop being confirmed by a pause: past the TTL with no consume within it, the part is read again", async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;
    const counted = countingParts();
    await consume(w, id, counted.env);
    clock.advance(5_001); // the confirmation is one TTL old: not fresh any more
    await consume(w, id, counted.env);
    expect(counted.reads.parts).toBe(1);
  });

  it("see a downgrade made through another isolate at once, though their part is confirmed and within 60 s", async () => {
    const clock = new ManualClock(T0);
    const b = testWorker({ clock });
    const sub = uid("sub");
    const id = (await createCustomer(setup, { id: uid(), subscriptions: [{ id: sub, planId: "pro" }] })).id;
    const counted = countingParts();
    expect((await consume(b, id, counted.env)).json).toMatchObject({ allowed: true, limit: 1000 });
    clock.advance(4_000);
    expect((await consume(b, id, counted.env)).json).toMatchObject({ allowed: true, limit: 1000 });
    expect(counted.reads.parts).toBe(1); // b's first read
    const down = await subscriptionAction(setup, sub, "change-plan", {
      planId: "meter-billing", // 20 a month
      when: "immediately",
      reason: "downgrade (issue 16, confirmed parts)",
    });
    expect(down.status).toBe(200);
    clock.advance(4_000); // past the TTL, within the confirmation: only the meter can tell
    const after = await consume(b, id, counted.env);
    expect(after.json).toMatchObject({ limit: 20 });
    expect(counted.reads.parts).toBe(2); // and the re-read stale_terms asked for
  });
});
