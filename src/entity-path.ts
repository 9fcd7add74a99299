// Entities inside a customer (docs/model.md, Entities), free of HTTP: assign or release a seat of a seats
// feature to a named entity, and read an entity (its seats and per-entity usage). The routes
// (routes/entities.ts) and the service-binding entrypoint (rpc/entrypoint.ts) both call these. The
// decision is the customer's meter's (meter/entities.ts): one RPC, on terms at least as new as it has seen.
import { type CheckDeps, requireSnapshot, termsOf } from "./check-path";
import { evaluate, resolveFeature } from "./domain/evaluate";
import { own } from "./domain/records";
import { iso, isoOrNull } from "./domain/time";
import type { LapseReason, Snapshot } from "./domain/types";
import type { MinVersion } from "./domain/version";
import { Problem } from "./http/problem";
import type { SeatAnswer } from "./meter/protocol";
import { entityReads } from "./meter/terms";
import type { TermsVersion } from "./meter/terms-version";
import { invalid } from "./usage-path";

export interface SeatInput {
  customerId: string;
  entityId: string;
  /** The seats feature. */
  feature: string;
  minVersion?: MinVersion;
}

/** What assign and release answer (POST /v1/entities/{customerId}/{entityId}/assign, /release). */
export type SeatBody = Omit<SeatAnswer, "reason"> & {
  customerId: string;
  entityId: string;
  feature: string;
  /** Why no seat was assigned: not_entitled (or the lapse that ended the entitlement), or limit_reached. */
  reason?: SeatAnswer["reason"] | LapseReason;
  snapshotVersion: number;
};

/** Assigns the entity a seat of the feature when one is free; holding one already is a no-op. */
export function assignSeat(deps: CheckDeps, input: SeatInput): Promise<SeatBody> {
  return seatCall(deps, input, "assignSeat");
}

/** Frees the entity's seat of the feature (a no-op when it holds none): its checks of features needing it deny. */
export function releaseSeat(deps: CheckDeps, input: SeatInput): Promise<SeatBody> {
  return seatCall(deps, input, "releaseSeat");
}

async function seatCall(deps: CheckDeps, input: SeatInput, how: "assignSeat" | "releaseSeat"): Promise<SeatBody> {
  const now = deps.services.clock.now();
  const send = async (minVersion?: MinVersion | TermsVersion) => {
    const { snapshot } = await requireSnapshot(deps, input.customerId, now, minVersion);
    const { limit, entitled, lapse } = seatTerms(snapshot, input.feature, now);
    const call = {
      feature: input.feature,
      entityId: input.entityId,
      limit,
      entitled,
      termsVersion: termsOf(snapshot),
      now,
    };
    return { snapshot, lapse, result: await deps.services.meter[how](deps.env, snapshot, call) };
  };
  let sent = await send(input.minVersion);
  // The meter has seen newer terms (a downgrade took seats away): decide once more on them.
  if (!sent.result.ok && sent.result.newest) sent = await send(sent.result.newest);
  const { snapshot, lapse, result } = sent;
  if (!result.ok) throw new Problem("conflict", result.detail, { code: result.error });
  const { reason, ...a } = result.answer;
  return {
    customerId: snapshot.customerId,
    entityId: input.entityId,
    feature: input.feature,
    ...a,
    ...(reason ? { reason: reason === "not_entitled" ? lapse : reason } : {}),
    snapshotVersion: snapshot.version,
  };
}

/** A seats feature's seats for the customer now: how many (null: unlimited), and whether it has them at all. */
function seatTerms(snapshot: Snapshot, feature: string, now: number) {
  const f = own(snapshot.features, feature);
  if (!f) throw new Problem("not-found", `Unknown feature '${feature}'.`);
  if (f.type !== "seats")
    throw invalid(
      `'${feature}' is a ${f.type} feature; seats are assigned of seats features.`,
      "feature",
      "not a seats feature",
    );
  const { effective, lapse } = resolveFeature(f, now);
  const entitled = !!effective?.spec.enabled;
  const denial: "not_entitled" | LapseReason = lapse ?? "not_entitled";
  return { entitled, limit: entitled ? (effective?.spec.limit ?? null) : 0, lapse: denial };
}

/** GET /v1/entities/{customerId}/{entityId}: the seats the entity holds, and its usage against each per-entity limit. */
export async function readEntity(deps: CheckDeps, customerId: string, entityId: string, minVersion?: MinVersion) {
  const now = deps.services.clock.now();
  const { snapshot } = await requireSnapshot(deps, customerId, now, minVersion);
  const evs = Object.keys(snapshot.features).map((feature) => evaluate(snapshot, { feature }, now));
  const { limits } = entityReads(snapshot, evs, 1, now);
  const read = await deps.services.meter.entity(deps.env, snapshot, entityId, limits, now);
  const usage = limits.map((l) => {
    const u = read.usage[l.feature] ?? { used: 0, resetsAt: null };
    const remaining = Math.max(0, l.limit - u.used);
    return { feature: l.feature, used: u.used, limit: l.limit, remaining, resetsAt: isoOrNull(u.resetsAt) };
  });
  return {
    customerId,
    entityId,
    seats: read.seats.map((s) => ({ feature: s.feature, assignedAt: iso(s.assignedAt) })),
    usage,
    evaluatedAt: iso(now),
    snapshotVersion: snapshot.version,
  };
}
