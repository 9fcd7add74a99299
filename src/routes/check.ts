// POST /v1/check, GET /v1/check, GET /v1/entitlements/{customerId}
import { createRoute, z } from "@hono/zod-openapi";
import { assertCustomerAccess, hasScope, requireScope } from "../auth/middleware";
import { checkDeps, evaluateAll, evaluateCheck } from "../check-path";
import { MAX_USAGE_SUMMARY_AGE_MS } from "../config";
import { Problem } from "../http/problem";
import { newRouter } from "../http/router";
import {
  apiKeySecurity,
  conflictResponse,
  countryParam,
  customerIdParam,
  decisionSchema,
  edgeCountry,
  entityIdParam,
  errorResponses,
  featureParam,
  jsonBody,
  jsonResponse,
  minVersionBody,
  minVersionQuery,
  notFoundResponse,
  roleParam,
} from "../http/schemas";
import { SnapshotUnavailable } from "../store/errors";
import { DEFAULT_ASSERTION_AUDIENCE, signDecisionAssertion } from "../tokens/assertion";

const quantity = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const maxUsageAge = z
  .number()
  .int()
  .min(0)
  .max(MAX_USAGE_SUMMARY_AGE_MS)
  .describe(
    "Metered: the oldest usage (ms) this check accepts from the isolate's usage summary instead of asking the meter; 0: exact (default and cap: USAGE_SUMMARY_MAX_AGE_MS, 5,000)",
  );

export const checkBody = z
  .object({
    customerId: customerIdParam,
    feature: featureParam,
    role: roleParam.optional(),
    country: countryParam
      .optional()
      .describe("The end user's country, when a trusted server relays it; default: the edge's request.cf.country"),
    quantity: quantity.optional().describe("Metered: whether this many more units fit (default 1)"),
    maxUsageAgeMs: maxUsageAge.optional(),
    minVersion: minVersionBody.optional(),
    entityId: entityIdParam.optional(),
    include: z
      .array(z.enum(["upgrade"]))
      .max(1)
      .optional()
      .describe('["upgrade"]: a not_entitled or limit_reached denial lists the plans and add-ons that would allow it'),
    assert: z
      .boolean()
      .optional()
      .describe(
        "Also return `assertion`: a short-lived signed JWS of this decision for a downstream service (scope sign)",
      ),
    assertAudience: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe(`The assertion's aud (default "${DEFAULT_ASSERTION_AUDIENCE}")`),
  })
  .strict()
  .openapi("CheckRequest");

const checkQuery = z.object({
  customerId: customerIdParam,
  feature: featureParam,
  role: roleParam.optional(),
  country: countryParam.optional(),
  quantity: z.coerce.number().pipe(quantity).optional(),
  maxUsageAgeMs: z.coerce.number().pipe(maxUsageAge).optional(),
  minVersion: minVersionQuery.optional(),
  entityId: entityIdParam.optional(),
  include: z
    .enum(["upgrade"])
    .optional()
    .describe("upgrade: a not_entitled or limit_reached denial lists what would allow it"),
});

const entitlementsQuery = z.object({
  role: roleParam.optional(),
  country: countryParam.optional(),
  minVersion: minVersionQuery.optional(),
  entityId: entityIdParam
    .optional()
    .describe("Evaluate for this entity inside the customer (its seats and own limits)"),
});

const entitlementsSchema = z
  .object({
    customerId: z.string(),
    snapshotVersion: z.number().int(),
    version: z.string(),
    snapshotAgeMs: z.number(),
    evaluatedAt: z.string(),
    degraded: z.boolean().optional(),
    degradedReason: z.enum(["stores_unavailable", "read_through_limited"]).optional(),
    entityId: z.string().optional().describe("the entity the features were evaluated for"),
    features: z.record(
      z.string(),
      decisionSchema.omit({
        customerId: true,
        feature: true,
        snapshotVersion: true,
        version: true,
        snapshotAgeMs: true,
        evaluatedAt: true,
      }),
    ),
  })
  .openapi("Entitlements");

const tags = ["check"];

const assertedDecisionSchema = decisionSchema
  .extend({
    assertion: z.string().optional().describe("With assert: true, a compact JWS (verify with /.well-known/jwks.json)"),
  })
  .openapi("CheckResponse");

const postCheck = createRoute({
  method: "post",
  path: "/check",
  tags,
  security: apiKeySecurity,
  summary: "May this customer use this feature, here and now?",
  request: { body: jsonBody(checkBody) },
  responses: {
    200: jsonResponse(assertedDecisionSchema, "The decision (a denial is allowed: false with a reason)"),
    409: conflictResponse,
    ...errorResponses,
  },
});

const getCheck = createRoute({
  method: "get",
  path: "/check",
  tags,
  security: apiKeySecurity,
  summary: "The same check as POST, from query parameters",
  request: { query: checkQuery },
  responses: { 200: jsonResponse(decisionSchema, "The decision"), 409: conflictResponse, ...errorResponses },
});

const getEntitlements = createRoute({
  method: "get",
  path: "/entitlements/{customerId}",
  tags,
  security: apiKeySecurity,
  summary: "Every feature of the customer, evaluated in the request's context",
  request: { params: z.object({ customerId: customerIdParam }), query: entitlementsQuery },
  responses: {
    200: jsonResponse(entitlementsSchema, "One decision per catalog feature"),
    404: notFoundResponse,
    409: conflictResponse,
    ...errorResponses,
  },
});

export const checkRoutes = newRouter();
checkRoutes.use("/check", requireScope("check"));
checkRoutes.use("/entitlements/*", requireScope("check"));
checkRoutes
  .openapi(postCheck, async (c) => {
    const { assert, assertAudience, ...body } = c.req.valid("json");
    const principal = c.get("principal");
    assertCustomerAccess(principal, body.customerId);
    // An assertion signs the caller's role and country: only a key trusted to sign may ask (review M4).
    if (assert && !hasScope(principal, "sign"))
      throw new Problem("forbidden", "This key lacks the 'sign' scope, which 'assert' needs.");
    const decision = await evaluateCheck(checkDeps(c), { ...body, country: body.country ?? edgeCountry(c) });
    if (!assert) return c.json(decision, 200);
    // A degraded answer (a stale copy, or the feature's failure policy) is served, never signed: as for tokens.
    if (decision.degraded)
      throw new SnapshotUnavailable(`only a degraded answer for '${body.customerId}' is available; it is not asserted`);
    const context = { role: body.role, country: body.country ?? edgeCountry(c), quantity: body.quantity };
    return c.json(
      { ...decision, assertion: await signDecisionAssertion(c.env, decision, { audience: assertAudience, context }) },
      200,
    );
  })
  .openapi(getCheck, async (c) => {
    const q = c.req.valid("query");
    assertCustomerAccess(c.get("principal"), q.customerId);
    const include = q.include ? [q.include] : undefined;
    return c.json(await evaluateCheck(checkDeps(c), { ...q, include, country: q.country ?? edgeCountry(c) }), 200);
  })
  .openapi(getEntitlements, async (c) => {
    const { customerId } = c.req.valid("param");
    const q = c.req.valid("query");
    assertCustomerAccess(c.var.principal, customerId);
    const all = await evaluateAll(checkDeps(c), { customerId, ...q, country: q.country ?? edgeCountry(c) });
    return c.json(all, 200);
  });
