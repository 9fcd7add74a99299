// The check path in one place: snapshot (isolate cache -> KV -> D1) -> evaluate (pure) ->
// [metered: the customer's usage from its meter] -> the wire decision. Routes only validate and call.
// Also the two things every route that reads a customer's entitlements needs: the dependency bag
// (checkDeps) and "the snapshot, or 404" (requireSnapshot).
import type { Context } from "hono";
import type { AppEnv } from "./app-env";
import { waitUntilOf } from "./auth/middleware";
import { configOf } from "./config";
import { applyCredits, creditEvaluation } from "./domain/credits";
import { applyEntity, applySeats, seatOf } from "./domain/entities";
import { allowanceOf, applyUsage, evaluate, periodTerms } from "./domain/evaluate";
import { own } from "./domain/records";
import { iso } from "./domain/time";
import { type Decision, type Effective, type Evaluation, isCounted, type Snapshot } from "./domain/types";
import { HINTED_REASONS, upgradeHints } from "./domain/upgrade-hints";
import { admissionBound, answersFromSummary, type UsageObservation } from "./domain/usage-summary";
import { formatVersion, type MinVersion } from "./domain/version";
import type { Env } from "./env";
import { Problem } from "./http/problem";
import type { FeatureUsage, PeekAnswer, PeekItem } from "./meter/protocol";
import { type EntityReads, entityReads } from "./meter/terms";
import { type TermsVersion, termsAtLeast } from "./meter/terms-version";
import type { Services } from "./services";
import { type DegradedReason, type SnapshotRead, SnapshotUnavailable, VersionNotYetAvailable } from "./store/snapshots";

export interface CheckInput {
  customerId: string;
  feature: string;
  role?: string;
  country?: string;
  quantity?: number;
  minVersion?: MinVersion;
  /** Metered: the oldest usage this check accepts from the isolate's summary (0: ask the meter); capped by config. */
  maxUsageAgeMs?: number;
  /** "upgrade": a not_entitled or limit_reached denial lists what would allow it (domain/upgrade-hints.ts). */
  include?: "upgrade"[];
  /** The user, seat or device inside the customer (docs/model.md, Entities). */
  entityId?: string;
}

export interface CheckDeps {
  env: Env;
  services: Services;
  waitUntil?: (p: Promise<unknown>) => void;
}

/** The check path's dependencies from a request. c.get, not c.var: Hono builds a new object from its map on every c.var read. */
export const checkDeps = (c: Context<AppEnv>): CheckDeps => ({
  env: c.env,
  services: c.get("services"),
  waitUntil: waitUntilOf(c),
});

/** A read that found the customer. */
export type KnownSnapshot = SnapshotRead & { snapshot: Snapshot };

/** No such customer: a 404 for the routes that need one. OFREP's bulk evaluation answers it with no flags instead. */
export class UnknownCustomer extends Problem {
  constructor(readonly customerId: string) {
    super("not-found", `No customer '${customerId}'.`);
  }
}

/** The customer's snapshot; throws UnknownCustomer (404), or a 409 when `minVersion` does not exist yet. */
export async function requireSnapshot(
  deps: CheckDeps,
  customerId: string,
  now: number,
  minVersion?: MinVersion,
  /** A consume's read: a part the customer's meter keeps confirming stays fresh longer (store/snapshots.ts confirm). */
  confirmed = false,
): Promise<KnownSnapshot> {
  const read = await readSnapshot(deps, customerId, now, minVersion, confirmed);
  if (!read.snapshot) throw new UnknownCustomer(customerId);
  return read as KnownSnapshot;
}

/** One check: the decision for one feature (an unknown customer is a denial, not an error). */
export async function evaluateCheck(deps: CheckDeps, input: CheckInput): Promise<Decision> {
  const held: Held = { now: deps.services.clock.now(), snapshot: null };
  const decided = await decide(deps, input, held);
  // A check for an entity names it, also when its feature has neither a seat nor a per-entity limit (as consumes do).
  const named = input.entityId !== undefined && !decided.entity && decided.reason !== "unknown_customer";
  const decision = named ? { ...decided, entity: { id: input.entityId as string } } : decided;
  // Its analytics point: a call that returns at once (src/analytics/; the local sink writes in waitUntil).
  deps.services.analytics.check(deps, held.now, held.snapshot, decision, input.country, input.quantity);
  return decision;
}

