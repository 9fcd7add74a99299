// OpenFeature Remote Evaluation Protocol (open-feature/protocol, service/openapi.yaml), mounted at /ofrep/v1:
//   POST /evaluate/flags/{key}  one flag   -> 200 flag | 400 evaluationFailure | 404 FLAG_NOT_FOUND
//   POST /evaluate/flags        every flag -> 200 { flags } with ETag | 304 on If-None-Match | 400 bulk failure
// Auth is the public API's: `Authorization: Bearer <api key>` with scope check (401/403). OFREP
// defines its own error bodies (application/json, not problem+json) for 400/404/500; 401/403/413/415
// keep Tollgate's problem+json, which OFREP leaves unspecified.
import { createRoute, z } from "@hono/zod-openapi";
import { cors } from "hono/cors";
import { assertCustomerAccess, requireScope } from "../auth/middleware";
import { checkDeps, evaluateAll, evaluateCheck, UnknownCustomer } from "../check-path";
import { logRequestFailure, problemResponse, toProblem } from "../http/problem";
import { newRouter } from "../http/router";
import { apiKeySecurity, edgeCountry, errorResponses, jsonResponse } from "../http/schemas";
import { flagOf, isFailure, parseContext } from "../ofrep/flags";

const metadata = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
const context = z
  .object({
    targetingKey: z
      .string()
      .optional()
      .describe("The Tollgate customer id, or `customer/entity` for an entity inside it (required)"),
    country: z
      .string()
      .optional()
      .describe("ISO 3166-1 alpha-2; feeds geo rules (default: the edge's request.cf.country)"),
    role: z.string().optional().describe("The end user's role; feeds role rules"),
  })
  .catchall(z.unknown())
  .openapi("OfrepContext");
const evaluationRequest = z.object({ context: context.optional() }).openapi("OfrepEvaluationRequest");
const evaluationSuccess = z
  .object({
    key: z.string(),
    value: z
      .any()
      .optional()
      .describe(
        "boolean for boolean and metered features, the config value for config features; absent: use the code default",
      ),
    reason: z.enum(["TARGETING_MATCH", "DEFAULT"]),
    variant: z.string().describe("Tollgate's reason (ok, not_entitled, role_denied, limit_reached, ...)"),
    metadata,
  })
  .openapi("OfrepEvaluationSuccess");
const evaluationFailure = z
  .object({
    key: z.string(),
    errorCode: z.enum(["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"]),
    errorDetails: z.string().optional(),
  })
  .openapi("OfrepEvaluationFailure");
const flagNotFound = z
  .object({ key: z.string(), errorCode: z.literal("FLAG_NOT_FOUND"), errorDetails: z.string().optional() })
  .openapi("OfrepFlagNotFound");
const bulkSuccess = z
  .object({ flags: z.array(z.union([evaluationSuccess, evaluationFailure])), metadata: metadata.optional() })
  .openapi("OfrepBulkEvaluationSuccess");
const bulkFailure = z
  .object({ errorCode: z.string(), errorDetails: z.string().optional() })
  .openapi("OfrepBulkEvaluationFailure");
const generalError = z.object({ errorDetails: z.string().optional() }).openapi("OfrepGeneralError");

const body = { required: false, content: { "application/json": { schema: evaluationRequest } } };
const common = {
  401: errorResponses[401],
  403: errorResponses[403],
  413: errorResponses[413],
  415: errorResponses[415],
  500: jsonResponse(generalError, "Internal error, or the stores needed to answer are down"),
};
const tags = ["OFREP"];

const evaluateFlag = createRoute({
  method: "post",
  path: "/evaluate/flags/{key}",
  tags,
  security: apiKeySecurity,
  summary: "OFREP single flag evaluation (the flag key is the feature key)",
  request: { params: z.object({ key: z.string().min(1).openapi({ example: "sso" }) }), body },
  responses: {
    200: jsonResponse(evaluationSuccess, "The evaluated flag"),
    400: jsonResponse(evaluationFailure, "Bad context or body"),
    404: jsonResponse(flagNotFound, "No such feature"),
    ...common,
  },
});

const evaluateFlags = createRoute({
  method: "post",
  path: "/evaluate/flags",
  tags,
  security: apiKeySecurity,
  summary: "OFREP bulk evaluation: every catalog feature for the context (ETag / If-None-Match)",
  request: { headers: z.object({ "if-none-match": z.string().optional() }), body },
  responses: {
    200: {
      ...jsonResponse(bulkSuccess, "Every flag"),
      headers: { ETag: { schema: { type: "string" }, description: "Changes whenever any flag's evaluation does" } },
    },
    304: { description: "Not modified since the ETag sent in If-None-Match" },
    400: jsonResponse(bulkFailure, "Bad context or body"),
    ...common,
  },
});

