// D1 -> CustomerRows for a batch of customers in ONE D1 batch, and their snapshots compiled and
// published (KV + snapshot history) with a handful of subrequests. Used by recompile jobs: the
// per-customer path (SnapshotStore.compile) costs three subrequests per customer, this one costs one
// KV write per customer plus a few D1 statements per batch. Same queries and mappers as
// loadCustomerRows, with `IN (SELECT value FROM json_each(?1))` because D1 binds at most 100 parameters.
import { type CustomerRows, compileSnapshot } from "../domain/compile";
import type { EntitlementSpec, FailurePolicy, FeatureType, Residency } from "../domain/types";
import type { Env } from "../env";
import type { Services } from "../services";
import { type GrantDbRow, type SubscriptionDbRow, toGrantRow, toSubscriptionRow } from "./customer-rows";
import { kvKeys } from "./kv";

const IDS = "(SELECT value FROM json_each(?1))";

export async function loadManyCustomerRows(db: D1Database, customerIds: string[]): Promise<Map<string, CustomerRows>> {
  const out = new Map<string, CustomerRows>();
  if (customerIds.length === 0) return out;
  const ids = JSON.stringify(customerIds);
  const [customers, meta, features, groups, subs, ents, grants] = await db.batch<Record<string, unknown>>([
    db.prepare(`SELECT id, residency, rev FROM customers WHERE id IN ${IDS}`).bind(ids),
    db.prepare("SELECT value FROM meta WHERE key = 'catalog_rev'"),
    db.prepare("SELECT key, type, integer_only, failure_policy FROM features"),
    db.prepare("SELECT name, countries FROM region_groups"),
    db.prepare(`SELECT * FROM subscriptions WHERE customer_id IN ${IDS}`).bind(ids),
    db
      .prepare(
        `SELECT p.id, p.kind, e.feature_key, e.spec FROM plans p LEFT JOIN plan_entitlements e ON e.plan_id = p.id
         WHERE p.id IN (SELECT plan_id FROM subscriptions WHERE customer_id IN ${IDS}
                        UNION SELECT scheduled_plan_id FROM subscriptions WHERE customer_id IN ${IDS})`,
      )
      .bind(ids),
    db.prepare(`SELECT * FROM grants WHERE customer_id IN ${IDS} AND status = 'active'`).bind(ids),
  ]);
  // Catalog parts are shared by every customer of the batch (compileSnapshot never mutates its input).
  const catalogRev = (meta!.results[0] as { value: number } | undefined)?.value ?? 0;
  const featureRows = (
    features!.results as { key: string; type: FeatureType; integer_only: number; failure_policy: FailurePolicy }[]
  ).map((f) => ({
    key: f.key,
    type: f.type,
    integer: f.integer_only === 1,
    failurePolicy: f.failure_policy,
  }));
  const regionGroups = Object.fromEntries(
    (groups!.results as { name: string; countries: string }[]).map((g) => [
      g.name,
      JSON.parse(g.countries) as string[],
    ]),
  );
  const plans: CustomerRows["plans"] = {};
  for (const r of ents!.results as {
    id: string;
    kind: "base" | "addon";
    feature_key: string | null;
    spec: string | null;
  }[]) {
    const plan = plans[r.id] ?? { id: r.id, kind: r.kind, entitlements: {} };
    plans[r.id] = plan;
    if (r.feature_key && r.spec) plan.entitlements[r.feature_key] = JSON.parse(r.spec) as EntitlementSpec;
  }
  for (const c of customers!.results as { id: string; residency: Residency | null; rev: number }[]) {
    out.set(c.id, {
      customer: { id: c.id, residency: c.residency, rev: c.rev },
      catalogRev,
      features: featureRows,
      regionGroups,
      plans,
      subscriptions: [],
      grants: [],
    });
  }
  for (const s of subs!.results as unknown as SubscriptionDbRow[])
    out.get(s.customer_id)?.subscriptions.push(toSubscriptionRow(s));
  for (const g of grants!.results as unknown as GrantDbRow[]) out.get(g.customer_id)?.grants.push(toGrantRow(g));
  return out;
}

// D1 binds a string of at most 1,000,000 bytes; history rows go in chunks well below that.
const HISTORY_CHUNK_BYTES = 600_000;

/** Compiles and publishes the snapshots of `customerIds` (missing customers are skipped); returns how many. */
export async function compileMany(env: Env, services: Services, customerIds: string[], now: number): Promise<number> {
  const rows = await loadManyCustomerRows(env.DB, customerIds);
  const texts: [string, number, string][] = [];
  for (const r of rows.values()) {
    const snapshot = compileSnapshot(r, now);
    texts.push([r.customer.id, snapshot.version, JSON.stringify(snapshot)]);
  }
  const history: D1PreparedStatement[] = [];
  for (let i = 0; i < texts.length; ) {
    const chunk: [string, number, string][] = [];
    let bytes = 0;
    while (i < texts.length && (chunk.length === 0 || bytes + texts[i]![2].length < HISTORY_CHUNK_BYTES)) {
      bytes += texts[i]![2].length + 64;
      chunk.push(texts[i++]!);
    }
    history.push(
      env.DB.prepare(
        `INSERT OR IGNORE INTO snapshot_history (customer_id, version, compiled_at, snapshot)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?2, json_extract(value, '$[2]') FROM json_each(?1)`,
      ).bind(JSON.stringify(chunk), now),
    );
  }
  // History first: a snapshot that checks can see is always one that GET ...?at= can explain later.
  if (history.length > 0) await env.DB.batch(history);
  await Promise.all(texts.map(([id, , text]) => env.SNAPSHOTS.put(kvKeys.snapshot(id), text)));
  // This isolate reads the new snapshot from KV next time; other isolates within their cache TTL.
  for (const [id] of texts) services.snapshots.invalidate(id);
  return texts.length;
}
