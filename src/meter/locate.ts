// Where a customer's meter lives. One Durable Object per customer, named by the customer id; a
// customer with a residency ("eu", "fedramp") gets its object in that jurisdiction, so its counters,
// idempotency keys and reservations are stored and processed there.
//
// Local workerd throws "Jurisdiction restrictions are not implemented" on namespace.jurisdiction(),
// so the deployed path is switched on by configuration (DO_JURISDICTIONS = "on" in wrangler.toml's
// staging/production environments) and this one resolver is the only place that decides.
import { type Config, configOf } from "../config";
import type { Residency } from "../domain/types";
import type { Env } from "../env";

export interface MeterLocation {
  name: string;
  jurisdiction: Residency | null;
}

export function meterLocation(
  { doJurisdictions }: Pick<Config, "doJurisdictions">,
  customerId: string,
  residency: Residency | null,
): MeterLocation {
  return { name: customerId, jurisdiction: doJurisdictions && residency ? residency : null };
}

/**
 * The meter of one shard of a customer. Shard 0 is the customer's own meter (so one shard is the
 * unsharded meter, and turning sharding on keeps its counters); shard i > 0 is named
 * `<customerId>#<i>` (domain/leases.ts, meter/quota-coordinator.ts).
 */
export function meterStub(env: Env, customerId: string, residency: Residency | null, shard = 0) {
  return shardStub(env.METER, configOf(env), customerId, residency, shard);
}

export const shardName = (customerId: string, shard: number): string =>
  shard === 0 ? customerId : `${customerId}#${shard}`;

export function shardStub<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
  config: Pick<Config, "doJurisdictions">,
  customerId: string,
  residency: Residency | null,
  shard: number,
) {
  const loc = meterLocation(config, shardName(customerId, shard), residency);
  const ns = loc.jurisdiction ? namespace.jurisdiction(loc.jurisdiction) : namespace;
  return ns.get(ns.idFromName(loc.name));
}

/** The coordinator of a sharded customer's leases: one per customer, beside its meters. */
export function coordinatorStub(
  namespace: Env["QUOTA"],
  config: Pick<Config, "doJurisdictions">,
  customerId: string,
  residency: Residency | null,
) {
  return shardStub(namespace, config, customerId, residency, 0);
}
