// PUT /admin/v1/catalog: apply a catalog file (catalog-as-code). GET: the catalog as a file.
import { z } from "@hono/zod-openapi";
import { type CatalogFile, catalogFile, creditCostProblem, seatProblem } from "../../domain/catalog";
import { auditReason } from "../../http/audit-reason";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse } from "../../http/schemas";
import { type CatalogEntities, readCatalog, readCatalogEntities } from "../../store/catalog";
import { planCatalogApply } from "../../write/catalog-apply";
import { commitCatalogWrite } from "../../write/catalog-write";
import { assertKindChange } from "../../write/plan-kind";
import { migrationWire, migrationWrite } from "../../write/plan-migration";
import { adminRoute, catalogWrittenFields } from "./route";

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
        migrations: z.array(z.any()).optional().describe("Migrations the file's `migrate` fields started"),
        ...catalogWrittenFields,
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

/**
 * The file validates its own features' creditCost and seat (domain/catalog.ts); a stored feature the
 * file leaves out is kept, so the file must not retype the credits or seats feature it names: refused
 * like deleting a feature in use (routes/admin/features.ts), naming the stored features that name it.
 */
function assertKeptReferences(before: CatalogEntities, cat: CatalogFile): void {
  const typeOf = (k: string) => cat.features[k]?.type ?? before.features.get(k)?.type;
  const broken: { key: string; named: string; problem: string }[] = [];
  for (const [key, f] of before.features) {
    if (Object.hasOwn(cat.features, key)) continue;
    const checks = [
      [f.creditCost?.credits, creditCostProblem(f, typeOf)],
      [f.seat, seatProblem(f, typeOf)],
    ] as const;
    for (const [named, problem] of checks)
      if (named && problem && Object.hasOwn(cat.features, named)) broken.push({ key, named, problem });
  }
  const first = broken[0];
  if (!first) return;
  const keys = [...new Set(broken.map((b) => b.key))].sort();
  throw new Problem(
    "conflict",
    `Feature '${first.named}' is named by stored feature(s) the file leaves out (${keys.join(", ")}): ${first.problem}. Put them in the file or change them first.`,
    { references: { features: keys } },
  );
}

export const catalogRoutes = newRouter();
catalogRoutes
  .openapi(putCatalog, async (c) => {
    const cat = c.req.valid("json");
    const now = c.var.services.clock.now();
    const before = await readCatalogEntities(c.env.DB);
    assertKeptReferences(before, cat);
    for (const [id, plan] of Object.entries(cat.plans))
      await assertKindChange(c.env.DB, id, before.plans.get(id)?.kind, plan.kind);
    const reason = auditReason(c);
    const apply = planCatalogApply(c.env.DB, before, cat, now, reason);
    // One entry per entity created or changed (write/catalog-apply.ts), and one small entry for the
    // apply itself, with counts only, so even a file that changes nothing leaves a trace.
    const summary = {
      action: "catalog.apply",
      entityType: "catalog",
      entityId: "catalog",
      after: apply.counts,
      reason,
    };
    // Plans the file moves to a new version with `migrate`: their migrations, in the same batch.
    const statements = [...apply.statements];
    const audits = [...apply.audits];
    const migrations = [];
    for (const m of apply.migrations) {
      const w = await migrationWrite(c, m.planId, m.toVersion, m.mode, reason);
      statements.push(w.statement);
      audits.push(w.audit);
      migrations.push(migrationWire(w.migration));
    }
    // One new catalog revision, published once: no customer is recompiled (write/catalog-write.ts).
    const published = await commitCatalogWrite(c, statements, [...audits, summary]);
    const applied = {
      features: Object.keys(cat.features).length,
      plans: Object.keys(cat.plans).length,
      regionGroups: Object.keys(cat.regionGroups).length,
      prices: Object.keys(cat.prices).length,
    };
    return c.json({ applied, ...(migrations.length > 0 ? { migrations } : {}), ...published }, 200);
  })
  .openapi(getCatalog, async (c) => c.json(await readCatalog(c.env.DB), 200));
