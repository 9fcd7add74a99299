// The one way a write reaches D1, whoever makes it (an operator through the admin API, the cron
// handler, a billing webhook): the change, the revision bumps and its audit records in a single D1
// batch (atomic), then the affected snapshots are recompiled and written to KV, and each affected
// customer's meter is told the new version of its terms (issue 13: the meter refuses consumes on
// older terms from then on).
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { actorOf } from "../auth/principal";
import { parseMinVersion, type WriteVersion } from "../domain/version";
import type { Env } from "../env";
import { watchWrite } from "../events/write-events";
import type { Services } from "../services";
import { type AuditActor, type AuditEntry, auditStatement } from "../store/audit";
import { bumpCatalogRevStatement, bumpCustomerRevStatement } from "../store/revisions";

// The audited write path's vocabulary, for its callers (the statement itself lives with the audit log).
export type { AuditActor, AuditEntry };
export { auditStatement };

/** The writers without an operator behind them. */
export const SYSTEM: AuditActor = { actor: "system", actorType: "system" };
export const STRIPE_WEBHOOK: AuditActor = { actor: "webhook:stripe", actorType: "webhook" };

export interface Affected {
  /** Customers whose entitlements change: their rev grows, their snapshots are recompiled now. */
  customers?: string[];
  /** A catalog change: catalog_rev grows (the catalog is published by write/catalog-write.ts; no customer is recompiled). */
  catalog?: boolean;
}

export interface Write extends Affected {
  statements: D1PreparedStatement[];
  audits: AuditEntry[];
  /** Recorded with each audit entry: the request that caused the write, if any. */
  requestId?: string | null;
}

/** Commits statements + revision bumps + audit atomically, then recompiles. Returns each affected customer's new version. */
export async function commitWrite(
  env: Env,
  services: Services,
  actor: AuditActor,
  write: Write,
  now: number,
): Promise<Record<string, WriteVersion>> {
  const db = env.DB;
  const customers = [...new Set(write.customers ?? [])];
  const batch = [...write.statements];
  for (const id of customers) batch.push(bumpCustomerRevStatement(db, id, now));
  if (write.catalog) batch.push(bumpCatalogRevStatement(db));
  for (const a of write.audits) batch.push(auditStatement(db, a, actor, now, write.requestId ?? null));
  // Outbound events (events/write-events.ts): what the customers held before, compared after the recompile.
  const events = await watchWrite(env, services, customers, now);
  await db.batch(batch);
  const versions = await recompile(env, services, customers, now);
  await events.emit(versions, write.audits);
  return versions;
}

/** commitWrite for an admin route: the actor is the authenticated principal, the clock the request's. */
export async function commitAdminWrite(
  c: Context<AppEnv>,
  statements: D1PreparedStatement[],
  audits: AuditEntry[],
  affected: Affected = {},
): Promise<Record<string, WriteVersion>> {
  const { services } = c.var;
  return commitWrite(
    c.env,
    services,
    actorOf(c.var.principal),
    { statements, audits, ...affected, requestId: c.var.requestId },
    services.clock.now(),
  );
}

/**
 * Recompiles and publishes customer parts (history + KV + this isolate's cache), then pushes each
 * customer's new terms version to its meter: one RPC per customer written.
 */
export async function recompile(
  env: Env,
  services: Services,
  customerIds: string[],
  now: number,
): Promise<Record<string, WriteVersion>> {
  const versions: Record<string, WriteVersion> = {};
  // Awaited (not waitUntil): when the write answers, KV already holds the new part and the meter
  // refuses consumes made on the old one, through whichever isolate they come.
  for (const id of customerIds) {
    const version = await services.snapshots.compile(env, id, now);
    if (!version) continue;
    versions[id] = version;
    await pushTerms(env, services, id, version, now);
  }
  return versions;
}

/**
 * Tells the customer's meter the version of the snapshot this isolate now holds (the part just
 * compiled, composed with this isolate's catalog, so never older than the write's version). A
 * failure is logged, not fatal: D1 and KV have the write, and the next consume made on the new
 * terms advances the meter anyway (meter/terms-version.ts).
 */
async function pushTerms(env: Env, services: Services, customerId: string, version: WriteVersion, now: number) {
  const min = parseMinVersion(version.version) ?? undefined;
  try {
    const { snapshot } = await services.snapshots.read(env, customerId, now, { minVersion: min });
    if (!snapshot) return;
    const terms = { customer: snapshot.customerRev, catalog: snapshot.catalogRev };
    await services.meter.advanceTerms(env, snapshot, terms, now);
  } catch (err) {
    const msg = "terms push to the meter failed; the next consume on the new terms advances it";
    console.error(JSON.stringify({ msg, customerId, version: version.version, error: String(err) }));
  }
}
