import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { assertCustomerAccess, requireScope } from "../auth/middleware";
import { checkDeps, requireSnapshot, termsOf } from "../check-path";
import { headroom } from "../domain/evaluate";
import { iso, isoOrNull } from "../domain/time";
import type { Snapshot } from "../domain/types";
import type { MinVersion } from "../domain/version";
import { decodeCursor, page } from "../http/pagination";
import { Problem, type ProblemSlug } from "../http/problem";
import { newRouter } from "../http/router";
import type { FeatureUsage, MeterError, MeterResult, UsageAnswer } from "../meter/protocol";
import { checkAmount, type MeterTerms, meterTerms } from "../meter/terms";
import { type TermsVersion, termsAtLeast } from "../meter/terms-version";
import { closedPeriods, type LedgerPeriod, type LedgerPeriodKey } from "../store/usage-ledger";
import {
  DEFAULT_USAGE_WINDOW_MS,
  getUsage,
  idempotencyKey,
  MAX_CLOCK_SKEW_MS,
  releaseRoute,
  reserveRoute,
  settleRoute,
  type usageQuery,
  usageRoute,
} from "./usage-spec";

async function snapshotFor(c: Context<AppEnv>, customerId: string, minVersion?: MinVersion): Promise<Snapshot> {
  // c.get rather than c.var on the consume path: Hono builds a new object from its map on every c.var read.
  assertCustomerAccess(c.get("principal"), customerId);
  const deps = checkDeps(c);
  return (await requireSnapshot(deps, customerId, deps.services.clock.now(), minVersion)).snapshot;
}

function answer(
  c: Context<AppEnv>,
  snapshot: Snapshot,
  feature: string,
  result: MeterResult,
  denial: string | null = null,
) {
  if (!result.ok) throw meterRefusal(result.error, result.detail);
  const a: UsageAnswer = result.answer;
  return c.json(
    {
      customerId: snapshot.customerId,
      feature,
      ...a,
      reason: a.reason === "not_entitled" && denial ? (denial as UsageAnswer["reason"]) : a.reason,
      resetsAt: a.resetsAt === null ? null : iso(a.resetsAt),
      expiresAt: a.expiresAt === undefined ? undefined : iso(a.expiresAt),
      periodStart: undefined,
      snapshotVersion: snapshot.version,
    },
    200,
  );
}

function keyOf(c: Context<AppEnv>, bodyKey: string | undefined): string | null {
  const header = c.req.header("Idempotency-Key");
  if (header !== undefined && !idempotencyKey.safeParse(header).success)
    throw invalid("Invalid Idempotency-Key header.", "header.Idempotency-Key", "printable ASCII, 1-255 characters");
  if (header !== undefined && bodyKey !== undefined && header !== bodyKey)
    throw invalid(
      "Idempotency-Key header and body idempotencyKey differ.",
      "json.idempotencyKey",
      "differs from the header",
    );
  return bodyKey ?? header ?? null;
}

type MeterBody = { customerId: string; feature: string; amount: number; minVersion?: MinVersion };

/** The snapshot (at least `minVersion`) and the meter terms of the body's feature, its amount checked. */
async function termsFor(c: Context<AppEnv>, body: MeterBody, now: number, minVersion?: MinVersion) {
  const snapshot = await snapshotFor(c, body.customerId, minVersion);
  const t = meterTerms(snapshot, body.feature, now);
  checkAmount(t, body.amount);
  return { snapshot, t };
}

/**
 * consume/record and reserve: the meter decides on terms at least as new as the newest it has seen
 * (meter/terms-version.ts). A call on older terms (this isolate's cached snapshot, from before a
 * downgrade another isolate or a write told the meter about) is refused with stale_terms: the
 * snapshot is read again with the meter's newest version as minVersion, past the caches, and the
 * call is made once more on its terms. A second refusal (yet another write in between) is a 409.
 */
async function meterDecision(
  c: Context<AppEnv>,
  body: MeterBody,
  now: number,
  send: (snapshot: Snapshot, t: MeterTerms, termsVersion: TermsVersion) => Promise<MeterResult>,
) {
  let { snapshot, t } = await termsFor(c, body, now, body.minVersion);
  let result = await send(snapshot, t, termsOf(snapshot));
  if (!result.ok && result.error === "stale_terms" && result.newest) {
    ({ snapshot, t } = await termsFor(c, body, now, result.newest));
    result = await send(snapshot, t, termsOf(snapshot));
  }
  return { snapshot, t, result };
}

/** settle and release: the request names the reservation, the meter's answer names the feature. */
async function closeReservation(
  c: Context<AppEnv>,
  how: "settle" | "release",
  body: { customerId: string; reservationId: string; amount?: number },
) {
  const snapshot = await snapshotFor(c, body.customerId);
  const { reservationId, amount } = body;
  const result = await c.var.services.meter[how](c.env, snapshot, {
    reservationId,
    amount,
    now: c.var.services.clock.now(),
  });
  return answer(c, snapshot, result.ok ? (result.answer.feature ?? "") : "", result);
}

