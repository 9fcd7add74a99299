// The check path in one place: snapshot (isolate cache -> KV -> D1) -> evaluate (pure) ->
// [metered: the customer's usage from its meter] -> the wire decision. Routes only validate and call.
import { applyUsage, evaluate } from "./domain/evaluate";
import { iso } from "./domain/time";
import type { Decision, Evaluation, Snapshot } from "./domain/types";
import type { Env } from "./env";
import { Problem } from "./http/problem";
import type { Services } from "./services";
import { type SnapshotRead, SnapshotUnavailable, VersionNotYetAvailable } from "./store/snapshots";

export interface CheckInput {
  customerId: string;
  feature: string;
  role?: string;
  country?: string;
  quantity?: number;
  minVersion?: number;
}

export type { Decision };

export interface DecideDeps {
  env: Env;
  services: Services;
  waitUntil?: (p: Promise<unknown>) => void;
}

export async function readSnapshot(
  deps: DecideDeps,
  customerId: string,
  now: number,
  minVersion?: number,
): Promise<SnapshotRead> {
  try {
    return await deps.services.snapshots.read(deps.env, customerId, now, { minVersion, waitUntil: deps.waitUntil });
  } catch (err) {
    if (err instanceof VersionNotYetAvailable) {
      throw new Problem(
        "conflict",
        `Snapshot version ${minVersion} does not exist yet; the newest is ${err.available}.`,
        { available: err.available },
      );
    }
    throw err;
  }
}

export async function decide(deps: DecideDeps, input: CheckInput): Promise<Decision> {
  const now = deps.services.clock.now();
  let read: SnapshotRead;
  try {
    read = await readSnapshot(deps, input.customerId, now, input.minVersion);
  } catch (err) {
    if (err instanceof SnapshotUnavailable) return failurePolicyDecision(deps.services, input, now);
    throw err;
  }
  const snapshot = read.snapshot;
  if (!snapshot)
    return {
      allowed: false,
      reason: "unknown_customer",
      customerId: input.customerId,
      feature: input.feature,
      snapshotVersion: 0,
      snapshotAgeMs: 0,
      evaluatedAt: iso(now),
    };
  let ev = evaluate(snapshot, input, now);
  if (ev.type === "metered" && ev.allowed) {
    const items = [{ feature: input.feature, period: periodOf(ev) }];
    const usage = await deps.services.meter.peek(deps.env, snapshot, items, now);
    const u = usage[input.feature];
    ev = applyUsage(ev, u?.used ?? 0, input.quantity ?? 1, u?.reserved ?? 0);
  }
  return toDecision(snapshot, ev, now, read.degraded);
}

/** Every feature of the customer, evaluated in one context (for rendering a UI in one call). */
export async function decideAll(deps: DecideDeps, input: Omit<CheckInput, "feature" | "quantity">) {
  const now = deps.services.clock.now();
  const read = await readSnapshot(deps, input.customerId, now, input.minVersion);
  const snapshot = read.snapshot;
  if (!snapshot) return null;
  const evs = Object.keys(snapshot.features).map((feature) => evaluate(snapshot, { ...input, feature }, now));
  const metered = evs.filter((e) => e.type === "metered" && e.effective);
  let usage: Record<string, { used: number; reserved: number }> = {};
  if (metered.length > 0) {
    const items = metered.map((e) => ({ feature: e.feature, period: periodOf(e) }));
    usage = await deps.services.meter.peek(deps.env, snapshot, items, now);
  }
  const features: Record<
    string,
    Omit<Decision, "customerId" | "snapshotVersion" | "snapshotAgeMs" | "evaluatedAt">
  > = {};
  for (let ev of evs) {
    if (ev.type === "metered") ev = applyUsage(ev, usage[ev.feature]?.used ?? 0, 1, usage[ev.feature]?.reserved ?? 0);
    const {
      customerId: _c,
      snapshotVersion: _v,
      snapshotAgeMs: _a,
      evaluatedAt: _e,
      feature: _f,
      ...rest
    } = toDecision(snapshot, ev, now, false);
    features[ev.feature] = rest as (typeof features)[string];
  }
  return {
    customerId: snapshot.customerId,
    snapshotVersion: snapshot.version,
    snapshotAgeMs: Math.max(0, now - snapshot.compiledAt),
    evaluatedAt: iso(now),
    ...(read.degraded ? { degraded: true } : {}),
    features,
  };
}

export function toDecision(snapshot: Snapshot, ev: Evaluation, now: number, degraded: boolean): Decision {
  const d: Decision = {
    allowed: ev.allowed,
    reason: ev.reason,
    customerId: snapshot.customerId,
    feature: ev.feature,
  } as Decision;
  if (ev.type) d.type = ev.type;
  if (ev.value !== undefined) d.value = ev.value;
  if (ev.type === "metered" && ev.effective) {
    d.limit = ev.limit ?? null;
    if (ev.used !== undefined) {
      d.used = ev.used;
      d.remaining = ev.remaining ?? null;
    }
    d.resetsAt = ev.resetsAt == null ? null : iso(ev.resetsAt);
  }
  if (ev.expiresAt !== undefined) d.expiresAt = ev.expiresAt === null ? null : iso(ev.expiresAt);
  d.snapshotVersion = snapshot.version;
  d.snapshotAgeMs = Math.max(0, now - snapshot.compiledAt);
  d.evaluatedAt = iso(now);
  if (degraded) d.degraded = true;
  return d;
}

/** Neither KV nor D1 answered and no copy was in the isolate: the feature's failure policy decides. */
function failurePolicyDecision(services: Services, input: CheckInput, now: number): Decision {
  const policy = services.snapshots.failurePolicies.get(input.feature) ?? "closed";
  return {
    allowed: policy === "open",
    reason: policy === "open" ? "ok" : "not_entitled",
    customerId: input.customerId,
    feature: input.feature,
    snapshotVersion: 0,
    snapshotAgeMs: 0,
    evaluatedAt: iso(now),
    degraded: true,
    failurePolicy: policy,
  };
}

const periodOf = (ev: Evaluation) => ({ start: ev.periodStart ?? 0, end: ev.resetsAt ?? null });
