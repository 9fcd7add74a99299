// The per-customer part of a snapshot: what only this customer has (subscriptions as windows, grants,
// residency, its revision), with nothing of the catalog in it. Pure. A catalog change (a plan's
// entitlements, a feature, a region group) therefore never touches a customer part: the check composes
// the part with the shared catalog it holds (src/domain/compose.ts). About 0.5-1 KB per customer.

import { type GrantRow, type SubscriptionRow, subscriptionWindows } from "./compile";
import { shardsField } from "./leases";
import { compareIds } from "./records";
import type { EntitlementSpec, LapseReason, Residency } from "./types";

export interface PartWindow {
  planId: string;
  from: number | null;
  until: number | null;
  lapse: LapseReason | null;
}

export interface PartSubscription {
  id: string;
  /** The subscription's own plan: its kind (base or add-on, from the catalog) orders the sources. */
  planId: string;
  startedAt: number;
  /** Billing anchor instant, for billing-anchored resets. */
  anchorAt: number;
  /** The version of planId it is on (null: the plan's current) and its billing period, for migrations. */
  planVersion: number | null;
  periodStart: number | null;
  periodEnd: number | null;
  windows: PartWindow[];
}

export interface PartGrant {
  id: string;
  featureKey: string;
  mode: "add" | "replace";
  /** As approved: region groups are expanded when composed, with the catalog's groups. */
  spec: EntitlementSpec;
  from: number | null;
  until: number | null;
}

export interface CustomerPart {
  /** 3 since plan versions (subscriptions carry their version and period); 2 before, read only from history. */
  format: 3;
  customerId: string;
  /** customers.rev: grows with every write to this customer. */
  rev: number;
  /** The catalog revision read together with the part: it is never composed with an older catalog. */
  catalogRev: number;
  compiledAt: number;
  residency: Residency | null;
  /** Shard meters its consumes spread over (customers.meter_shards, domain/leases.ts); absent: 1, one meter. */
  meterShards?: number;
  /** In id order; the composer orders them by precedence. */
  subscriptions: PartSubscription[];
  /** Approved grants in precedence order (creation, then id). */
  grants: PartGrant[];
}

/** What a part is compiled from: the customer's own rows and the catalog revision of the same read. */
export interface PartRows {
  customer: { id: string; residency: Residency | null; rev: number; meterShards?: number };
  catalogRev: number;
  subscriptions: SubscriptionRow[];
  grants: GrantRow[];
}

export function compilePart(rows: PartRows, compiledAt: number): CustomerPart {
  const subscriptions = [...rows.subscriptions]
    .sort((a, b) => compareIds(a.id, b.id))
    .map((sub) => ({
      id: sub.id,
      planId: sub.planId,
      startedAt: sub.startedAt,
      anchorAt: sub.billingAnchor ?? sub.currentPeriodStart ?? sub.startedAt,
      planVersion: sub.planVersion ?? null,
      periodStart: sub.currentPeriodStart,
      periodEnd: sub.currentPeriodEnd,
      windows: subscriptionWindows(sub),
    }));
  const grants = [...rows.grants]
    .sort((a, b) => a.createdAt - b.createdAt || compareIds(a.id, b.id))
    .map((g) => ({
      id: g.id,
      featureKey: g.featureKey,
      mode: g.mode,
      spec: g.spec,
      from: g.startsAt,
      until: g.expiresAt,
    }));
  return {
    format: 3,
    customerId: rows.customer.id,
    rev: rows.customer.rev,
    catalogRev: rows.catalogRev,
    compiledAt,
    residency: rows.customer.residency,
    ...shardsField(rows.customer.meterShards),
    subscriptions,
    grants,
  };
}

/** A parsed KV or history value that is a customer part (and not an older snapshot format or a mark). */
export function isCustomerPart(v: unknown, formats: readonly number[] = [3]): v is CustomerPart {
  return (
    typeof v === "object" &&
    v !== null &&
    formats.includes((v as CustomerPart).format) &&
    typeof (v as CustomerPart).rev === "number" &&
    typeof (v as CustomerPart).catalogRev === "number" &&
    Array.isArray((v as CustomerPart).subscriptions) &&
    Array.isArray((v as CustomerPart).grants)
  );
}
