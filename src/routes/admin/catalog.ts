// PUT /admin/v1/catalog: apply a catalog file (catalog-as-code). GET: the catalog as a file.
import { z } from "@hono/zod-openapi";
import { catalogFile } from "../../domain/catalog";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse } from "../../http/schemas";
import { catalogStatements, readCatalog } from "../../store/catalog";
import { commitCatalogWrite } from "../../write/catalog-write";
import { jobSchema } from "./jobs";
import { adminRoute } from "./route";

const route = adminRoute("admin: catalog");

const putCatalog = route("admin", {
  method: "put",
  path: "/",
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

const getCatalog = route("viewer", {
  method: "get",
  path: "/",
  summary: "The current catalog, in the catalog file format",
  responses: { 200: jsonResponse(z.any(), "The catalog"), ...errorResponses },
});

export const catalogRoutes = newRouter();
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
