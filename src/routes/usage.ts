// POST /v1/usage, GET /v1/usage/{customerId}, POST /v1/usage/reserve|settle|release (scope usage)
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { assertCustomerAccess, requireScope, waitUntilOf } from "../auth/middleware";
import { readSnapshot } from "../decide";
import { periodAt } from "../domain/periods";
import { iso } from "../domain/time";
import type { Snapshot } from "../domain/types";
import { Problem, type ProblemSlug } from "../http/problem";
import { newRouter } from "../http/router";
import {
  apiKeySecurity,
  conflictResponse,
  customerIdParam,
  errorResponses,
  featureParam,
  jsonBody,
  jsonResponse,
  notFoundResponse,
} from "../http/schemas";
import type { MeterError, MeterResult, UsageAnswer } from "../meter/customer-meter";
import { meterStub } from "../meter/locate";
import { checkAmount, meterTerms } from "../meter/terms";

const amount = z
  .number()
  .finite()
  .refine((n) => Math.abs(n) <= Number.MAX_SAFE_INTEGER, "must be within ±2^53-1")
  .openapi({ example: 1 });
const idempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export const usageBody = z
  .object({
    customerId: customerIdParam,
    feature: featureParam,
    amount: amount.default(1).describe("Units; negative only for gauges (features without reset)"),
    idempotencyKey: idempotencyKey.optional().describe("Or the Idempotency-Key header; remembered at least 24 h"),
    mode: z
      .enum(["consume", "record"])
      .default("consume")
      .describe("consume: atomic check-and-increment; record: already happened, always recorded"),
    timestamp: z.iso.datetime({ offset: true }).optional().describe("record only: when the usage happened"),
  })
  .strict()
  .openapi("UsageRequest");

const reserveBody = z
  .object({
    customerId: customerIdParam,
    feature: featureParam,
    amount: amount.refine((n) => n > 0, "must be positive"),
    ttlSeconds: z.number().int().min(1).max(86_400).default(300),
    idempotencyKey: idempotencyKey.optional(),
  })
  .strict()
  .openapi("ReserveRequest");

const settleBody = z
  .object({
    customerId: customerIdParam,
    reservationId: z.string().min(1).max(100),
    amount: amount.refine((n) => n >= 0, "must not be negative"),
  })
  .strict()
  .openapi("SettleRequest");
const releaseBody = settleBody.omit({ amount: true }).openapi("ReleaseRequest");

const usageAnswer = z
  .object({
    customerId: z.string(),
    feature: z.string(),
    allowed: z.boolean(),
    reason: z.enum(["ok", "limit_reached", "not_entitled", "subscription_inactive", "trial_expired", "grant_expired"]),
    used: z.number(),
    reserved: z.number(),
    limit: z.number().nullable(),
    remaining: z.number().nullable(),
    resetsAt: z.string().nullable(),
    overage: z.number(),
    replayed: z.boolean().optional(),
    reservationId: z.string().optional(),
    expiresAt: z.string().optional(),
    settled: z.number().optional(),
    snapshotVersion: z.number().int(),
  })
  .openapi("UsageAnswer");

const security = apiKeySecurity;
const tags = ["usage"];
const conflict = { 409: conflictResponse };
const post = <P extends string, T extends z.ZodType>(path: P, summary: string, body: T) =>
  createRoute({
    method: "post",
    path,
    tags,
    security,
    summary,
    request: { body: jsonBody(body) },
    responses: {
      200: jsonResponse(usageAnswer, "The meter's answer (a denial is allowed: false)"),
      404: notFoundResponse,
      ...conflict,
      ...errorResponses,
    },
  });

const usageRoute = post("/usage", "Consume or record usage of a metered feature", usageBody);
const reserveRoute = post("/usage/reserve", "Hold units for work whose cost is known later", reserveBody);
const settleRoute = post("/usage/settle", "Charge the actual amount of a reservation and free the rest", settleBody);
const releaseRoute = post("/usage/release", "Free a reservation without charging", releaseBody);

