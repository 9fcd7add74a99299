// Sharded customers (meterShards) for the lease tests: a customer spread over N shard meters, and a shard's stub.
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { shardName } from "../../src/meter/locate";
import { createCustomer, createPlan } from "./admin";
import { BOOTSTRAP, type TestWorker, uid } from "./worker";

/** Shard `shard` of a sharded customer's meters (shard 0 is the customer's own meter). */
export const meterOf = (customerId: string, shard: number) =>
  env.METER.get(env.METER.idFromName(shardName(customerId, shard)));

/** A customer on a plan of `limit` api_calls a month, spread over `shards` meters. */
export async function shardedCustomer(w: TestWorker, limit: number, shards: number): Promise<string> {
  const planId = uid("plan");
  await createPlan(w, planId, { api_calls: { limit, reset: "month" } });
  const { id } = await createCustomer(w, { id: uid(), subscriptions: [{ planId }] });
  const res = await w.call("PATCH", `/admin/v1/customers/${id}`, { key: BOOTSTRAP, body: { meterShards: shards } });
  expect(res.status).toBe(200);
  return id;
}
