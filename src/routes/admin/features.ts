// /admin/v1/features: the catalog's features. Reads: viewer. Writes: admin. A feature is part of every
// snapshot (so "unknown_feature" and "not_entitled" stay distinct), so each write recompiles every
// customer through a recompile job. A feature's type never changes in place: specs depend on it.
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { failurePolicy, featureDef, featureKey, featureType } from "../../domain/catalog";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  adminSecurity,
  conflictResponse,
  errorResponses,
  jsonBody,
  jsonResponse,
  notFoundResponse,
} from "../../http/schemas";
import { SqlFilter } from "../../store/sql-filter";
import { commitCatalogWrite } from "../../write/catalog-write";
import { jobSchema } from "./jobs";

const tags = ["admin: features"];

interface FeatureDbRow {
  key: string;
  type: string;
  description: string;
  unit: string | null;
  integer_only: number;
  failure_policy: string;
  created_at: number;
  updated_at: number;
}

const featureSchema = z
  .object({
    key: z.string(),
    type: featureType,
    description: z.string(),
    unit: z.string().nullable(),
    integer: z.boolean(),
    failurePolicy,
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Feature");
type FeatureView = z.output<typeof featureSchema>;

const toView = (r: FeatureDbRow): FeatureView => ({
  key: r.key,
  type: r.type as FeatureView["type"],
  description: r.description,
  unit: r.unit,
  integer: r.integer_only === 1,
  failurePolicy: r.failure_policy as FeatureView["failurePolicy"],
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});

const featureCreate = featureDef.extend({ key: featureKey }).strict().openapi("FeatureInput");
const featurePatch = z
  .object({
    description: z.string().max(500).optional(),
    unit: z.string().max(32).nullable().optional(),
    integer: z.boolean().optional(),
    failurePolicy: failurePolicy.optional(),
  })
  .strict()
  .openapi("FeaturePatch");
const keyParam = z.object({ key: featureKey });
const written = z.object({ feature: featureSchema.nullable(), job: jobSchema });
const viewer = [requireRole("viewer")];
const admin = [requireRole("admin")];

const listFeatures = createRoute({
  tags,
  security: adminSecurity,
  method: "get",
  path: "/",
  middleware: viewer,
  summary: "Features, by key",
  request: { query: z.object({ type: featureType.optional(), ...pageQuery }) },
  responses: { 200: jsonResponse(pageOf(featureSchema), "A page of features"), ...errorResponses },
});
const getFeature = createRoute({
  tags,
  security: adminSecurity,
  method: "get",
  path: "/{key}",
  middleware: viewer,
  summary: "One feature",
  request: { params: keyParam },
  responses: { 200: jsonResponse(featureSchema, "The feature"), 404: notFoundResponse, ...errorResponses },
});
const createFeature = createRoute({
  tags,
  security: adminSecurity,
  method: "post",
  path: "/",
  middleware: admin,
  summary: "Create a feature (recompiles every customer: see the job)",
  request: { body: jsonBody(featureCreate) },
  responses: { 201: jsonResponse(written, "Created"), 409: conflictResponse, ...errorResponses },
});
const patchFeature = createRoute({
  tags,
  security: adminSecurity,
  method: "patch",
  path: "/{key}",
  middleware: admin,
  summary: "Change a feature's description, unit, integer rule or failure policy",
  request: { params: keyParam, body: jsonBody(featurePatch) },
  responses: { 200: jsonResponse(written, "Updated"), 404: notFoundResponse, ...errorResponses },
});
const deleteFeature = createRoute({
  tags,
  security: adminSecurity,
  method: "delete",
  path: "/{key}",
  middleware: admin,
  summary: "Delete a feature no plan or grant refers to",
  request: { params: keyParam },
  responses: { 200: jsonResponse(written, "Deleted"), 404: notFoundResponse, 409: conflictResponse, ...errorResponses },
});

async function readFeature(db: D1Database, key: string): Promise<FeatureDbRow> {
  const row = await db.prepare("SELECT * FROM features WHERE key = ?1").bind(key).first<FeatureDbRow>();
  if (!row) throw new Problem("not-found", `No feature '${key}'.`);
  return row;
}

export const featureRoutes = newRouter();
featureRoutes
  .openapi(listFeatures, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string());
    const f = new SqlFilter().when(q.type, "type = ?").when(after, "key > ?");
    const rows = await c.env.DB.prepare(`SELECT * FROM features ${f.sql} ORDER BY key LIMIT ?`)
      .bind(...f.params, q.limit + 1)
      .all<FeatureDbRow>();
    return c.json(
      page(rows.results, q.limit, (r) => r.key, toView),
      200,
    );
  })
  .openapi(getFeature, async (c) => c.json(toView(await readFeature(c.env.DB, c.req.valid("param").key)), 200))
  .openapi(createFeature, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    const now = c.var.services.clock.now();
    if (await db.prepare("SELECT 1 FROM features WHERE key = ?1").bind(body.key).first())
      throw new Problem("conflict", `Feature '${body.key}' exists.`);
    const stmt = db
      .prepare(
        "INSERT INTO features (key, type, description, unit, integer_only, failure_policy, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
      )
      .bind(body.key, body.type, body.description, body.unit ?? null, body.integer ? 1 : 0, body.failurePolicy, now);
    const after: FeatureDbRow = {
      key: body.key,
      type: body.type,
      description: body.description,
      unit: body.unit ?? null,
      integer_only: body.integer ? 1 : 0,
      failure_policy: body.failurePolicy,
      created_at: now,
      updated_at: now,
    };
    const job = await commitCatalogWrite(
      c,
      [stmt],
      [
        {
          action: "feature.create",
          entityType: "feature",
          entityId: body.key,
          after: toView(after),
          reason: auditReason(c),
        },
      ],
      { scope: "all" },
    );
    return c.json({ feature: toView(after), job }, 201);
  })
  .openapi(patchFeature, async (c) => {
    const { key } = c.req.valid("param");
    const body = c.req.valid("json");
    const before = await readFeature(c.env.DB, key);
    const now = c.var.services.clock.now();
    const after: FeatureDbRow = {
      ...before,
      description: body.description ?? before.description,
      unit: body.unit === undefined ? before.unit : body.unit,
      integer_only: body.integer === undefined ? before.integer_only : body.integer ? 1 : 0,
      failure_policy: body.failurePolicy ?? before.failure_policy,
      updated_at: now,
    };
    const stmt = c.env.DB.prepare(
      "UPDATE features SET description = ?2, unit = ?3, integer_only = ?4, failure_policy = ?5, updated_at = ?6 WHERE key = ?1",
    ).bind(key, after.description, after.unit, after.integer_only, after.failure_policy, now);
    const job = await commitCatalogWrite(
      c,
      [stmt],
      [
        {
          action: "feature.update",
          entityType: "feature",
          entityId: key,
          before: toView(before),
          after: toView(after),
          reason: auditReason(c),
        },
      ],
      { scope: "all" },
    );
    return c.json({ feature: toView(after), job }, 200);
  })
  .openapi(deleteFeature, async (c) => {
    const { key } = c.req.valid("param");
    const db = c.env.DB;
    const before = await readFeature(db, key);
    const refs = await db
      .prepare(
        "SELECT (SELECT COUNT(*) FROM plan_entitlements WHERE feature_key = ?1) AS plans, (SELECT COUNT(*) FROM grants WHERE feature_key = ?1) AS grants",
      )
      .bind(key)
      .first<{ plans: number; grants: number }>();
    if (refs && (refs.plans > 0 || refs.grants > 0)) {
      throw new Problem(
        "conflict",
        `Feature '${key}' is used by ${refs.plans} plan entitlement(s) and ${refs.grants} grant(s); remove those first.`,
        { references: refs },
      );
    }
    const stmt = db.prepare("DELETE FROM features WHERE key = ?1").bind(key);
    const job = await commitCatalogWrite(
      c,
      [stmt],
      [
        {
          action: "feature.delete",
          entityType: "feature",
          entityId: key,
          before: toView(before),
          reason: auditReason(c),
        },
      ],
      { scope: "all" },
    );
    return c.json({ feature: null, job }, 200);
  });
