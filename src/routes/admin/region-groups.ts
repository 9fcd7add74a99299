// /admin/v1/region-groups: named sets of countries that plan and grant region rules refer to.
// Reads: viewer. Writes: admin. The compiler expands groups into countries, so a change recompiles
// every customer (recompile job); a group still referred to cannot be deleted (the compiler would
// otherwise read its name as a country code).
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { countryCode, regionRef } from "../../domain/catalog";
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
import { commitCatalogWrite } from "../../write/catalog-write";
import { jobSchema } from "./jobs";

const tags = ["admin: region groups"];

interface GroupDbRow {
  name: string;
  countries: string;
  updated_at: number;
}

const groupSchema = z
  .object({ name: z.string(), countries: z.array(z.string()), updatedAt: z.string() })
  .openapi("RegionGroup");
type GroupView = z.output<typeof groupSchema>;
const toView = (r: GroupDbRow): GroupView => ({
  name: r.name,
  countries: JSON.parse(r.countries) as string[],
  updatedAt: new Date(r.updated_at).toISOString(),
});

const nameParam = z.object({ name: regionRef });
const groupInput = z
  .object({ countries: z.array(countryCode).min(1).max(300) })
  .strict()
  .openapi("RegionGroupInput");
const written = z.object({ regionGroup: groupSchema.nullable(), job: jobSchema });
const viewer = [requireRole("viewer")];
const admin = [requireRole("admin")];

const listGroups = createRoute({
  method: "get",
  path: "/",
  tags,
  security: adminSecurity,
  middleware: viewer,
  summary: "Region groups, by name",
  request: { query: z.object(pageQuery) },
  responses: { 200: jsonResponse(pageOf(groupSchema), "A page of region groups"), ...errorResponses },
});
const getGroup = createRoute({
  method: "get",
  path: "/{name}",
  tags,
  security: adminSecurity,
  middleware: viewer,
  summary: "One region group",
  request: { params: nameParam },
  responses: { 200: jsonResponse(groupSchema, "The region group"), 404: notFoundResponse, ...errorResponses },
});
const putGroup = createRoute({
  method: "put",
  path: "/{name}",
  tags,
  security: adminSecurity,
  middleware: admin,
  summary: "Create or replace a region group (recompiles every customer: see the job)",
  request: { params: nameParam, body: jsonBody(groupInput) },
  responses: { 200: jsonResponse(written, "Written"), ...errorResponses },
});
const deleteGroup = createRoute({
  method: "delete",
  path: "/{name}",
  tags,
  security: adminSecurity,
  middleware: admin,
  summary: "Delete a region group no plan or live grant refers to",
  request: { params: nameParam },
  responses: { 200: jsonResponse(written, "Deleted"), 404: notFoundResponse, 409: conflictResponse, ...errorResponses },
});

// Specs that name the group in an allow or deny list (JSON columns, searched inside SQLite).
const NAMES_GROUP = (alias: string) =>
  `(EXISTS (SELECT 1 FROM json_each(${alias}.spec, '$.regions.allow') WHERE value = ?1) OR EXISTS (SELECT 1 FROM json_each(${alias}.spec, '$.regions.deny') WHERE value = ?1))`;

export const regionGroupRoutes = newRouter();
regionGroupRoutes
  .openapi(listGroups, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string()) ?? "";
    const rows = await c.env.DB.prepare("SELECT * FROM region_groups WHERE name > ?1 ORDER BY name LIMIT ?2")
      .bind(after, q.limit + 1)
      .all<GroupDbRow>();
    return c.json(
      page(rows.results, q.limit, (r) => r.name, toView),
      200,
    );
  })
  .openapi(getGroup, async (c) => {
    const { name } = c.req.valid("param");
    const row = await c.env.DB.prepare("SELECT * FROM region_groups WHERE name = ?1").bind(name).first<GroupDbRow>();
    if (!row) throw new Problem("not-found", `No region group '${name}'.`);
    return c.json(toView(row), 200);
  })
  .openapi(putGroup, async (c) => {
    const { name } = c.req.valid("param");
    const { countries } = c.req.valid("json");
    const db = c.env.DB;
    const now = c.var.services.clock.now();
    const before = await db.prepare("SELECT * FROM region_groups WHERE name = ?1").bind(name).first<GroupDbRow>();
    const after: GroupDbRow = { name, countries: JSON.stringify([...new Set(countries)].sort()), updated_at: now };
    const stmt = db
      .prepare(
        "INSERT INTO region_groups (name, countries, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET countries = excluded.countries, updated_at = excluded.updated_at",
      )
      .bind(name, after.countries, now);
    const audit = {
      action: before ? "region_group.update" : "region_group.create",
      entityType: "region_group",
      entityId: name,
      before: before ? toView(before) : null,
      after: toView(after),
      reason: auditReason(c),
    };
    const job = await commitCatalogWrite(c, [stmt], [audit], { scope: "all" });
    return c.json({ regionGroup: toView(after), job }, 200);
  })
  .openapi(deleteGroup, async (c) => {
    const { name } = c.req.valid("param");
    const db = c.env.DB;
    const before = await db.prepare("SELECT * FROM region_groups WHERE name = ?1").bind(name).first<GroupDbRow>();
    if (!before) throw new Problem("not-found", `No region group '${name}'.`);
    const refs = await db
      .prepare(
        `SELECT (SELECT COUNT(*) FROM plan_entitlements e WHERE ${NAMES_GROUP("e")}) AS plans,
                (SELECT COUNT(*) FROM grants g WHERE g.status IN ('pending', 'active') AND ${NAMES_GROUP("g")}) AS grants`,
      )
      .bind(name)
      .first<{ plans: number; grants: number }>();
    if (refs && (refs.plans > 0 || refs.grants > 0)) {
      throw new Problem(
        "conflict",
        `Region group '${name}' is named by ${refs.plans} plan entitlement(s) and ${refs.grants} live grant(s).`,
        { references: refs },
      );
    }
    const stmt = db.prepare("DELETE FROM region_groups WHERE name = ?1").bind(name);
    const job = await commitCatalogWrite(
      c,
      [stmt],
      [
        {
          action: "region_group.delete",
          entityType: "region_group",
          entityId: name,
          before: toView(before),
          reason: auditReason(c),
        },
      ],
      { scope: "all" },
    );
    return c.json({ regionGroup: null, job }, 200);
  });
