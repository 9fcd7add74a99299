// The usage ledger stays bounded (issue 14, docs/storage.md): raw events go to R2, D1 gets period
// totals at most once per METER_TOTALS_INTERVAL_MS per meter (0 rows per consume, amortised), and
// idempotency keys expire after their retention through an index. The equivalence property: with R2
// and D1 failing or losing acknowledgements along the way, after recovery the events in R2
// (deduplicated by their key) equal the meter's counters, and the totals in D1 equal both.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { CustomerMeter } from "../src/meter/customer-meter";
import { IDEMPOTENCY_TTL_MS } from "../src/meter/idempotency";
import { METER_TOTALS_INTERVAL_MS } from "../src/meter/period-totals";
import type { UsageCall } from "../src/meter/protocol";
import { migrateMeterSchema } from "../src/meter/schema";
import { ledgerPrefix } from "../src/store/ledger-objects";
import { countingEnv } from "./helpers/counting";
import { failingBatchDB, failingR2, lossyBatchDB, lossyR2, quiet } from "./helpers/faults";
import { ledgerEvents, periodTotals } from "./helpers/ledger";
import { DAY_MS, HOUR_MS, T0 } from "./helpers/time";
import { uid } from "./helpers/worker";

afterEach(() => vi.restoreAllMocks());

const DAY0 = Date.parse("2026-03-10T00:00:00.000Z"); // the day of T0
const meterOf = (customerId: string) => env.METER.get(env.METER.idFromName(customerId));

/** A consume as the Worker sends it: no limit (so no usage alert writes to D1), a day's counter. */
const call = (
  customerId: string,
  feature: string,
  amount: number,
  now: number,
  key: string | null = null,
): UsageCall => ({
  customerId,
  feature,
  amount,
  mode: "consume",
  idempotencyKey: key,
  fingerprint: key ? `fp-${amount}` : "",
  termsVersion: { customer: 0, catalog: 0 },
  allowance: { limit: null, overage: "block", overageCap: null },
  entitled: true,
  terms: { reset: "day", anchor: "calendar", anchorAt: null },
  occurredAt: now,
  now,
  gauge: false,
});

const setBindings = (stub: DurableObjectStub<CustomerMeter>, db: D1Database, bucket: R2Bucket) =>
  runInDurableObject(stub, (m: CustomerMeter) => {
    m.ledger = db;
    m.ledgerBucket = bucket;
  });

describe("D1 gets no row per consume", () => {
  it("1,000 consumes over two features, flushed ten times within one interval: D1 gets one write of two totals", async () => {
    const id = uid();
    const stub = meterOf(id);
    const { counter, env: counted } = countingEnv();
    await setBindings(stub, counted.DB, env.LEDGER);
    for (let i = 0; i < 1000; i++) {
      await stub.usage(call(id, i % 2 ? "api_calls" : "seats", 1, T0 + i * 10)); // 10 s in all
      if (i % 100 === 99) await runDurableObjectAlarm(stub);
    }
    expect(await stub.pending()).toBe(0);
    // The first flush wrote the totals (2 features: an UPDATE and an INSERT each); the nine after it
    // were within METER_TOTALS_INTERVAL_MS, so they went to R2 only.
    expect(counter.d1Statements).toBe(4);
    expect(counter.d1RowsWritten / 1000).toBeLessThan(0.01);
    // Ten flushes or more (a real-time alarm may run one in between): every event in R2, each once.
    expect((await env.LEDGER.list({ prefix: ledgerPrefix(id) })).objects.length).toBeGreaterThanOrEqual(10);
    expect(await ledgerEvents(id)).toHaveLength(1000);
    expect(await periodTotals(id, true)).toMatchObject([
      { feature: "api_calls", total: 50, final: 0 },
      { feature: "seats", total: 50, final: 0 },
    ]);
    // After the interval, the next alarm writes the totals again: what the nine flushes added.
    await stub.usage(call(id, "seats", 1, T0 + 10_000 + METER_TOTALS_INTERVAL_MS));
    await runDurableObjectAlarm(stub);
    expect(counter.d1Statements).toBe(8);
    expect(await periodTotals(id, true)).toMatchObject([
      { feature: "api_calls", total: 500, final: 0 },
      { feature: "seats", total: 501, final: 0 },
    ]);
  }, 60_000);

  it("a period that closes is written at once, final, whatever the interval", async () => {
    const id = uid();
    const stub = meterOf(id);
    await stub.usage(call(id, "seats", 3, T0));
    await runDurableObjectAlarm(stub); // first write: running total 3
    await stub.usage(call(id, "seats", 2, T0 + DAY_MS)); // next day: the T0 day closes
    await runDurableObjectAlarm(stub); // within the interval of the first write (meter time went on a day, though)
    const [closed] = await periodTotals(id);
    expect(closed).toMatchObject({ feature: "seats", total: 3, final: 1 });
  });
});

