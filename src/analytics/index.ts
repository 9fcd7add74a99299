// The isolate's analytics: the sink the configuration names (config.ts, ANALYTICS_MODE), looked up per
// env object (a WeakMap hit on the hot path), and the one place a check or consume becomes a point.
import { configOf } from "../config";
import { basePlanOf } from "../domain/base-plan";
import type { Decision, Snapshot } from "../domain/types";
import type { Env } from "../env";
import { engineSink } from "./engine-sink";
import { DEFAULT_MAX_CELLS, LocalRollupSink } from "./local-sink";
import { type AnalyticsSink, noSink, type SinkIO } from "./points";

export type { AnalyticsPoint, AnalyticsSink, SinkIO } from "./points";

/** Reasons whose points are not recorded: their feature or customer id is whatever the caller sent, an unbounded dimension. */
const UNRECORDED = new Set(["unknown_feature", "unknown_customer"]);

/**
 * The base plan per composed snapshot: a warm check gets the same snapshot object, so the walk over its
 * features is paid once per snapshot, not per check. Read at the snapshot's first point: a plan that ends
 * while the snapshot is cached is relabelled when the customer's part next changes (the cron's write).
 */
const plans = new WeakMap<Snapshot, string>();
function planOf(snapshot: Snapshot, at: number): string {
  let plan = plans.get(snapshot);
  if (plan === undefined) {
    plan = basePlanOf(snapshot, at);
    plans.set(snapshot, plan);
  }
  return plan;
}

export class Analytics {
  /** One local sink per isolate, created on first use with the first env's flush interval. */
  #local: LocalRollupSink | undefined;
  sinkFor(env: Env): AnalyticsSink {
    const mode = configOf(env).analytics.mode;
    if (mode === "engine") return engineSink;
    if (mode === "local") return this.local(env);
    return noSink;
  }

  local(env: Env): LocalRollupSink {
    this.#local ??= new LocalRollupSink({ flushMs: configOf(env).analytics.flushMs, maxCells: DEFAULT_MAX_CELLS });
    return this.#local;
  }

  /** A check's point; nothing when there is no snapshot (a failure-policy answer) or a dimension is unbounded. */
  check(io: SinkIO, at: number, snapshot: Snapshot | null, d: Decision, country: string | undefined, quantity = 1) {
    if (!snapshot || UNRECORDED.has(d.reason)) return;
    this.sinkFor(io.env).check(
      {
        at,
        feature: d.feature,
        customerId: d.customerId,
        plan: planOf(snapshot, at),
        country: country ?? "",
        allowed: d.allowed,
        reason: d.reason,
        quantity,
        entityId: d.entity?.id ?? "",
        deniedBy: d.deniedBy ?? "",
      },
      io,
    );
  }

  /** A consume's point (POST /v1/usage, consume and record). */
  consume(
    io: SinkIO,
    at: number,
    snapshot: Snapshot,
    a: { feature: string; allowed: boolean; reason: string; entityId?: string; deniedBy?: string },
    country: string | undefined,
    quantity: number,
  ) {
    if (UNRECORDED.has(a.reason)) return;
    this.sinkFor(io.env).consume(
      {
        at,
        feature: a.feature,
        customerId: snapshot.customerId,
        plan: planOf(snapshot, at),
        country: country ?? "",
        allowed: a.allowed,
        reason: a.reason,
        quantity,
        entityId: a.entityId ?? "",
        deniedBy: a.deniedBy ?? "",
      },
      io,
    );
  }
}
