// Settle follows the amount rules of consume: a feature that counts whole units refuses a
// fractional settle with a 400 and charges nothing (security review, "Settle accepts fractional
// amounts on whole-unit features").
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, loadTestCatalog, T0, testWorker, uid } from "./helpers";

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

const post = (path: string, body: Record<string, unknown>) => w.call("POST", `/v1/usage/${path}`, { key, body });
const lab = async () => (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
const used = async (customerId: string, feature: string) =>
  (await env.METER.get(env.METER.idFromName(customerId)).counters(T0)).find((c) => c.feature === feature)?.used;

describe("settle: the amount rules of consume", () => {
  it("a fractional settle on a whole-unit feature is a 400, charges nothing and leaves the reservation open", async () => {
    const id = await lab();
    const r = await post("reserve", { customerId: id, feature: "api_calls", amount: 5 });
    expect(r.json).toMatchObject({ allowed: true, reserved: 5 });
    const half = await post("settle", { customerId: id, reservationId: r.json.reservationId, amount: 0.5 });
    expect(half.status).toBe(400);
    expect(half.json).toMatchObject({
      type: "urn:tollgate:problem:validation",
      errors: [{ path: "json.amount", message: "this feature counts whole units" }],
    });
    expect(await used(id, "api_calls")).toBe(0);
    const whole = await post("settle", { customerId: id, reservationId: r.json.reservationId, amount: 2 });
    expect(whole.json).toMatchObject({ allowed: true, used: 2, reserved: 0, settled: 2 });
  });

  it("a feature with fractional units (integer: false) still settles fractions", async () => {
    const id = await lab();
    const r = await post("reserve", { customerId: id, feature: "storage_gb", amount: 5 });
    const s = await post("settle", { customerId: id, reservationId: r.json.reservationId, amount: 2.5 });
    expect(s.json).toMatchObject({ allowed: true, used: 2.5, settled: 2.5 });
  });
});
