// /admin/v1/analytics: usage and entitlement analytics, shaped for charts (docs/analytics.md). Points
// (checks, denials, consumes) come from Analytics Engine or, in local mode, the D1 rollups
// (analytics/readers.ts); entitlement, upsell and trial figures from D1, the source of record.
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { pointReader } from "../../analytics/readers";
import type { AppEnv } from "../../app-env";
import { configOf } from "../../config";
import { DAY_MS, HOUR_MS, iso } from "../../domain/time";
import { decodeCursor, page, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, featureParam, instant, jsonResponse } from "../../http/schemas";
import { entitledCustomers, featureKeys, trialConversions, upsellCandidates } from "../../store/analytics";
import { adminRoute } from "./route";

/** The longest range of a points query (hour rows: 744 per feature at most), and of the trials query. */
export const MAX_RANGE_DAYS = 31;
export const MAX_TRIALS_RANGE_DAYS = 366;
const DEFAULT_RANGE_MS = 7 * DAY_MS;
const MAX_DENIAL_ROWS = 500;

const range = {
  from: instant.optional().describe("Start of the range, ISO 8601 (default: `to` minus 7 days); hour resolution"),
  to: instant.optional().describe("End of the range, exclusive (default: now)"),
};

/** [from, to) from the query: defaults, from before to, at most `maxDays` long; bad ranges are 400s. */
function rangeOf(c: Context<AppEnv>, q: { from?: number; to?: number }, maxDays = MAX_RANGE_DAYS) {
  const to = q.to ?? c.get("services").clock.now();
  const from = q.from ?? to - DEFAULT_RANGE_MS;
  const bad = (message: string) =>
    new Problem("validation", `Invalid range: ${message}.`, { errors: [{ path: "query.from", message }] });
  if (from >= to) throw bad("from must be before to");
  if (to - from > maxDays * DAY_MS) throw bad(`the range is at most ${maxDays} days`);
  return { from, to, hourFrom: from - (from % HOUR_MS) };
}

const reader = (c: Context<AppEnv>) =>
  pointReader(c.env, configOf(c.env).analytics, c.get("services").analytics, c.get("services").fetch);

const route = adminRoute("admin: analytics");

const usageStats = z.object({ total: z.number(), p50: z.number(), p90: z.number(), max: z.number() });
const featuresSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    features: z.array(
      z.object({
        featureKey: z.string(),
        entitledCustomers: z.number().int().describe("Customers whose live subscriptions' plans enable it"),
        activeCustomers: z
          .number()
          .int()
          .describe("Customers with an allowed check or an admitted consume in the range"),
        adoption: z.number().describe("activeCustomers / entitledCustomers (0 when none is entitled)"),
        checks: z.number().int(),
        denials: z.number().int(),
        usage: usageStats.describe("Units consumed per consuming customer: their sum, median, 90th percentile, most"),
      }),
    ),
  })
  .openapi("AnalyticsFeatures");

const getFeatures = route("viewer", {
  method: "get",
  path: "/features",
  summary: "Per feature: entitled and active customers (adoption), checks, denials, usage distribution",
  request: { query: z.object(range) },
  responses: { 200: jsonResponse(featuresSchema, "One entry per catalog feature"), ...errorResponses },
});

const usageSchema = z
  .object({
    featureKey: z.string(),
    interval: z.enum(["hour", "day"]),
    points: z.array(z.object({ t: z.string(), total: z.number(), customers: z.number().int() })),
  })
  .openapi("AnalyticsUsage");

const getUsageSeries = route("viewer", {
  method: "get",
  path: "/usage",
  summary: "Units consumed of one feature per hour or day, with the customers that consumed",
  request: {
    query: z.object({ featureKey: featureParam, interval: z.enum(["hour", "day"]).default("day"), ...range }),
  },
  responses: { 200: jsonResponse(usageSchema, "One point per bucket of the range, gapless"), ...errorResponses },
});

const denialsSchema = z
  .object({
    by: z.enum(["reason", "plan", "country"]),
    rows: z.array(z.object({ featureKey: z.string(), key: z.string(), count: z.number().int() })),
  })
  .openapi("AnalyticsDenials");

const getDenials = route("viewer", {
  method: "get",
  path: "/denials",
  summary: "Denied checks per feature by reason, plan or country: what customers reach for and lack",
  request: { query: z.object({ by: z.enum(["reason", "plan", "country"]).default("reason"), ...range }) },
  responses: {
    200: jsonResponse(denialsSchema, `Most first, ${MAX_DENIAL_ROWS} rows at most ('' is no plan, or no country)`),
    ...errorResponses,
  },
});

