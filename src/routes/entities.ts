// POST /v1/entities/{customerId}/{entityId}/assign and /release, GET /v1/entities/{customerId}/{entityId}:
// seats of seats features assigned to named entities inside a customer, and what an entity holds and used
// (docs/model.md, Entities; docs/api.md, Entities). Scope usage: the app assigns a seat when it adds a user.
import { createRoute, z } from "@hono/zod-openapi";
import { assertCustomerAccess, requireScope } from "../auth/middleware";
import { checkDeps } from "../check-path";
import { assignSeat, readEntity, releaseSeat } from "../entity-path";
import { newRouter } from "../http/router";
import {
  apiKeySecurity,
  conflictResponse,
  customerIdParam,
  entityIdParam,
  errorResponses,
  featureParam,
  jsonBody,
  jsonResponse,
  minVersionBody,
  minVersionQuery,
  notFoundResponse,
} from "../http/schemas";

const params = z.object({ customerId: customerIdParam, entityId: entityIdParam });

const seatBody = z
  .object({ feature: featureParam.describe("the seats feature"), minVersion: minVersionBody.optional() })
  .strict()
  .openapi("SeatRequest");

const seatAnswer = z
  .object({
    customerId: z.string(),
    entityId: z.string(),
    feature: z.string(),
    assigned: z.boolean().describe("whether the entity holds a seat of the feature now"),
    reason: z
      .enum(["not_entitled", "limit_reached", "subscription_inactive", "trial_expired", "grant_expired"])
      .optional()
      .describe("why no seat was assigned"),
    used: z.number().describe("seats of the feature assigned now, to any entity"),
    limit: z.number().nullable(),
    remaining: z.number().nullable(),
    snapshotVersion: z.number().int(),
  })
  .openapi("SeatAnswer");

const entityAnswer = z
  .object({
    customerId: z.string(),
    entityId: z.string(),
    seats: z.array(z.object({ feature: z.string(), assignedAt: z.string() })).describe("the seats the entity holds"),
    usage: z
      .array(
        z.object({
          feature: z.string(),
          used: z.number(),
          limit: z.number(),
          remaining: z.number(),
          resetsAt: z.string().nullable(),
        }),
      )
      .describe("its usage of each feature with a per-entity limit, in the entity's current period"),
    evaluatedAt: z.string(),
    snapshotVersion: z.number().int(),
  })
  .openapi("Entity");

const tags = ["entities"];
const seatRoute = <A extends "assign" | "release">(action: A, summary: string) =>
  createRoute({
    method: "post",
    path: `/entities/{customerId}/{entityId}/${action}` as `/entities/{customerId}/{entityId}/${A}`,
    tags,
    security: apiKeySecurity,
    summary,
    request: { params, body: jsonBody(seatBody) },
    responses: {
      200: jsonResponse(seatAnswer, "The seat (a refusal is assigned: false with a reason)"),
      404: notFoundResponse,
      409: conflictResponse,
      ...errorResponses,
    },
  });

const getEntity = createRoute({
  method: "get",
  path: "/entities/{customerId}/{entityId}",
  tags,
  security: apiKeySecurity,
  summary: "The seats an entity holds and its usage against per-entity limits",
  request: { params, query: z.object({ minVersion: minVersionQuery.optional() }) },
  responses: { 200: jsonResponse(entityAnswer, "The entity"), 404: notFoundResponse, ...errorResponses },
});

export const entityRoutes = newRouter();
entityRoutes.use("/entities/*", requireScope("usage"));
entityRoutes
  .openapi(seatRoute("assign", "Assign the entity a seat of a seats feature, if one is free"), async (c) => {
    const { customerId, entityId } = c.req.valid("param");
    assertCustomerAccess(c.get("principal"), customerId);
    return c.json(await assignSeat(checkDeps(c), { customerId, entityId, ...c.req.valid("json") }), 200);
  })
  .openapi(seatRoute("release", "Free the entity's seat of a seats feature"), async (c) => {
    const { customerId, entityId } = c.req.valid("param");
    assertCustomerAccess(c.get("principal"), customerId);
    return c.json(await releaseSeat(checkDeps(c), { customerId, entityId, ...c.req.valid("json") }), 200);
  })
  .openapi(getEntity, async (c) => {
    const { customerId, entityId } = c.req.valid("param");
    assertCustomerAccess(c.get("principal"), customerId);
    return c.json(await readEntity(checkDeps(c), customerId, entityId, c.req.valid("query").minVersion), 200);
  });