export const usageRoutes = newRouter();
usageRoutes.use("/usage", requireScope("usage"));
usageRoutes.use("/usage/*", requireScope("usage"));
usageRoutes
  .openapi(usageRoute, async (c) => {
    const body = c.req.valid("json");
    const key = keyOf(c, body.idempotencyKey);
    const now = c.get("services").clock.now();
    let occurredAt = now;
    if (body.timestamp !== undefined) {
      if (body.mode !== "record")
        throw invalid("timestamp applies to mode 'record' only.", "json.timestamp", "record only");
      occurredAt = Date.parse(body.timestamp);
      if (occurredAt > now + MAX_CLOCK_SKEW_MS)
        throw invalid("timestamp is in the future.", "json.timestamp", "in the future");
    }
    const fingerprint = JSON.stringify(["usage", body.feature, body.amount, body.mode, body.timestamp ?? null]);
    const { snapshot, t, result } = await meterDecision(c, body, now, (snapshot, t, termsVersion) =>
      c.get("services").meter.usage(c.env, snapshot, {
        feature: body.feature,
        amount: body.amount,
        mode: body.mode,
        idempotencyKey: key,
        fingerprint,
        termsVersion,
        allowance: t.allowance,
        entitled: t.entitled,
        terms: t.terms,
        occurredAt,
        now,
        gauge: t.gauge,
      }),
    );
    return answer(c, snapshot, body.feature, result, t.denial);
  })
  .openapi(reserveRoute, async (c) => {
    const body = c.req.valid("json");
    const key = keyOf(c, body.idempotencyKey);
    const now = c.get("services").clock.now();
    const fingerprint = JSON.stringify(["reserve", body.feature, body.amount, body.ttlSeconds]);
    const { snapshot, t, result } = await meterDecision(c, body, now, (snapshot, t, termsVersion) =>
      c.get("services").meter.reserve(c.env, snapshot, {
        feature: body.feature,
        amount: body.amount,
        ttlSeconds: body.ttlSeconds,
        idempotencyKey: key,
        fingerprint,
        termsVersion,
        allowance: t.allowance,
        entitled: t.entitled,
        terms: t.terms,
        wholeUnits: t.feature.integer !== false,
        now,
      }),
    );
    return answer(c, snapshot, body.feature, result, t.denial);
  })
  .openapi(settleRoute, async (c) => closeReservation(c, "settle", c.req.valid("json")))
  .openapi(releaseRoute, async (c) => closeReservation(c, "release", c.req.valid("json")))
  .openapi(getUsage, async (c) => {
    const { customerId } = c.req.valid("param");
    return c.json(await usageReport(c, customerId, c.req.valid("query")), 200);
  });

export type UsageQuery = z.output<typeof usageQuery>;

/**
 * GET /v1/usage's answer: the current period of each metered feature from the meter, a page of closed
 * periods from the D1 ledger. Also what the console and the portal show (src/ui/), for the principal
 * the caller set (a key bound to another customer is refused).
 */
export async function usageReport(c: Context<AppEnv>, customerId: string, q: UsageQuery) {
  const feature = q.feature;
  const now = c.var.services.clock.now();
  const after = decodeCursor(q.cursor, periodKey);
  const from = q.from !== undefined ? Date.parse(q.from) : now - DEFAULT_USAGE_WINDOW_MS;
  const to = q.to !== undefined ? Date.parse(q.to) : Number.MAX_SAFE_INTEGER;
  if (from >= to) throw invalid("from must be before to.", "query.from", "must be before to");
  const read = async (minVersion?: TermsVersion) => {
    const snapshot = await snapshotFor(c, customerId, minVersion);
    const metered = Object.keys(snapshot.features)
      .filter((k) => snapshot.features[k]?.type === "metered" && (!feature || k === feature))
      .map((key) => ({ key, t: meterTerms(snapshot, key, now) }));
    if (feature && metered.length === 0) throw new Problem("not-found", `No metered feature '${feature}'.`);
    const items = metered.map(({ key, t }) => ({ feature: key, terms: t.terms }));
    const peeked = await c.var.services.meter.peek(c.env, snapshot, items, now, termsOf(snapshot));
    return { snapshot, metered, peeked };
  };
  let { snapshot, metered, peeked } = await read();
  // The meter holds newer terms than this isolate's snapshot: the limits shown are the new ones.
  if (!termsAtLeast(termsOf(snapshot), peeked.termsVersion))
    ({ snapshot, metered, peeked } = await read(peeked.termsVersion));
  const current = peeked.usage;
  const rows = await closedPeriods(c.env.DB, customerId, {
    features: metered.map((m) => m.key),
    from,
    to,
    after,
    limit: q.limit + 1,
  });
  const { items: history, nextCursor } = page(
    rows,
    q.limit,
    (r): LedgerPeriodKey => [r.feature, r.periodStart, r.periodEnd],
    (r) => r,
  );
  const features = metered.map(({ key, t }) => featureUsage(key, t, current[key] ?? NO_USAGE, history));
  return {
    customerId,
    evaluatedAt: iso(now),
    features,
    nextCursor,
    ledgerNote: "past periods are the totals the meter wrote to the D1 ledger when each closed, within seconds",
  };
}

const NO_USAGE: FeatureUsage = { used: 0, reserved: 0 };
const periodKey = z.tuple([z.string(), z.number().int(), z.number().int().nullable()]);

/** One feature of GET /v1/usage: the current period from the meter, past ones from the D1 ledger. */
function featureUsage(key: string, t: MeterTerms, u: FeatureUsage, history: LedgerPeriod[]) {
  const limit = t.allowance.limit;
  return {
    feature: key,
    entitled: t.entitled,
    used: u.used,
    reserved: u.reserved,
    limit,
    ...headroom(limit, u.used, u.reserved),
    periodStart: iso(t.period.start),
    resetsAt: isoOrNull(t.period.end),
    // This page's closed periods: after a change of reset, that includes the periods of the previous
    // definition (a period of it that is still open is in the meter, not here, until it closes).
    past: history
      .filter((h) => h.feature === key && !(h.periodStart === t.period.start && h.periodEnd === t.period.end))
      .map((h) => ({ periodStart: iso(h.periodStart), periodEnd: isoOrNull(h.periodEnd), total: h.total })),
  };
}

const invalid = (detail: string, path: string, message: string) =>
  new Problem("validation", detail, { errors: [{ path, message }] });

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
