// D1 -> CustomerRows: everything compileSnapshot needs for one customer, read in one batch
// (one round trip, one consistent view). Row types mirror schema.sql; mappers turn them into domain rows.
import type { CustomerRows, GrantRow, SubscriptionRow } from "../domain/compile";
import type { EntitlementSpec, FailurePolicy, FeatureType, Residency, SubscriptionStatus } from "../domain/types";

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

export async function loadCustomerRows(db: D1Database, customerId: string): Promise<CustomerRows | null> {
  const [customer, meta, features, groups, subs, ents, grants] = await db.batch<Record<string, unknown>>([
    db.prepare("SELECT id, residency, rev FROM customers WHERE id = ?1").bind(customerId),
    db.prepare("SELECT value FROM meta WHERE key = 'catalog_rev'"),
    db.prepare("SELECT key, type, integer_only, failure_policy FROM features"),
    db.prepare("SELECT name, countries FROM region_groups"),
    db.prepare("SELECT * FROM subscriptions WHERE customer_id = ?1").bind(customerId),
    db
      .prepare(
        `SELECT p.id, p.kind, e.feature_key, e.spec FROM plans p LEFT JOIN plan_entitlements e ON e.plan_id = p.id
         WHERE p.id IN (SELECT plan_id FROM subscriptions WHERE customer_id = ?1
                        UNION SELECT scheduled_plan_id FROM subscriptions WHERE customer_id = ?1)`,
      )
      .bind(customerId),
    db.prepare("SELECT * FROM grants WHERE customer_id = ?1 AND status = 'active'").bind(customerId),
  ]);
  const c = customer?.results[0] as { id: string; residency: Residency | null; rev: number } | undefined;
  if (!c) return null;
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
  return {
    customer: { id: c.id, residency: c.residency, rev: c.rev },
    catalogRev: (meta!.results[0] as { value: number } | undefined)?.value ?? 0,
    features: (
      features!.results as { key: string; type: FeatureType; integer_only: number; failure_policy: FailurePolicy }[]
    ).map((f) => ({
      key: f.key,
      type: f.type,
      integer: f.integer_only === 1,
      failurePolicy: f.failure_policy,
    })),
    regionGroups: Object.fromEntries(
      (groups!.results as { name: string; countries: string }[]).map((g) => [
        g.name,
        JSON.parse(g.countries) as string[],
      ]),
    ),
    plans,
    subscriptions: (subs!.results as unknown as SubscriptionDbRow[]).map(toSubscriptionRow),
    grants: (grants!.results as unknown as GrantDbRow[]).map(toGrantRow),
  };
}