const getUsage = createRoute({
  method: "get",
  path: "/usage/{customerId}",
  tags,
  security,
  summary: "Current period usage per metered feature, and past periods from the D1 ledger",
  request: { params: z.object({ customerId: customerIdParam }), query: z.object({ feature: featureParam.optional() }) },
  responses: { 200: jsonResponse(z.any(), "Usage"), 404: notFoundResponse, ...errorResponses },
});

async function snapshotFor(c: Context<AppEnv>, customerId: string): Promise<Snapshot> {
  // c.get rather than c.var on the consume path: Hono builds a new object from its map on every c.var read.
  assertCustomerAccess(c.get("principal"), customerId);
  const services = c.get("services");
  const read = await readSnapshot(
    { env: c.env, services, waitUntil: waitUntilOf(c) },
    customerId,
    services.clock.now(),
  );
  if (!read.snapshot) throw new Problem("not-found", `No customer '${customerId}'.`);
  return read.snapshot;
}

function answer(
  c: Context<AppEnv>,
  snapshot: Snapshot,
  feature: string,
  result: MeterResult,
  denial: string | null = null,
) {
  if (!result.ok) throw new Problem(meterProblem(result.error), result.detail, { code: result.error });
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
    throw new Problem("validation", "Invalid Idempotency-Key header.", {
      errors: [{ path: "header.Idempotency-Key", message: "printable ASCII, 1-255 characters" }],
    });
  if (header !== undefined && bodyKey !== undefined && header !== bodyKey)
    throw new Problem("validation", "Idempotency-Key header and body idempotencyKey differ.", {
      errors: [{ path: "json.idempotencyKey", message: "differs from the header" }],
    });
  return bodyKey ?? header ?? null;
}

/** What consume/record and reserve share: the idempotency key, the instant, the snapshot and the meter terms. */
async function prepare(
  c: Context<AppEnv>,
  body: { customerId: string; feature: string; amount: number; idempotencyKey?: string },
) {
  const key = keyOf(c, body.idempotencyKey);
  const now = c.get("services").clock.now();
  const snapshot = await snapshotFor(c, body.customerId);
  const t = meterTerms(snapshot, body.feature, now);
  checkAmount(t, body.amount);
  return { key, now, snapshot, t };
}

