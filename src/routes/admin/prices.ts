// /admin/v1/prices: what a billing provider's price (or product) id provisions: a plan, or a credit
// top-up (docs/billing.md). The Stripe webhook reads this mapping; the catalog file's `prices` section
// writes the same table.
import { z } from "@hono/zod-openapi";
import { entityId, type PriceTarget, topUpPrice, topUpPriceProblem } from "../../domain/catalog";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse } from "../../http/schemas";
import { readCatalogFacts } from "../../store/catalog";
import {
  deletePriceMappingStatement,
  listPriceMappings,
  type PriceMapping,
  priceMappingWire,
  putPriceMappingStatement,
  readPriceMapping,
  targetOf,
} from "../../store/prices";
import { planKinds } from "../../store/subscriptions";
import { commitAdminWrite } from "../../write/commit";
import { adminRoute } from "./route";

const priceId = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,255}$/, "a price or product id, e.g. price_1Q... or prod_...")
  .openapi({ example: "price_1QfV8cLkdIwHu7ixpro" });
const topUpWire = z.object({ credits: z.string(), amount: z.number(), expiresInDays: z.number() });
const mapping = z
  .object({
    priceId: z.string(),
    planId: z.string().optional().describe("a plan mapping: the plan"),
    kind: z.enum(["base", "addon"]).optional().describe("a plan mapping: the plan's kind"),
    topUp: topUpWire.optional().describe("a top-up mapping: credits per unit paid, usable expiresInDays"),
    updatedAt: z.string(),
  })
  .openapi("PriceMapping");
const mappingInput = z.union([
  z.object({ planId: entityId, reason: z.string().min(1).max(1000).optional() }).strict(),
  z.object({ topUp: topUpPrice, reason: z.string().min(1).max(1000).optional() }).strict(),
]);
const notFound = { 404: { ...errorResponses[400], description: "No mapping for this price" } };
const toWire = (m: PriceMapping): z.output<typeof mapping> => priceMappingWire(m);
const route = adminRoute("admin: prices");

const listPrices = route("viewer", {
  method: "get",
  path: "/",
  summary: "List price mappings (optionally for one plan)",
  request: { query: z.object({ planId: entityId.optional(), ...pageQuery }) },
  responses: { 200: jsonResponse(pageOf(mapping), "A page"), ...errorResponses },
});
const getPrice = route("viewer", {
  method: "get",
  path: "/{priceId}",
  summary: "The plan or top-up a price id maps to",
  request: { params: z.object({ priceId }) },
  responses: { 200: jsonResponse(mapping, "The mapping"), ...notFound, ...errorResponses },
});
const putPrice = route("admin", {
  method: "put",
  path: "/{priceId}",
  summary: "Map a price (or product) id to a plan, or to a credit top-up",
  request: { params: z.object({ priceId }), body: jsonBody(mappingInput) },
  responses: { 200: jsonResponse(mapping, "Mapped"), ...errorResponses },
});
const deletePrice = route("admin", {
  method: "delete",
  path: "/{priceId}",
  summary: "Remove a mapping (events for this price are then refused with 422 until it is mapped again)",
  request: { params: z.object({ priceId }) },
  responses: { 204: { description: "Removed" }, ...notFound, ...errorResponses },
});

/** The mapping a PUT stores, or a 400 when it names an unknown plan or a feature that is not a credits feature. */
async function mappingOf(db: D1Database, priceId: string, target: PriceTarget, now: number): Promise<PriceMapping> {
  if (typeof target !== "string") {
    const facts = await readCatalogFacts(db);
    const problem = topUpPriceProblem(target, (k) => facts.featureTypes.get(k));
    if (problem)
      throw new Problem("validation", problem, { errors: [{ path: "json.topUp.credits", message: problem }] });
    return { priceId, topUp: target, updatedAt: now };
  }
  const kind = (await planKinds(db, [target])).get(target);
  if (!kind)
    throw new Problem("validation", `Unknown plan '${target}'.`, {
      errors: [{ path: "json.planId", message: `unknown plan '${target}'` }],
    });
  return { priceId, planId: target, kind, updatedAt: now };
}

export const priceRoutes = newRouter();
priceRoutes
  .openapi(listPrices, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string()) ?? "";
    const rows = await listPriceMappings(c.env.DB, { after, planId: q.planId }, q.limit + 1);
    return c.json(
      page(rows, q.limit, (m) => m.priceId, toWire),
      200,
    );
  })
  .openapi(getPrice, async (c) => {
    const id = c.req.valid("param").priceId;
    const found = await readPriceMapping(c.env.DB, id);
    if (!found) throw new Problem("not-found", `No mapping for price '${id}'.`);
    return c.json(toWire(found), 200);
  })
  .openapi(putPrice, async (c) => {
    const id = c.req.valid("param").priceId;
    const body = c.req.valid("json");
    const db = c.env.DB;
    const now = c.var.services.clock.now();
    const after = await mappingOf(db, id, "planId" in body ? body.planId : body.topUp, now);
    const before = await readPriceMapping(db, id);
    // No customer changes here: a mapping is read when the next billing event arrives.
    await commitAdminWrite(
      c,
      [putPriceMappingStatement(db, id, targetOf(after), now)],
      [
        {
          action: "price_mapping.put",
          entityType: "price_mapping",
          entityId: id,
          before: before ? toWire(before) : null,
          after: toWire(after),
          reason: body.reason,
        },
      ],
    );
    return c.json(toWire(after), 200);
  })
  .openapi(deletePrice, async (c) => {
    const id = c.req.valid("param").priceId;
    const before = await readPriceMapping(c.env.DB, id);
    if (!before) throw new Problem("not-found", `No mapping for price '${id}'.`);
    await commitAdminWrite(
      c,
      [deletePriceMappingStatement(c.env.DB, id)],
      [{ action: "price_mapping.delete", entityType: "price_mapping", entityId: id, before: toWire(before) }],
    );
    return c.body(null, 204);
  });
