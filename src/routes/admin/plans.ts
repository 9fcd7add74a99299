// /admin/v1/plans: plans and add-ons with their entitlements. Reads: viewer. Writes: admin. Every
// spec is checked against its feature's type (specProblem) and the known region groups. A write makes
// a new catalog revision (write/catalog-write.ts): no customer is recompiled. An edit that changes what
// subscribers get makes a new plan version (store/plans.ts versionOf); existing subscribers stay on
// theirs unless the edit says `?migrate=now|at_period_end` (write/plan-migration.ts).
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
import { isVersionTaken } from "../../store/plan-versions";
import {
  deletePlanStatements,
  listPlans,
  type Plan,
  planExists,
  planReferences,
  planWire,
  putPlanStatements,
  readPlan,
  versionOf,
  withEntitlements,
} from "../../store/plans";
import { commitCatalogWrite } from "../../write/catalog-write";
import type { AuditEntry } from "../../write/commit";
import { assertKindChange } from "../../write/plan-kind";
import { type MigrateMode, migrationWire, migrationWrite } from "../../write/plan-migration";
import { normalizePlanEntitlements } from "../../write/spec-validation";
import { adminRoute, catalogWrittenFields } from "./route";

const planSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(["base", "addon"]),
    description: z.string(),
    entitlements: z.record(z.string(), z.any()),
    version: z.number().int().describe("The current version: what new subscriptions get"),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Plan");
const toView = (p: Plan): z.output<typeof planSchema> => planWire(p);

const planCreate = planDef.extend({ id: entityId }).strict().openapi("PlanInput");
const planReplace = planDef.openapi("PlanReplace");
const entitlementParams = z.object({ id: entityId, feature: featureKey });
const migrateQuery = z.object({
  migrate: z
    .enum(["stay", "now", "at_period_end"])
    .default("stay")
    .describe(
      "What happens to existing subscribers when the edit makes a new version: stay on theirs (grandfathered), move now, or each at its own period end",
    ),
});
const written = z.object({
  plan: planSchema.nullable(),
  migration: z.any().optional().describe("The migration the edit started (migrate now or at_period_end)"),
  ...catalogWrittenFields,
});
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
  request: { params: idParam, query: migrateQuery, body: jsonBody(planReplace) },
  responses: { 200: jsonResponse(written, "Replaced"), 404: notFoundResponse, ...errorResponses },
});
const putEntitlementRoute = route("admin", {
  method: "put",
  path: "/{id}/entitlements/{feature}",
  summary: "Set one entitlement of a plan",
  request: {
    params: entitlementParams,
    query: migrateQuery,
    body: jsonBody(entitlementShorthand.openapi("PlanEntitlementInput")),
  },
  responses: { 200: jsonResponse(written, "Set"), 404: notFoundResponse, ...errorResponses },
});
const deleteEntitlementRoute = route("admin", {
  method: "delete",
  path: "/{id}/entitlements/{feature}",
  summary: "Remove one entitlement from a plan",
  request: { params: entitlementParams, query: migrateQuery },
  responses: { 200: jsonResponse(written, "Removed"), 404: notFoundResponse, ...errorResponses },
});
const deletePlanRoute = route("admin", {
  method: "delete",
  path: "/{id}",
  summary: "Delete a plan no subscription or price mapping refers to",
  request: { params: idParam },
  responses: { 200: jsonResponse(written, "Deleted"), 404: notFoundResponse, 409: conflictResponse, ...errorResponses },
});

/** The plan, or a 404 problem (the plan sub-apps share it). */
export async function planOr404(db: D1Database, id: string): Promise<Plan> {
  const plan = await readPlan(db, id);
  if (!plan) throw new Problem("not-found", `No plan '${id}'.`);
  return plan;
}

/**
 * Writes `next` over `before` (null: a new plan): the plan row, its exact entitlements and, when what
 * subscribers get changed, a new version (and the migration `migrate` asks for), audited, then the
 * catalog is published. Two edits racing for one version number: the later is a 409.
 */
async function writePlan(
  c: Parameters<typeof commitCatalogWrite>[0],
  action: string,
  before: Plan | null,
  next: Omit<Plan, "version">,
  migrate: MigrateMode = "stay",
) {
  const { version, isNew } = versionOf(before, next);
  const after: Plan = { ...next, version };
  const reason = auditReason(c);
  const audits: AuditEntry[] = [
    {
      action,
      entityType: "plan",
      entityId: after.id,
      before: before ? toView(before) : null,
      after: toView(after),
      reason,
    },
  ];
  const statements = putPlanStatements(c.env.DB, after, isNew);
  let migration: ReturnType<typeof migrationWire> | undefined;
  if (before && isNew && migrate !== "stay") {
    const m = await migrationWrite(c, after.id, version, migrate, reason);
    statements.push(m.statement);
    audits.push(m.audit);
    migration = migrationWire(m.migration);
  }
  try {
    const published = await commitCatalogWrite(c, statements, audits);
    return { plan: toView(after), ...(migration ? { migration } : {}), ...published };
  } catch (err) {
    if (isVersionTaken(err))
      throw new Problem(
        "conflict",
        `Plan '${after.id}' was changed by someone else meanwhile; read it again and retry.`,
      );
    throw err;
  }
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
    const next = {
      id: body.id,
      name: body.name,
      kind: body.kind,
      description: body.description,
      entitlements,
      createdAt: now,
      updatedAt: now,
    };
    return c.json(await writePlan(c, "plan.create", null, next), 201);
  })
  .openapi(replacePlanRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const before = await planOr404(c.env.DB, id);
    await assertKindChange(c.env.DB, id, before.kind, body.kind);
    const entitlements = normalizePlanEntitlements(await readCatalogFacts(c.env.DB), body.entitlements);
    const next = {
      ...before,
      name: body.name,
      kind: body.kind,
      description: body.description,
      entitlements,
      updatedAt: c.var.services.clock.now(),
    };
    return c.json(await writePlan(c, "plan.update", before, next, c.req.valid("query").migrate), 200);
  })
  .openapi(putEntitlementRoute, async (c) => {
    const { id, feature } = c.req.valid("param");
    const before = await planOr404(c.env.DB, id);
    const set = normalizePlanEntitlements(await readCatalogFacts(c.env.DB), { [feature]: c.req.valid("json") }, "json");
    const next = { ...before, entitlements: { ...before.entitlements, ...set }, updatedAt: c.var.services.clock.now() };
    return c.json(await writePlan(c, "plan.entitlement.set", before, next, c.req.valid("query").migrate), 200);
  })
  .openapi(deleteEntitlementRoute, async (c) => {
    const { id, feature } = c.req.valid("param");
    const before = await planOr404(c.env.DB, id);
    if (!Object.hasOwn(before.entitlements, feature))
      throw new Problem("not-found", `Plan '${id}' has no entitlement for '${feature}'.`);
    const { [feature]: _removed, ...rest } = before.entitlements;
    const next = { ...before, entitlements: rest, updatedAt: c.var.services.clock.now() };
    return c.json(await writePlan(c, "plan.entitlement.delete", before, next, c.req.valid("query").migrate), 200);
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