/** What decide read, for the analytics point of its decision. */
interface Held {
  now: number;
  snapshot: Snapshot | null;
}

async function decide(deps: CheckDeps, input: CheckInput, held: Held): Promise<Decision> {
  const now = held.now;
  let read: SnapshotRead;
  try {
    read = await readSnapshot(deps, input.customerId, now, input.minVersion);
  } catch (err) {
    // KV and D1 both failed and the isolate holds no copy. The policies come from the catalog the
    // isolate holds (SnapshotStore.failurePolicy), because at this
    // point nothing else that knows them can be read.
    if (err instanceof SnapshotUnavailable) return failurePolicyDecision(deps.services, input, now, err.reason);
    throw err;
  }
  let snapshot = read.snapshot;
  held.snapshot = snapshot;
  if (!snapshot) return unknownCustomerDecision(input, now);
  let ev = evaluate(snapshot, input, now);
  // An entity's seat and own usage, and a seats feature's assigned seats, are the meter's: one read.
  const reads = entityReadsOf(snapshot, input, ev, now);
  if (reads) {
    const d = await decideWithEntity(deps, input, snapshot, ev, reads, now);
    if (!d) return unknownCustomerDecision(input, now);
    held.snapshot = d.snapshot;
    return withHints(deps, input, d.snapshot, toDecision(d.snapshot, d.ev, now, d.degraded ?? degradedOf(read)), now);
  }
  if (isCounted(ev.type) && ev.allowed && ev.effective) {
    const local = fromSummary(deps, snapshot, input, ev, ev.effective, now);
    if (local) {
      // Past half its bound, the summary is refreshed in the background, so steady traffic never waits.
      if (local.refresh && deps.waitUntil) {
        const refresh = () => peekCustomer(deps, snapshot as Snapshot, input, ev, now);
        deps.services.usage.refreshOnce(input.customerId, refresh, deps.waitUntil);
      }
      return withHints(deps, input, snapshot, toDecision(snapshot, local.ev, now, degradedOf(read)), now);
    }
    let peeked = await peekCustomer(deps, snapshot, input, ev, now);
    // The meter has seen newer terms than this isolate's snapshot (a downgrade pushed by a write, or
    // a consume through a fresher isolate): read the snapshot at that version and evaluate again, as
    // a consume would be (issue 13). If that read fails, the older answer stands, marked degraded.
    if (!termsAtLeast(termsOf(snapshot), peeked.termsVersion)) {
      const fresh = await freshRead(deps, input.customerId, now, peeked.termsVersion);
      if (!fresh)
        return toDecision(snapshot, withUsage(snapshot, input, ev, peeked.usage, now), now, "stores_unavailable");
      if (!fresh.snapshot) return unknownCustomerDecision(input, now);
      [read, snapshot] = [fresh, fresh.snapshot];
      held.snapshot = snapshot;
      ev = evaluate(snapshot, input, now);
      if (!(isCounted(ev.type) && ev.allowed && ev.effective))
        return withHints(deps, input, snapshot, toDecision(snapshot, ev, now, degradedOf(read)), now);
      peeked = await peekCustomer(deps, snapshot, input, ev, now);
    }
    ev = withUsage(snapshot, input, ev, peeked.usage, now);
  }
  return withHints(deps, input, snapshot, toDecision(snapshot, ev, now, degradedOf(read)), now);
}

/**
 * A metered check answered without the meter (domain/usage-summary.ts), or null to ask it: usage that
 * cannot change the answer is never asked for (`used` comes from a fresh summary, or is left out); else
 * a summary fresh enough and far enough from the bound answers, with its age as usageAgeMs.
 */
