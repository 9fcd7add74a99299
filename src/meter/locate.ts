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

export function meterStub(env: Env, customerId: string, residency: Residency | null) {
  const loc = meterLocation(configOf(env), customerId, residency);
  const ns = loc.jurisdiction ? env.METER.jurisdiction(loc.jurisdiction) : env.METER;
  return ns.get(ns.idFromName(loc.name));
}
