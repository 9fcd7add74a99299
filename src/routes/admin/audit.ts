// /admin/v1/audit: the append-only audit log, newest first. Read-only by construction: no route
// here or anywhere updates or deletes it, and the table's triggers refuse it anyway.
import { z } from "@hono/zod-openapi";
import { iso } from "../../domain/time";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { newRouter } from "../../http/router";
import { errorResponses, instant, jsonResponse } from "../../http/schemas";
import { type AuditDbRow, listAudit } from "../../store/audit";
import { adminRoute } from "./route";

const entrySchema = z
  .object({
    id: z.number().int(),
    at: z.string(),
    actor: z.string(),
    actorType: z.string(),
    action: z.string(),
    entityType: z.string(),
    entityId: z.string(),
    customerId: z.string().nullable(),
    before: z.any(),
    after: z.any(),
    reason: z.string().nullable(),
    requestId: z.string().nullable(),
  })
  .openapi("AuditEntry");

const toView = (r: AuditDbRow): z.output<typeof entrySchema> => ({
  id: r.id,
  at: iso(r.at),
  actor: r.actor,
  actorType: r.actor_type,
  action: r.action,
  entityType: r.entity_type,
  entityId: r.entity_id,
  customerId: r.customer_id,
  before: r.before === null ? null : JSON.parse(r.before),
  after: r.after === null ? null : JSON.parse(r.after),
  reason: r.reason,
  requestId: r.request_id,
});

const listAuditRoute = adminRoute("admin: audit")("viewer", {
  method: "get",
  path: "/",
  summary: "Audit entries, newest first, filtered by customer, actor, entity, action and time",
  request: {
    query: z.object({
      customerId: z.string().max(128).optional(),
      actor: z.string().max(400).optional().describe("An actor as recorded, or an operator id without its <email>"),
      entityType: z.string().max(64).optional(),
      entityId: z.string().max(256).optional(),
      action: z.string().max(64).optional(),
      from: instant.optional().describe("At or after this instant"),
      to: instant.optional().describe("Before this instant"),
      ...pageQuery,
    }),
  },
  responses: { 200: jsonResponse(pageOf(entrySchema), "A page of audit entries"), ...errorResponses },
});

export const auditRoutes = newRouter().openapi(listAuditRoute, async (c) => {
  const q = c.req.valid("query");
  const beforeId = decodeCursor(q.cursor, z.number().int());
  const rows = await listAudit(c.env.DB, { ...q, beforeId, limit: q.limit + 1 });
  return c.json(
    page(rows, q.limit, (r) => r.id, toView),
    200,
  );
});