function fromSummary(
  deps: CheckDeps,
  snapshot: Snapshot,
  input: CheckInput,
  ev: Evaluation,
  effective: Effective,
  now: number,
): { ev: Evaluation; refresh: boolean } | null {
  const maxAgeMs = Math.min(configOf(deps.env).usageSummary.maxAgeMs, input.maxUsageAgeMs ?? Number.POSITIVE_INFINITY);
  // A credit cost (two counters, one shared), top-ups or a rollover (balances the meter keeps): the meter is asked.
  const f = own(snapshot.features, ev.feature);
  if (maxAgeMs <= 0 || f?.creditCost || effective.topUps || effective.spec.rollover) return null;
  const bound = admissionBound(allowanceOf(effective.spec));
  const o = deps.services.usage.get(input.customerId, ev.feature);
  const periodStart = ev.periodStart ?? null;
  const quantity = input.quantity ?? 1;
  const fresh = (o: UsageObservation) => ({
    ev: { ...applyUsage(ev, o.used, quantity, o.reserved), usageAgeMs: now - o.at },
    refresh: now - o.at > maxAgeMs / 2,
  });
  if (bound === null) {
    const usable = o && o.periodStart === periodStart && o.at <= now && now - o.at <= maxAgeMs;
    return usable ? fresh(o) : { ev, refresh: false };
  }
  return o && answersFromSummary(o, { bound, quantity, now, maxAgeMs, periodStart }) ? fresh(o) : null;
}

/**
 * What a check must read of its entity (the seats its feature needs, per-entity limits) or, for a seats
 * feature, of its seats; null when nothing: a check naming an entity of a feature with neither is the customer's.
 */
function entityReadsOf(snapshot: Snapshot, input: CheckInput, ev: Evaluation, now: number): EntityReads | null {
  if (ev.reason === "unknown_feature") return null;
  if (input.entityId === undefined) return ev.type === "seats" && ev.allowed ? { seats: [], limits: [] } : null;
  const reads = entityReads(snapshot, [ev], input.quantity ?? 1, now);
  return reads.seats.length > 0 || reads.limits.length > 0 ? reads : null;
}

/**
 * A check with entity reads: one meter read for the feature's usage (and its credit balance), the entity's
 * seats and usage, and a seats feature's assigned seats, on terms at least as new as the meter's. Null: the
 * customer was deleted meanwhile.
 */
async function decideWithEntity(
  deps: CheckDeps,
  input: CheckInput,
  snapshot: Snapshot,
  ev: Evaluation,
  reads: EntityReads,
  now: number,
): Promise<{ snapshot: Snapshot; ev: Evaluation; degraded?: DegradedReason } | null> {
  const items: PeekItem[] = [];
  const counted = isCounted(ev.type) && ev.allowed && ev.effective;
  if (counted && ev.effective) items.push(peekItem(ev, ev.effective));
  const credit = counted ? creditEvaluation(snapshot, input, now) : null;
  if (credit?.allowed && credit.effective) items.push(peekItem(credit, credit.effective));
  const id = input.entityId;
  const extra = {
    ...(id === undefined ? {} : { entity: { id, seats: reads.seats, limits: reads.limits } }),
    ...(ev.type === "seats" ? { seatCounts: [ev.feature] } : {}),
  };
  const peeked = await deps.services.meter.peek(deps.env, snapshot, items, now, termsOf(snapshot), extra);
  if (!termsAtLeast(termsOf(snapshot), peeked.termsVersion)) {
    // As decide: the meter has seen newer terms; evaluate again on them (once), or answer degraded.
    const fresh = await freshRead(deps, input.customerId, now, peeked.termsVersion);
    if (fresh && !fresh.snapshot) return null; // deleted meanwhile: unknown_customer
    if (fresh?.snapshot && termsAtLeast(termsOf(fresh.snapshot), peeked.termsVersion)) {
      const again = evaluate(fresh.snapshot, input, now);
      const r = entityReadsOf(fresh.snapshot, input, again, now);
      if (r) return decideWithEntity(deps, input, fresh.snapshot, again, r, now);
      return { snapshot: fresh.snapshot, ev: again };
    }
    if (!fresh)
      return { snapshot, ev: withEntity(snapshot, input, ev, reads, peeked, now), degraded: "stores_unavailable" };
  }
  return { snapshot, ev: withEntity(snapshot, input, ev, reads, peeked, now) };
}

