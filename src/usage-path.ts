// The usage path in one place, free of HTTP: snapshot (as the check path reads it) -> the feature's
// meter terms -> one RPC to the customer's meter, which decides -> the wire answer. The HTTP routes
// (routes/usage.ts) and the service-binding entrypoint (rpc/entrypoint.ts) both call these, so a
// consume answers the same whichever way it arrives. Refusals are thrown as Problems.
import { type CheckDeps, entityWire, requireSnapshot, termsOf } from "./check-path";
import { iso } from "./domain/time";
import type { Snapshot } from "./domain/types";
import type { MinVersion } from "./domain/version";
import { Problem, type ProblemSlug } from "./http/problem";
import type { CreditAnswer, EntityAnswer, MeterError, MeterResult, UsageAnswer } from "./meter/protocol";
import { checkAmount, creditCall, entityCall, type MeterTerms, meterTerms } from "./meter/terms";
import type { TermsVersion } from "./meter/terms-version";

/** How far in the future a recorded event's timestamp may lie (client clocks drift). */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface ConsumeInput {
  customerId: string;
  feature: string;
  amount: number;
  mode: "consume" | "record";
  /** record only: when the usage happened (ISO 8601). */
  timestamp?: string;
  idempotencyKey: string | null;
  minVersion?: MinVersion;
  /** The edge's country of the request, for its analytics point only (src/analytics/). */
  country?: string;
  /** The user, seat or device inside the customer (docs/model.md, Entities). */
  entityId?: string;
}

export interface ReserveInput {
  customerId: string;
  feature: string;
  amount: number;
  ttlSeconds: number;
  idempotencyKey: string | null;
  minVersion?: MinVersion;
  /** The user or seat inside the customer: its seat and per-entity limit decide too, and hold the units. */
  entityId?: string;
}

export interface CloseInput {
  customerId: string;
  reservationId: string;
  /** settle: the amount to charge. */
  amount?: number;
}

/** What every usage call answers: the meter's answer on the wire (instants as ISO strings). */
export type UsageBody = Omit<UsageAnswer, "resetsAt" | "expiresAt" | "periodStart" | "credits" | "entity"> & {
  credits?: Omit<CreditAnswer, "resetsAt" | "periodStart"> & { resetsAt: string | null };
  entity?: Omit<EntityAnswer, "resetsAt"> & { resetsAt?: string | null };
  customerId: string;
  feature: string;
  resetsAt: string | null;
  expiresAt?: string;
  snapshotVersion: number;
};

/** consume (atomic check-and-increment) or record (already happened, always counted). */
export async function consume(deps: CheckDeps, input: ConsumeInput): Promise<UsageBody> {
  const now = deps.services.clock.now();
  const occurredAt = occurredAtOf(input, now);
  const fingerprint = JSON.stringify([
    "usage",
    input.feature,
    input.amount,
    input.mode,
    input.timestamp ?? null,
    ...entityPart(input),
  ]);
  const { snapshot, t, result } = await meterDecision(deps, input, now, (snapshot, t, termsVersion) =>
    deps.services.meter.usage(deps.env, snapshot, {
      feature: input.feature,
      amount: input.amount,
      mode: input.mode,
      idempotencyKey: input.idempotencyKey,
      fingerprint,
      ...termsOfCall(t, termsVersion),
      occurredAt,
      now,
      gauge: t.gauge,
      credit: creditCall(snapshot, t, now),
      ...(t.topUps ? { topUps: t.topUps } : {}),
      entity: entityCall(snapshot, t, input.entityId, now),
    }),
  );
  if (result.ok) {
    // Its analytics point: a call that returns at once (the local sink writes in waitUntil).
    const reason = result.answer.reason === "not_entitled" && t.denial ? t.denial : result.answer.reason;
    const { allowed, deniedBy } = result.answer;
    const point = { feature: input.feature, allowed, reason, entityId: input.entityId, deniedBy };
    deps.services.analytics.consume(deps, now, snapshot, point, input.country, input.amount);
  }
  return answer(deps, now, snapshot, input.feature, result, t.denial);
}

