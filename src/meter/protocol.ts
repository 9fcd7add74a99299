// The meter's RPC contract: what the Worker sends to a customer's Durable Object and what it answers.
// In its own file so the Worker side (meter/client.ts, meter/terms.ts, routes, the bench counters)
// depends on the shape of the calls, not on the Durable Object class that implements them.
// Instants are epoch milliseconds; the routes turn them into ISO strings for the wire.
//
// Errors do not cross RPC with their properties intact, so refusals come back as values
// (MeterResult { ok: false, error }) and the routes map them to problems (routes/usage.ts).
import type { Allowance } from "../domain/evaluate";
import type { ShardReport } from "../domain/leases";
import type { DeniedBy, EntityView, ResetAnchor, ResetPeriod, Residency, TopUp } from "../domain/types";
import type { TermsVersion } from "./terms-version";

export interface MeterPeriod {
  start: number;
  end: number | null;
}

/** What the Worker sends: the decision's inputs, computed from the customer's snapshot. */
export interface UsageCall {
  customerId: string;
  feature: string;
  amount: number;
  mode: "consume" | "record";
  idempotencyKey: string | null;
  /** Canonical form of the request: the same key with another fingerprint is a conflict. */
  fingerprint: string;
  /**
   * The version of the snapshot the allowance and terms were read from (Snapshot.customerRev and
   * catalogRev). Older than the newest the meter has seen (either part lower): refused with
   * stale_terms, never decided (meter/terms-version.ts).
   */
  termsVersion: TermsVersion;
  allowance: Allowance;
  /** Whether the customer is entitled to the feature at all (a record is kept even when not). */
  entitled: boolean;
  /**
   * How the feature's periods are cut. The meter keeps a counter per feature and definition, and
   * computes the current period itself (at the latest instant it has been told, so a caller whose
   * clock is behind is served in the meter's current period).
   */
  terms: PeriodTerms;
  /** When the usage happened (a record with a timestamp; else `now`). */
  occurredAt: number;
  now: number;
  /** A gauge (reset "none") takes negative amounts and never goes below zero. */
  gauge: boolean;
  /** Set when the customer is sharded (meter/client.ts routes): this meter is shard `shard` of `shards`. */
  lease?: LeaseRoute;
  /** The feature has a credit cost: the same decision draws `amount * cost` from this balance (domain/credits.ts). */
  credit?: CreditCall;
  /** A credits feature: its open top-ups, drawn first in this order (meter/top-ups.ts). */
  topUps?: TopUp[];
  /** The call is for an entity inside the customer: its seat and per-entity limits decide too (meter/entities.ts). */
  entity?: EntityCall;
}

/** An entity's part of a meter call (docs/model.md, Entities). */
export interface EntityCall {
  id: string;
  /** The seats feature of which the entity must hold a seat (absent: none needed). */
  seat?: string;
  /** Per-entity limits held in the same decision: the call's feature's, and its credit balance's. */
  limits: EntityLimit[];
}

/** A per-entity limit: at most `limit` units of `feature` per period of `terms`, for each entity. */
export interface EntityLimit {
  feature: string;
  limit: number;
  terms: PeriodTerms;
}

/** What an answer says of the call's entity: its seat, and its usage of the call's feature against its own limit. */
export type EntityAnswer = EntityView;

/** Assign or release a seat of a seats feature, for a named entity (POST /v1/entities/{customerId}/{entityId}/assign). */
export interface SeatCall {
  customerId: string;
  feature: string;
  entityId: string;
  /** Seats the customer has (null: unlimited). */
  limit: number | null;
  entitled: boolean;
  termsVersion: TermsVersion;
  now: number;
}

export interface SeatAnswer {
  assigned: boolean;
  /** Why a seat was not assigned. */
  reason?: "not_entitled" | "limit_reached";
  /** Seats assigned now, to any entity. */
  used: number;
  limit: number | null;
  remaining: number | null;
}

export type SeatResult =
  | { ok: true; answer: SeatAnswer }
  | { ok: false; error: "stale_terms"; detail: string; newest?: TermsVersion };

/** An entity as its meter holds it: the seats it holds, and its usage against each per-entity limit asked about. */
export interface EntityRead {
  seats: { feature: string; assignedAt: number }[];
  usage: Record<string, { used: number; periodStart: number; resetsAt: number | null }>;
}

/** Which shard of a sharded customer a call reached, and where its coordinator lives. */
export interface LeaseRoute {
  shard: number;
  shards: number;
  residency: Residency | null;
}

/** One lease: a (feature, period definition, period) of one customer. */
export interface LeaseKey {
  feature: string;
  definition: string;
  periodStart: number;
}

/** A shard asks the coordinator for `need` more (meter/quota-coordinator.ts). */
export interface RenewCall {
  customerId: string;
  route: LeaseRoute;
  key: LeaseKey;
  /** The allowance's lease bound under the caller's terms (domain/leases.ts leaseBound). */
  bound: number;
  report: ShardReport;
  need: number;
}

/** What the coordinator grants (0: nothing, even after recalling), and what the shard may say of the rest. */
export interface RenewAnswer {
  granted: number;
  /** Allowance no shard holds, after this grant. */
  unleased: number;
  /** What the other shards had reported used. */
  othersUsed: number;
  /** Nothing granted, but other shards still hold unused allowance (taken again while the recall was out): ask again. */
  retry: boolean;
  /** Nothing granted, nothing unleased, and every shard has used what it holds, as far as they reported: all used. */
  exhausted: boolean;
}

