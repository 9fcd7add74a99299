// /admin/v1/features: the catalog's features. Reads: viewer. Writes: admin. A feature is part of every
// snapshot (so "unknown_feature" and "not_entitled" stay distinct); a write makes a new catalog revision
// that every check composes with (write/catalog-write.ts). A feature's type never changes in place.
import { z } from "@hono/zod-openapi";
import {
  creditCostProblem,
  failurePolicy,
  featureDef,
  featureKey,
  featureType,
  seatProblem,
} from "../../domain/catalog";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { conflictResponse, errorResponses, jsonBody, jsonResponse, notFoundResponse } from "../../http/schemas";
import {
  deleteFeatureStatement,
  type Feature,
  featureExists,
  featureReferences,
  featureWire,
  insertFeatureStatement,
  listFeatures,
  readFeature,
  updateFeatureStatement,
} from "../../store/features";
import { commitCatalogWrite } from "../../write/catalog-write";
import { adminRoute, catalogWrittenFields } from "./route";

const featureSchema = z
  .object({
    key: z.string(),
    type: featureType,
    description: z.string(),
    unit: z.string().nullable(),
    integer: z.boolean(),
    failurePolicy,
    creditCost: z.object({ credits: z.string(), cost: z.number() }).optional(),
    seat: z.string().optional().describe("the seats feature an entity's use of this one needs"),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Feature");

const toView = (f: Feature): z.output<typeof featureSchema> => featureWire(f);

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
const written = z.object({ feature: featureSchema.nullable(), ...catalogWrittenFields });
const route = adminRoute("admin: features");

const listFeaturesRoute = route("viewer", {
  method: "get",
  path: "/",
  summary: "Features, by key",
  request: { query: z.object({ type: featureType.optional(), ...pageQuery }) },
  responses: { 200: jsonResponse(pageOf(featureSchema), "A page of features"), ...errorResponses },
});
const getFeatureRoute = route("viewer", {
  method: "get",
  path: "/{key}",
  summary: "One feature",
  request: { params: keyParam },
  responses: { 200: jsonResponse(featureSchema, "The feature"), 404: notFoundResponse, ...errorResponses },
});
const createFeatureRoute = route("admin", {
  method: "post",
  path: "/",
  summary: "Create a feature",
  request: { body: jsonBody(featureCreate) },
  responses: { 201: jsonResponse(written, "Created"), 409: conflictResponse, ...errorResponses },
});
const patchFeatureRoute = route("admin", {
  method: "patch",
  path: "/{key}",
  summary: "Change a feature's description, unit, integer rule or failure policy",
  request: { params: keyParam, body: jsonBody(featurePatch) },
  responses: { 200: jsonResponse(written, "Updated"), 404: notFoundResponse, ...errorResponses },
});
const deleteFeatureRoute = route("admin", {
  method: "delete",
  path: "/{key}",
  summary: "Delete a feature no plan, grant, price mapping or other feature refers to",
  request: { params: keyParam },
  responses: { 200: jsonResponse(written, "Deleted"), 404: notFoundResponse, 409: conflictResponse, ...errorResponses },
});

async function featureOr404(db: D1Database, key: string): Promise<Feature> {
  const feature = await readFeature(db, key);
  if (!feature) throw new Problem("not-found", `No feature '${key}'.`);
  return feature;
}

export const featureRoutes = newRouter();
featureRoutes
  .openapi(listFeaturesRoute, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string());
    const rows = await listFeatures(c.env.DB, { type: q.type, after }, q.limit + 1);
    return c.json(
      page(rows, q.limit, (f) => f.key, toView),
      200,
    );
  })
  .openapi(getFeatureRoute, async (c) => c.json(toView(await featureOr404(c.env.DB, c.req.valid("param").key)), 200))
  .openapi(createFeatureRoute, async (c) => {
    const body = c.req.valid("json");
    const now = c.var.services.clock.now();
    if (await featureExists(c.env.DB, body.key)) throw new Problem("conflict", `Feature '${body.key}' exists.`);
    if (body.creditCost) {
      const credits = await readFeature(c.env.DB, body.creditCost.credits);
      const problem = creditCostProblem(body, (k) => (k === credits?.key ? credits.type : undefined));
      if (problem)
        throw new Problem("validation", problem, { errors: [{ path: "json.creditCost", message: problem }] });
    }
    if (body.seat) {
      const seats = body.type === "seats" ? null : await readFeature(c.env.DB, body.seat);
      const problem = seatProblem(body, (k) => (k === seats?.key ? seats.type : undefined));
      if (problem) throw new Problem("validation", problem, { errors: [{ path: "json.seat", message: problem }] });
    }
    const after: Feature = {
      key: body.key,
      type: body.type,
      description: body.description,
      unit: body.unit ?? null,
      integer: body.integer,
      failurePolicy: body.failurePolicy,
      ...(body.creditCost ? { creditCost: body.creditCost } : {}),
      ...(body.seat ? { seat: body.seat } : {}),
      createdAt: now,
      updatedAt: now,
    };
    const published = await commitCatalogWrite(
      c,
      [insertFeatureStatement(c.env.DB, after)],
      [
        {
          action: "feature.create",
          entityType: "feature",
          entityId: body.key,
          after: toView(after),
          reason: auditReason(c),
        },
      ],
    );
    return c.json({ feature: toView(after), ...published }, 201);
  })
  .openapi(patchFeatureRoute, async (c) => {
    const { key } = c.req.valid("param");
    const body = c.req.valid("json");
    const before = await featureOr404(c.env.DB, key);
    const after: Feature = {
      ...before,
      description: body.description ?? before.description,
      unit: body.unit === undefined ? before.unit : body.unit,
      integer: body.integer ?? before.integer,
      failurePolicy: body.failurePolicy ?? before.failurePolicy,
      updatedAt: c.var.services.clock.now(),
    };
    const published = await commitCatalogWrite(
      c,
      [updateFeatureStatement(c.env.DB, after)],
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
    );
    return c.json({ feature: toView(after), ...published }, 200);
  })
  .openapi(deleteFeatureRoute, async (c) => {
    const { key } = c.req.valid("param");
    const before = await featureOr404(c.env.DB, key);
    const refs = await featureReferences(c.env.DB, key);
    if (refs.plans > 0 || refs.grants > 0 || refs.prices > 0 || refs.features > 0) {
      const prices = refs.prices > 0 ? ` and ${refs.prices} top-up price mapping(s)` : "";
      const features = refs.features > 0 ? ` and ${refs.features} feature(s) naming it (creditCost, seat)` : "";
      throw new Problem(
        "conflict",
        `Feature '${key}' is used by ${refs.plans} plan entitlement(s) and ${refs.grants} grant(s)${prices}${features}; remove those first.`,
        { references: refs },
      );
    }
    const published = await commitCatalogWrite(
      c,
      [deleteFeatureStatement(c.env.DB, key)],
      [
        {
          action: "feature.delete",
          entityType: "feature",
          entityId: key,
          before: toView(before),
          reason: auditReason(c),
        },
      ],
    );
    return c.json({ feature: null, ...published }, 200);
  });
