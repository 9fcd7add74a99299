// usage.threshold and usage.limit_reached come from the customer's meter, where usage is exact: under
// 200 concurrent consumes each alert is raised once, recorded in D1 by the meter's flush (once, however
// often it runs) and delivered once; the next period raises them again.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { DAY_MS, T0 } from "./helpers/time";
import { createEndpoint, deliverPending, deliveryLog, receiver, verify } from "./helpers/webhooks";
import { testWorker, uid } from "./helpers/worker";

const rx = receiver();
const w = testWorker({ fetch: rx.fetch });
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

const meter = (customerId: string) => env.METER.get(env.METER.idFromName(customerId));
const use = (customerId: string, amount = 1) =>
  w.call("POST", "/v1/usage", { key, body: { customerId, feature: "api_calls", amount } });

/** A meter-lab customer (api_calls: 50 a day) and an endpoint for its usage events. */
async function lab() {
  const customerId = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
  const endpoint = await createEndpoint(w, {
    url: "https://app.example/usage",
    customerId,
    eventTypes: ["usage.threshold", "usage.limit_reached"],
  });
  return { customerId, endpoint };
}

const usageEvents = async (customerId: string) =>
  (
    await env.DB.prepare(
      "SELECT type, data FROM outbound_events WHERE customer_id = ?1 AND type LIKE 'usage.%' ORDER BY seq",
    )
      .bind(customerId)
      .all<{ type: string; data: string }>()
  ).results.map((r) => ({ type: r.type, ...JSON.parse(r.data) }));

describe("usage alerts", () => {
  it("200 concurrent consumes against 50: 80 %, 100 % and limit_reached, each exactly once", async () => {
    const { customerId, endpoint } = await lab();
    const results = await Promise.all(Array.from({ length: 200 }, () => use(customerId)));
    expect(results.filter((r) => r.json.allowed)).toHaveLength(50);
    await meter(customerId).flush();
    await meter(customerId).flush(); // a second flush records nothing again
    const events = await usageEvents(customerId);
    expect(events.map((e) => (e.type === "usage.threshold" ? `${e.type}:${e.threshold}` : e.type))).toEqual([
      "usage.threshold:80",
      "usage.threshold:100",
      "usage.limit_reached",
    ]);
    expect(events[0]).toMatchObject({ feature: "api_calls", limit: 50, used: 40 });
    expect(events[1]).toMatchObject({ used: 50 });
    await deliverPending(w, endpoint.id);
    const got = rx.received.filter((r) => r.json.customerId === customerId);
    expect(got).toHaveLength(3);
    for (const r of got) verify(endpoint.secret, r, w.clock.now());
    expect((await deliveryLog(w, endpoint.id)).every((d) => d.status === "delivered")).toBe(true);
  });

  it("a threshold is raised once per period: the next day's period raises it again", async () => {
    const { customerId } = await lab();
    await use(customerId, 40);
    await use(customerId, 1);
    await meter(customerId).flush();
    expect((await usageEvents(customerId)).map((e) => e.threshold)).toEqual([80]);
    await w.at(T0 + DAY_MS, async () => {
      await use(customerId, 45);
      await meter(customerId).flush();
    });
    const events = await usageEvents(customerId);
    expect(events.map((e) => e.threshold)).toEqual([80, 80]);
    expect(events[0].periodStart).not.toBe(events[1].periodStart);
  });

  it("usage below every threshold raises nothing", async () => {
    const { customerId } = await lab();
    await use(customerId, 39);
    await meter(customerId).flush();
    expect(await usageEvents(customerId)).toEqual([]);
  });
});
