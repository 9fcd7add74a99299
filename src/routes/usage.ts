import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { assertCustomerAccess, requireScope } from "../auth/middleware";
import { checkDeps, requireSnapshot, termsOf } from "../check-path";
import { headroom } from "../domain/evaluate";
import { iso, isoOrNull } from "../domain/time";
import type { Snapshot } from "../domain/types";
import { isCounted } from "../domain/types";
import type { MinVersion } from "../domain/version";
import { decodeCursor, page } from "../http/pagination";
import { Problem } from "../http/problem";
import { newRouter } from "../http/router";
import { edgeCountry } from "../http/schemas";
import type { FeatureUsage } from "../meter/protocol";
import { type MeterTerms, meterTerms } from "../meter/terms";
import { type TermsVersion, termsAtLeast } from "../meter/terms-version";
import { closedPeriods, type LedgerPeriod, type LedgerPeriodKey } from "../store/usage-ledger";
import { closeReservation, consume, invalid, reserve } from "../usage-path";
import {
  DEFAULT_USAGE_WINDOW_MS,
  getUsage,
  idempotencyKey,
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

/** The idempotency key: the header or the body's field (both: they must agree). */
function keyOf(c: Context<AppEnv>, bodyKey: string | undefined): string | null {
  const header = c.req.header("Idempotency-Key");
  if (header !== undefined && !idempotencyKey.safeParse(header).success)
    throw new Problem("validation", "Invalid Idempotency-Key header.", {
      errors: [{ path: "header.Idempotency-Key", message: "printable ASCII, 1-255 characters" }],
    });
  if (header !== undefined && bodyKey !== undefined && header !== bodyKey)
    throw invalid(
      "Idempotency-Key header and body idempotencyKey differ.",
      "idempotencyKey",
      "differs from the header",
    );
  return bodyKey ?? header ?? null;
}

/** The body's customer, checked against the key's binding. */
function authorized<T extends { customerId: string }>(c: Context<AppEnv>, body: T): T {
  assertCustomerAccess(c.get("principal"), body.customerId);
  return body;
}

export const usageRoutes = newRouter();
usageRoutes.use("/usage", requireScope("usage"));
usageRoutes.use("/usage/*", requireScope("usage"));
usageRoutes
  .openapi(usageRoute, async (c) => {
    const body = authorized(c, c.req.valid("json"));
    const input = { ...body, idempotencyKey: keyOf(c, body.idempotencyKey), country: edgeCountry(c) };
    return c.json(await consume(checkDeps(c), input), 200);
  })
  .openapi(reserveRoute, async (c) => {
    const body = authorized(c, c.req.valid("json"));
    return c.json(await reserve(checkDeps(c), { ...body, idempotencyKey: keyOf(c, body.idempotencyKey) }), 200);
  })
  .openapi(settleRoute, async (c) =>
    c.json(await closeReservation(checkDeps(c), "settle", authorized(c, c.req.valid("json"))), 200),
  )
  .openapi(releaseRoute, async (c) =>
    c.json(await closeReservation(checkDeps(c), "release", authorized(c, c.req.valid("json"))), 200),
  )
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
  if (from >= to)
    throw new Problem("validation", "from must be before to.", {
      errors: [{ path: "query.from", message: "must be before to" }],
    });
  const read = async (minVersion?: TermsVersion) => {
    const snapshot = await snapshotFor(c, customerId, minVersion);
    const metered = Object.keys(snapshot.features)
      .filter((k) => isCounted(snapshot.features[k]?.type) && (!feature || k === feature))
      .map((key) => ({ key, t: meterTerms(snapshot, key, now) }));
    if (feature && metered.length === 0) throw new Problem("not-found", `No metered feature '${feature}'.`);
    const items = metered.map(({ key, t }) => ({
      feature: key,
      terms: t.terms,
      ...(t.topUps ? { topUps: t.topUps } : {}),
    }));
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

/** A credits feature's open top-ups count in what remains (and are shown on their own). */
function withTopUps(h: { remaining: number | null; overage: number }, topUpLeft: number | undefined) {
  if (topUpLeft === undefined) return h;
  return { ...h, remaining: h.remaining === null ? null : h.remaining + topUpLeft, topUpRemaining: topUpLeft };
}

/** One feature of GET /v1/usage: the current period from the meter, past ones from the D1 ledger. */
function featureUsage(key: string, t: MeterTerms, u: FeatureUsage, history: LedgerPeriod[]) {
  const limit = t.allowance.limit;
  return {
    feature: key,
    entitled: t.entitled,
    used: u.used,
    reserved: u.reserved,
    limit,
    ...withTopUps(headroom(limit, u.used, u.reserved), u.topUpLeft),
    ...(u.rolledOver !== undefined ? { rolledOver: u.rolledOver } : {}),
    periodStart: iso(t.period.start),
    resetsAt: isoOrNull(t.period.end),
    // This page's closed periods: after a change of reset, that includes the periods of the previous
    // definition (a period of it that is still open is in the meter, not here, until it closes).
    past: history
      .filter((h) => h.feature === key && !(h.periodStart === t.period.start && h.periodEnd === t.period.end))
      .map((h) => ({ periodStart: iso(h.periodStart), periodEnd: isoOrNull(h.periodEnd), total: h.total })),
  };
}
