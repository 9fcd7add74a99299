// /admin/v1/plans: plans and add-ons with their entitlements. Reads: viewer. Writes: admin. Every
// spec is checked against its feature's type (specProblem) and the known region groups. A write
// recompiles the plan's customers (current and scheduled subscribers) through a recompile job.
import { z } from "@hono/zod-openapi";
import { entitlementShorthand, entityId, featureKey, planDef } from "../../domain/catalog";
import type { EntitlementSpec } from "../../domain/types";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  adminSecurity,
  conflictResponse,
  errorResponses,
  idParam,
  jsonBody,
  jsonResponse,
  notFoundResponse,
} from "../../http/schemas";
import { SqlFilter } from "../../store/sql-filter";
import { commitCatalogWrite } from "../../write/catalog-write";
import { catalogFacts, normalizePlanEntitlements } from "../../write/spec-validation";
import { jobSchema } from "./jobs";
import { adminRoute } from "./route";

interface PlanDbRow {
  id: string;
  name: string;
  kind: "base" | "addon";
  description: string;
  created_at: number;
  updated_at: number;
}
interface Plan extends PlanDbRow {
  entitlements: Record<string, EntitlementSpec>;
}

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
const toView = (p: Plan): z.output<typeof planSchema> => ({
  id: p.id,
  name: p.name,
  kind: p.kind,
  description: p.description,
  entitlements: p.entitlements,
  createdAt: new Date(p.created_at).toISOString(),
  updatedAt: new Date(p.updated_at).toISOString(),
});

const planCreate = planDef.extend({ id: entityId }).strict().openapi("PlanInput");
const planReplace = planDef.openapi("PlanReplace");
const entitlementParams = z.object({ id: entityId, feature: featureKey });
const written = z.object({ plan: planSchema.nullable(), job: jobSchema });
const route = adminRoute("admin: plans");

const listPlans = route("viewer", {
  method: "get",
  path: "/",
  summary: "Plans with their entitlements, by id",
  request: { query: z.object({ kind: z.enum(["base", "addon"]).optional(), ...pageQuery }) },
  responses: { 200: jsonResponse(pageOf(planSchema), "A page of plans"), ...errorResponses },
});
const getPlan = route("viewer", {
  method: "get",
  path: "/{id}",
  summary: "One plan with its entitlements",
  request: { params: idParam },
  responses: { 200: jsonResponse(planSchema, "The plan"), 404: notFoundResponse, ...errorResponses },
});
const createPlan = route("admin", {
  method: "post",
  path: "/",
  summary: "Create a plan or add-on",
  request: { body: jsonBody(planCreate) },
  responses: { 201: jsonResponse(written, "Created"), 409: conflictResponse, ...errorResponses },
});
const replacePlan = route("admin", {
  method: "put",
  path: "/{id}",
  summary: "Replace a plan and its entitlements (recompiles its customers: see the job)",
  request: { params: idParam, body: jsonBody(planReplace) },
  responses: { 200: jsonResponse(written, "Replaced"), 404: notFoundResponse, ...errorResponses },
});
const putEntitlement = route("admin", {
  method: "put",
  path: "/{id}/entitlements/{feature}",
  summary: "Set one entitlement of a plan",
  request: { params: entitlementParams, body: jsonBody(entitlementShorthand.openapi("PlanEntitlementInput")) },
  responses: { 200: jsonResponse(written, "Set"), 404: notFoundResponse, ...errorResponses },
});
const deleteEntitlement = route("admin", {
  method: "delete",
  path: "/{id}/entitlements/{feature}",
  summary: "Remove one entitlement from a plan",
  request: { params: entitlementParams },
  responses: { 200: jsonResponse(written, "Removed"), 404: notFoundResponse, ...errorResponses },
});
const deletePlan = route("admin", {
  method: "delete",
  path: "/{id}",
  summary: "Delete a plan no subscription or price mapping refers to",
  request: { params: idParam },
  responses: { 200: jsonResponse(written, "Deleted"), 404: notFoundResponse, 409: conflictResponse, ...errorResponses },
});

async function readPlans(db: D1Database, rows: PlanDbRow[]): Promise<Plan[]> {
  if (rows.length === 0) return [];
  const ents = await db
    .prepare(
      "SELECT plan_id, feature_key, spec FROM plan_entitlements WHERE plan_id IN (SELECT value FROM json_each(?1)) ORDER BY feature_key",
    )
    .bind(JSON.stringify(rows.map((r) => r.id)))
    .all<{ plan_id: string; feature_key: string; spec: string }>();
  const plans = new Map(rows.map((r) => [r.id, { ...r, entitlements: {} as Record<string, EntitlementSpec> }]));
  for (const e of ents.results)
    plans.get(e.plan_id)!.entitlements[e.feature_key] = JSON.parse(e.spec) as EntitlementSpec;
  return [...plans.values()];
}

async function readPlan(db: D1Database, id: string): Promise<Plan> {
  const row = await db.prepare("SELECT * FROM plans WHERE id = ?1").bind(id).first<PlanDbRow>();
  if (!row) throw new Problem("not-found", `No plan '${id}'.`);
  return (await readPlans(db, [row]))[0]!;
}

function entitlementStatements(
  db: D1Database,
  id: string,
  entitlements: Record<string, EntitlementSpec>,
): D1PreparedStatement[] {
  return [
    db.prepare("DELETE FROM plan_entitlements WHERE plan_id = ?1").bind(id),
    ...Object.entries(entitlements).map(([key, spec]) =>
      db
        .prepare("INSERT INTO plan_entitlements (plan_id, feature_key, spec) VALUES (?1, ?2, ?3)")
        .bind(id, key, JSON.stringify(spec)),
    ),
  ];
}

