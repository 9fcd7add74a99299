// A meter counter belongs to one period definition (how the feature's reset cuts time into
// periods), not to the feature alone (security review M7). Switching to another definition and
// back continues the first definition's counter while its period is still open; a definition the
// meter has no open counter for starts from 0; every counter closes into the ledger with its own
// period once that period ends.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { periodDefinition } from "../src/domain/periods";
import type { CustomerMeter } from "../src/meter/customer-meter";
import type { UsageCall } from "../src/meter/protocol";
import { METER_SCHEMA_VERSION, migrateMeterSchema } from "../src/meter/schema";
import { BOOTSTRAP, createCustomer, createKey, createPlan, loadTestCatalog, T0, testWorker, uid } from "./helpers";
import { ledgerEvents as ledgerLines } from "./helpers/ledger";

const w = testWorker();
let key: string;
let monthly: string; // api_calls: 10 a calendar month
let daily: string; // api_calls: 10 a day

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
  monthly = uid("plan-m");
  daily = uid("plan-d");
  await createPlan(w, monthly, { api_calls: { limit: 10, reset: "month" } });
  await createPlan(w, daily, { api_calls: { limit: 10, reset: "day" } });
});

const at = (s: string) => Date.parse(s);
const meter = (customerId: string) => env.METER.get(env.METER.idFromName(customerId));
const consume = (customerId: string, amount = 1) =>
  w.call("POST", "/v1/usage", { key, body: { customerId, feature: "api_calls", amount } });
async function customerOn(planId: string) {
  const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId }] });
  return { id: c.id, subId: c.subscriptions[0] as string };
}
async function changePlan(subId: string, planId: string) {
  const res = await w.call("POST", `/admin/v1/subscriptions/${subId}/change-plan`, {
    key: BOOTSTRAP,
    body: { planId, when: "immediately", reason: "test" },
  });
  expect(res.status).toBe(200);
}
/** The R2 ledger's events (each once), summed per period as the D1 query did before. */
const ledgerEvents = async (customerId: string) => {
  const sums = new Map<string, { period_start: number; period_end: number | null; total: number }>();
  for (const e of await ledgerLines(customerId)) {
    if (e.kind === "close") continue;
    const k = `${e.periodStart}:${e.periodEnd}`;
    const row = sums.get(k) ?? { period_start: e.periodStart, period_end: e.periodEnd, total: 0 };
    row.total += e.amount;
    sums.set(k, row);
  }
  return [...sums.values()].sort(
    (x, y) => x.period_start - y.period_start || (x.period_end ?? 0) - (y.period_end ?? 0),
  );
};
const closedPeriods = async (customerId: string) =>
  (
    await env.DB.prepare(
      "SELECT period_start, period_end, total FROM usage_periods WHERE customer_id = ?1 AND final = 1 ORDER BY period_start, period_end",
    )
      .bind(customerId)
      .all()
  ).results;

