// The entitlement model as plain data. Nothing here touches a binding or the clock.
// Instants are milliseconds since the Unix epoch (UTC) everywhere inside Tollgate;
// they become ISO-8601 strings only at the HTTP edge.

export type FeatureType = "boolean" | "metered" | "config" | "credits" | "seats";
/** Features with a counter in the meter: metered units, and credit balances (docs/model.md "Credits"). */
export const isCounted = (type: string | undefined): boolean => type === "metered" || type === "credits";
/** Features whose entitlement has a `limit`: counted ones, and seats (the number of seats; docs/model.md "Entities"). */
export const hasLimit = (type: string | undefined): boolean => isCounted(type) || type === "seats";
/** A metered feature's draw on a credit balance: each unit costs `cost` credits of the credits feature `credits`. */
export interface CreditCost {
  credits: string;
  cost: number;
}
export type ResetPeriod = "none" | "hour" | "day" | "week" | "month" | "year";
export type ResetAnchor = "calendar" | "billing";
export type OveragePolicy = "block" | "allow";
export type FailurePolicy = "closed" | "open";
export type SubscriptionStatus = "trialing" | "active" | "past_due" | "canceled" | "expired";
export type Residency = "eu" | "fedramp";
/** API-key scopes. `sign` mints entitlement tokens and decision assertions (trusted servers, never browsers). */
export const SCOPES = ["check", "usage", "sign", "admin"] as const;
export type Scope = (typeof SCOPES)[number];
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Every reason a check can answer with. A denial is data (200), never an HTTP error. */
export const REASONS = [
  "ok",
  "unknown_customer",
  "unknown_feature",
  "not_entitled",
  "subscription_inactive",
  "trial_expired",
  "grant_expired",
  "region_blocked",
  "role_denied",
  "limit_reached",
] as const;
export type Reason = (typeof REASONS)[number];

/** Why a source stopped granting: the reason a check gives when nothing else grants the feature. */
export type LapseReason = "subscription_inactive" | "trial_expired" | "grant_expired";

/**
 * What a plan, add-on or grant gives for one feature. Region rules name ISO 3166-1 alpha-2
 * countries or region groups (expanded by the compiler). `null` limit means unlimited.
 */
export interface EntitlementSpec {
  enabled: boolean;
  limit?: number | null;
  reset?: ResetPeriod;
  anchor?: ResetAnchor;
  overage?: OveragePolicy;
  /** With overage "allow": at most this many units beyond the limit (absent: no cap). */
  overageCap?: number | null;
  value?: Json;
  roles?: string[] | null;
  regions?: { allow?: string[]; deny?: string[] } | null;
  /**
   * Metered and credits: unused allowance carries into the next `periods` periods, the carried
   * balance at most `max`; drawn before the new period's allowance (docs/model.md, Rollover).
   */
  rollover?: { max: number; periods: number } | null;
  /**
   * Grants of a credits feature only: `limit` credits once, for the grant's window, instead of more
   * per period: a top-up (domain/credits.ts), drawn before the period's allowance.
   */
  topUp?: boolean;
  /**
   * Metered and credits: each entity (user, seat, device inside the customer) may use at most `limit` units
   * per `reset` period (default: the entitlement's), on top of the customer's pooled limit (docs/model.md, Entities).
   */
  perEntity?: { limit: number; reset?: ResetPeriod } | null;
}

/** A compiled entitlement: region groups expanded to country codes, defaults filled in. */
export interface CompiledSpec extends Omit<EntitlementSpec, "roles" | "regions" | "perEntity"> {
  /** With its reset filled in. */
  perEntity?: { limit: number; reset: ResetPeriod };
  roles?: string[];
  allow?: string[];
  deny?: string[];
}

export type SourceKind = "plan" | "addon" | "grant";

/**
 * One thing that grants a feature to the customer during a window [from, until).
 * Sources are stored in precedence order: base plan, add-ons (by start), grants (by creation).
 */
export interface Source {
  kind: SourceKind;
  /** Plan id for plan/add-on sources, grant id for grants. */
  id: string;
  /** The subscription behind a plan/add-on source. */
  subscriptionId?: string;
  /** The plan version a plan/add-on source comes from (domain/plan-versions.ts). */
  planVersion?: number;
  /** "add" combines with what earlier sources give; "replace" discards it. Plans always add. */
  mode: "add" | "replace";
  from: number | null;
  until: number | null;
  /**
   * The reason to report once `until` has passed (or the source is inactive from the start); null when
   * the window closes because a scheduled plan change replaced it (that is not a lapse).
   */
  lapse: LapseReason | null;
  /** Billing anchor instant of the subscription, for billing-anchored resets. */
  anchorAt?: number | null;
  spec: CompiledSpec;
}

export interface SnapshotFeature {
  type: FeatureType;
  failurePolicy: FailurePolicy;
  /** Whole units only (metered). */
  integer?: boolean;
  /** Metered: each unit also draws this many credits from a credits feature's balance. */
  creditCost?: CreditCost;
  /** An entity's check or usage of this feature needs a seat of this seats feature (docs/model.md, Entities). */
  seat?: string;
  sources: Source[];
}

/**
 * Everything needed to answer any check for one customer without another read.
 * Every catalog feature is present (with no sources when the customer has nothing of it),
 * so "unknown_feature" and "not_entitled" can be told apart from the snapshot alone.
 */
export interface Snapshot {
  format: 1;
  customerId: string;
  /** customerRev + catalogRev: the number clients have always seen (see domain/version.ts). */
  version: number;
  /** The customer's revision (customers.rev) this snapshot holds. */
  customerRev: number;
  /** The catalog revision this snapshot holds. */
  catalogRev: number;
  compiledAt: number;
  residency: Residency | null;
  /** Shard meters the customer's consumes spread over (domain/leases.ts); absent: one meter. */
  meterShards?: number;
  features: Record<string, SnapshotFeature>;
}

