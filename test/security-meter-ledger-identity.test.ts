// The ledger (R2 lines, D1 totals) dedupes a meter's flushes by the meter's own sequence numbers, which every meter
// object counts from 1. A customer who ever gets a second meter object (a residency change,
// DO_JURISDICTIONS switched on) must not have that meter's rows dropped as duplicates of the first
// one's: the dedupe key names the meter object (security review, "The ledger dedupe key is
// (customer_id, DO-local seq)").
//
// Local workerd has no jurisdictions, so the second object is made directly: a unique id of the
// same namespace, called over RPC for the same customer, as a jurisdiction's object would be.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { CustomerMeter } from "../src/meter/customer-meter";
import type { UsageCall } from "../src/meter/protocol";
import { migrateMeterSchema } from "../src/meter/schema";
import { createCustomer, createKey, loadTestCatalog, T0, testWorker, uid } from "./helpers";
import { ledgerEvents, periodTotals } from "./helpers/ledger";

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

const at = (s: string) => Date.parse(s);
const consume = (customerId: string, amount: number) =>
  w.call("POST", "/v1/usage", { key, body: { customerId, feature: "api_calls", amount } });
/** A consume as the Worker sends it for a meter-lab customer (api_calls: 50 a day). */
const call = (customerId: string, amount: number, now: number): UsageCall => ({
  customerId,
  feature: "api_calls",
  amount,
  mode: "consume",
  idempotencyKey: null,
  fingerprint: "",
  termsVersion: { customer: 0, catalog: 0 },
  allowance: { limit: 50, overage: "block", overageCap: null },
  entitled: true,
  terms: { reset: "day", anchor: "calendar", anchorAt: null },
  occurredAt: now,
  now,
  gauge: false,
});
const rows = async (sql: string, customerId: string) => (await env.DB.prepare(sql).bind(customerId).all()).results;

describe("two meter objects for one customer", () => {
  it("both ledgers land: events and closed periods, each row naming its meter", async () => {
    w.clock.set(T0);
    const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    const first = env.METER.get(env.METER.idFromName(id)); // where the Worker meters this customer
    const secondId = env.METER.newUniqueId(); // e.g. the customer's object in a jurisdiction
    const second = env.METER.get(secondId);

    for (const n of [1, 2, 3]) await consume(id, n);
    await first.flush();
    await second.usage(call(id, 10, T0));
    await second.usage(call(id, 20, T0));
    await second.flush();

    const events = await ledgerEvents(id);
    expect([events.reduce((sum, e) => sum + e.amount, 0), events.length]).toEqual([36, 5]);
    expect([...new Set(events.map((e) => e.meterId))].sort()).toEqual(
      [env.METER.idFromName(id).toString(), secondId.toString()].sort(),
    );

    // The next day both counters close the same period: both totals are kept.
    const nextDay = at("2026-03-11T00:00:01.000Z");
    w.clock.set(nextDay);
    await consume(id, 1);
    await first.flush();
    await second.usage(call(id, 1, nextDay));
    await second.flush();
    expect(
      await rows(
        "SELECT period_start, total FROM usage_periods WHERE customer_id = ?1 AND final = 1 ORDER BY total",
        id,
      ),
    ).toEqual([
      { period_start: at("2026-03-10T00:00:00.000Z"), total: 6 },
      { period_start: at("2026-03-10T00:00:00.000Z"), total: 30 },
    ]);
    const usage = await w.call("GET", `/v1/usage/${id}?feature=api_calls`, { key });
    expect(usage.json.features[0].past).toEqual([
      { periodStart: "2026-03-10T00:00:00.000Z", periodEnd: "2026-03-11T00:00:00.000Z", total: 36 },
    ]);
    w.clock.set(T0);
  });

  it("a flush in flight across the upgrade (D1 has it under the default meter id) keeps that id in R2, and counts once", async () => {
    w.clock.set(T0);
    const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    const stub = env.METER.get(env.METER.idFromName(id));
    await consume(id, 4); // outbox seq 1, not flushed yet
    await runInDurableObject(stub, async (_m: CustomerMeter, state) => {
      const sql = state.storage.sql;
      const e = sql.exec("SELECT * FROM outbox").one();
      // What the code before the meter id did: the batch reached D1, its acknowledgement was lost.
      await env.DB.prepare(
        "INSERT INTO usage_events_legacy (customer_id, seq, feature_key, amount, kind, period_start, period_end, occurred_at, idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
      )
        .bind(id, e.seq, e.feature, e.amount, e.kind, e.period_start, e.period_end, e.occurred_at, e.idempotency_key)
        .run();
      // The meter was at schema version 2 when the new code started it.
      sql.exec("DELETE FROM meta WHERE key = 'ledger_unnamed_through'");
      sql.exec("UPDATE meta SET value = 2 WHERE key = 'schema_version'");
      migrateMeterSchema(sql);
    });
    await consume(id, 5); // seq 2: after the upgrade
    await stub.flush();
    // The R2 line names the default meter, as the legacy D1 row does: a reader of both dedupes it.
    expect((await ledgerEvents(id)).map((e) => ({ meter_id: e.meterId, seq: e.seq, amount: e.amount }))).toEqual([
      { meter_id: "", seq: 1, amount: 4 },
      { meter_id: env.METER.idFromName(id).toString(), seq: 2, amount: 5 },
    ]);
    // The total holds each unit once: the counter's 4 were all still queued when the meter upgraded.
    expect(await periodTotals(id, true)).toMatchObject([{ feature: "api_calls", total: 9, final: 0 }]);
  });

  it("migration 0003 keeps the existing ledger rows, under the default meter id, and old-code writes still dedupe", async () => {
    // The migrations as D1 applies them, run on a scratch SQLite database (a fresh Durable Object's
    // storage: D1 is SQLite too), with rows in the ledger between 0002 and 0003.
    const scratch = env.METER.get(env.METER.newUniqueId());
    const result = await runInDurableObject(scratch, (_m: CustomerMeter, state) => {
      const sql = state.storage.sql;
      const apply = (name: string) => {
        const migration = env.TEST_MIGRATIONS.find((m) => m.name === name);
        if (!migration) throw new Error(`no migration ${name}`);
        for (const q of migration.queries) sql.exec(q);
      };
      apply("0001_initial.sql");
      apply("0002_usage_periods_by_period.sql");
      const event =
        "INSERT OR IGNORE INTO usage_events (customer_id, seq, feature_key, amount, kind, period_start, period_end, occurred_at) VALUES ('acme', ?, 'api_calls', ?, 'consume', 0, 10, 5)";
      sql.exec(event, 1, 2);
      sql.exec(event, 2, 3);
      sql.exec(
        "INSERT INTO usage_periods (customer_id, feature_key, period_start, period_end, total, closed_at) VALUES ('acme', 'api_calls', 0, 10, 5, 11)",
      );
      apply("0003_ledger_meter_id.sql");
      sql.exec(event, 2, 3); // the old code's retry, after the migration and before the new code: ignored
      return {
        events: sql.exec("SELECT meter_id, seq, amount FROM usage_events ORDER BY seq").toArray(),
        periods: sql.exec("SELECT meter_id, total FROM usage_periods").toArray(),
        indexes: sql
          .exec("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'usage_events_period'")
          .toArray(),
      };
    });
    expect(result).toEqual({
      events: [
        { meter_id: "", seq: 1, amount: 2 },
        { meter_id: "", seq: 2, amount: 3 },
      ],
      periods: [{ meter_id: "", total: 5 }],
      indexes: [{ name: "usage_events_period" }],
    });
  });
});