describe("idempotency keys", () => {
  it("dedupe within the retention, expire after it by the injected clock, and their clean-up reads an index", async () => {
    const id = uid();
    const stub = meterOf(id);
    const first = await stub.usage(call(id, "seats", 1, T0, "key-1"));
    expect(first).toMatchObject({ ok: true, answer: { used: 1 } });
    // Within the retention (24 h promised): the same answer, no second charge.
    const within = await stub.usage(call(id, "seats", 1, T0 + 24 * HOUR_MS, "key-1"));
    expect(within).toMatchObject({ ok: true, answer: { used: 1, replayed: true } });
    // After it: a new key, charged again (in the next day's counter, from 0).
    const after = await stub.usage(call(id, "seats", 1, T0 + IDEMPOTENCY_TTL_MS + 1, "key-1"));
    expect(after).toMatchObject({ ok: true, answer: { used: 1 } });
    expect(after.ok && after.answer.replayed).toBeFalsy();
    await stub.usage(call(id, "seats", 1, T0 + 2 * IDEMPOTENCY_TTL_MS + 2, "key-2"));
    await runDurableObjectAlarm(stub); // the clean-up: key-1 (re-remembered after T0 + TTL) is old now
    const held = await runInDurableObject(stub, (_m: CustomerMeter, state) => {
      const sql = state.storage.sql;
      const keys = sql.exec("SELECT key FROM idempotency ORDER BY key").toArray();
      const plan = sql
        .exec("EXPLAIN QUERY PLAN DELETE FROM idempotency WHERE created_at < ?", 0)
        .toArray()
        .map((r) => String(r.detail));
      return { keys, plan };
    });
    expect(held.keys).toEqual([{ key: "key-2" }]);
    expect(held.plan.join("\n")).toMatch(/USING (COVERING )?INDEX idempotency_by_created/);
  });
});

type Op =
  | { op: "consume"; feature: "api_calls" | "seats"; amount: number }
  | { op: "day" }
  | { op: "flush"; fault: "none" | "r2-down" | "r2-lost" | "d1-down" | "d1-lost" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("consume" as const),
      feature: fc.constantFrom("api_calls" as const, "seats" as const),
      amount: fc.integer({ min: 1, max: 9 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("day" as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("flush" as const),
      fault: fc.constantFrom(
        "none" as const,
        "r2-down" as const,
        "r2-lost" as const,
        "d1-down" as const,
        "d1-lost" as const,
      ),
    }),
  },
);

describe("ledger equivalence", () => {
  it("after R2 and D1 failures and lost acknowledgements, R2 (deduplicated) = the meter's counters = D1's totals", async () => {
    quiet();
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
        const id = uid();
        const stub = meterOf(id);
        let now = T0;
        for (const o of ops) {
          if (o.op === "consume") {
            now += 1000;
            await stub.usage(call(id, o.feature, o.amount, now));
          } else if (o.op === "day") now += DAY_MS;
          else {
            const bucket = o.fault === "r2-down" ? failingR2() : o.fault === "r2-lost" ? lossyR2() : env.LEDGER;
            const db = o.fault === "d1-down" ? failingBatchDB() : o.fault === "d1-lost" ? lossyBatchDB() : env.DB;
            await setBindings(stub, db, bucket);
            await runDurableObjectAlarm(stub); // the alarm's flush: a failure keeps the rows and sets a retry
          }
        }
        // Recovery: a touch of every feature closes what ended, then a healthy flush.
        await setBindings(stub, env.DB, env.LEDGER);
        for (const f of ["api_calls", "seats"])
          await stub.peek(id, [{ feature: f, terms: call(id, f, 1, now).terms }], now);
        await stub.flush();
        expect(await stub.pending()).toBe(0);

        const events = await ledgerEvents(id);
        const sums = new Map<string, number>();
        const closes = new Map<string, number>();
        for (const e of events) {
          const k = `${e.feature}@${e.periodStart}`;
          if (e.kind === "close") closes.set(k, e.amount);
          else sums.set(k, (sums.get(k) ?? 0) + e.amount);
        }
        // Each event once: no two lines share a key.
        expect(new Set(events.map((e) => `${e.meterId}:${e.seq}`)).size).toBe(events.length);
        // The meter's open counters equal R2's sums of their periods.
        for (const c of await stub.counters(now)) expect(sums.get(`${c.feature}@${c.periodStart}`) ?? 0).toBe(c.used);
        // Every closed period's total (the meter's close) equals R2's sum of it.
        for (const [k, total] of closes) expect(sums.get(k) ?? 0).toBe(total);
        // D1's totals equal R2's sums, period by period, and are final exactly where the meter closed.
        const d1 = await periodTotals(id, true);
        const periods = new Set(events.map((e) => `${e.feature}@${e.periodStart}`));
        expect(Object.fromEntries(d1.map((t) => [`${t.feature}@${t.periodStart}`, t.total]))).toEqual(
          Object.fromEntries([...periods].map((k) => [k, sums.get(k) ?? 0])),
        );
        for (const t of d1) expect(t.final === 1).toBe(closes.has(`${t.feature}@${t.periodStart}`));
      }),
      { numRuns: 50 },
    );
  }, 60_000);
});

