// PUT /admin/v1/catalog: apply a catalog file (catalog-as-code). GET: the catalog as a file.
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { catalogFile } from "../../domain/catalog";
import { newRouter } from "../../http/router";
import { adminSecurity, errorResponses, jsonBody, jsonResponse } from "../../http/schemas";
import { readCatalog } from "../../store/catalog-reader";
import { catalogStatements } from "../../store/catalog-writer";
import { commitCatalogWrite } from "../../write/catalog-write";
import { jobSchema } from "./jobs";

const tags = ["admin: catalog"];

const putCatalog = createRoute({
  method: "put",
  path: "/",
  tags,
  security: adminSecurity,
  summary: "Apply a catalog file (upsert; never deletes)",
  request: { body: jsonBody(catalogFile.openapi("CatalogFile")) },
  responses: {
    200: jsonResponse(
      z.object({
        applied: z.object({ features: z.number(), plans: z.number(), regionGroups: z.number(), prices: z.number() }),
        recompiled: z.number().describe("Customers recompiled before answering; the job does the rest"),
        job: jobSchema,
      }),
      "Applied",
    ),
    ...errorResponses,
  },
});

const getCatalog = createRoute({
  method: "get",
  path: "/",
  tags,
  security: adminSecurity,
  summary: "The current catalog, in the catalog file format",
  responses: { 200: jsonResponse(z.any(), "The catalog"), ...errorResponses },
});

export const catalogRoutes = newRouter();
catalogRoutes.use("/", async (c, next) => requireRole(c.req.method === "GET" ? "viewer" : "admin")(c, next));
catalogRoutes
  .openapi(putCatalog, async (c) => {
    const cat = c.req.valid("json");
    const now = c.var.services.clock.now();
    const before = await readCatalog(c.env.DB);
    // Every customer's snapshot version grew with catalog_rev: a recompile job covers them all, the
    // first batch before answering, the rest from the cron or POST /admin/v1/jobs/{id}/continue.
    const job = await commitCatalogWrite(
      c,
      catalogStatements(c.env.DB, cat, now),
      [{ action: "catalog.apply", entityType: "catalog", entityId: "catalog", before, after: cat }],
      { scope: "all" },
    );
    const applied = {
      features: Object.keys(cat.features).length,
      plans: Object.keys(cat.plans).length,
      regionGroups: Object.keys(cat.regionGroups).length,
      prices: Object.keys(cat.prices).length,
    };
    return c.json({ applied, recompiled: job.done, job }, 200);
  })
  .openapi(getCatalog, async (c) => c.json(await readCatalog(c.env.DB), 200));
