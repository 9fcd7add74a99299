// Production analytics: one Workers Analytics Engine data point per check and consume. writeDataPoint
// is non-blocking (no await, no waitUntil: the runtime sends the points after the response), accepts
// up to 20 blobs, 20 doubles and one index of at most 96 bytes, and 250 points per invocation; a
// request writes one. The layout (docs/analytics.md, "Data point layout"), which the SQL of
// engine-reader.ts reads back:
//   index1   feature key (the sampling key: Analytics Engine samples per index, so each feature keeps
//            its own weights, _sample_interval)
//   blob1    kind: "check" | "consume"
//   blob2    feature key
//   blob3    customer id
//   blob4    base plan id ('' none)
//   blob5    country ('' unknown)
//   blob6    reason (ok, not_entitled, limit_reached, ...)
//   blob7    entity id inside the customer ('' none; docs/model.md, Entities)
//   blob8    deniedBy: seat | entity_limit ('' none)
//   double1  allowed: 1 | 0
//   double2  quantity (units asked for by a check, units consumed)
import type { AnalyticsPoint, AnalyticsSink, PointKind, SinkIO } from "./points";

/** Analytics Engine's limit on an index. */
const MAX_INDEX_BYTES = 96;

/** The data point of one check or consume. */
export function dataPointOf(kind: PointKind, p: AnalyticsPoint): AnalyticsEngineDataPoint {
  return {
    indexes: [p.feature.slice(0, MAX_INDEX_BYTES)],
    blobs: [kind, p.feature, p.customerId, p.plan, p.country, p.reason, p.entityId, p.deniedBy],
    doubles: [p.allowed ? 1 : 0, p.quantity],
  };
}

function write(kind: PointKind, p: AnalyticsPoint, io: SinkIO): void {
  try {
    io.env.ANALYTICS?.writeDataPoint(dataPointOf(kind, p));
  } catch (err) {
    // A point over a limit is lost, the request is not.
    console.warn(JSON.stringify({ msg: "analytics point not written", kind, feature: p.feature, error: String(err) }));
  }
}

export const engineSink: AnalyticsSink = {
  check: (p, io) => write("check", p, io),
  consume: (p, io) => write("consume", p, io),
};