describe("a plan change that changes the reset and back", () => {
  it("month -> day -> month within the month keeps the month-to-date usage (the review's repro)", async () => {
    w.clock.set(T0); // 2026-03-10T12:00Z
    const { id, subId } = await customerOn(monthly);
    for (let i = 0; i < 10; i++) expect((await consume(id)).json.allowed).toBe(true);
    expect((await consume(id)).json).toMatchObject({ allowed: false, reason: "limit_reached", used: 10 });

    await changePlan(subId, daily);
    // A definition with no open counter starts from 0: the day's allowance is the day plan's.
    expect((await consume(id)).json).toMatchObject({
      allowed: true,
      used: 1,
      resetsAt: "2026-03-11T00:00:00.000Z",
    });

    await changePlan(subId, monthly);
    expect((await consume(id)).json).toMatchObject({
      allowed: false,
      reason: "limit_reached",
      used: 10,
      resetsAt: "2026-04-01T00:00:00.000Z",
    });
    const check = await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "api_calls" } });
    expect(check.json).toMatchObject({ allowed: false, reason: "limit_reached", used: 10 });

    // The ledger labels each unit with the period of the counter it was counted in.
    await meter(id).flush();
    expect(await ledgerEvents(id)).toEqual([
      { period_start: at("2026-03-01T00:00:00.000Z"), period_end: at("2026-04-01T00:00:00.000Z"), total: 10 },
      { period_start: at("2026-03-10T00:00:00.000Z"), period_end: at("2026-03-11T00:00:00.000Z"), total: 1 },
    ]);
  });

  it("day -> month -> day within the day continues the day's counter", async () => {
    w.clock.set(T0);
    const { id, subId } = await customerOn(daily);
    await consume(id, 4);
    await changePlan(subId, monthly);
    expect((await consume(id, 2)).json).toMatchObject({ allowed: true, used: 2 });
    await changePlan(subId, daily);
    expect((await consume(id, 1)).json).toMatchObject({ allowed: true, used: 5 });
  });

  it("each counter closes into the ledger with its own period, also when two periods start at the same instant", async () => {
    w.clock.set(at("2026-04-01T06:00:00.000Z"));
    const { id, subId } = await customerOn(monthly);
    await consume(id, 3); // April
    await changePlan(subId, daily);
    await consume(id, 2); // April 1st
    w.clock.set(at("2026-05-01T00:00:01.000Z"));
    // Both periods have ended: the first touch closes them; the day plan's new day starts at 0.
    expect((await consume(id, 1)).json).toMatchObject({ allowed: true, used: 1 });
    await meter(id).flush();
    expect(await closedPeriods(id)).toEqual([
      { period_start: at("2026-04-01T00:00:00.000Z"), period_end: at("2026-04-02T00:00:00.000Z"), total: 2 },
      { period_start: at("2026-04-01T00:00:00.000Z"), period_end: at("2026-05-01T00:00:00.000Z"), total: 3 },
    ]);
    const usage = await w.call("GET", `/v1/usage/${id}?feature=api_calls`, { key });
    expect(usage.json.features[0]).toMatchObject({
      used: 1,
      past: [
        { periodStart: "2026-04-01T00:00:00.000Z", periodEnd: "2026-05-01T00:00:00.000Z", total: 3 },
        { periodStart: "2026-04-01T00:00:00.000Z", periodEnd: "2026-04-02T00:00:00.000Z", total: 2 },
      ],
    });
    w.clock.set(T0);
  });
});

describe("a caller whose clock is behind the meter's", () => {
  it("is served in the meter's current period: a period that closed is never reopened", async () => {
    const id = uid();
    const stub = meter(id);
    const call = (reset: "day" | "month", now: number): UsageCall => ({
      customerId: id,
      feature: "api_calls",
      amount: 1,
      mode: "consume",
      idempotencyKey: null,
      fingerprint: "",
      termsVersion: { customer: 0, catalog: 0 },
      allowance: { limit: 10, overage: "block", overageCap: null },
      entitled: true,
      terms: { reset, anchor: "calendar", anchorAt: null },
      occurredAt: now,
      now,
      gauge: false,
    });
    await stub.usage(call("day", at("2026-03-10T12:00:00.000Z")));
    // Another isolate, already on the monthly plan, is past midnight: the day's counter closes.
    await stub.usage(call("month", at("2026-03-11T00:00:01.000Z")));
    // An isolate with the daily plan and a clock a little behind: not the closed day again.
    const late = await stub.usage(call("day", at("2026-03-10T23:59:59.000Z")));
    expect(late).toMatchObject({ ok: true, answer: { used: 1, resetsAt: at("2026-03-12T00:00:00.000Z") } });
    expect((await stub.counters(T0)).map((c) => [c.periodStart, c.used])).toEqual(
      expect.arrayContaining([
        [at("2026-03-11T00:00:00.000Z"), 1],
        [at("2026-03-01T00:00:00.000Z"), 1],
      ]),
    );
  });
});