/** Writes `after` over `before` (null: a new plan): plan row + its exact entitlements, audited, then the job. */
async function writePlan(
  c: Parameters<typeof commitCatalogWrite>[0],
  action: string,
  before: Plan | null,
  after: Plan,
) {
  const db = c.env.DB;
  const row = db
    .prepare(
      `INSERT INTO plans (id, name, kind, description, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, description = excluded.description, updated_at = excluded.updated_at`,
    )
    .bind(after.id, after.name, after.kind, after.description, after.created_at, after.updated_at);
  const audit = {
    action,
    entityType: "plan",
    entityId: after.id,
    before: before ? toView(before) : null,
    after: toView(after),
    reason: auditReason(c),
  };
  return commitCatalogWrite(c, [row, ...entitlementStatements(db, after.id, after.entitlements)], [audit], {
    scope: "plan",
    planId: after.id,
  });
}

export const planRoutes = newRouter();
planRoutes
  .openapi(listPlans, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string());
    const f = new SqlFilter().when(q.kind, "kind = ?").when(after, "id > ?");
    const rows = await c.env.DB.prepare(`SELECT * FROM plans ${f.sql} ORDER BY id LIMIT ?`)
      .bind(...f.params, q.limit + 1)
      .all<PlanDbRow>();
    const shown = page(
      rows.results,
      q.limit,
      (r) => r.id,
      (r) => r,
    );
    return c.json({ items: (await readPlans(c.env.DB, shown.items)).map(toView), nextCursor: shown.nextCursor }, 200);
  })
  .openapi(getPlan, async (c) => c.json(toView(await readPlan(c.env.DB, c.req.valid("param").id)), 200))
  .openapi(createPlan, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    if (await db.prepare("SELECT 1 FROM plans WHERE id = ?1").bind(body.id).first())
      throw new Problem("conflict", `Plan '${body.id}' exists.`);
    const entitlements = normalizePlanEntitlements(await catalogFacts(db), body.entitlements);
    const now = c.var.services.clock.now();
    const after: Plan = {
      id: body.id,
      name: body.name,
      kind: body.kind,
      description: body.description,
      entitlements,
      created_at: now,
      updated_at: now,
    };
    const job = await writePlan(c, "plan.create", null, after);
    return c.json({ plan: toView(after), job }, 201);
  })
  .openapi(replacePlan, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const before = await readPlan(c.env.DB, id);
    const entitlements = normalizePlanEntitlements(await catalogFacts(c.env.DB), body.entitlements);
    const after: Plan = {
      ...before,
      name: body.name,
      kind: body.kind,
      description: body.description,
      entitlements,
      updated_at: c.var.services.clock.now(),
    };
    const job = await writePlan(c, "plan.update", before, after);
    return c.json({ plan: toView(after), job }, 200);
  })
  .openapi(putEntitlement, async (c) => {
    const { id, feature } = c.req.valid("param");
    const before = await readPlan(c.env.DB, id);
    const set = normalizePlanEntitlements(await catalogFacts(c.env.DB), { [feature]: c.req.valid("json") }, "json");
    const after: Plan = {
      ...before,
      entitlements: { ...before.entitlements, ...set },
      updated_at: c.var.services.clock.now(),
    };
    const job = await writePlan(c, "plan.entitlement.set", before, after);
    return c.json({ plan: toView(after), job }, 200);
  })
  .openapi(deleteEntitlement, async (c) => {
    const { id, feature } = c.req.valid("param");
    const before = await readPlan(c.env.DB, id);
    if (!Object.hasOwn(before.entitlements, feature))
      throw new Problem("not-found", `Plan '${id}' has no entitlement for '${feature}'.`);
    const { [feature]: _removed, ...rest } = before.entitlements;
    const after: Plan = { ...before, entitlements: rest, updated_at: c.var.services.clock.now() };
    const job = await writePlan(c, "plan.entitlement.delete", before, after);
    return c.json({ plan: toView(after), job }, 200);
  })
  .openapi(deletePlan, async (c) => {
    const { id } = c.req.valid("param");
    const db = c.env.DB;
    const before = await readPlan(db, id);
    const refs = await db
      .prepare(
        `SELECT (SELECT COUNT(*) FROM subscriptions WHERE plan_id = ?1 OR scheduled_plan_id = ?1) AS subscriptions,
                (SELECT COUNT(*) FROM price_mappings WHERE plan_id = ?1) AS prices`,
      )
      .bind(id)
      .first<{ subscriptions: number; prices: number }>();
    if (refs && (refs.subscriptions > 0 || refs.prices > 0)) {
      throw new Problem(
        "conflict",
        `Plan '${id}' is used by ${refs.subscriptions} subscription(s) and ${refs.prices} price mapping(s).`,
        { references: refs },
      );
    }
    const stmts = [
      db.prepare("DELETE FROM plan_entitlements WHERE plan_id = ?1").bind(id),
      db.prepare("DELETE FROM plans WHERE id = ?1").bind(id),
    ];
    const job = await commitCatalogWrite(
      c,
      stmts,
      [{ action: "plan.delete", entityType: "plan", entityId: id, before: toView(before), reason: auditReason(c) }],
      { scope: "plan", planId: id },
    );
    return c.json({ plan: null, job }, 200);
  });