const upsellSchema = z
  .object({
    candidates: z.array(
      z.object({
        customerId: z.string(),
        planId: z.string(),
        featureKey: z.string(),
        used: z.number(),
        limit: z.number(),
        ratio: z.number(),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .openapi("AnalyticsUpsell");

const getUpsell = route("viewer", {
  method: "get",
  path: "/upsell",
  summary: "Customers at or near their limit (base plan and add-ons) in the current period",
  request: {
    query: z.object({
      featureKey: featureParam.optional(),
      threshold: z.coerce.number().min(0).max(10).default(0.8).describe("used / limit at least this (default 0.8)"),
      ...pageQuery,
    }),
  },
  responses: { 200: jsonResponse(upsellSchema, "A page of candidates, by customer and feature"), ...errorResponses },
});

const trialsSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    plans: z.array(
      z.object({
        planId: z.string(),
        started: z.number().int(),
        converted: z.number().int(),
        expired: z.number().int(),
        conversionRate: z.number().nullable().describe("converted / (converted + expired); null while none has ended"),
      }),
    ),
  })
  .openapi("AnalyticsTrials");

const getTrials = route("viewer", {
  method: "get",
  path: "/trials",
  summary: "Trials started in the range per plan: converted, expired, conversion rate",
  request: { query: z.object(range) },
  responses: {
    200: jsonResponse(trialsSchema, `One entry per plan (range up to ${MAX_TRIALS_RANGE_DAYS} days)`),
    ...errorResponses,
  },
});

const round = (n: number) => Math.round(n * 10_000) / 10_000;
const upsellCursor = z.tuple([z.string(), z.string()]);

export const analyticsRoutes = newRouter();
analyticsRoutes
  .openapi(getFeatures, async (c) => {
    const { from, to, hourFrom } = rangeOf(c, c.req.valid("query"));
    const points = await reader(c);
    const [keys, entitled, activity] = await Promise.all([
      featureKeys(c.env.DB),
      entitledCustomers(c.env.DB),
      points.activity(hourFrom, to),
    ]);
    const features = keys.map((featureKey) => {
      const a = activity.get(featureKey);
      const e = entitled.get(featureKey) ?? 0;
      const active = a?.activeCustomers ?? 0;
      return {
        featureKey,
        entitledCustomers: e,
        activeCustomers: active,
        adoption: e === 0 ? 0 : round(active / e),
        checks: a?.checks ?? 0,
        denials: a?.denials ?? 0,
        usage: a?.usage ?? { total: 0, p50: 0, p90: 0, max: 0 },
      };
    });
    return c.json({ from: iso(from), to: iso(to), features }, 200);
  })
  .openapi(getUsageSeries, async (c) => {
    const q = c.req.valid("query");
    const { hourFrom, to } = rangeOf(c, q);
    const bucketMs = q.interval === "hour" ? HOUR_MS : DAY_MS;
    const rows = await (await reader(c)).usage(q.featureKey, bucketMs, hourFrom, to);
    const byT = new Map(rows.map((r) => [r.t, r]));
    const points = [];
    // Gapless, so a chart needs no filling: a bucket without consumes is a zero.
    for (let t = hourFrom - (hourFrom % bucketMs); t < to; t += bucketMs) {
      const r = byT.get(t);
      points.push({ t: iso(t), total: r?.total ?? 0, customers: r?.customers ?? 0 });
    }
    return c.json({ featureKey: q.featureKey, interval: q.interval, points }, 200);
  })
  .openapi(getDenials, async (c) => {
    const q = c.req.valid("query");
    const { hourFrom, to } = rangeOf(c, q);
    const rows = await (await reader(c)).denials(q.by, hourFrom, to, MAX_DENIAL_ROWS);
    return c.json({ by: q.by, rows }, 200);
  })
  .openapi(getUpsell, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, upsellCursor);
    const rows = await upsellCandidates(c.env.DB, {
      now: c.get("services").clock.now(),
      feature: q.featureKey,
      threshold: q.threshold,
      after,
      limit: q.limit + 1,
    });
    const { items, nextCursor } = page(
      rows,
      q.limit,
      (r) => [r.customerId, r.featureKey],
      (r) => ({ ...r, ratio: round(r.used / r.limit) }),
    );
    return c.json({ candidates: items, nextCursor }, 200);
  })
  .openapi(getTrials, async (c) => {
    const { from, to } = rangeOf(c, c.req.valid("query"), MAX_TRIALS_RANGE_DAYS);
    const rows = await trialConversions(c.env.DB, from, to);
    const plans = rows.map((r) => ({
      ...r,
      conversionRate: r.converted + r.expired === 0 ? null : round(r.converted / (r.converted + r.expired)),
    }));
    return c.json({ from: iso(from), to: iso(to), plans }, 200);
  });
