// /admin/v1/webhook-endpoints: where outbound events go (docs/webhooks.md). Admin role throughout (an
// endpoint's URL and its delivery log are as sensitive as its writes). The signing secret is made by
// Tollgate and shown once, in the create or rotate answer: it is stored (it has to sign) and never
// returned again. A rotation keeps the previous secret signing for an overlap, so receivers can switch.
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { configOf } from "../../config";
import { entityId } from "../../domain/catalog";
import { privateDestination } from "../../domain/outbound-url";
import { DAY_MS, iso, isoOrNull } from "../../domain/time";
import { enqueueDeliveries } from "../../events/emit";
import { generateSecret } from "../../events/signing";
import { EVENT_TYPES } from "../../events/types";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, instant, jsonBody, jsonResponse, notFoundResponse, opaqueIdParam } from "../../http/schemas";
import { customerExists } from "../../store/customers";
import { type DeliveryDbRow, listDeliveries, reopenDeliveries } from "../../store/outbound-events";
import {
  deleteEndpointStatement,
  type EndpointDbRow,
  insertEndpointStatement,
  listEndpoints,
  readEndpoint,
  updateEndpointStatement,
} from "../../store/webhook-endpoints";
import { commitAdminWrite } from "../../write/commit";
import { adminRoute } from "./route";

const MAX_REPLAY = 1000;
const DEFAULT_OVERLAP_SECONDS = 24 * 3600;

const settings = {
  url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .describe("https only in staging and production"),
  description: z.string().max(500),
  eventTypes: z.array(z.enum(EVENT_TYPES)).max(EVENT_TYPES.length).describe("[]: every event type"),
  customerId: entityId.nullable().describe("Only this customer's events; null: every customer's"),
  enabled: z.boolean(),
  ratePerSecond: z.number().int().min(1).max(1000).describe("Deliveries per second at most (default 10)"),
};
const createInput = z
  .object({
    ...settings,
    description: settings.description.default(""),
    eventTypes: settings.eventTypes.default([]),
    customerId: settings.customerId.default(null),
    enabled: settings.enabled.default(true),
    ratePerSecond: settings.ratePerSecond.default(10),
  })
  .strict()
  .openapi("WebhookEndpointInput");
const patchInput = z.object(settings).partial().strict().openapi("WebhookEndpointPatch");

const endpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string(),
    eventTypes: z.array(z.string()),
    customerId: z.string().nullable(),
    enabled: z.boolean(),
    disabledReason: z.string().nullable(),
    ratePerSecond: z.number(),
    failingSince: z.string().nullable(),
    previousSecretExpiresAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("WebhookEndpoint");
