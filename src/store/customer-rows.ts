// D1 -> the rows the compilers read, each set in one D1 batch (one round trip, one consistent view):
// - customer parts (compilePart): a customer's own rows and the catalog revision of the same read;
// - the catalog (compileCatalog): features, region groups, every plan with its entitlements;
// - both at once (CustomerRows, for compileSnapshot: the write path's policies and the oracle).
// Row types mirror schema.sql; mappers turn them into domain rows. Customers are bound as one JSON
// array (`IN (SELECT value FROM json_each(?1))`) because D1 binds at most 100 parameters.
import type { CatalogRows } from "../domain/catalog-compile";
import type { CustomerRows, GrantRow, PlanRow, SubscriptionRow } from "../domain/compile";
import type { PartRows } from "../domain/customer-part";
import type { MigrationMode } from "../domain/plan-versions";
import { own } from "../domain/records";
import type { EntitlementSpec, Residency, SubscriptionStatus } from "../domain/types";
import { batchRows, type D1Reader, query } from "./batch";
import { creditCostOf, type FeatureDbRow, seatOf } from "./features";

export interface SubscriptionDbRow {
  id: string;
  customer_id: string;
  plan_id: string;
  status: SubscriptionStatus;
  started_at: number;
  trial_end: number | null;
  current_period_start: number | null;
  current_period_end: number | null;
  billing_anchor: number | null;
  cancel_at: number | null;
  grace_until: number | null;
  ended_at: number | null;
  scheduled_plan_id: string | null;
  scheduled_change_at: number | null;
  external_id: string | null;
  external_updated_at: number | null;
  invoice_updated_at: number | null;
  plan_version: number | null;
  created_at: number;
  updated_at: number;
}

export interface GrantDbRow {
  id: string;
  customer_id: string;
  feature_key: string;
  mode: "add" | "replace";
  spec: string;
  reason: string;
  starts_at: number | null;
  expires_at: number | null;
  status: "pending" | "active" | "rejected" | "revoked";
  elevated: number;
  proposed_by: string;
  decided_by: string | null;
  decided_at: number | null;
  created_at: number;
  updated_at: number;
}

export const toSubscriptionRow = (r: SubscriptionDbRow): SubscriptionRow => ({
  id: r.id,
  planId: r.plan_id,
  status: r.status,
  startedAt: r.started_at,
  trialEnd: r.trial_end,
  currentPeriodStart: r.current_period_start,
  currentPeriodEnd: r.current_period_end,
  billingAnchor: r.billing_anchor,
  cancelAt: r.cancel_at,
  graceUntil: r.grace_until,
  endedAt: r.ended_at,
  scheduledPlanId: r.scheduled_plan_id,
  scheduledChangeAt: r.scheduled_change_at,
  planVersion: r.plan_version,
});

export const toGrantRow = (r: GrantDbRow): GrantRow => ({
  id: r.id,
  featureKey: r.feature_key,
  mode: r.mode,
  spec: JSON.parse(r.spec) as EntitlementSpec,
  startsAt: r.starts_at,
  expiresAt: r.expires_at,
  createdAt: r.created_at,
});

const IDS = "(SELECT value FROM json_each(?1))";

const catalogRevQuery = (db: D1Reader) =>
  query<{ value: number }>(db.prepare("SELECT value FROM meta WHERE key = 'catalog_rev'"));

function partQueries(db: D1Reader, customerIds: string[]) {
  const ids = JSON.stringify(customerIds);
  return [
    query<{ id: string; residency: Residency | null; rev: number; meter_shards: number }>(
      db.prepare(`SELECT id, residency, rev, meter_shards FROM customers WHERE id IN ${IDS}`).bind(ids),
    ),
    query<SubscriptionDbRow>(db.prepare(`SELECT * FROM subscriptions WHERE customer_id IN ${IDS}`).bind(ids)),
    query<GrantDbRow>(db.prepare(`SELECT * FROM grants WHERE customer_id IN ${IDS} AND status = 'active'`).bind(ids)),
  ] as const;
}

function catalogQueries(db: D1Database) {
  return [
    query<FeatureDbColumns>(
      db.prepare(
        "SELECT key, type, integer_only, failure_policy, credit_feature, credit_cost, seat_feature FROM features",
      ),
    ),
    query<{ name: string; countries: string }>(db.prepare("SELECT name, countries FROM region_groups")),
    query<{ id: string; kind: "base" | "addon"; version: number; feature_key: string | null; spec: string | null }>(
      db.prepare(
        "SELECT p.id, p.kind, p.version, e.feature_key, e.spec FROM plans p LEFT JOIN plan_entitlements e ON e.plan_id = p.id",
      ),
    ),
    // Older versions only: the current one is plan_entitlements (written together with plans.version).
    query<{ plan_id: string; version: number; entitlements: string }>(
      db.prepare(
        "SELECT v.plan_id, v.version, v.entitlements FROM plan_versions v JOIN plans p ON p.id = v.plan_id WHERE v.version < p.version",
      ),
    ),
    query<{ plan_id: string; to_version: number; mode: MigrationMode; at: number; cancelled_at: number | null }>(
      db.prepare("SELECT plan_id, to_version, mode, at, cancelled_at FROM plan_migrations ORDER BY at"),
    ),
  ] as const;
}

