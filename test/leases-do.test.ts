// Allowance leases in the real Durable Objects (issue 16): a customer with meterShards > 1 spreads its
// consumes over shard meters admitting from leases the QuotaCoordinator hands out. Many concurrent
// consumes with random keys (10% retries) reach the limit exactly, never past it, count each key once
// and deny nothing while plenty remains; an expired lease is handed back by the shard's alarm (the
// meter's clock moved by a call, as every test clock is); a recall that fails errs towards
// under-admission and is reconciled when the shard hands its lease back.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { shardOf } from "../src/domain/leases";
import type { CustomerMeter } from "../src/meter/customer-meter";
import type { QuotaCoordinator } from "../src/meter/quota-coordinator";
import { createCustomer, createKey, createPlan, loadTestCatalog } from "./helpers/admin";
import { auditOf, parsed } from "./helpers/d1";
import { failingDurableObjectMethod, quiet } from "./helpers/faults";
import { kvPart } from "./helpers/kv";
import { meterOf, shardedCustomer } from "./helpers/shards";
import { DAY_MS, MINUTE_MS, T0 } from "./helpers/time";
import { BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

const coordinatorOf = (customerId: string) => env.QUOTA.get(env.QUOTA.idFromName(customerId));

const consume = (customerId: string, idempotencyKey?: string) =>
  w.call("POST", "/v1/usage", {
    key,
    body: { customerId, feature: "api_calls", amount: 1 },
    headers: idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {},
  });

/** Every shard's api_calls counter. */
async function shardUsage(customerId: string, shards: number): Promise<number[]> {
  const all = Array.from({ length: shards }, (_, i) => meterOf(customerId, i).counters(T0));
  return (await Promise.all(all)).map((cs) => cs.find((c) => c.feature === "api_calls")?.used ?? 0);
}

/** Keys that route to `shard` of `shards` (the worker routes by the same hash). */
function keysFor(shard: number, shards: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const k = `k-${shard}-${i}-${crypto.randomUUID()}`;
    if (shardOf(k, shards, 0) === shard) out.push(k);
  }
  return out;
}

/** The shard's lease rows (meter schema v7). */
const leasesOf = (customerId: string, shard: number) =>
  runInDurableObject(meterOf(customerId, shard), (_m, state) =>
    state.storage.sql.exec("SELECT feature, definition, period_start, granted, seq FROM leases").toArray(),
  );

describe("opting in", () => {
  it("PATCH meterShards is audited, bumps the rev and reaches the customer part; out of range is a 400", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { api_calls: { limit: 10, reset: "month" } });
    const { id } = await createCustomer(w, { id: uid(), subscriptions: [{ planId }] });
    const before = (await kvPart(id))?.rev ?? 0;
    const res = await w.call("PATCH", `/admin/v1/customers/${id}`, { key: BOOTSTRAP, body: { meterShards: 4 } });
    expect(res.status).toBe(200);
    expect(res.json.meterShards).toBe(4);
    expect(res.json.rev).toBe(before + 1);
    expect((await kvPart(id))?.meterShards).toBe(4);
    const audit = (await auditOf("customer", id)).find((a) => a.action === "customer.update");
    expect(parsed(audit?.before ?? null).meterShards).toBe(1);
    expect(parsed(audit?.after ?? null).meterShards).toBe(4);
    for (const bad of [0, 65, 2.5])
      expectProblem(
        await w.call("PATCH", `/admin/v1/customers/${id}`, { key: BOOTSTRAP, body: { meterShards: bad } }),
        400,
        "validation",
      );
    // Back to one meter: the part drops the field.
    await w.call("PATCH", `/admin/v1/customers/${id}`, { key: BOOTSTRAP, body: { meterShards: 1 } });
    expect((await kvPart(id))?.meterShards).toBeUndefined();
  });
});