const withSecret = endpointSchema.extend({ secret: z.string().describe("whsec_...: shown in this answer only") });
const toView = (r: EndpointDbRow): z.output<typeof endpointSchema> => ({
  id: r.id,
  url: r.url,
  description: r.description,
  eventTypes: JSON.parse(r.event_types) as string[],
  customerId: r.customer_id,
  enabled: r.enabled === 1,
  disabledReason: r.disabled_reason,
  ratePerSecond: r.rate_per_second,
  failingSince: isoOrNull(r.failing_since),
  previousSecretExpiresAt: r.previous_secret ? isoOrNull(r.previous_secret_until) : null,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

const deliverySchema = z
  .object({
    id: z.string(),
    eventId: z.string(),
    eventType: z.string(),
    customerId: z.string(),
    sequence: z.number(),
    status: z.enum(["pending", "delivered", "failed", "skipped"]),
    attempts: z.number(),
    responseCode: z.number().nullable(),
    latencyMs: z.number().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    lastAttemptAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable().describe("When a failed attempt is retried"),
    deliveredAt: z.string().nullable(),
  })
  .openapi("WebhookDelivery");
const toDeliveryView = (r: DeliveryDbRow & { event_type: string; customer_id: string; seq: number }) => ({
  id: r.id,
  eventId: r.event_id,
  eventType: r.event_type,
  customerId: r.customer_id,
  sequence: r.seq,
  status: r.status,
  attempts: r.attempts,
  responseCode: r.response_code,
  latencyMs: r.latency_ms,
  lastError: r.last_error,
  createdAt: iso(r.created_at),
  lastAttemptAt: isoOrNull(r.last_attempt_at),
  nextAttemptAt: isoOrNull(r.next_attempt_at),
  deliveredAt: isoOrNull(r.delivered_at),
});

const route = adminRoute("admin: webhook endpoints");
const idAndDelivery = z.object({ id: z.string().min(1).max(128), deliveryId: z.string().min(1).max(128) });
const replayAnswer = z.object({ replayed: z.number(), deliveries: z.array(z.string()), more: z.boolean() });

const create = route("admin", {
  method: "post",
  path: "/",
  summary: "Create a webhook endpoint (its signing secret is in this response only)",
  request: { body: jsonBody(createInput) },
  responses: { 201: jsonResponse(withSecret, "Created: store the secret now"), ...errorResponses },
});
const list = route("admin", {
  method: "get",
  path: "/",
  summary: "Webhook endpoints (never their secrets), newest first",
  request: { query: z.object(pageQuery) },
  responses: { 200: jsonResponse(pageOf(endpointSchema), "A page of endpoints"), ...errorResponses },
});
const get = route("admin", {
  method: "get",
  path: "/{id}",
  summary: "One webhook endpoint",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(endpointSchema, "The endpoint"), 404: notFoundResponse, ...errorResponses },
});
const patch = route("admin", {
  method: "patch",
  path: "/{id}",
  summary: "Change an endpoint (enabling it again clears its failure state)",
  request: { params: opaqueIdParam, body: jsonBody(patchInput) },
  responses: { 200: jsonResponse(endpointSchema, "Changed"), 404: notFoundResponse, ...errorResponses },
});
const remove = route("admin", {
  method: "delete",
  path: "/{id}",
  summary: "Delete an endpoint and its delivery log",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(endpointSchema, "Deleted"), 404: notFoundResponse, ...errorResponses },
});
const rotate = route("admin", {
  method: "post",
  path: "/{id}/rotate-secret",
  summary: "A new signing secret; the previous one keeps signing for the overlap (default 24 h)",
  request: {
    params: opaqueIdParam,
    body: {
      required: false,
      content: {
        "application/json": {
          schema: z
            .object({
              overlapSeconds: z
                .number()
                .int()
                .min(0)
                .max(7 * 24 * 3600)
                .optional(),
            })
            .strict(),
        },
      },
    },
  },
  responses: {
    200: jsonResponse(withSecret, "Rotated: store the new secret now"),
    404: notFoundResponse,
    ...errorResponses,
  },
});
const deliveries = route("admin", {
  method: "get",
  path: "/{id}/deliveries",
  summary: "The endpoint's delivery log, newest first",
  request: {
    params: opaqueIdParam,
    query: z.object({ status: deliverySchema.shape.status.optional(), ...pageQuery }),
  },
  responses: {
    200: jsonResponse(pageOf(deliverySchema), "A page of deliveries"),
    404: notFoundResponse,
    ...errorResponses,
  },
});
const replayOne = route("admin", {
  method: "post",
  path: "/{id}/deliveries/{deliveryId}/replay",
  summary: "Send one delivery again (same webhook-id, same body)",
  request: { params: idAndDelivery },
  responses: { 202: jsonResponse(replayAnswer, "Queued"), 404: notFoundResponse, ...errorResponses },
});
const replayRange = route("admin", {
  method: "post",
  path: "/{id}/replay",
  summary: `Send again the endpoint's deliveries of events created in [from, to), oldest first, ${MAX_REPLAY} at most per call`,
  request: { params: opaqueIdParam, body: jsonBody(z.object({ from: instant, to: instant }).strict()) },
  responses: { 202: jsonResponse(replayAnswer, "Queued"), 404: notFoundResponse, ...errorResponses },
});

async function mustRead(db: D1Database, id: string): Promise<EndpointDbRow> {
  const row = await readEndpoint(db, id);
  if (!row) throw new Problem("not-found", `No webhook endpoint '${id}'.`);
  return row;
}

/**
 * Where events leave for real (staging, production): https only, and never a local or private address
 * (domain/outbound-url.ts). Plain http and localhost are for a local receiver (npm run webhooks:listen).
 */
function checkUrl(c: Context<AppEnv>, url: string | undefined): void {
  const env = configOf(c.env).environment;
  if (url === undefined || (env !== "staging" && env !== "production")) return;
  const refuse = (message: string) =>
    new Problem("validation", `Webhook URL refused in ${env}: it ${message}.`, {
      errors: [{ path: "json.url", message }],
    });
  if (!url.startsWith("https://")) throw refuse("must be an https URL");
  const why = privateDestination(new URL(url));
  if (why) throw refuse(`must not be a local or private destination (the host ${why})`);
}

async function checkCustomer(db: D1Database, customerId: string | null | undefined): Promise<void> {
  if (customerId && !(await customerExists(db, customerId)))
    throw new Problem("validation", `Unknown customer '${customerId}'.`, {
      errors: [{ path: "json.customerId", message: "unknown customer" }],
    });
}

const audit = (action: string, c: Context<AppEnv>, before: EndpointDbRow | null, after: EndpointDbRow | null) => ({
  action: `webhook_endpoint.${action}`,
  entityType: "webhook_endpoint",
  entityId: (after ?? before)?.id as string,
  customerId: (after ?? before)?.customer_id ?? null,
  before: before ? toView(before) : null,
  after: after ? toView(after) : null,
  reason: auditReason(c),
});

