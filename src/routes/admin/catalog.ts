// PUT /admin/v1/catalog: apply a catalog file (catalog-as-code). GET: the catalog as a file.
import { createRoute, z } from "@hono/zod-openapi";
import { catalogStatements } from "../../admin/catalog";
import { commitAdminWrite, recompile } from "../../admin/commit";
import { requireRole } from "../../auth/admin";
import { catalogFile } from "../../domain/catalog";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse, adminSecurity } from "../../http/schemas";
import { readCatalog } from "../../store/catalog-reader";

const tags = ["admin: catalog"];

const putCatalog = createRoute({
  method: "put",
  path: "/",
  tags,
  security: adminSecurity,
  summary: "Apply a catalog file (upsert; never deletes)",
  request: { body: jsonBody(catalogFile.openapi("CatalogFile")) },
  responses: { 200: jsonResponse(z.object({ applied: z.object({ features: z.number(), plans: z.number(), regionGroups: z.number(), prices: z.number() }), recompiled: z.number() }), "Applied"), ...errorResponses },
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
    await commitAdminWrite(c, catalogStatements(c.env.DB, cat, now), [{ action: "catalog.apply", entityType: "catalog", entityId: "catalog", before, after: cat }], { catalog: true });
    // Every customer's snapshot version grew with catalog_rev; recompile them all, a page at a time.
    let recompiled = 0;
    for (let after = ""; ; ) {
      const page = await c.env.DB.prepare("SELECT id FROM customers WHERE id > ?1 ORDER BY id LIMIT 500").bind(after).all<{ id: string }>();
      if (page.results.length === 0) break;
      const ids = page.results.map((r) => r.id);
      recompiled += Object.keys(await recompile(c.env, c.var.services, ids, now)).length;
      after = ids[ids.length - 1]!;
    }
    const applied = { features: Object.keys(cat.features).length, plans: Object.keys(cat.plans).length, regionGroups: Object.keys(cat.regionGroups).length, prices: Object.keys(cat.prices).length };
    return c.json({ applied, recompiled }, 200);
  })
  .openapi(getCatalog, async (c) => c.json(await readCatalog(c.env.DB), 200));
