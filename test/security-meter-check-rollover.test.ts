// A period that rolls over during a check (the meter's peek) queues the closed period's total, and
// must also schedule the flush that takes it to D1: a customer who only checks after a period ended
// would otherwise wait for its next consume (security review, "A check's rollover never schedules a
// flush").
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, loadTestCatalog, T0, testWorker, uid } from "./helpers";

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

const meter = (customerId: string) => env.METER.get(env.METER.idFromName(customerId));
const alarmOf = (customerId: string) => runInDurableObject(meter(customerId), (_m, state) => state.storage.getAlarm());
const closedPeriods = async (customerId: string) =>
  (
    await env.DB.prepare("SELECT period_start, total FROM usage_periods WHERE customer_id = ?1")
      .bind(customerId)
      .all<{ period_start: number; total: number }>()
  ).results;

describe("a check that rolls a period over", () => {
  it("schedules the ledger flush, and the alarm writes the closed period's total", async () => {
    w.clock.set(T0);
    const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    await w.call("POST", "/v1/usage", { key, body: { customerId: id, feature: "api_calls", amount: 7 } });
    expect(await runDurableObjectAlarm(meter(id))).toBe(true); // the consume's flush
    expect(await alarmOf(id)).toBeNull();

    w.clock.set(Date.parse("2026-03-11T00:00:05.000Z")); // api_calls resets daily
    const check = await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "api_calls" } });
    expect(check.json).toMatchObject({ allowed: true, used: 0 });
    expect(await alarmOf(id)).not.toBeNull();
    expect(await runDurableObjectAlarm(meter(id))).toBe(true);
    expect(await closedPeriods(id)).toEqual([{ period_start: Date.parse("2026-03-10T00:00:00.000Z"), total: 7 }]);
    w.clock.set(T0);
  });

  it("a check with nothing to roll over sets no alarm", async () => {
    w.clock.set(T0);
    const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "api_calls" } });
    await w.call("GET", `/v1/entitlements/${id}`, { key });
    expect(await alarmOf(id)).toBeNull();
  });
});
