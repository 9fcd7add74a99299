// What analytics record: one point per check and per consume, handed to a sink that never blocks the
// request (Analytics Engine's writeDataPoint returns at once; the local sink only adds to counters and
// flushes them later in waitUntil). Every dimension comes from a bounded set (catalog features and
// plans, ISO countries, the reason enum), which is what keeps the local rollups bounded; the customer
// id and the entity id are the open dimensions: only the per-customer table (the customer) and Analytics
// Engine (both) keep them.
import type { Env } from "../env";
import type { DenialDimension, DenialRow, FeatureActivity, UsageBucket } from "../store/analytics";

export type PointKind = "check" | "consume";

export interface AnalyticsPoint {
  /** The instant of the decision (the worker's clock), ms. */
  at: number;
  feature: string;
  customerId: string;
  /** The customer's base plan when it was decided ('' for none: domain/base-plan.ts). */
  plan: string;
  /** ISO 3166-1 alpha-2, '' when unknown. */
  country: string;
  allowed: boolean;
  reason: string;
  /** Units asked for (a check's quantity, default 1) or consumed. */
  quantity: number;
  /** The entity inside the customer ('' none): unbounded like the customer id, so only Analytics Engine keeps it. */
  entityId: string;
  /** Which bound of the entity denied ('' none: the customer's, or allowed). */
  deniedBy: string;
}

/** What a sink may use: the request's bindings, and its waitUntil (absent outside a request). */
export interface SinkIO {
  env: Env;
  waitUntil?: (p: Promise<unknown>) => void;
}

/** The one interface of every analytics backend. Both methods return at once and never throw. */
export interface AnalyticsSink {
  check(point: AnalyticsPoint, io: SinkIO): void;
  consume(point: AnalyticsPoint, io: SinkIO): void;
}

/** Analytics off: nothing is recorded. */
export const noSink: AnalyticsSink = { check() {}, consume() {} };

/** Where the analytics endpoints read points back (analytics/readers.ts). */
export interface PointReader {
  activity(from: number, to: number): Promise<Map<string, FeatureActivity>>;
  usage(feature: string, bucketMs: number, from: number, to: number): Promise<UsageBucket[]>;
  denials(by: DenialDimension, from: number, to: number, limit: number): Promise<DenialRow[]>;
}
