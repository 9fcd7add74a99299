// /admin/v1/customers: customers and their subscriptions. Reads: viewer. Writes: approver.
// A customer is deleted only while nothing hangs off it (subscriptions, grants, keys, usage): that
// undoes a mistaken creation; a customer with a history is ended through its subscriptions instead,
// so the audit trail and snapshot history keep meaning something.
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { entityId } from "../../domain/catalog";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  adminSecurity,
  conflictResponse,
  errorResponses,
  idParam,
  instant,
  jsonBody,
  jsonResponse,
  notFoundResponse,
} from "../../http/schemas";
import { kvKeys } from "../../store/kv";
import { SqlFilter } from "../../store/sql-filter";
import { commitAdminWrite } from "../../write/commit";

const tags = ["admin: customers"];

export const subscriptionInput = z
  .object({
    id: entityId.optional(),
    planId: entityId,
    status: z.enum(["trialing", "active", "past_due", "canceled", "expired"]).default("active"),
    startedAt: instant.optional(),
    trialEnd: instant.nullable().optional(),
    currentPeriodStart: instant.nullable().optional(),
    currentPeriodEnd: instant.nullable().optional(),
    billingAnchor: instant.nullable().optional(),
    cancelAt: instant.nullable().optional(),
    graceUntil: instant.nullable().optional(),
  })
  .strict()
  .openapi("SubscriptionInput");

export const customerInput = z
  .object({
    id: entityId,
    name: z.string().max(200).default(""),
    residency: z.enum(["eu", "fedramp"]).nullable().default(null),
    billingCustomerId: z.string().max(255).nullable().optional(),
    subscriptions: z.array(subscriptionInput).max(20).default([]),
  })
  .strict()
  .openapi("CustomerInput");

type SubscriptionInput = z.output<typeof subscriptionInput>;

export function insertSubscription(db: D1Database, customerId: string, s: SubscriptionInput, now: number) {
  const id = s.id ?? `sub_${crypto.randomUUID()}`;
  const startedAt = s.startedAt ?? now;
  const stmt = db
    .prepare(
      `INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, trial_end, current_period_start, current_period_end,
         billing_anchor, cancel_at, grace_until, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)`,
    )
    .bind(
      id,
      customerId,
      s.planId,
      s.status,
      startedAt,
      s.trialEnd ?? null,
      s.currentPeriodStart ?? startedAt,
      s.currentPeriodEnd ?? null,
      s.billingAnchor ?? startedAt,
      s.cancelAt ?? null,
      s.graceUntil ?? null,
      now,
    );
  return { id, stmt };
}

const createCustomer = createRoute({
  method: "post",
  path: "/",
  tags,
  security: adminSecurity,
  middleware: [requireRole("approver")],
  summary: "Create a customer (optionally with subscriptions)",
  request: { body: jsonBody(customerInput) },
  responses: {
    201: jsonResponse(
      z.object({ id: z.string(), snapshotVersion: z.number(), subscriptions: z.array(z.string()) }),
      "Created",
    ),
    409: conflictResponse,
    ...errorResponses,
  },
});

interface CustomerDbRow {
  id: string;
  name: string;
  residency: "eu" | "fedramp" | null;
  billing_customer_id: string | null;
  rev: number;
  created_at: number;
  updated_at: number;
}

const customerSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    residency: z.enum(["eu", "fedramp"]).nullable(),
    billingCustomerId: z.string().nullable(),
    rev: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Customer");
type CustomerView = z.output<typeof customerSchema>;
const toView = (r: CustomerDbRow): CustomerView => ({
  id: r.id,
  name: r.name,
  residency: r.residency,
  billingCustomerId: r.billing_customer_id,
  rev: r.rev,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});
const customerDetail = customerSchema
  .extend({
    subscriptions: z.array(
      z.object({ id: z.string(), planId: z.string(), status: z.string(), scheduledPlanId: z.string().nullable() }),
    ),
    grants: z.array(
      z.object({
        id: z.string(),
        feature: z.string(),
        status: z.string(),
        elevated: z.boolean(),
        expiresAt: z.string().nullable(),
      }),
    ),
  })
  .openapi("CustomerDetail");
const customerPatch = z
  .object({
    name: z.string().max(200).optional(),
    billingCustomerId: z.string().max(255).nullable().optional(),
    residency: z.enum(["eu", "fedramp"]).nullable().optional().describe("Fixed at creation: accepted only unchanged"),
  })
  .strict()
  .openapi("CustomerPatch");

