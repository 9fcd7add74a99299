// /admin/v1/region-groups: named sets of countries that plan and grant region rules refer to.
// Reads: viewer. Writes: admin. The catalog compiler expands groups into countries, so a change is a
// new catalog revision (write/catalog-write.ts); a group still referred to cannot be deleted (the
// compiler would otherwise read its name as a country code).
import { z } from "@hono/zod-openapi";
import { countryCode, regionRef } from "../../domain/catalog";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { conflictResponse, errorResponses, jsonBody, jsonResponse, notFoundResponse } from "../../http/schemas";
import {
  deleteRegionGroupStatement,
  listRegionGroups,
  putRegionGroupStatement,
  type RegionGroup,
  readRegionGroup,
  regionGroupOf,
  regionGroupReferences,
  regionGroupWire,
} from "../../store/region-groups";
import { commitCatalogWrite } from "../../write/catalog-write";
import { adminRoute, catalogWrittenFields } from "./route";

const groupSchema = z
  .object({ name: z.string(), countries: z.array(z.string()), updatedAt: z.string() })
  .openapi("RegionGroup");
const toView = (g: RegionGroup): z.output<typeof groupSchema> => regionGroupWire(g);

const nameParam = z.object({ name: regionRef });
const groupInput = z
  .object({ countries: z.array(countryCode).min(1).max(300) })
  .strict()
  .openapi("RegionGroupInput");
const written = z.object({ regionGroup: groupSchema.nullable(), ...catalogWrittenFields });
const route = adminRoute("admin: region groups");

const listGroups = route("viewer", {
  method: "get",
  path: "/",
  summary: "Region groups, by name",
  request: { query: z.object(pageQuery) },
  responses: { 200: jsonResponse(pageOf(groupSchema), "A page of region groups"), ...errorResponses },
});
const getGroup = route("viewer", {
  method: "get",
  path: "/{name}",
  summary: "One region group",
  request: { params: nameParam },
  responses: { 200: jsonResponse(groupSchema, "The region group"), 404: notFoundResponse, ...errorResponses },
});
const putGroup = route("admin", {
  method: "put",
  path: "/{name}",
  summary: "Create or replace a region group",
  request: { params: nameParam, body: jsonBody(groupInput) },
  responses: { 200: jsonResponse(written, "Written"), ...errorResponses },
});
const deleteGroup = route("admin", {
  method: "delete",
  path: "/{name}",
  summary: "Delete a region group no plan or live grant refers to",
  request: { params: nameParam },
  responses: { 200: jsonResponse(written, "Deleted"), 404: notFoundResponse, 409: conflictResponse, ...errorResponses },
});

export const regionGroupRoutes = newRouter();
regionGroupRoutes
  .openapi(listGroups, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string()) ?? "";
    const rows = await listRegionGroups(c.env.DB, after, q.limit + 1);
    return c.json(
      page(rows, q.limit, (g) => g.name, toView),
      200,
    );
  })
  .openapi(getGroup, async (c) => {
    const { name } = c.req.valid("param");
    const group = await readRegionGroup(c.env.DB, name);
    if (!group) throw new Problem("not-found", `No region group '${name}'.`);
    return c.json(toView(group), 200);
  })
  .openapi(putGroup, async (c) => {
    const { name } = c.req.valid("param");
    const { countries } = c.req.valid("json");
    const before = await readRegionGroup(c.env.DB, name);
    const after = regionGroupOf(name, countries, c.var.services.clock.now());
    const audit = {
      action: before ? "region_group.update" : "region_group.create",
      entityType: "region_group",
      entityId: name,
      before: before ? toView(before) : null,
      after: toView(after),
      reason: auditReason(c),
    };
    const published = await commitCatalogWrite(c, [putRegionGroupStatement(c.env.DB, after)], [audit]);
    return c.json({ regionGroup: toView(after), ...published }, 200);
  })
  .openapi(deleteGroup, async (c) => {
    const { name } = c.req.valid("param");
    const before = await readRegionGroup(c.env.DB, name);
    if (!before) throw new Problem("not-found", `No region group '${name}'.`);
    const refs = await regionGroupReferences(c.env.DB, name);
    if (refs.plans > 0 || refs.grants > 0) {
      throw new Problem(
        "conflict",
        `Region group '${name}' is named by ${refs.plans} plan entitlement(s) and ${refs.grants} live grant(s).`,
        { references: refs },
      );
    }
    const published = await commitCatalogWrite(
      c,
      [deleteRegionGroupStatement(c.env.DB, name)],
      [
        {
          action: "region_group.delete",
          entityType: "region_group",
          entityId: name,
          before: toView(before),
          reason: auditReason(c),
        },
      ],
    );
    return c.json({ regionGroup: null, ...published }, 200);
  });