/** A body that is JSON but not an evaluation request: a bad context, or not parseable as one. */
function invalidBody(issues: { path: PropertyKey[] }[]) {
  const inContext = issues.some((i) => i.path[0] === "context");
  return {
    errorCode: inContext ? ("INVALID_CONTEXT" as const) : ("PARSE_ERROR" as const),
    errorDetails: inContext ? "context must be an object of attributes." : "The body must be an object { context }.",
  };
}

export const ofrepRoutes = newRouter();
// OFREP web providers run in browsers: allow the headers they send and expose the ETag they poll with.
ofrepRoutes.use(
  "*",
  cors({
    origin: "*",
    allowHeaders: ["Authorization", "Content-Type", "If-None-Match"],
    exposeHeaders: ["ETag", "X-Request-Id"],
  }),
);
ofrepRoutes.use("*", requireScope("check"));
ofrepRoutes
  .openapi(
    evaluateFlag,
    async (c) => {
      const { key } = c.req.valid("param");
      const ctx = parseContext(c.req.valid("json")?.context);
      if (!ctx.ok) return c.json({ key, errorCode: ctx.errorCode, errorDetails: ctx.errorDetails }, 400);
      assertCustomerAccess(c.var.principal, ctx.value.customerId);
      const decision = await evaluateCheck(checkDeps(c), {
        ...ctx.value,
        feature: key,
        country: ctx.value.country ?? edgeCountry(c),
      });
      const flag = flagOf(key, decision);
      return isFailure(flag) ? c.json({ ...flag, errorCode: "FLAG_NOT_FOUND" as const }, 404) : c.json(flag, 200);
    },
    (result, c) => {
      if (!result.success) return c.json({ key: c.req.param("key") ?? "", ...invalidBody(result.error.issues) }, 400);
    },
  )
  .openapi(
    evaluateFlags,
    async (c) => {
      const ctx = parseContext(c.req.valid("json")?.context);
      if (!ctx.ok) return c.json({ errorCode: ctx.errorCode, errorDetails: ctx.errorDetails }, 400);
      assertCustomerAccess(c.var.principal, ctx.value.customerId);
      const input = { ...ctx.value, country: ctx.value.country ?? edgeCountry(c) };
      const all = await evaluateAll(checkDeps(c), input).catch(noneIfUnknown);
      const payload = all
        ? {
            flags: Object.entries(all.features).map(([key, d]) => flagOf(key, d, all.snapshotVersion)),
            ...(all.degraded ? { metadata: { degraded: true } } : {}),
          }
        : { flags: [], metadata: { reason: "unknown_customer" } };
      const etag = await etagOf(JSON.stringify(payload));
      c.header("ETag", etag);
      c.header("Cache-Control", "private, no-cache");
      if (matchesEtag(c.req.header("If-None-Match"), etag)) return c.body(null, 304);
      return c.json(payload, 200);
    },
    (result, c) => {
      if (!result.success) return c.json(invalidBody(result.error.issues), 400);
    },
  );

/** OFREP answers an unknown customer (targetingKey) with no flags, not with an error. */
function noneIfUnknown(err: unknown): null {
  if (err instanceof UnknownCustomer) return null;
  throw err;
}

// OFREP's error bodies for what goes wrong inside these routes; auth failures stay problem+json.
ofrepRoutes.onError((err, c) => {
  const problem = toProblem(err);
  const key = c.req.param("key");
  if (problem.slug === "malformed-json")
    return c.json(
      {
        ...(key === undefined ? {} : { key }),
        errorCode: "PARSE_ERROR",
        errorDetails: "The request body is not valid JSON.",
      },
      400,
    );
  if (problem.status < 500) return problemResponse(c, problem);
  if (problem.status === 500) logRequestFailure(c, err);
  return c.json({ errorDetails: problem.detail }, 500, problem.status === 503 ? { "Retry-After": "5" } : {});
});

/** A strong ETag over the exact response body: it changes whenever any flag's evaluation does. */
async function etagOf(body: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
  return `"${btoa(String.fromCharCode(...digest.slice(0, 18)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")}"`;
}

/** If-None-Match (RFC 9110 section 13.1.2): a list of tags or "*", compared weakly. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(",").some((t) => {
    const tag = t.trim().replace(/^W\//, "");
    return tag === "*" || tag === etag;
  });
}
