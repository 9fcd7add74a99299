// /admin/v1/plans: plans and add-ons with their entitlements. Reads: viewer. Writes: admin. Every
// spec is checked against its feature's type (specProblem) and the known region groups. A write makes
// a new catalog revision (write/catalog-write.ts): no customer is recompiled.
import { z } from "@hono/zod-openapi";
import { entitlementShorthand, entityId, featureKey, planDef } from "../../domain/catalog";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  conflictResponse,
  errorResponses,
  idParam,
  jsonBody,
  jsonResponse,
  notFoundResponse,
} from "../../http/schemas";
import { readCatalogFacts } from "../../store/catalog";
import {
  deletePlanStatements,
  listPlans,
  type Plan,
  planExists,
  planReferences,
  planWire,
  putPlanStatements,
  readPlan,
  withEntitlements,
} from "../../store/plans";
import { commitCatalogWrite } from "../../write/catalog-write";
import { normalizePlanEntitlements } from "../../write/spec-validation";
import { adminRoute, catalogWrittenFields } from "./route";

const planSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(["base", "addon"]),
    description: z.string(),
    entitlements: z.record(z.string(), z.any()),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Plan");
const toView = (p: Plan): z.output<typeof planSchema> => planWire(p);

const planCreate = planDef.extend({ id: entityId }).strict().openapi("PlanInput");
const planReplace = planDef.openapi("PlanReplace");
const entitlementParams = z.object({ id: entityId, feature: featureKey });
const written = z.object({ plan: planSchema.nullable(), ...catalogWrittenFields });
const route = adminRoute("admin: plans");

const listPlansRoute = route("viewer", {
  method: "get",
  path: "/",
  summary: "Plans with their entitlements, by id",
  request: { query: z.object({ kind: z.enum(["base", "addon"]).optional(), ...pageQuery }) },
  responses: { 200: jsonResponse(pageOf(planSchema), "A page of plans"), ...errorResponses },
});
const getPlanRoute = route("viewer", {
  method: "get",
  path: "/{id}",
  summary: "One plan with its entitlements",
  request: { params: idParam },
  responses: { 200: jsonResponse(planSchema, "The plan"), 404: notFoundResponse, ...errorResponses },
});
const createPlanRoute = route("admin", {
  method: "post",
  path: "/",
  summary: "Create a plan or add-on",
  request: { body: jsonBody(planCreate) },
  responses: { 201: jsonResponse(written, "Created"), 409: conflictResponse, ...errorResponses },
});
const replacePlanRoute = route("admin", {
  method: "put",
  path: "/{id}",
  summary: "Replace a plan and its entitlements",
  request: { params: idParam, body: jsonBody(planReplace) },
  responses: { 200: jsonResponse(written, "Replaced"), 404: notFoundResponse, ...errorResponses },
});
const putEntitlementRoute = route("admin", {
  method: "put",
  path: "/{id}/entitlements/{feature}",
  summary: "Set one entitlement of a plan",
  request: { params: entitlementParams, body: jsonBody(entitlementShorthand.openapi("PlanEntitlementInput")) },
  responses: { 200: jsonResponse(written, "Set"), 404: notFoundResponse, ...errorResponses },
});
const deleteEntitlementRoute = route("admin", {
  method: "delete",
  path: "/{id}/entitlements/{feature}",
  summary: "Remove one entitlement from a plan",
  request: { params: entitlementParams },
  responses: { 200: jsonResponse(written, "Removed"), 404: notFoundResponse, ...errorResponses },
});
const deletePlanRoute = route("admin", {
  method: "delete",
  path: "/{id}",
  summary: "Delete a plan no subscription or price mapping refers to",
  request: { params: idParam },
  responses: { 200: jsonResponse(written, "Deleted"), 404: notFoundResponse, 409: conflictResponse, ...errorResponses },
});

async function planOr404(db: D1Database, id: string): Promise<Plan> {
  const plan = await readPlan(db, id);
  if (!plan) throw new Problem("not-found", `No plan '${id}'.`);
  return plan;
}