export const usageRoutes = newRouter();
usageRoutes.use("/usage", requireScope("usage"));
usageRoutes.use("/usage/*", requireScope("usage"));
usageRoutes
  .openapi(usageRoute, async (c) => {
    const body = c.req.valid("json");
    const { key, now, snapshot, t } = await prepare(c, body);
    let occurredAt = now;
    if (body.timestamp !== undefined) {
      if (body.mode !== "record")
        throw new Problem("validation", "timestamp applies to mode 'record' only.", {
          errors: [{ path: "json.timestamp", message: "record only" }],
        });
      occurredAt = Date.parse(body.timestamp);
      if (occurredAt > now + MAX_CLOCK_SKEW_MS)
        throw new Problem("validation", "timestamp is in the future.", {
          errors: [{ path: "json.timestamp", message: "in the future" }],
        });
    }
    const result = await meterStub(c.env, snapshot.customerId, snapshot.residency).usage({
      customerId: snapshot.customerId,
      feature: body.feature,
      amount: body.amount,
      mode: body.mode,
      idempotencyKey: key,
      fingerprint: JSON.stringify(["usage", body.feature, body.amount, body.mode, body.timestamp ?? null]),
      allowance: t.allowance,
      entitled: t.entitled,
      period: t.period,
      occurredPeriod:
        occurredAt === now ? undefined : periodAt(t.terms.reset, t.terms.anchor, t.terms.anchorAt, occurredAt),
      occurredAt,
      now,
      gauge: t.gauge,
    });
    return answer(c, snapshot, body.feature, result, t.denial);
  })
  .openapi(reserveRoute, async (c) => {
    const body = c.req.valid("json");
    const { key, now, snapshot, t } = await prepare(c, body);
    const result = await meterStub(c.env, snapshot.customerId, snapshot.residency).reserve({
      customerId: snapshot.customerId,
      feature: body.feature,
      amount: body.amount,
      ttlSeconds: body.ttlSeconds,
      idempotencyKey: key,
      fingerprint: JSON.stringify(["reserve", body.feature, body.amount, body.ttlSeconds]),
      allowance: t.allowance,
      entitled: t.entitled,
      period: t.period,
      terms: t.terms,
      now,
    });
    return answer(c, snapshot, body.feature, result, t.denial);
  })
  .openapi(settleRoute, async (c) => {
    const body = c.req.valid("json");
    const snapshot = await snapshotFor(c, body.customerId);
    const result = await meterStub(c.env, snapshot.customerId, snapshot.residency).settle({
      customerId: snapshot.customerId,
      reservationId: body.reservationId,
      amount: body.amount,
      now: c.var.services.clock.now(),
    });
    return answer(c, snapshot, result.ok ? featureOf(result.answer) : "", result);
  })
  .openapi(releaseRoute, async (c) => {
    const body = c.req.valid("json");
    const snapshot = await snapshotFor(c, body.customerId);
    const result = await meterStub(c.env, snapshot.customerId, snapshot.residency).release({
      customerId: snapshot.customerId,
      reservationId: body.reservationId,
      now: c.var.services.clock.now(),
    });
    return answer(c, snapshot, result.ok ? featureOf(result.answer) : "", result);
  })
  .openapi(getUsage, async (c) => {
    const { customerId } = c.req.valid("param");
    const { feature } = c.req.valid("query");
    const now = c.var.services.clock.now();
    const snapshot = await snapshotFor(c, customerId);
    const keys = Object.keys(snapshot.features).filter(
      (k) => snapshot.features[k]!.type === "metered" && (!feature || k === feature),
    );
    if (feature && keys.length === 0) throw new Problem("not-found", `No metered feature '${feature}'.`);
    const terms = Object.fromEntries(keys.map((k) => [k, meterTerms(snapshot, k, now)]));
    const stub = meterStub(c.env, customerId, snapshot.residency);
    const current = await stub.peek(
      customerId,
      keys.map((k) => ({ feature: k, period: terms[k]!.period })),
      now,
    );
    const history = await c.env.DB.prepare(
      `SELECT feature_key, period_start, MAX(period_end) AS period_end, SUM(amount) AS total FROM usage_events
       WHERE customer_id = ?1 AND (?2 IS NULL OR feature_key = ?2) GROUP BY feature_key, period_start ORDER BY feature_key, period_start DESC`,
    )
      .bind(customerId, feature ?? null)
      .all<{ feature_key: string; period_start: number; period_end: number | null; total: number }>();
    const features = keys.map((k) => {
      const t = terms[k]!;
      const u = current[k] ?? { used: 0, reserved: 0 };
      const limit = t.allowance.limit;
      return {
        feature: k,
        entitled: t.entitled,
        used: u.used,
        reserved: u.reserved,
        limit,
        remaining: limit === null ? null : Math.max(0, limit - u.used - u.reserved),
        overage: limit === null ? 0 : Math.max(0, u.used - limit),
        periodStart: iso(t.period.start),
        resetsAt: t.period.end === null ? null : iso(t.period.end),
        past: history.results
          .filter((h) => h.feature_key === k && h.period_start < t.period.start)
          .map((h) => ({
            periodStart: iso(h.period_start),
            periodEnd: h.period_end === null ? null : iso(h.period_end),
            total: h.total,
          })),
      };
    });
    return c.json(
      {
        customerId,
        evaluatedAt: iso(now),
        features,
        ledgerNote: "past periods come from the D1 ledger, flushed by the meter within seconds",
      },
      200,
    );
  });

// settle/release requests do not name the feature; the meter's answer does.
const featureOf = (a: UsageAnswer) => a.feature ?? "";

/** The problem kind of each meter refusal; exhaustive, so a new MeterError cannot go unmapped. */
function meterProblem(error: MeterError): ProblemSlug {
  switch (error) {
    case "reservation_not_found":
      return "not-found";
    case "amount_exceeds_reservation":
      return "validation";
    case "idempotency_conflict":
    case "reservation_closed":
      return "conflict";
    default: {
      const unreachable: never = error;
      return unreachable;
    }
  }
}