describe("four shards under concurrent consumes", () => {
  it("admit everything while plenty remains, then exactly the limit, each key once", async () => {
    const limit = 600;
    const id = await shardedCustomer(w, limit, 4);
    // Half the limit, concurrently, random keys: no denial at all (plenty remains all along).
    const firstKeys = Array.from({ length: limit / 2 }, () => crypto.randomUUID());
    const first = await Promise.all(firstKeys.map((k) => consume(id, k)));
    expect(first.every((r) => r.status === 200 && r.json.allowed === true)).toBe(true);
    // Then more than the rest, with 10% retries: of keys of this wave (concurrently with their first
    // call) and of the first wave's.
    const keys = Array.from({ length: limit }, () => crypto.randomUUID());
    const wave = [...keys, ...keys.slice(0, limit / 20), ...firstKeys.slice(0, limit / 20)];
    const second = await Promise.all(wave.map((k) => consume(id, k)));
    expect(second.every((r) => r.status === 200)).toBe(true);
    const fresh = second.slice(0, limit).filter((r) => r.json.replayed !== true);
    const admitted = fresh.filter((r) => r.json.allowed).length;
    expect(admitted).toBe(limit / 2); // exactly what was left
    // Exact dedupe: a retry answers what its first call answered.
    const byKey = new Map<string, boolean>();
    for (const [i, r] of second.entries()) {
      const k = wave[i] as string;
      if (byKey.has(k)) expect(r.json.allowed).toBe(byKey.get(k));
      else byKey.set(k, r.json.allowed);
    }
    // The first wave's retries replay its answers: admitted, counted once.
    const replays = second.slice(limit + limit / 20);
    expect(replays.every((r) => r.json.replayed === true && r.json.allowed === true)).toBe(true);
    const used = await shardUsage(id, 4);
    expect(used.reduce((a, b) => a + b, 0)).toBe(limit); // the counters' sum: the limit, never more
    expect(used.filter((u) => u > 0).length).toBeGreaterThan(1); // spread over shards
    // Checks and GET /v1/usage sum the shards.
    const usage = await w.call("GET", `/v1/usage/${id}`, { key });
    expect(usage.status).toBe(200);
    expect(JSON.stringify(usage.json)).toContain(`"used":${limit}`);
    const check = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: id, feature: "api_calls", maxUsageAgeMs: 0 },
    });
    expect(check.json.allowed).toBe(false);
    // And nothing more is admitted.
    expect((await consume(id, crypto.randomUUID())).json.allowed).toBe(false);
  }, 120_000);
});

describe("reservations on a sharded customer", () => {
  it("are admitted from the shard's lease and settled on the shard their id names", async () => {
    const id = await shardedCustomer(w, 50, 4);
    const [k] = keysFor(3, 4, 1);
    const res = await w.call("POST", "/v1/usage/reserve", {
      key,
      body: { customerId: id, feature: "api_calls", amount: 30, ttlSeconds: 60 },
      headers: { "Idempotency-Key": k as string },
    });
    expect(res.status).toBe(200);
    expect(res.json.allowed).toBe(true);
    expect(res.json.reservationId).toMatch(/^res_s3_/);
    // 30 held on shard 3: 21 more do not fit anywhere (the coordinator recalls, finds nothing).
    const big = await w.call("POST", "/v1/usage/reserve", {
      key,
      body: { customerId: id, feature: "api_calls", amount: 21, ttlSeconds: 60 },
    });
    expect(big.json.allowed).toBe(false);
    const settled = await w.call("POST", "/v1/usage/settle", {
      key,
      body: { customerId: id, reservationId: res.json.reservationId, amount: 10 },
    });
    expect(settled.status).toBe(200);
    expect(settled.json.settled).toBe(10);
    expect(await shardUsage(id, 4)).toEqual([0, 0, 0, 10]);
  });
});

describe("an expired lease", () => {
  it("is handed back by the shard's alarm, so the coordinator may lease it elsewhere", async () => {
    const id = await shardedCustomer(w, 1000, 4);
    const [k] = keysFor(2, 4, 1);
    expect((await consume(id, k)).json.allowed).toBe(true);
    const [lease] = await leasesOf(id, 2);
    expect(Number(lease?.granted)).toBeGreaterThan(1);
    const bookKey = {
      feature: "api_calls",
      definition: String(lease?.definition),
      periodStart: Number(lease?.period_start),
    };
    expect((await coordinatorOf(id).book(bookKey))?.claims[2]?.held).toBe(Number(lease?.granted));
    // The meter's clock moves past the lease's time (a call tells it), then its alarm runs.
    const meter = meterOf(id, 2);
    await meter.peek(id, [], T0 + 5 * MINUTE_MS);
    await runDurableObjectAlarm(meter);
    const [after] = await leasesOf(id, 2);
    expect(Number(after?.granted)).toBe(1);
    const book = await coordinatorOf(id).book(bookKey);
    expect(book?.claims[2]).toMatchObject({ held: 1, used: 1 });
    expect(book?.unleased).toBe(999);
  });
});