/** An evaluation completed with a read that asked of its entity (or its seats). */
function withEntity(
  snapshot: Snapshot,
  input: CheckInput,
  ev: Evaluation,
  reads: EntityReads,
  peeked: PeekAnswer,
  now: number,
): Evaluation {
  let out = isCounted(ev.type) && ev.effective ? withUsage(snapshot, input, ev, peeked.usage, now) : ev;
  out = applySeats(out, peeked.seats?.[ev.feature] ?? 0);
  if (input.entityId === undefined) return out;
  const f = own(snapshot.features, ev.feature);
  const needs = seatOf(ev.feature, f);
  const seat = needs ? { feature: needs, held: peeked.entity?.seats[needs] === true } : undefined;
  // Its own bound and its credit balance's (a read for every feature holds all of them).
  const mine = (l: { feature: string }) => l.feature === ev.feature || l.feature === f?.creditCost?.credits;
  const bounds = reads.limits.filter(mine).map((l) => ({
    feature: l.feature,
    limit: l.limit,
    amount: l.amount,
    used: peeked.entity?.used[l.feature]?.used ?? 0,
    reserved: peeked.entity?.used[l.feature]?.reserved ?? 0,
    resetsAt: peeked.entity?.used[l.feature]?.resetsAt ?? null,
  }));
  return applyEntity(out, input.entityId, seat, bounds);
}

/** The most of a customer's other metered features one meter read also brings into the summary. */
const MAX_PEEK_SIBLINGS = 15;

/**
 * One meter read for this check's feature and, in the same call, the customer's other metered features
 * whose usage can matter, so that the isolate's summary learns the customer, not just one feature.
 */
async function peekCustomer(deps: CheckDeps, snapshot: Snapshot, input: CheckInput, ev: Evaluation, now: number) {
  const evs = [ev];
  // The balance a credit cost draws from is read in the same call (domain/credits.ts).
  const credit = creditEvaluation(snapshot, input, now);
  if (credit?.allowed && credit.effective) evs.push(credit);
  for (const [feature, f] of Object.entries(snapshot.features)) {
    if (evs.length > MAX_PEEK_SIBLINGS) break;
    if (feature === ev.feature || feature === credit?.feature || !isCounted(f?.type)) continue;
    const sibling = evaluate(snapshot, { ...input, feature, quantity: 1 }, now);
    if (isCounted(sibling.type) && sibling.allowed && sibling.effective) evs.push(sibling);
  }
  const items = evs.flatMap((e) => (e.effective ? [peekItem(e, e.effective)] : []));
  const peeked = await deps.services.meter.peek(deps.env, snapshot, items, now, termsOf(snapshot));
  for (const e of evs) learn(deps, snapshot.customerId, e, peeked.usage[e.feature], now);
  return peeked;
}

/** What the meter said of a counter, remembered by the isolate's usage summary. */
function learn(deps: CheckDeps, customerId: string, ev: Evaluation, u: FeatureUsage | undefined, now: number) {
  deps.services.usage.learn(customerId, ev.feature, u?.used ?? 0, u?.reserved ?? 0, now, ev.periodStart ?? null);
}

/** Upsell hints, only when asked (the hot path pays one array lookup otherwise), from the catalog this isolate composed with. */
function withHints(deps: CheckDeps, input: CheckInput, snapshot: Snapshot, d: Decision, now: number): Decision {
  if (!input.include?.includes("upgrade") || !HINTED_REASONS.has(d.reason)) return d;
  const catalog = deps.services.snapshots.catalogs.held;
  if (!catalog) return d;
  return { ...d, upgrade: upgradeHints(snapshot, catalog, input, now, d.used ?? 0) };
}

/** The snapshot read again at the meter's terms version; null when it cannot be read (the caller keeps its answer). */
async function freshRead(deps: CheckDeps, customerId: string, now: number, min: TermsVersion) {
  try {
    return await deps.services.snapshots.read(deps.env, customerId, now, {
      minVersion: min,
      waitUntil: deps.waitUntil,
    });
  } catch (err) {
    console.error(JSON.stringify({ msg: "re-read at the meter's terms failed", customerId, error: String(err) }));
    return null;
  }
}

/** A snapshot's terms version, as the meter compares them (meter/terms-version.ts). */
export const termsOf = (s: Snapshot): TermsVersion => ({ customer: s.customerRev, catalog: s.catalogRev });

type FeatureDecision = Omit<
  Decision,
  "customerId" | "feature" | "snapshotVersion" | "version" | "snapshotAgeMs" | "evaluatedAt"
>;

