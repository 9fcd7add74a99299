// /admin/v1/prices: which plan a billing provider's price (or product) id provisions. The Stripe
// webhook reads this mapping; the catalog file's `prices` section writes the same table.
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { entityId } from "../../domain/catalog";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { adminSecurity, errorResponses, jsonBody, jsonResponse } from "../../http/schemas";
import { commitAdminWrite } from "../../write/commit";

const tags = ["admin: prices"];
const priceId = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,255}$/, "a price or product id, e.g. price_1Q... or prod_...")
  .openapi({ example: "price_1QfV8cLkdIwHu7ixpro" });
const mapping = z
  .object({ priceId: z.string(), planId: z.string(), kind: z.enum(["base", "addon"]), updatedAt: z.string() })
  .openapi("PriceMapping");
const notFound = { 404: { ...errorResponses[400], description: "No mapping for this price" } };
const admin = requireRole("admin");

interface MappingRow {
  price_id: string;
  plan_id: string;
  kind: "base" | "addon";
  updated_at: number;
}
const toWire = (r: MappingRow) => ({
  priceId: r.price_id,
  planId: r.plan_id,
  kind: r.kind,
  updatedAt: new Date(r.updated_at).toISOString(),
});
const SELECT =
  "SELECT m.price_id, m.plan_id, p.kind, m.updated_at FROM price_mappings m JOIN plans p ON p.id = m.plan_id";

const listPrices = createRoute({
  method: "get",
  path: "/",
  tags,
  security: adminSecurity,
  summary: "List price mappings (optionally for one plan)",
  request: { query: z.object({ planId: entityId.optional(), ...pageQuery }) },
  responses: { 200: jsonResponse(pageOf(mapping), "A page"), ...errorResponses },
});
const getPrice = createRoute({
  method: "get",
  path: "/{priceId}",
  tags,
  security: adminSecurity,
  summary: "The plan a price id maps to",
  request: { params: z.object({ priceId }) },
  responses: { 200: jsonResponse(mapping, "The mapping"), ...notFound, ...errorResponses },
});
const putPrice = createRoute({
  method: "put",
  path: "/{priceId}",
  tags,
  security: adminSecurity,
  middleware: [admin],
  summary: "Map a price (or product) id to a plan",
  request: {
    params: z.object({ priceId }),
    body: jsonBody(z.object({ planId: entityId, reason: z.string().min(1).max(1000).optional() }).strict()),
  },
  responses: { 200: jsonResponse(mapping, "Mapped"), ...errorResponses },
});
const deletePrice = createRoute({
  method: "delete",
  path: "/{priceId}",
  tags,
  security: adminSecurity,
  middleware: [admin],
  summary: "Remove a mapping (events for this price are then refused with 422 until it is mapped again)",
  request: { params: z.object({ priceId }) },
  responses: { 204: { description: "Removed" }, ...notFound, ...errorResponses },
});

export const priceRoutes = newRouter();
priceRoutes.use("*", requireRole("viewer"));
priceRoutes
  .openapi(listPrices, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string()) ?? "";
    const rows = await c.env.DB.prepare(
      `${SELECT} WHERE m.price_id > ?1 AND (?2 IS NULL OR m.plan_id = ?2) ORDER BY m.price_id LIMIT ?3`,
    )
      .bind(after, q.planId ?? null, q.limit + 1)
      .all<MappingRow>();
    return c.json(
      page(rows.results, q.limit, (r) => r.price_id, toWire),
      200,
    );
  })
  .openapi(getPrice, async (c) => {
    const id = c.req.valid("param").priceId;
    const row = await read(c.env.DB, id);
    if (!row) throw new Problem("not-found", `No mapping for price '${id}'.`);
    return c.json(toWire(row), 200);
  })
  .openapi(putPrice, async (c) => {
    const id = c.req.valid("param").priceId;
    const { planId, reason } = c.req.valid("json");
    const db = c.env.DB;
    if (!(await db.prepare("SELECT 1 FROM plans WHERE id = ?1").bind(planId).first())) {
      throw new Problem("validation", `Unknown plan '${planId}'.`, {
        errors: [{ path: "json.planId", message: `unknown plan '${planId}'` }],
      });
    }
    const before = await read(db, id);
    const now = c.var.services.clock.now();
    const stmt = db
      .prepare(
        "INSERT INTO price_mappings (price_id, plan_id, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (price_id) DO UPDATE SET plan_id = excluded.plan_id, updated_at = excluded.updated_at",
      )
      .bind(id, planId, now);
    // No customer changes here: a mapping is read when the next billing event arrives.
    await commitAdminWrite(
      c,
      [stmt],
      [
        {
          action: "price_mapping.put",
          entityType: "price_mapping",
          entityId: id,
          before: before ? toWire(before) : null,
          after: { priceId: id, planId },
          reason,
        },
      ],
    );
    return c.json(toWire((await read(db, id))!), 200);
  })
  .openapi(deletePrice, async (c) => {
    const id = c.req.valid("param").priceId;
    const db = c.env.DB;
    const before = await read(db, id);
    if (!before) throw new Problem("not-found", `No mapping for price '${id}'.`);
    await commitAdminWrite(
      c,
      [db.prepare("DELETE FROM price_mappings WHERE price_id = ?1").bind(id)],
      [{ action: "price_mapping.delete", entityType: "price_mapping", entityId: id, before: toWire(before) }],
    );
    return c.body(null, 204);
  });

function read(db: D1Database, id: string): Promise<MappingRow | null> {
  return db.prepare(`${SELECT} WHERE m.price_id = ?1`).bind(id).first<MappingRow>();
}