/** The request context of a check. */
export interface CheckContext {
  feature: string;
  /** The user, seat or device inside the customer the check is for (docs/model.md, Entities). */
  entityId?: string;
  role?: string;
  country?: string;
  quantity?: number;
}

/** The effective entitlement of one feature at one instant, before usage is applied. */
export interface Effective {
  spec: CompiledSpec;
  /** The sources that contributed, in precedence order. */
  sources: Source[];
  /** The billing anchor of the first contributing subscription, if any. */
  anchorAt: number | null;
  /** Credits: the top-ups open now, in the order they are drawn (soonest expiry first). Absent: none. */
  topUps?: TopUp[];
}

/** A top-up grant of credits: `amount` once, usable until `until` (null: no expiry). */
export interface TopUp {
  id: string;
  amount: number;
  /** Its window's start (0: from its creation); the ledger files its draws under [from, until). */
  from: number;
  until: number | null;
}

/** The outcome of evaluating a check, in internal units (ms instants). */
export interface Evaluation {
  allowed: boolean;
  reason: Reason;
  feature: string;
  type?: FeatureType;
  value?: Json;
  limit?: number | null;
  reset?: ResetPeriod;
  used?: number;
  remaining?: number | null;
  /** How old `used` is (0: the meter's answer; else the isolate's usage summary: domain/usage-summary.ts). */
  usageAgeMs?: number;
  periodStart?: number | null;
  resetsAt?: number | null;
  /** When this answer may change because a time window opens or closes. */
  expiresAt?: number | null;
  /** The effective entitlement, kept for metered follow-ups (usage, overage). */
  effective?: Effective;
  /** A metered feature with a credit cost: the balance it draws from (domain/credits.ts). */
  credits?: CreditBalance;
  /** A credits feature with open top-ups: the credits left in them (counted in `remaining`). */
  topUpRemaining?: number;
  /** With a rollover: what earlier periods carried over and is left (counted in `remaining`, drawn first). */
  rolledOver?: number;
  /** A check for an entity: its seat and its own limit (`remaining` is the smaller of its and the customer's). */
  entity?: EntityView;
  /** Which bound denied a check for an entity: its seat, or its per-entity limit (absent: the customer's). */
  deniedBy?: DeniedBy;
}

/** What denied an entity's check or usage when the customer's own terms would allow it. */
export type DeniedBy = "seat" | "entity_limit";

/**
 * What a check or consume for one entity says of it: the seat it holds (when the feature needs one) and
 * its own usage against its per-entity limit (when the entitlement has one), in internal units.
 */
export interface EntityView {
  id: string;
  /** The seats feature the feature needs, and whether the entity holds one of its seats. */
  seat?: { feature: string; held: boolean };
  limit?: number;
  used?: number;
  remaining?: number;
  resetsAt?: number | null;
}

/** The credit balance a check or consume of a feature with a credit cost draws from. */
export interface CreditBalance {
  feature: string;
  /** Credits one unit of the checked feature costs. */
  cost: number;
  limit: number | null;
  used: number;
  /** What is left of the period's allowance and every open top-up together. */
  remaining: number | null;
  /** Credits left in open top-ups (drawn before the period's allowance). */
  topUpRemaining?: number;
}

/** A plan or add-on that would allow a denied check (only when the check asks: `"include": ["upgrade"]`). */
export interface UpgradeHint {
  planId: string;
  kind: "base" | "addon";
  /** Metered: the limit the feature would have with it (null: unlimited). */
  limit?: number | null;
}

/**
 * A decision as clients see it (instants as ISO-8601): the answer of POST /v1/check. Defined here, with no
 * binding types, so the worker (src/check-path.ts) and the client (src/client) share one contract.
 */
export interface Decision {
  allowed: boolean;
  reason: Reason;
  customerId: string;
  feature: string;
  type?: FeatureType;
  value?: Json;
  limit?: number | null;
  used?: number;
  remaining?: number | null;
  /** How old `used` is: 0 when the meter was asked, else the age of this isolate's usage summary. */
  usageAgeMs?: number;
  resetsAt?: string | null;
  expiresAt?: string | null;
  snapshotVersion: number;
  /** The same snapshot as a version token, "<customer rev>.<catalog rev>" (domain/version.ts). */
  version: string;
  snapshotAgeMs: number;
  evaluatedAt: string;
  degraded?: boolean;
  /** Why a degraded answer is degraded: the stores failed, or the isolate's D1 read-through budget was spent. */
  degradedReason?: "stores_unavailable" | "read_through_limited";
  failurePolicy?: "open" | "closed";
  /** A metered feature with a credit cost: the balance it draws from, which must fit too. */
  credits?: CreditBalance;
  /** A credits feature with open top-ups: the credits left in them (counted in `remaining`). */
  topUpRemaining?: number;
  /** With a rollover: what earlier periods carried over and is left (counted in `remaining`, drawn first). */
  rolledOver?: number;
  /** A check for an entity: its id, seat and own limit (`remaining` above is the smaller of its and the customer's). */
  entity?: Omit<EntityView, "resetsAt"> & { resetsAt?: string | null };
  /** Which bound denied a check for an entity: its seat, or its per-entity limit (absent: the customer's). */
  deniedBy?: DeniedBy;
  /** With `"include": ["upgrade"]`, on a not_entitled or limit_reached denial: what would allow it, lowest tier first. */
  upgrade?: UpgradeHint[];
}