describe("migration 0010", () => {
  it("keeps the per-event rows as usage_events_legacy and the closed totals as final, and lets archived audit rows go", async () => {
    // The migrations as D1 applies them, on a scratch SQLite database (a fresh Durable Object's storage).
    const scratch = env.METER.get(env.METER.newUniqueId());
    const result = await runInDurableObject(scratch, (_m: CustomerMeter, state) => {
      const sql = state.storage.sql;
      const upTo = (last: string) => {
        for (const m of env.TEST_MIGRATIONS.filter((m) => m.name <= last)) for (const q of m.queries) sql.exec(q);
      };
      upTo("0009_event_cursors.sql");
      sql.exec(
        "INSERT INTO usage_events (customer_id, meter_id, seq, feature_key, amount, kind, period_start, period_end, occurred_at) VALUES ('acme', 'm', 1, 'api_calls', 2, 'consume', 0, 10, 5)",
      );
      sql.exec(
        "INSERT INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, closed_at) VALUES ('acme', 'm', 'api_calls', 0, 10, 2, 11)",
      );
      const audit =
        "INSERT INTO audit_log (at, actor, actor_type, action, entity_type, entity_id) VALUES (?, 'a', 'system', 'x', 'y', 'z')";
      sql.exec(audit, 1);
      sql.exec(audit, 2);
      for (const m of env.TEST_MIGRATIONS.filter((m) => m.name.startsWith("0010_")))
        for (const q of m.queries) sql.exec(q);
      sql.exec("INSERT INTO archive_marks (name, through_id, updated_at) VALUES ('audit_log', 1, 0)");
      sql.exec("DELETE FROM audit_log WHERE id = 1"); // archived: allowed
      let refused = "";
      try {
        sql.exec("DELETE FROM audit_log WHERE id = 2");
      } catch (err) {
        refused = String(err);
      }
      return {
        legacy: sql.exec("SELECT seq, amount FROM usage_events_legacy").toArray(),
        periods: sql.exec("SELECT total, final, through_seq FROM usage_periods").toArray(),
        audit: sql.exec("SELECT id FROM audit_log").toArray(),
        refused,
      };
    });
    expect(result).toEqual({
      legacy: [{ seq: 1, amount: 2 }],
      periods: [{ total: 2, final: 1, through_seq: 0 }],
      audit: [{ id: 2 }],
      refused: expect.stringMatching(/append-only/),
    });
  });
});

describe("meter schema v6 on a meter from before", () => {
  it("seeds the totals D1 lacks: open counters and queued closes, less what is still queued", async () => {
    const id = uid();
    const stub = meterOf(id);
    await stub.usage(call(id, "seats", 5, T0)); // seq 1
    await stub.usage(call(id, "seats", 1, T0 + DAY_MS)); // seq 2: the close of T0's day (5), seq 3: +1
    // As a version 5 meter would be: seq 1 already sent by the code before (to D1's per-event table,
    // which no total was read from), seq 2 and 3 still queued, no pending totals.
    await runInDurableObject(stub, (_m: CustomerMeter, state) => {
      const sql = state.storage.sql;
      sql.exec("DELETE FROM outbox WHERE seq = 1");
      sql.exec("DROP TABLE pending_totals");
      sql.exec("DROP INDEX idempotency_by_created");
      sql.exec("UPDATE meta SET value = 5 WHERE key = 'schema_version'");
      migrateMeterSchema(sql);
    });
    await stub.flush();
    expect(await periodTotals(id, true)).toMatchObject([
      { feature: "seats", periodStart: DAY0, total: 5, final: 1 },
      { feature: "seats", periodStart: DAY0 + DAY_MS, total: 1, final: 0 },
    ]);
  });
});