/** A request's entity in its fingerprint: absent for the customer, so fingerprints from before entities still match. */
const entityPart = (input: { entityId?: string }): string[] => (input.entityId === undefined ? [] : [input.entityId]);

/** Hold units for work whose cost is known later. */
export async function reserve(deps: CheckDeps, input: ReserveInput): Promise<UsageBody> {
  const now = deps.services.clock.now();
  const fingerprint = JSON.stringify(["reserve", input.feature, input.amount, input.ttlSeconds, ...entityPart(input)]);
  await refuseCreditCost(deps, input, now);
  const { snapshot, t, result } = await meterDecision(deps, input, now, (snapshot, t, termsVersion) =>
    deps.services.meter.reserve(deps.env, snapshot, {
      feature: input.feature,
      amount: input.amount,
      ttlSeconds: input.ttlSeconds,
      idempotencyKey: input.idempotencyKey,
      fingerprint,
      ...termsOfCall(t, termsVersion),
      wholeUnits: t.feature.integer !== false,
      now,
      entity: entityCall(snapshot, t, input.entityId, now),
    }),
  );
  return answer(deps, now, snapshot, input.feature, result, t.denial);
}

/** settle (charge `amount`, free the rest) or release (charge nothing) a reservation. */
export async function closeReservation(
  deps: CheckDeps,
  how: "settle" | "release",
  input: CloseInput,
): Promise<UsageBody> {
  const now = deps.services.clock.now();
  const { snapshot } = await requireSnapshot(deps, input.customerId, now);
  const { reservationId, amount } = input;
  const result = await deps.services.meter[how](deps.env, snapshot, { reservationId, amount, now });
  // The request names the reservation; the meter's answer names its feature.
  return answer(deps, now, snapshot, result.ok ? (result.answer.feature ?? "") : "", result);
}

/**
 * Reservations hold units of one feature; a feature with a credit cost would need the balance held
 * too, which the meter does not do yet: refused, never half-held (docs/model.md, Credits).
 */
async function refuseCreditCost(deps: CheckDeps, input: ReserveInput, now: number): Promise<void> {
  const { snapshot } = await requireSnapshot(deps, input.customerId, now, input.minVersion);
  const f = Object.hasOwn(snapshot.features, input.feature) ? snapshot.features[input.feature] : undefined;
  if (f?.creditCost)
    throw invalid(
      `'${input.feature}' draws credits from '${f.creditCost.credits}'; reserve is not available for it, use consume.`,
      "feature",
      "has a credit cost",
    );
}

function occurredAtOf(input: ConsumeInput, now: number): number {
  if (input.timestamp === undefined) return now;
  if (input.mode !== "record") throw invalid("timestamp applies to mode 'record' only.", "timestamp", "record only");
  const at = Date.parse(input.timestamp);
  if (!Number.isFinite(at)) throw invalid("timestamp is not an ISO 8601 instant.", "timestamp", "not an instant");
  if (at > now + MAX_CLOCK_SKEW_MS) throw invalid("timestamp is in the future.", "timestamp", "in the future");
  return at;
}

/** What every deciding meter call carries of the terms: their version, the allowance, its period terms. */
const termsOfCall = (t: MeterTerms, termsVersion: TermsVersion) => ({
  termsVersion,
  allowance: t.allowance,
  entitled: t.entitled,
  terms: t.terms,
});

type MeterBody = { customerId: string; feature: string; amount: number; minVersion?: MinVersion };

/**
 * consume/record and reserve: the meter decides on terms at least as new as the newest it has seen
 * (meter/terms-version.ts). A call on older terms (this isolate's cached snapshot, from before a
 * downgrade another isolate or a write told the meter about) is refused with stale_terms: the
 * snapshot is read again with the meter's newest version as minVersion, past the caches, and the
 * call is made once more on its terms. A second refusal (yet another write in between) is a 409.
 */