describe("a recall that fails", () => {
  it("errs towards under-admission, then reconciles when the shard hands its lease back", async () => {
    quiet();
    const limit = 100;
    const id = await shardedCustomer(w, limit, 2);
    const [onA] = keysFor(0, 2, 1);
    expect((await consume(id, onA)).json.allowed).toBe(true); // shard 0 holds a chunk, uses 1
    const [leaseA] = await leasesOf(id, 0);
    const heldByA = Number(leaseA?.granted);
    expect(heldByA).toBeGreaterThan(1);
    // The coordinator cannot reach shard 0.
    await runInDurableObject(coordinatorOf(id), (c: QuotaCoordinator) => {
      c.shards = failingDurableObjectMethod(c.shards, "recall");
    });
    const onB = keysFor(1, 2, limit);
    let admittedB = 0;
    for (const k of onB) {
      const r = await consume(id, k);
      if (!r.json.allowed) break;
      admittedB++;
    }
    expect(admittedB).toBe(limit - heldByA); // what shard 0 holds unused stays counted as held: never over
    expect((await shardUsage(id, 2)).reduce((a, b) => a + b, 0)).toBe(1 + admittedB);
    // Shard 0's lease expires and is handed back: the coordinator can lease it to shard 1 again.
    await meterOf(id, 0).peek(id, [], T0 + 5 * MINUTE_MS);
    await runDurableObjectAlarm(meterOf(id, 0));
    let more = 0;
    for (const k of keysFor(1, 2, limit)) {
      const r = await consume(id, k);
      if (!r.json.allowed) break;
      more++;
    }
    expect(more).toBe(heldByA - 1);
    expect((await shardUsage(id, 2)).reduce((a, b) => a + b, 0)).toBe(limit); // exactly the limit in the end
  }, 60_000);
});

describe("a crashed shard", () => {
  it("keeps its lease across the restart (SQLite), and the customer still reaches exactly the limit", async () => {
    const limit = 120;
    const id = await shardedCustomer(w, limit, 4);
    const [k] = keysFor(1, 4, 1);
    expect((await consume(id, k)).json.allowed).toBe(true);
    const [before] = await leasesOf(id, 1);
    // The shard is aborted (as an eviction or a crash would end it) between its renew and its next report.
    await expect(
      runInDurableObject(meterOf(id, 1), (_m, state) => {
        state.abort("injected crash");
      }),
    ).rejects.toThrow();
    const [after] = await leasesOf(id, 1);
    expect(after).toEqual(before); // nothing lost, nothing more held
    expect((await consume(id, k)).json.replayed).toBe(true); // its idempotency keys survived too
    // Everything, concurrently, over all shards: exactly the limit.
    const all = await Promise.all(Array.from({ length: limit + 40 }, () => consume(id, crypto.randomUUID())));
    expect(all.filter((r) => r.json.allowed).length).toBe(limit - 1);
    expect((await shardUsage(id, 4)).reduce((a, b) => a + b, 0)).toBe(limit);
  }, 60_000);
});

describe("period rollover", () => {
  it("starts the new period's leases from a new book: last month's use does not count", async () => {
    const id = await shardedCustomer(w, 10, 2);
    const month = await Promise.all(Array.from({ length: 14 }, () => consume(id, crypto.randomUUID())));
    expect(month.filter((r) => r.json.allowed).length).toBe(10);
    const next = await w.at(T0 + 40 * DAY_MS, () =>
      Promise.all(Array.from({ length: 14 }, () => consume(id, crypto.randomUUID()))),
    );
    expect(next.filter((r) => r.json.allowed).length).toBe(10);
    const leases = [...(await leasesOf(id, 0)), ...(await leasesOf(id, 1))];
    // Only the new period's leases remain on the shards.
    expect(new Set(leases.map((l) => Number(l.period_start))).size).toBe(1);
  }, 60_000);
});

describe("eight shards, more demand than the limit", () => {
  it("admit min(limit, demand) exactly", async () => {
    const limit = 2500;
    const id = await shardedCustomer(w, limit, 8);
    const all = await Promise.all(Array.from({ length: 4000 }, () => consume(id, crypto.randomUUID())));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(all.filter((r) => r.json.allowed).length).toBe(limit);
    const used = await shardUsage(id, 8);
    expect(used.reduce((a, b) => a + b, 0)).toBe(limit);
  }, 120_000);
});

describe("a shard that cannot reach its coordinator", () => {
  it("denies rather than admits past its lease, and admits again once the coordinator answers", async () => {
    quiet();
    const id = await shardedCustomer(w, 100, 4);
    let down = true;
    await runInDurableObject(meterOf(id, 3), (m: CustomerMeter) => {
      m.coordinator = failingDurableObjectMethod(m.coordinator, "renew", () => down);
    });
    const [k1, k2] = keysFor(3, 4, 2);
    const denied = await consume(id, k1);
    expect(denied.json).toMatchObject({ allowed: false, reason: "limit_reached" });
    expect(await shardUsage(id, 4)).toEqual([0, 0, 0, 0]);
    down = false;
    expect((await consume(id, k2)).json.allowed).toBe(true);
    expect(await shardUsage(id, 4)).toEqual([0, 0, 0, 1]);
  });
});
