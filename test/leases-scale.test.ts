// Allowance leases at scale (issue 16, "How to measure"): 20,000 concurrent consumes of one unit against
// a limit of 12,000 on six shard meters, through the worker's own usage path (src/usage-path.ts, what
// POST /v1/usage and the RPC entrypoint run, minus HTTP parsing and the key lookup). Ten waves of 2,000
// in flight at once, 5% retries (of the wave's own keys, concurrently, and of the previous wave's). During
// one wave a shard is aborted (ctx.abort, as a crash or an eviction ends it); during another the clock
// moves past every lease and a shard's alarm hands its lease back. A consume that fails is retried with
// its key, as a client would. Admitted == min(limit, demand) exactly, the shards' counters sum to the
// limit, and every key is counted once, its retries answering what its first call answered.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { shardOf } from "../src/domain/leases";
import { LEASE_TTL_MS } from "../src/meter/shard-leases";
import { consume, type UsageBody } from "../src/usage-path";
import { loadTestCatalog } from "./helpers/admin";
import { quiet } from "./helpers/faults";
import { meterOf, shardedCustomer } from "./helpers/shards";
import { T0 } from "./helpers/time";
import { testWorker } from "./helpers/worker";

const w = testWorker();
const LIMIT = 12_000;
const SHARDS = 6;
const WAVES = 10;
const WAVE = 2_000; // demand: WAVES x WAVE = 20,000 distinct keys
const RETRIES = 50; // per wave, of its own keys and of the previous wave's: 5% of the demand in all
const CRASH_WAVE = 3;
const EXPIRY_WAVE = 6;

beforeAll(async () => {
  await loadTestCatalog(w);
});

async function shardUsage(customerId: string, shards: number): Promise<number[]> {
  const all = Array.from({ length: shards }, (_, i) => meterOf(customerId, i).counters(T0));
  return (await Promise.all(all)).map((cs) => cs.find((c) => c.feature === "api_calls")?.used ?? 0);
}

/** What one consume answered: its body, or the error it failed with (a crashed shard's in-flight calls). */
type Outcome = { key: string; body?: UsageBody; error?: unknown };

describe("six shards, 20,000 concurrent consumes, a crash and an expired lease", () => {
  it("admit min(limit, demand) exactly, each key once", async () => {
    quiet();
    const id = await shardedCustomer(w, LIMIT, SHARDS);
    const pending: Promise<unknown>[] = [];
    const deps = { env, services: w.services(), waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const one = (key: string): Promise<Outcome> =>
      consume(deps, { customerId: id, feature: "api_calls", amount: 1, mode: "consume", idempotencyKey: key }).then(
        (body) => ({ key, body }),
        (error) => ({ key, error }),
      );

    const keys = Array.from({ length: WAVES }, (_, wave) =>
      Array.from({ length: WAVE }, (_, i) => `w${wave}-${i}-${crypto.randomUUID()}`),
    );
    const crashed = shardOf(keys[CRASH_WAVE]?.[0] as string, SHARDS, 0);
    const expired = (crashed + 1) % SHARDS;
    const answers = new Map<string, { allowed: boolean; replayed: boolean }[]>(); // every answer a key got
    const errored = new Set<string>(); // keys a call of which failed
    let alarmRan = false;
    const started = Date.now();

    const record = (o: Outcome) => {
      if (!o.body) {
        errored.add(o.key);
        return false;
      }
      const a = { allowed: o.body.allowed, replayed: o.body.replayed === true };
      answers.set(o.key, [...(answers.get(o.key) ?? []), a]);
      return true;
    };

    for (let wave = 0; wave < WAVES; wave++) {
      const own = keys[wave] as string[];
      const retries = [...own.slice(0, RETRIES), ...(wave > 0 ? (keys[wave - 1] as string[]).slice(-RETRIES) : [])];
      const faults: Promise<unknown>[] = [];
      if (wave === CRASH_WAVE)
        faults.push(
          runInDurableObject(meterOf(id, crashed), (_m, state) => state.abort("injected crash")).then(
            () => expect.unreachable("abort throws"),
            () => undefined,
          ),
        );
      if (wave === EXPIRY_WAVE) {
        // Past every lease: the wave's consumes carry the new time, and one shard's alarm hands its lease back.
        w.clock.set(T0 + LEASE_TTL_MS + 1_000);
        await meterOf(id, expired).peek(id, [], w.clock.now());
        faults.push(runDurableObjectAlarm(meterOf(id, expired)).then((ran) => (alarmRan = ran)));
      }
      const [outcomes] = await Promise.all([Promise.all([...own, ...retries].map(one)), ...faults]);
      // What failed (in flight on the crashed shard) is retried with its key until it answers.
      let again = outcomes.filter((o) => !record(o)).map((o) => o.key);
      for (let round = 0; again.length > 0; round++) {
        expect(round).toBeLessThan(3);
        again = (await Promise.all(again.map(one))).filter((o) => !record(o)).map((o) => o.key);
      }
    }
    await Promise.all(pending);
    const elapsed = Date.now() - started;

    // Every key was decided once: at most one answer is not a replay (none only when the deciding call
    // committed and then failed on the way back), and every answer repeats the decision.
    expect(answers.size).toBe(WAVES * WAVE);
    let admitted = 0;
    let calls = 0;
    for (const [key, all] of answers) {
      calls += all.length;
      const deciding = all.filter((a) => !a.replayed).length;
      expect(deciding === 1 || (deciding === 0 && errored.has(key))).toBe(true);
      expect(new Set(all.map((a) => a.allowed)).size).toBe(1);
      if (all[0]?.allowed) admitted++;
    }
    expect(calls).toBe(WAVES * WAVE + (2 * WAVES - 1) * RETRIES); // a failed call is replaced by its retry
    expect(admitted).toBe(Math.min(LIMIT, WAVES * WAVE));
    const used = await shardUsage(id, SHARDS);
    expect(used.reduce((a, b) => a + b, 0)).toBe(LIMIT);
    expect(used.every((u) => u > 0)).toBe(true); // every shard admitted some
    expect(alarmRan).toBe(true);
    // Nothing more, whichever shard a new key reaches.
    const after = await Promise.all(Array.from({ length: 200 }, () => one(crypto.randomUUID())));
    expect(after.every((o) => o.body?.allowed === false)).toBe(true);
    expect((await shardUsage(id, SHARDS)).reduce((a, b) => a + b, 0)).toBe(LIMIT);
    console.log(
      `leases-scale: ${WAVES * WAVE} keys, ${(2 * WAVES - 1) * RETRIES} retries, ${errored.size} failed by the crash ` +
        `and retried, admitted ${admitted} of ${LIMIT}, shards ${used.join("/")}, ${elapsed} ms`,
    );
  }, 90_000);
});