export const webhookEndpointRoutes = newRouter();
webhookEndpointRoutes
  .openapi(create, async (c) => {
    const body = c.req.valid("json");
    checkUrl(c, body.url);
    await checkCustomer(c.env.DB, body.customerId);
    const now = c.var.services.clock.now();
    const row: EndpointDbRow = {
      id: `we_${crypto.randomUUID().replace(/-/g, "")}`,
      url: body.url,
      description: body.description,
      event_types: JSON.stringify([...new Set(body.eventTypes)]),
      customer_id: body.customerId,
      enabled: body.enabled ? 1 : 0,
      disabled_reason: null,
      secret: generateSecret(),
      previous_secret: null,
      previous_secret_until: null,
      rate_per_second: body.ratePerSecond,
      next_slot_at: 0,
      failing_since: null,
      created_at: now,
      updated_at: now,
    };
    await commitAdminWrite(c, [insertEndpointStatement(c.env.DB, row)], [audit("create", c, null, row)]);
    return c.json({ ...toView(row), secret: row.secret }, 201);
  })
  .openapi(list, async (c) => {
    const q = c.req.valid("query");
    const before = decodeCursor(q.cursor, z.tuple([z.number(), z.string()]));
    const rows = await listEndpoints(c.env.DB, { before, limit: q.limit + 1 });
    return c.json(
      page(rows, q.limit, (r) => [r.created_at, r.id], toView),
      200,
    );
  })
  .openapi(get, async (c) => c.json(toView(await mustRead(c.env.DB, c.req.valid("param").id)), 200))
  .openapi(patch, async (c) => {
    const body = c.req.valid("json");
    const before = await mustRead(c.env.DB, c.req.valid("param").id);
    checkUrl(c, body.url);
    await checkCustomer(c.env.DB, body.customerId);
    const enabling = body.enabled === true && before.enabled === 0;
    const after: EndpointDbRow = {
      ...before,
      url: body.url ?? before.url,
      description: body.description ?? before.description,
      event_types: body.eventTypes ? JSON.stringify([...new Set(body.eventTypes)]) : before.event_types,
      customer_id: body.customerId === undefined ? before.customer_id : body.customerId,
      enabled: body.enabled === undefined ? before.enabled : body.enabled ? 1 : 0,
      disabled_reason: enabling ? null : body.enabled === false ? "disabled by an operator" : before.disabled_reason,
      failing_since: enabling ? null : before.failing_since,
      rate_per_second: body.ratePerSecond ?? before.rate_per_second,
      updated_at: c.var.services.clock.now(),
    };
    await commitAdminWrite(c, [updateEndpointStatement(c.env.DB, after)], [audit("update", c, before, after)]);
    return c.json(toView(after), 200);
  })
  .openapi(remove, async (c) => {
    const before = await mustRead(c.env.DB, c.req.valid("param").id);
    await commitAdminWrite(c, [deleteEndpointStatement(c.env.DB, before.id)], [audit("delete", c, before, null)]);
    return c.json(toView(before), 200);
  })
  .openapi(rotate, async (c) => {
    const before = await mustRead(c.env.DB, c.req.valid("param").id);
    const body = (await c.req.json().catch(() => ({}))) as { overlapSeconds?: unknown };
    const parsed = z
      .object({
        overlapSeconds: z
          .number()
          .int()
          .min(0)
          .max(7 * 24 * 3600)
          .optional(),
      })
      .safeParse(body);
    if (!parsed.success) throw new Problem("validation", "overlapSeconds must be an integer from 0 to 604800.");
    const now = c.var.services.clock.now();
    const overlapMs = (parsed.data.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS) * 1000;
    const after: EndpointDbRow = {
      ...before,
      secret: generateSecret(),
      previous_secret: overlapMs > 0 ? before.secret : null,
      previous_secret_until: overlapMs > 0 ? now + Math.min(overlapMs, 7 * DAY_MS) : null,
      updated_at: now,
    };
    await commitAdminWrite(c, [updateEndpointStatement(c.env.DB, after)], [audit("rotate_secret", c, before, after)]);
    return c.json({ ...toView(after), secret: after.secret }, 200);
  })
  .openapi(deliveries, async (c) => {
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    await mustRead(c.env.DB, id);
    const before = decodeCursor(q.cursor, z.tuple([z.number(), z.string()]));
    const rows = await listDeliveries(c.env.DB, { endpointId: id, status: q.status, before, limit: q.limit + 1 });
    return c.json(
      page(rows, q.limit, (r) => [r.created_at, r.id], toDeliveryView),
      200,
    );
  })
  .openapi(replayOne, async (c) => {
    const { id, deliveryId } = c.req.valid("param");
    await mustRead(c.env.DB, id);
    const ids = await reopenDeliveries(c.env.DB, { endpointId: id, deliveryId, limit: 1 });
    if (ids.length === 0) throw new Problem("not-found", `No delivery '${deliveryId}' of endpoint '${id}'.`);
    await enqueueDeliveries(c.env, ids);
    return c.json({ replayed: ids.length, deliveries: ids, more: false }, 202);
  })
  .openapi(replayRange, async (c) => {
    const { id } = c.req.valid("param");
    const { from, to } = c.req.valid("json");
    await mustRead(c.env.DB, id);
    if (to <= from)
      throw new Problem("validation", "`to` must be after `from`.", {
        errors: [{ path: "json.to", message: "must be after from" }],
      });
    const ids = await reopenDeliveries(c.env.DB, { endpointId: id, from, to, limit: MAX_REPLAY });
    await enqueueDeliveries(c.env, ids);
    return c.json({ replayed: ids.length, deliveries: ids, more: ids.length === MAX_REPLAY }, 202);
  });