async function meterDecision(
  deps: CheckDeps,
  body: MeterBody,
  now: number,
  send: (snapshot: Snapshot, t: MeterTerms, termsVersion: TermsVersion) => Promise<MeterResult>,
) {
  let { snapshot, t } = await termsFor(deps, body, now, body.minVersion);
  let result = await send(snapshot, t, termsOf(snapshot));
  if (!result.ok && result.error === "stale_terms" && result.newest) {
    ({ snapshot, t } = await termsFor(deps, body, now, result.newest));
    result = await send(snapshot, t, termsOf(snapshot));
  }
  // Decided on these terms: the meter knew of no newer customer revision, so the next consume may keep the part.
  if (result.ok) deps.services.snapshots.confirm(snapshot.customerId, snapshot.customerRev, now);
  return { snapshot, t, result };
}

/** The snapshot (at least `minVersion`) and the meter terms of the body's feature, its amount checked. */
async function termsFor(deps: CheckDeps, body: MeterBody, now: number, minVersion?: MinVersion) {
  const { snapshot } = await requireSnapshot(deps, body.customerId, now, minVersion, true);
  const t = meterTerms(snapshot, body.feature, now);
  checkAmount(t, body.amount);
  return { snapshot, t };
}

/** The meter's answer on the wire; the isolate's usage summary learns the counter from it (check-path.ts). */
function answer(
  deps: CheckDeps,
  now: number,
  snapshot: Snapshot,
  feature: string,
  result: MeterResult,
  denial: string | null = null,
): UsageBody {
  if (!result.ok) throw meterRefusal(result.error, result.detail);
  const { periodStart, credits: c, entity: e, ...a } = result.answer;
  if (feature) deps.services.usage.learn(snapshot.customerId, feature, a.used, a.reserved, now, periodStart);
  // The balance a credit cost drew from is a counter of its own: the summary learns it too.
  if (c) deps.services.usage.learn(snapshot.customerId, c.feature, c.used, 0, now, c.periodStart);
  return {
    customerId: snapshot.customerId,
    feature,
    ...a,
    reason: a.reason === "not_entitled" && denial ? (denial as UsageAnswer["reason"]) : a.reason,
    resetsAt: a.resetsAt === null ? null : iso(a.resetsAt),
    ...(c ? { credits: creditsWire(c) } : {}),
    ...(e ? { entity: entityWire(e) } : {}),
    expiresAt: a.expiresAt === undefined ? undefined : iso(a.expiresAt),
    snapshotVersion: snapshot.version,
  };
}

/** The balance part of a usage answer on the wire: instants as ISO strings, the period's start left out. */
function creditsWire({ periodStart: _p, resetsAt, ...c }: CreditAnswer) {
  return { ...c, resetsAt: resetsAt === null ? null : iso(resetsAt) };
}

/** A field error, named as the HTTP body's schema names it (`json.<field>`). */
export const invalid = (detail: string, field: string, message: string) =>
  new Problem("validation", detail, { errors: [{ path: `json.${field}`, message }] });

/** A meter refusal as a problem; a refused amount names the field, like the schema's own errors. */
function meterRefusal(error: MeterError, detail: string): Problem {
  const slug = meterProblem(error);
  const errors = slug === "validation" ? [{ path: "json.amount", message: detail }] : undefined;
  return new Problem(slug, detail, { code: error, ...(errors ? { errors } : {}) });
}

/** The problem kind of each meter refusal; exhaustive, so a new MeterError cannot go unmapped. */
function meterProblem(error: MeterError): ProblemSlug {
  switch (error) {
    case "reservation_not_found":
      return "not-found";
    case "amount_exceeds_reservation":
    case "amount_not_whole":
      return "validation";
    case "idempotency_conflict":
    case "reservation_closed":
    case "stale_terms": // only after the retry on fresh terms: the terms changed again meanwhile
      return "conflict";
    default: {
      const unreachable: never = error;
      return unreachable;
    }
  }
}
