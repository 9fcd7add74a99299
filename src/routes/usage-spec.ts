// The request and answer schemas of the usage routes (src/routes/usage.ts), and their OpenAPI
// declarations: what a client sends and gets, apart from what the handlers do with it.
import { createRoute, z } from "@hono/zod-openapi";
import { MAX_PAGE } from "../http/pagination";
import {
  apiKeySecurity,
  conflictResponse,
  customerIdParam,
  deniedBySchema,
  entityIdParam,
  entityViewSchema,
  errorResponses,
  featureParam,
  jsonBody,
  jsonResponse,
  minVersionBody,
  notFoundResponse,
} from "../http/schemas";

const amount = z
  .number()
  .finite()
  .refine((n) => Math.abs(n) <= Number.MAX_SAFE_INTEGER, "must be within ±2^53-1")
  .openapi({ example: 1 });
export const idempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");

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
    minVersion: minVersionBody.optional(),
    entityId: entityIdParam.optional(),
  })
  .strict()
  .openapi("UsageRequest");

export const reserveBody = z
  .object({
    customerId: customerIdParam,
    feature: featureParam,
    amount: amount.refine((n) => n > 0, "must be positive"),
    ttlSeconds: z.number().int().min(1).max(86_400).default(300),
    idempotencyKey: idempotencyKey.optional(),
    minVersion: minVersionBody.optional(),
    entityId: entityIdParam.optional(),
  })
  .strict()
  .openapi("ReserveRequest");

export const settleBody = z
  .object({
    customerId: customerIdParam,
    reservationId: z.string().min(1).max(100),
    amount: amount.refine((n) => n >= 0, "must not be negative"),
  })
  .strict()
  .openapi("SettleRequest");
export const releaseBody = settleBody.omit({ amount: true }).openapi("ReleaseRequest");

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
    entity: entityViewSchema.optional(),
    deniedBy: deniedBySchema.optional(),
    topUpRemaining: z.number().optional().describe("a credits feature: credits left in open top-ups (drawn first)"),
    credits: z
      .object({
        feature: z.string().describe("the credits feature"),
        cost: z.number().describe("credits one unit draws"),
        drawn: z.number().describe("credits this call drew (0 when refused)"),
        used: z.number(),
        limit: z.number().nullable(),
        remaining: z.number().nullable(),
        overage: z.number(),
        resetsAt: z.string().nullable(),
        topUpRemaining: z.number().optional(),
      })
      .optional()
      .describe("The feature has a credit cost: the balance it drew from, decided together with it"),
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

export const usageRoute = post("/usage", "Consume or record usage of a metered feature", usageBody);
export const reserveRoute = post("/usage/reserve", "Hold units for work whose cost is known later", reserveBody);
export const settleRoute = post(
  "/usage/settle",
  "Charge the actual amount of a reservation and free the rest",
  settleBody,
);
export const releaseRoute = post("/usage/release", "Free a reservation without charging", releaseBody);

/** GET /v1/usage without `from`: the closed periods that started within the last year. */
export const DEFAULT_USAGE_WINDOW_MS = 365 * 24 * 3600_000;

export const usageQuery = z.object({
  feature: featureParam.optional(),
  from: z.iso
    .datetime({ offset: true })
    .optional()
    .describe("Past periods that started at or after this instant (default: one year before now)"),
  to: z.iso
    .datetime({ offset: true })
    .optional()
    .describe("Past periods that started before this instant (default: none)"),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE)
    .default(50)
    .openapi({ type: "integer", example: 50, description: "Past periods per page, over all features" }),
  cursor: z.string().max(1024).optional().openapi({ description: "The nextCursor of the previous page" }),
});

const pastPeriod = z.object({ periodStart: z.string(), periodEnd: z.string().nullable(), total: z.number() });
const usageReport = z
  .object({
    customerId: z.string(),
    evaluatedAt: z.string(),
    features: z.array(
      z.object({
        feature: z.string(),
        entitled: z.boolean(),
        used: z.number(),
        reserved: z.number(),
        limit: z.number().nullable(),
        remaining: z.number().nullable(),
        overage: z.number(),
        periodStart: z.string(),
        resetsAt: z.string().nullable(),
        past: z.array(pastPeriod).describe("This page's closed periods of the feature, newest first"),
      }),
    ),
    nextCursor: z.string().nullable().describe("More past periods: pass it as `cursor` (null on the last page)"),
    ledgerNote: z.string(),
  })
  .openapi("UsageReport");

export const getUsage = createRoute({
  method: "get",
  path: "/usage/{customerId}",
  tags,
  security,
  summary: "Current period usage per metered feature (meter), and a page of closed periods' totals (D1 ledger)",
  request: { params: z.object({ customerId: customerIdParam }), query: usageQuery },
  responses: { 200: jsonResponse(usageReport, "Usage"), 404: notFoundResponse, ...errorResponses },
});