const listCustomers = createRoute({
  method: "get",
  path: "/",
  tags,
  security: adminSecurity,
  middleware: [requireRole("viewer")],
  summary: "Customers, by id; filter by plan (any subscription status) or billing id",
  request: {
    query: z.object({ planId: entityId.optional(), billingCustomerId: z.string().max(255).optional(), ...pageQuery }),
  },
  responses: { 200: jsonResponse(pageOf(customerSchema), "A page of customers"), ...errorResponses },
});
const getCustomer = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  security: adminSecurity,
  middleware: [requireRole("viewer")],
  summary: "A customer with its subscriptions and live (pending or active) grants",
  request: { params: idParam },
  responses: { 200: jsonResponse(customerDetail, "The customer"), 404: notFoundResponse, ...errorResponses },
});
const patchCustomer = createRoute({
  method: "patch",
  path: "/{id}",
  tags,
  security: adminSecurity,
  middleware: [requireRole("approver")],
  summary: "Rename a customer or change its billing id (residency is fixed)",
  request: { params: idParam, body: jsonBody(customerPatch) },
  responses: {
    200: jsonResponse(customerSchema, "Updated"),
    404: notFoundResponse,
    409: conflictResponse,
    ...errorResponses,
  },
});
const deleteCustomer = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  security: adminSecurity,
  middleware: [requireRole("approver")],
  summary: "Delete a customer that has no subscriptions, grants, API keys or usage",
  request: { params: idParam },
  responses: {
    200: jsonResponse(z.object({ id: z.string(), deleted: z.literal(true) }), "Deleted"),
    404: notFoundResponse,
    409: conflictResponse,
    ...errorResponses,
  },
});

async function readCustomer(db: D1Database, id: string): Promise<CustomerDbRow> {
  const row = await db.prepare("SELECT * FROM customers WHERE id = ?1").bind(id).first<CustomerDbRow>();
  if (!row) throw new Problem("not-found", `No customer '${id}'.`);
  return row;
}