type FeatureDbColumns = Pick<
  FeatureDbRow,
  "key" | "type" | "integer_only" | "failure_policy" | "credit_feature" | "credit_cost" | "seat_feature"
>;

type CatalogResults = [
  features: FeatureDbColumns[],
  groups: { name: string; countries: string }[],
  ents: { id: string; kind: "base" | "addon"; version: number; feature_key: string | null; spec: string | null }[],
  versions: { plan_id: string; version: number; entitlements: string }[],
  migrations: { plan_id: string; to_version: number; mode: MigrationMode; at: number; cancelled_at: number | null }[],
];

function toCatalogRows(
  catalogRev: number,
  [features, groups, ents, versions, migrations]: CatalogResults,
): CatalogRows {
  const plans: Record<string, PlanRow> = {};
  for (const r of ents) {
    const plan = own(plans, r.id) ?? { id: r.id, kind: r.kind, version: r.version, entitlements: {} };
    plans[r.id] = plan;
    if (r.feature_key && r.spec) plan.entitlements[r.feature_key] = JSON.parse(r.spec) as EntitlementSpec;
  }
  for (const v of versions) {
    const plan = own(plans, v.plan_id);
    if (!plan) continue;
    plan.versions ??= {};
    plan.versions[String(v.version)] = JSON.parse(v.entitlements) as Record<string, EntitlementSpec>;
  }
  for (const m of migrations) {
    const plan = own(plans, m.plan_id);
    if (!plan) continue;
    plan.migrations ??= [];
    plan.migrations.push({ toVersion: m.to_version, mode: m.mode, at: m.at, cancelledAt: m.cancelled_at });
  }
  return {
    catalogRev,
    features: features.map((f) => ({
      key: f.key,
      type: f.type,
      integer: f.integer_only === 1,
      failurePolicy: f.failure_policy,
      ...creditCostOf(f),
      ...seatOf(f),
    })),
    regionGroups: Object.fromEntries(groups.map((g) => [g.name, JSON.parse(g.countries) as string[]])),
    plans,
  };
}

/** The whole catalog, compileCatalog's input. */
export async function loadCatalogRows(db: D1Database): Promise<CatalogRows> {
  const [meta, ...rest] = await batchRows(db, [catalogRevQuery(db), ...catalogQueries(db)]);
  return toCatalogRows(meta[0]?.value ?? 0, rest);
}

/** The part inputs of one customer; null when there is no such customer. */
export async function loadPartRows(db: D1Reader, customerId: string): Promise<PartRows | null> {
  return (await loadManyPartRows(db, [customerId])).get(customerId) ?? null;
}

/**
 * The part inputs of each of `customerIds` that exists, by id. A customer one of whose rows cannot be
 * read (a JSON column that does not parse) throws, unless `unreadable` is given: then that customer is
 * left out and its error recorded there, so one bad customer does not hold back a batch.
 */
export async function loadManyPartRows(
  db: D1Reader,
  customerIds: string[],
  unreadable?: Map<string, unknown>,
): Promise<Map<string, PartRows>> {
  if (customerIds.length === 0) return new Map();
  const [meta, customers, subs, grants] = await batchRows(db, [catalogRevQuery(db), ...partQueries(db, customerIds)]);
  return toPartRows(meta[0]?.value ?? 0, customers, subs, grants, unreadable);
}

/** compileSnapshot's input for one customer (part and catalog in one read); null when there is no such customer. */
export async function loadCustomerRows(db: D1Database, customerId: string): Promise<CustomerRows | null> {
  const [meta, customers, subs, grants, ...catalog] = await batchRows(db, [
    catalogRevQuery(db),
    ...partQueries(db, [customerId]),
    ...catalogQueries(db),
  ]);
  const catalogRev = meta[0]?.value ?? 0;
  const part = toPartRows(catalogRev, customers, subs, grants).get(customerId);
  if (!part) return null;
  const { features, regionGroups, plans } = toCatalogRows(catalogRev, catalog);
  return { ...part, features, regionGroups, plans };
}

function toPartRows(
  catalogRev: number,
  customers: { id: string; residency: Residency | null; rev: number; meter_shards?: number }[],
  subs: SubscriptionDbRow[],
  grants: GrantDbRow[],
  unreadable?: Map<string, unknown>,
): Map<string, PartRows> {
  const out = new Map<string, PartRows>();
  for (const c of customers) {
    out.set(c.id, {
      customer: { id: c.id, residency: c.residency, rev: c.rev, meterShards: c.meter_shards ?? 1 },
      catalogRev,
      subscriptions: [],
      grants: [],
    });
  }
  const rowOf = <R, T>(customerId: string, raw: R, map: (r: R) => T): T | undefined => {
    try {
      return map(raw);
    } catch (err) {
      if (!unreadable) throw err;
      unreadable.set(customerId, err);
      return undefined;
    }
  };
  for (const s of subs) {
    const row = rowOf(s.customer_id, s, toSubscriptionRow);
    if (row) out.get(s.customer_id)?.subscriptions.push(row);
  }
  for (const g of grants) {
    const row = rowOf(g.customer_id, g, toGrantRow);
    if (row) out.get(g.customer_id)?.grants.push(row);
  }
  for (const id of unreadable?.keys() ?? []) out.delete(id);
  return out;
}