/** A shard gives back what it did not use (lease expiry). */
export interface ReturnCall {
  customerId: string;
  route: LeaseRoute;
  key: LeaseKey;
  report: ShardReport;
}

/** The credit balance a consume or record draws from, with its terms as the snapshot gives them. */
export interface CreditCall {
  /** The credits feature. */
  feature: string;
  cost: number;
  entitled: boolean;
  allowance: Allowance;
  terms: PeriodTerms;
  /** Its open top-ups, drawn first in this order. */
  topUps?: TopUp[];
}

/** The credit balance after a call that drew from it. */
export interface CreditAnswer {
  feature: string;
  cost: number;
  /** Credits this call drew (0 when it was refused). */
  drawn: number;
  used: number;
  limit: number | null;
  remaining: number | null;
  overage: number;
  periodStart: number;
  resetsAt: number | null;
  /** Credits left in open top-ups (they are drawn before the period's allowance). */
  topUpRemaining?: number;
}

export interface UsageAnswer {
  allowed: boolean;
  reason: "ok" | "limit_reached" | "not_entitled";
  used: number;
  reserved: number;
  limit: number | null;
  remaining: number | null;
  periodStart: number;
  resetsAt: number | null;
  overage: number;
  replayed?: boolean;
  reservationId?: string;
  expiresAt?: number;
  settled?: number;
  /** Set on settle/release answers, whose requests do not name the feature. */
  feature?: string;
  /** The feature has a credit cost: the balance it drew from. */
  credits?: CreditAnswer;
  /** A credits feature with open top-ups: the credits left in them (`remaining` counts them too). */
  topUpRemaining?: number;
  /** A call for an entity: its seat and its own usage (`remaining` is the smaller of its and the customer's). */
  entity?: EntityAnswer;
  /** Which bound of an entity denied the call (absent: the customer's). */
  deniedBy?: DeniedBy;
}

export type MeterError =
  | "idempotency_conflict"
  | "reservation_not_found"
  | "reservation_closed"
  | "amount_exceeds_reservation"
  | "amount_not_whole"
  /** The call's terms are older than the newest the meter has seen: `newest` says which to read. */
  | "stale_terms";
export type MeterResult =
  | { ok: true; answer: UsageAnswer }
  | { ok: false; error: MeterError; detail: string; newest?: TermsVersion };

/** How a feature's period is computed (domain/periods.ts): kept with a reservation so settling needs no snapshot. */
export interface PeriodTerms {
  reset: ResetPeriod;
  anchor: ResetAnchor;
  anchorAt: number | null;
  /** Unused allowance carries over (meter/rollovers.ts): the rule, with the period's limit it applies to. */
  rollover?: RolloverTerms;
}

export interface RolloverTerms {
  max: number;
  periods: number;
  limit: number;
}

export interface ReserveCall extends Omit<UsageCall, "mode" | "occurredAt" | "gauge"> {
  ttlSeconds: number;
  /** The feature counts whole units: kept with the reservation, so a fractional settle is refused. */
  wholeUnits: boolean;
}

export interface SettleCall {
  customerId: string;
  reservationId: string;
  /** The actual amount to charge (settle only; at most the reserved amount). */
  amount?: number;
  now: number;
}

/** One feature a read asks about (a check, GET /v1/usage), with how its periods are cut. */
export interface PeekItem {
  feature: string;
  terms: PeriodTerms;
  /** A credits feature's open top-ups: the answer says what is left of them. */
  topUps?: TopUp[];
}

/** What a read asks of one entity: which seats it holds, its usage against per-entity limits. */
export interface EntityPeek {
  id: string;
  seats: string[];
  limits: EntityLimit[];
}

/** A read's extras: one entity, and how many seats of some seats features are assigned. */
export interface PeekExtra {
  entity?: EntityPeek;
  seatCounts?: string[];
}

/** A read's answer: each feature's usage, and the newest terms version the meter has seen. */
export interface PeekAnswer {
  usage: Record<string, FeatureUsage>;
  /** The entity asked about (PeekExtra): the seats it holds (by seats feature) and its usage (by feature). */
  entity?: {
    seats: Record<string, boolean>;
    /** By feature: its usage in its period, and what its open reservations hold. */
    used: Record<string, { used: number; reserved: number; resetsAt: number | null }>;
  };
  /** Seats assigned, by seats feature asked about. */
  seats?: Record<string, number>;
  /** Newer than the reader's snapshot (either part): the reader's terms are stale (check-path.ts re-reads). */
  termsVersion: TermsVersion;
}

/** A feature's usage of its current period; reserved units are held, not yet charged. */
export interface FeatureUsage {
  used: number;
  reserved: number;
  /** Left in the item's top-ups and carried balances (only when it has some), drawn before the period's. */
  topUpLeft?: number;
  /** Of which carried over from earlier periods (rollover). */
  rolledOver?: number;
}

export interface CounterView extends FeatureUsage {
  feature: string;
  /** The period definition the counter counts under (domain/periods.ts periodDefinition). */
  definition: string;
  periodStart: number;
  periodEnd: number | null;
}