export const customerRoutes = newRouter();
customerRoutes
  .openapi(createCustomer, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    const now = c.var.services.clock.now();
    if (await db.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(body.id).first())
      throw new Problem("conflict", `Customer '${body.id}' exists.`);
    await assertPlansExist(
      db,
      body.subscriptions.map((s) => s.planId),
    );
    const subs = body.subscriptions.map((s) => insertSubscription(db, body.id, s, now));
    const stmts = [
      db
        .prepare(
          "INSERT INTO customers (id, name, residency, billing_customer_id, rev, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        )
        .bind(body.id, body.name, body.residency, body.billingCustomerId ?? null, now),
      ...subs.map((s) => s.stmt),
    ];
    const versions = await commitAdminWrite(
      c,
      stmts,
      [{ action: "customer.create", entityType: "customer", entityId: body.id, customerId: body.id, after: body }],
      { customers: [body.id] },
    );
    return c.json({ id: body.id, snapshotVersion: versions[body.id] ?? 0, subscriptions: subs.map((s) => s.id) }, 201);
  })
  .openapi(listCustomers, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.string());
    const f = new SqlFilter()
      .when(after, "c.id > ?")
      .when(
        q.planId,
        "EXISTS (SELECT 1 FROM subscriptions s WHERE s.customer_id = c.id AND (s.plan_id = ? OR s.scheduled_plan_id = ?))",
        q.planId,
        q.planId,
      )
      .when(q.billingCustomerId, "c.billing_customer_id = ?");
    const rows = await c.env.DB.prepare(`SELECT c.* FROM customers c ${f.sql} ORDER BY c.id LIMIT ?`)
      .bind(...f.params, q.limit + 1)
      .all<CustomerDbRow>();
    return c.json(
      page(rows.results, q.limit, (r) => r.id, toView),
      200,
    );
  })
  .openapi(getCustomer, async (c) => {
    const { id } = c.req.valid("param");
    const db = c.env.DB;
    const row = await readCustomer(db, id);
    const [subs, grants] = await db.batch<Record<string, unknown>>([
      db
        .prepare(
          "SELECT id, plan_id, status, scheduled_plan_id FROM subscriptions WHERE customer_id = ?1 ORDER BY started_at, id",
        )
        .bind(id),
      db
        .prepare(
          "SELECT id, feature_key, status, elevated, expires_at FROM grants WHERE customer_id = ?1 AND status IN ('pending', 'active') ORDER BY created_at, id",
        )
        .bind(id),
    ]);
    return c.json(
      {
        ...toView(row),
        subscriptions: (
          subs!.results as { id: string; plan_id: string; status: string; scheduled_plan_id: string | null }[]
        ).map((s) => ({ id: s.id, planId: s.plan_id, status: s.status, scheduledPlanId: s.scheduled_plan_id })),
        grants: (
          grants!.results as {
            id: string;
            feature_key: string;
            status: string;
            elevated: number;
            expires_at: number | null;
          }[]
        ).map((g) => ({
          id: g.id,
          feature: g.feature_key,
          status: g.status,
          elevated: g.elevated === 1,
          expiresAt: g.expires_at === null ? null : new Date(g.expires_at).toISOString(),
        })),
      },
      200,
    );
  })
  .openapi(patchCustomer, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const db = c.env.DB;
    const before = await readCustomer(db, id);
    // The customer's meter (Durable Object) lives in the residency's jurisdiction: moving it would lose its counters.
    if (body.residency !== undefined && body.residency !== before.residency)
      throw new Problem("conflict", "A customer's residency is fixed at creation.");
    const billing = body.billingCustomerId === undefined ? before.billing_customer_id : body.billingCustomerId;
    if (
      billing !== null &&
      billing !== before.billing_customer_id &&
      (await db.prepare("SELECT 1 FROM customers WHERE billing_customer_id = ?1").bind(billing).first())
    ) {
      throw new Problem("conflict", `Billing customer '${billing}' belongs to another customer.`);
    }
    const after: CustomerDbRow = {
      ...before,
      name: body.name ?? before.name,
      billing_customer_id: billing,
      updated_at: c.var.services.clock.now(),
    };
    const stmt = db
      .prepare("UPDATE customers SET name = ?2, billing_customer_id = ?3, updated_at = ?4 WHERE id = ?1")
      .bind(id, after.name, after.billing_customer_id, after.updated_at);
    // Name and billing id are not in the snapshot: no rev bump, no recompile.
    await commitAdminWrite(
      c,
      [stmt],
      [
        {
          action: "customer.update",
          entityType: "customer",
          entityId: id,
          customerId: id,
          before: toView(before),
          after: toView(after),
          reason: auditReason(c),
        },
      ],
    );
    return c.json(toView(after), 200);
  })
  .openapi(deleteCustomer, async (c) => {
    const { id } = c.req.valid("param");
    const db = c.env.DB;
    const before = await readCustomer(db, id);
    const refs = await db
      .prepare(
        `SELECT (SELECT COUNT(*) FROM subscriptions WHERE customer_id = ?1) AS subscriptions, (SELECT COUNT(*) FROM grants WHERE customer_id = ?1) AS grants,
                (SELECT COUNT(*) FROM api_keys WHERE customer_id = ?1) AS apiKeys, (SELECT COUNT(*) FROM usage_events WHERE customer_id = ?1) AS usageEvents`,
      )
      .bind(id)
      .first<Record<string, number>>();
    if (refs && Object.values(refs).some((n) => n > 0)) {
      throw new Problem(
        "conflict",
        `Customer '${id}' has ${Object.entries(refs)
          .map(([k, n]) => `${n} ${k}`)
          .join(", ")}; end its subscriptions instead of deleting it.`,
        { references: refs },
      );
    }
    await commitAdminWrite(
      c,
      [db.prepare("DELETE FROM customers WHERE id = ?1").bind(id)],
      [
        {
          action: "customer.delete",
          entityType: "customer",
          entityId: id,
          customerId: id,
          before: toView(before),
          reason: auditReason(c),
        },
      ],
    );
    // Checks answer unknown_customer: at once here, within the cache TTL and KV propagation elsewhere.
    await c.env.SNAPSHOTS.delete(kvKeys.snapshot(id));
    c.var.services.snapshots.invalidate(id);
    return c.json({ id, deleted: true as const }, 200);
  });

export async function assertPlansExist(db: D1Database, planIds: string[]): Promise<void> {
  for (const id of new Set(planIds)) {
    if (!(await db.prepare("SELECT 1 FROM plans WHERE id = ?1").bind(id).first()))
      throw new Problem("validation", `Unknown plan '${id}'.`, {
        errors: [{ path: "planId", message: `unknown plan '${id}'` }],
      });
  }
}
