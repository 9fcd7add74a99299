// /admin/v1/audit: the append-only audit log, newest first. Read-only by construction: no route
// here or anywhere updates or deletes it, and the table's triggers refuse it anyway, except for the
// rows the cron's retention has archived to R2 (store/retention.ts): /admin/v1/audit/archive?month=
// streams an archived month back, entry by entry, in the same shape.
import { z } from "@hono/zod-openapi";
import { iso } from "../../domain/time";
import { CONTENT_TYPES, exportStream } from "../../http/export-stream";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { newRouter } from "../../http/router";
import { errorResponses, instant, jsonResponse } from "../../http/schemas";
import { type AuditDbRow, listAudit } from "../../store/audit";
import { readArchive } from "../../store/retention";
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

// A streamed body: declared apart, so the handler's c.body is not checked against a JSON type.
const archivedMonth: { description: string; content: Record<string, { schema: z.ZodString }> } = {
  description: "The month's archived entries, one JSON object per line (none: an empty body)",
  content: { "application/x-ndjson": { schema: z.string() } },
};

const archiveRoute = adminRoute("admin: audit")("viewer", {
  method: "get",
  path: "/archive",
  summary: "An archived month of audit entries, oldest first, streamed as NDJSON",
  description:
    "Entries older than the audit retention (AUDIT_RETENTION_DAYS, default 400) are archived to R2 by the cron " +
    "and deleted from D1; this streams one month of them back, one AuditEntry per line.",
  request: {
    query: z.object({
      month: z
        .string()
        .regex(/^\d{4}-(0[1-9]|1[0-2])$/, "yyyy-mm")
        .describe("The month of the entries' instant (UTC), yyyy-mm"),
    }),
  },
  responses: { 200: archivedMonth, ...errorResponses },
});

async function* archivedViews(bucket: R2Bucket, month: string) {
  for await (const row of readArchive(bucket, "audit_log", month)) yield toView(row as unknown as AuditDbRow);
}

export const auditRoutes = newRouter()
  .openapi(listAuditRoute, async (c) => {
    const q = c.req.valid("query");
    const beforeId = decodeCursor(q.cursor, z.number().int());
    const rows = await listAudit(c.env.DB, { ...q, beforeId, limit: q.limit + 1 });
    return c.json(
      page(rows, q.limit, (r) => r.id, toView),
      200,
    );
  })
  .openapi(archiveRoute, async (c) => {
    const { month } = c.req.valid("query");
    const stream = exportStream(archivedViews(c.env.LEDGER, month), "ndjson", []);
    return c.body(stream, 200, { "Content-Type": CONTENT_TYPES.ndjson, "Cache-Control": "no-store" });
  });
