// /admin/v1/audit: the append-only audit log, newest first. Read-only by construction: no route
// here or anywhere updates or deletes it, and the table's triggers refuse it anyway.
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { newRouter } from "../../http/router";
import { adminSecurity, errorResponses, instant, jsonResponse } from "../../http/schemas";
import { SqlFilter } from "../../store/sql-filter";

/** An audit_log row as D1 returns it. */
export interface AuditDbRow {
  id: number;
  at: number;
  actor: string;
  actor_type: string;
  action: string;
  entity_type: string;
  entity_id: string;
  customer_id: string | null;
  before: string | null;
  after: string | null;
  reason: string | null;
  request_id: string | null;
}

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
  at: new Date(r.at).toISOString(),
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

const listAudit = createRoute({
  method: "get",
  path: "/",
  tags: ["admin: audit"],
  security: adminSecurity,
  middleware: [requireRole("viewer")],
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

export const auditRoutes = newRouter().openapi(listAudit, async (c) => {
  const q = c.req.valid("query");
  const before = decodeCursor(q.cursor, z.number().int());
  const f = new SqlFilter()
    .when(q.customerId, "customer_id = ?")
    // An operator is recorded as "sub <email>"; asking for "sub" finds it too.
    .when(q.actor, "actor = ? OR substr(actor, 1, length(?) + 2) = ? || ' <'", q.actor, q.actor, q.actor)
    .when(q.entityType, "entity_type = ?")
    .when(q.entityId, "entity_id = ?")
    .when(q.action, "action = ?")
    .when(q.from, "at >= ?")
    .when(q.to, "at < ?")
    .when(before, "id < ?");
  const rows = await c.env.DB.prepare(`SELECT * FROM audit_log ${f.sql} ORDER BY id DESC LIMIT ?`)
    .bind(...f.params, q.limit + 1)
    .all<AuditDbRow>();
  return c.json(
    page(rows.results, q.limit, (r) => r.id, toView),
    200,
  );
});