describe("period definitions", () => {
  it("two definitions are the same exactly when they cut time into the same periods", () => {
    const month = (anchorAt: string | null) =>
      periodDefinition("month", anchorAt ? "billing" : "calendar", anchorAt === null ? null : at(anchorAt));
    expect(month("2026-01-01T00:00:00.000Z")).toBe(month(null));
    expect(month("2026-01-31T09:00:00.000Z")).toBe(month("2026-03-31T09:00:00.000Z"));
    expect(month("2026-01-30T09:00:00.000Z")).not.toBe(month("2026-01-31T09:00:00.000Z"));
    expect(month("2026-01-31T09:00:00.000Z")).not.toBe(month("2026-01-31T10:00:00.000Z"));
    expect(periodDefinition("month", "billing", null)).toBe(month(null));
    expect(periodDefinition("day", "billing", at("2026-03-09T00:00:00.000Z"))).toBe(
      periodDefinition("day", "calendar", null),
    );
    expect(periodDefinition("day", "billing", at("2026-03-09T12:00:00.000Z"))).not.toBe(
      periodDefinition("day", "calendar", null),
    );
    expect(periodDefinition("year", "billing", at("2026-02-01T00:00:00.000Z"))).not.toBe(
      periodDefinition("year", "calendar", null),
    );
    expect(periodDefinition("none", "billing", at("2026-02-01T00:00:00.000Z"))).toBe(
      periodDefinition("none", "calendar", null),
    );
  });
});

describe("meter schema v2: counters of a version 1 meter", () => {
  it("a v1 counter is continued by the definition whose current period it holds; any other closes at its end", async () => {
    w.clock.set(T0);
    const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    // meter-lab: api_calls resets daily, storage_gb monthly. The v1 meter holds today's api_calls
    // and a storage_gb counter with a day's period (what M7 left behind after a day plan).
    await runInDurableObject(meter(id), (_m: CustomerMeter, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE counters");
      sql.exec(
        "CREATE TABLE counters (feature TEXT PRIMARY KEY, period_start INTEGER NOT NULL, period_end INTEGER, used REAL NOT NULL)",
      );
      const insert = "INSERT INTO counters (feature, period_start, period_end, used) VALUES (?, ?, ?, ?)";
      sql.exec(insert, "api_calls", at("2026-03-10T00:00:00.000Z"), at("2026-03-11T00:00:00.000Z"), 7);
      sql.exec(insert, "storage_gb", at("2026-03-10T00:00:00.000Z"), at("2026-03-11T00:00:00.000Z"), 4);
      sql.exec("UPDATE meta SET value = 1 WHERE key = 'schema_version'");
      migrateMeterSchema(sql);
      expect(sql.exec("SELECT value FROM meta WHERE key = 'schema_version'").one().value).toBe(METER_SCHEMA_VERSION);
    });
    expect((await consume(id, 1)).json).toMatchObject({ used: 8, remaining: 42 });
    const storage = await w.call("POST", "/v1/usage", {
      key,
      body: { customerId: id, feature: "storage_gb", amount: 1 },
    });
    expect(storage.json).toMatchObject({ used: 1, resetsAt: "2026-04-01T00:00:00.000Z" });

    w.clock.set(at("2026-03-11T00:00:01.000Z"));
    expect((await consume(id, 1)).json).toMatchObject({ used: 1 });
    await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "storage_gb" } });
    await meter(id).flush();
    expect(
      (
        await env.DB.prepare(
          "SELECT feature_key, period_start, period_end, total FROM usage_periods WHERE customer_id = ?1 AND final = 1 ORDER BY feature_key",
        )
          .bind(id)
          .all()
      ).results,
    ).toEqual([
      {
        feature_key: "api_calls",
        period_start: at("2026-03-10T00:00:00.000Z"),
        period_end: at("2026-03-11T00:00:00.000Z"),
        total: 8,
      },
      {
        feature_key: "storage_gb",
        period_start: at("2026-03-10T00:00:00.000Z"),
        period_end: at("2026-03-11T00:00:00.000Z"),
        total: 4,
      },
    ]);
    w.clock.set(T0);
  });
});
