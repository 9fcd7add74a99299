// The service-binding entrypoint, called as a calling app would: from a second Worker
// (test/fixtures/rpc-caller.mjs) through its bindings to TollgateRpc, one unscoped and one scoped to
// a customer by props. Same decisions and same errors as the HTTP API.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { postCheck, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;
const SCOPED = "rpc-scoped"; // the customer of the caller's TOLLGATE_SCOPED binding (vitest.config.ts)

async function rpc(method: string, input: unknown, binding = "TOLLGATE") {
  const res = await env.RPC_CALLER.fetch("https://caller.test/", {
    method: "POST",
    body: JSON.stringify({ binding, method, input }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { ok: boolean; value?: any; problem?: any };
}

const customer = async (planId: string, id = uid()) =>
  (await createCustomer(w, { id, subscriptions: [{ planId }] })).id;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
  await customer("meter-lab", SCOPED);
});

describe("TollgateRpc: checks", () => {
  it("answers a check as POST /v1/check does: grants and denials alike", async () => {
    const customerId = await customer("pro");
    for (const input of [
      { customerId, feature: "sso", role: "admin" },
      { customerId, feature: "sso", role: "member" },
      { customerId, feature: "eu_hosting", country: "DE" },
      { customerId, feature: "eu_hosting", country: "US" },
      { customerId, feature: "api_calls", quantity: 5 },
      { customerId, feature: "teleportation" },
      { customerId: uid("nobody"), feature: "sso" },
    ]) {
      const viaRpc = await rpc("check", input);
      const viaHttp = await postCheck(w, key, input);
      expect(viaRpc.ok).toBe(true);
      const pick = (d: any) => ({ allowed: d.allowed, reason: d.reason, type: d.type, limit: d.limit, value: d.value });
      expect(pick(viaRpc.value)).toEqual(pick(viaHttp.json));
      expect(viaRpc.value.version).toBe(viaHttp.json.version);
    }
  });

  it("refuses bad input with the HTTP API's problem body, not a throw", async () => {
    const input = { customerId: "acme", feature: "Not A Key!", quantity: -1 };
    const viaRpc = await rpc("check", input);
    const viaHttp = await postCheck(w, key, input);
    expect(viaRpc.ok).toBe(false);
    expect(viaHttp.status).toBe(400);
    expect(viaRpc.problem).toMatchObject({
      type: "urn:tollgate:problem:validation",
      status: 400,
      instance: "rpc:check",
      errors: viaHttp.json.errors,
    });
    expect((await rpc("check", { customerId: "acme", feature: "sso", surprise: 1 })).problem.status).toBe(400);
    expect((await rpc("check", null)).problem.status).toBe(400);
  });

  it("evaluates every feature in one call, and says an unknown customer is not found", async () => {
    const customerId = await customer("pro");
    const all = await rpc("entitlements", { customerId, role: "admin", country: "DE" });
    expect(all.ok).toBe(true);
    expect(all.value.features.sso).toMatchObject({ allowed: true, reason: "ok" });
    expect(all.value.features.eu_hosting).toMatchObject({ allowed: true });
    expect(all.value.features.api_calls).toMatchObject({ allowed: true, limit: 1000, used: 0 });
    const missing = await rpc("entitlements", { customerId: uid("nobody") });
    expect(missing).toMatchObject({ ok: false, problem: { status: 404, type: "urn:tollgate:problem:not-found" } });
  });
});

describe("TollgateRpc: usage", () => {
  it("consumes exactly up to the limit, once per idempotency key, and then denies", async () => {
    const customerId = await customer("meter-lab"); // api_calls: 50 a day
    const first = await rpc("consume", { customerId, feature: "api_calls", amount: 10, idempotencyKey: "k1" });
    expect(first.value).toMatchObject({ allowed: true, used: 10, remaining: 40, limit: 50 });
    const replay = await rpc("consume", { customerId, feature: "api_calls", amount: 10, idempotencyKey: "k1" });
    expect(replay.value).toMatchObject({ allowed: true, used: 10, replayed: true });
    const rest = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        rpc("consume", { customerId, feature: "api_calls", amount: 5, idempotencyKey: `r${i}` }),
      ),
    );
    expect(rest.filter((r) => r.value.allowed)).toHaveLength(8);
    const over = await rpc("consume", { customerId, feature: "api_calls" });
    expect(over.value).toMatchObject({ allowed: false, reason: "limit_reached", used: 50 });
    const check = await rpc("check", { customerId, feature: "api_calls" });
    expect(check.value).toMatchObject({ allowed: false, reason: "limit_reached", used: 50, remaining: 0 });
    // The same key with another amount is the HTTP API's 409.
    const conflict = await rpc("consume", { customerId, feature: "api_calls", amount: 3, idempotencyKey: "k1" });
    expect(conflict.problem).toMatchObject({ status: 409, code: "idempotency_conflict" });
  });

  it("reserves, settles and releases", async () => {
    const customerId = await customer("meter-lab");
    const held = await rpc("reserve", { customerId, feature: "api_calls", amount: 20 });
    expect(held.value).toMatchObject({ allowed: true, reserved: 20 });
    const settled = await rpc("settle", { customerId, reservationId: held.value.reservationId, amount: 7 });
    expect(settled.value).toMatchObject({ feature: "api_calls", used: 7, reserved: 0, settled: 7 });
    const again = await rpc("reserve", { customerId, feature: "api_calls", amount: 40 });
    expect(again.value).toMatchObject({ allowed: true, reserved: 40, used: 7 });
    expect((await rpc("release", { customerId, reservationId: again.value.reservationId })).value).toMatchObject({
      used: 7,
      reserved: 0,
    });
    const gone = await rpc("settle", { customerId, reservationId: "no-such-reservation", amount: 1 });
    expect(gone.problem).toMatchObject({ status: 404, code: "reservation_not_found" });
  });

  it("refuses a timestamp on a consume, as the HTTP API does", async () => {
    const customerId = await customer("meter-lab");
    const res = await rpc("consume", { customerId, feature: "api_calls", timestamp: "2026-01-01T00:00:00Z" });
    expect(res.problem).toMatchObject({ status: 400, errors: [{ path: "json.timestamp", message: "record only" }] });
  });
});

describe("TollgateRpc: a binding scoped to one customer", () => {
  it("fills in its customer and refuses any other", async () => {
    const own = await rpc("consume", { feature: "api_calls", amount: 2 }, "TOLLGATE_SCOPED");
    expect(own.value).toMatchObject({ customerId: SCOPED, allowed: true });
    expect((await rpc("check", { feature: "api_calls" }, "TOLLGATE_SCOPED")).value).toMatchObject({
      customerId: SCOPED,
      allowed: true,
    });
    const other = await customer("pro");
    for (const method of ["check", "consume", "entitlements"]) {
      const res = await rpc(method, { customerId: other, feature: "api_calls" }, "TOLLGATE_SCOPED");
      expect(res).toMatchObject({ ok: false, problem: { status: 403, type: "urn:tollgate:problem:forbidden" } });
    }
  });
});