/** Every feature of the customer, evaluated in one context (for rendering a UI in one call). Throws UnknownCustomer. */
export async function evaluateAll(deps: CheckDeps, input: Omit<CheckInput, "feature" | "quantity">) {
  const now = deps.services.clock.now();
  const read = await requireSnapshot(deps, input.customerId, now, input.minVersion);
  const snapshot = read.snapshot;
  const evs = Object.keys(snapshot.features).map((feature) => evaluate(snapshot, { ...input, feature }, now));
  const items = evs.flatMap((e) => (isCounted(e.type) && e.effective ? [peekItem(e, e.effective)] : []));
  // One read for all: usage, and for an entity its seats and per-entity usage; a seats feature's seats.
  const reads = input.entityId === undefined ? null : entityReads(snapshot, evs, 1, now);
  const seatCounts = evs.filter((e) => e.type === "seats" && e.effective).map((e) => e.feature);
  const extra = {
    ...(reads && input.entityId !== undefined ? { entity: { id: input.entityId, ...reads } } : {}),
    ...(seatCounts.length > 0 ? { seatCounts } : {}),
  };
  const peeked: PeekAnswer =
    items.length === 0 && !extra.entity && !extra.seatCounts
      ? { usage: {}, termsVersion: termsOf(snapshot) }
      : await deps.services.meter.peek(deps.env, snapshot, items, now, termsOf(snapshot), extra);
  const features: Record<string, FeatureDecision> = {};
  for (const ev of evs)
    if (isCounted(ev.type) && ev.effective) learn(deps, snapshot.customerId, ev, peeked.usage[ev.feature], now);
  for (const ev of evs) {
    const ctx = { ...input, feature: ev.feature };
    const own = reads ?? { seats: [], limits: [] };
    features[ev.feature] = featureDecision(toDecision(snapshot, withEntity(snapshot, ctx, ev, own, peeked, now), now));
  }
  return {
    customerId: snapshot.customerId,
    snapshotVersion: snapshot.version,
    version: versionOf(snapshot),
    snapshotAgeMs: Math.max(0, now - snapshot.compiledAt),
    evaluatedAt: iso(now),
    ...(read.degraded ? { degraded: true, degradedReason: degradedOf(read) } : {}),
    ...(input.entityId === undefined ? {} : { entityId: input.entityId }),
    features,
  };
}

/** Why a read is degraded (undefined: it is not). */
const degradedOf = (read: SnapshotRead): DegradedReason | undefined =>
  read.degraded ? (read.degradedReason ?? "stores_unavailable") : undefined;

/** The wire decision; `degraded` says why the answer is degraded, if it is. */
export function toDecision(snapshot: Snapshot, ev: Evaluation, now: number, degraded?: DegradedReason): Decision {
  const d: Decision = {
    allowed: ev.allowed,
    reason: ev.reason,
    customerId: snapshot.customerId,
    feature: ev.feature,
  } as Decision;
  if (ev.type) d.type = ev.type;
  if (ev.value !== undefined) d.value = ev.value;
  if (ev.type === "seats" && ev.effective) {
    d.limit = ev.limit ?? null;
    if (ev.used !== undefined) [d.used, d.remaining] = [ev.used, ev.remaining ?? null];
  }
  if (isCounted(ev.type) && ev.effective) {
    d.limit = ev.limit ?? null;
    if (ev.used !== undefined) {
      d.used = ev.used;
      d.remaining = ev.remaining ?? null;
      d.usageAgeMs = ev.usageAgeMs ?? 0;
    }
    d.resetsAt = ev.resetsAt == null ? null : iso(ev.resetsAt);
    if (ev.credits) d.credits = ev.credits;
    if (ev.topUpRemaining !== undefined) d.topUpRemaining = ev.topUpRemaining;
    if (ev.rolledOver !== undefined) d.rolledOver = ev.rolledOver;
  }
  if (ev.entity) d.entity = entityWire(ev.entity);
  if (ev.deniedBy) d.deniedBy = ev.deniedBy;
  if (ev.expiresAt !== undefined) d.expiresAt = ev.expiresAt === null ? null : iso(ev.expiresAt);
  d.snapshotVersion = snapshot.version;
  d.version = versionOf(snapshot);
  d.snapshotAgeMs = Math.max(0, now - snapshot.compiledAt);
  d.evaluatedAt = iso(now);
  if (degraded) {
    d.degraded = true;
    d.degradedReason = degraded;
  }
  return d;
}