/** Writes `after` over `before` (null: a new plan): plan row + its exact entitlements, audited, then the catalog is published. */
async function writePlan(
  c: Parameters<typeof commitCatalogWrite>[0],
  action: string,
  before: Plan | null,
  after: Plan,
) {
  const audit = {
    action,
    entityType: "plan",
    entityId: after.id,
    before: before ? toView(before) : null,
    after: toView(after),
    reason: auditReason(c),
  };
  return commitCatalogWrite(c, putPlanStatements(c.env.DB, after), [audit]);
}

export const planRoutes = newRouter();
planRoutes
  .openapi(listPlansRoute, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string());
    const rows = await listPlans(c.env.DB, { kind: q.kind, after }, q.limit + 1);
    const shown = page(
      rows,
      q.limit,
      (r) => r.id,
      (r) => r,
    );
    return c.json(
      { items: (await withEntitlements(c.env.DB, shown.items)).map(toView), nextCursor: shown.nextCursor },
      200,
    );
  })
  .openapi(getPlanRoute, async (c) => c.json(toView(await planOr404(c.env.DB, c.req.valid("param").id)), 200))
  .openapi(createPlanRoute, async (c) => {
    const body = c.req.valid("json");
    if (await planExists(c.env.DB, body.id)) throw new Problem("conflict", `Plan '${body.id}' exists.`);
    const entitlements = normalizePlanEntitlements(await readCatalogFacts(c.env.DB), body.entitlements);
    const now = c.var.services.clock.now();
    const after: Plan = {
      id: body.id,
      name: body.name,
      kind: body.kind,
      description: body.description,
      entitlements,
      createdAt: now,
      updatedAt: now,
    };
    const published = await writePlan(c, "plan.create", null, after);
    return c.json({ plan: toView(after), ...published }, 201);
  })
  .openapi(replacePlanRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const before = await planOr404(c.env.DB, id);
    const entitlements = normalizePlanEntitlements(await readCatalogFacts(c.env.DB), body.entitlements);
    const after: Plan = {
      ...before,
      name: body.name,
      kind: body.kind,
      description: body.description,
      entitlements,
      updatedAt: c.var.services.clock.now(),
    };
    const published = await writePlan(c, "plan.update", before, after);
    return c.json({ plan: toView(after), ...published }, 200);
  })
  .openapi(putEntitlementRoute, async (c) => {
    const { id, feature } = c.req.valid("param");
    const before = await planOr404(c.env.DB, id);
    const set = normalizePlanEntitlements(await readCatalogFacts(c.env.DB), { [feature]: c.req.valid("json") }, "json");
    const after: Plan = {
      ...before,
      entitlements: { ...before.entitlements, ...set },
      updatedAt: c.var.services.clock.now(),
    };
    const published = await writePlan(c, "plan.entitlement.set", before, after);
    return c.json({ plan: toView(after), ...published }, 200);
  })
  .openapi(deleteEntitlementRoute, async (c) => {
    const { id, feature } = c.req.valid("param");
    const before = await planOr404(c.env.DB, id);
    if (!Object.hasOwn(before.entitlements, feature))
      throw new Problem("not-found", `Plan '${id}' has no entitlement for '${feature}'.`);
    const { [feature]: _removed, ...rest } = before.entitlements;
    const after: Plan = { ...before, entitlements: rest, updatedAt: c.var.services.clock.now() };
    const published = await writePlan(c, "plan.entitlement.delete", before, after);
    return c.json({ plan: toView(after), ...published }, 200);
  })
  .openapi(deletePlanRoute, async (c) => {
    const { id } = c.req.valid("param");
    const before = await planOr404(c.env.DB, id);
    const refs = await planReferences(c.env.DB, id);
    if (refs.subscriptions > 0 || refs.prices > 0) {
      throw new Problem(
        "conflict",
        `Plan '${id}' is used by ${refs.subscriptions} subscription(s) and ${refs.prices} price mapping(s).`,
        { references: refs },
      );
    }
    const published = await commitCatalogWrite(c, deletePlanStatements(c.env.DB, id), [
      { action: "plan.delete", entityType: "plan", entityId: id, before: toView(before), reason: auditReason(c) },
    ]);
    return c.json({ plan: null, ...published }, 200);
  });