/** An answer's entity on the wire: its period's end as an ISO string. */
export function entityWire<T extends { resetsAt?: number | null }>({ resetsAt, ...e }: T) {
  return { ...e, ...(resetsAt === undefined ? {} : { resetsAt: resetsAt === null ? null : iso(resetsAt) }) };
}

/** The snapshot read with the 409 for a version that does not exist yet; a missing customer is a null snapshot. */
async function readSnapshot(
  deps: CheckDeps,
  customerId: string,
  now: number,
  minVersion?: MinVersion,
  confirmed = false,
) {
  try {
    return await deps.services.snapshots.read(deps.env, customerId, now, {
      minVersion,
      waitUntil: deps.waitUntil,
      confirmed,
    });
  } catch (err) {
    if (err instanceof VersionNotYetAvailable) {
      const detail = `Version ${err.wanted} does not exist yet; the newest is ${err.available}.`;
      throw new Problem("conflict", detail, { available: err.available });
    }
    throw err;
  }
}

/** The snapshot's version token, "<customer rev>.<catalog rev>" (domain/version.ts). */
export const versionOf = (snapshot: Snapshot): string => formatVersion(snapshot.customerRev, snapshot.catalogRev);

/** One entry of evaluateAll: a decision without what the envelope says once for all features. */
function featureDecision(d: Decision): FeatureDecision {
  const {
    customerId: _c,
    snapshotVersion: _v,
    version: _t,
    snapshotAgeMs: _a,
    evaluatedAt: _e,
    feature: _f,
    ...rest
  } = d;
  return rest;
}

/**
 * Completes a metered evaluation with the meter's answer (a feature it was not asked about used nothing),
 * and, for a feature with a credit cost, with the balance it draws from, which must fit too.
 */
function withUsage(
  snapshot: Snapshot,
  input: Omit<CheckInput, "customerId">,
  ev: Evaluation,
  usage: Record<string, FeatureUsage>,
  now: number,
): Evaluation {
  const quantity = input.quantity ?? 1;
  const u = own(usage, ev.feature);
  const out = applyUsage(ev, u?.used ?? 0, quantity, u?.reserved ?? 0, u?.topUpLeft);
  if (u?.rolledOver !== undefined) {
    // The carried part is shown on its own; topUpRemaining is what grants' top-ups have left.
    out.rolledOver = u.rolledOver;
    if (out.effective?.topUps) out.topUpRemaining = (u.topUpLeft ?? 0) - u.rolledOver;
    else delete out.topUpRemaining;
  }
  const cost = own(snapshot.features, ev.feature)?.creditCost;
  if (!cost || !out.effective) return out;
  const credit = creditEvaluation(snapshot, { ...input, feature: ev.feature, quantity }, now);
  if (!credit) return out;
  const c = own(usage, credit.feature);
  return applyCredits(
    out,
    credit,
    cost.cost,
    { used: c?.used ?? 0, reserved: c?.reserved ?? 0, topUpLeft: c?.topUpLeft },
    quantity,
  );
}

function unknownCustomerDecision(input: CheckInput, now: number): Decision {
  return {
    allowed: false,
    reason: "unknown_customer",
    customerId: input.customerId,
    feature: input.feature,
    snapshotVersion: 0,
    version: "0.0",
    snapshotAgeMs: 0,
    evaluatedAt: iso(now),
  };
}

/** Neither KV nor D1 answered (or D1 was not asked: `why`) and no copy was in the isolate: the feature's failure policy decides. */
function failurePolicyDecision(services: Services, input: CheckInput, now: number, why: DegradedReason): Decision {
  const policy = services.snapshots.failurePolicy(input.feature) ?? "closed";
  return {
    allowed: policy === "open",
    reason: policy === "open" ? "ok" : "not_entitled",
    customerId: input.customerId,
    feature: input.feature,
    snapshotVersion: 0,
    version: "0.0",
    snapshotAgeMs: 0,
    evaluatedAt: iso(now),
    degraded: true,
    degradedReason: why,
    failurePolicy: policy,
  };
}

/** What the meter reads for a metered evaluation: its feature, and how its periods are cut. */
const peekItem = (ev: Evaluation, effective: Effective): PeekItem => ({
  feature: ev.feature,
  terms: periodTerms(effective),
  ...(effective.topUps ? { topUps: effective.topUps } : {}),
});
