// /admin/v1/customers: customers and their subscriptions.
import { createRoute, z } from "@hono/zod-openapi";
import { commitAdminWrite } from "../../admin/commit";
import { requireRole } from "../../auth/admin";
import { entityId } from "../../domain/catalog";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse, adminSecurity } from "../../http/schemas";

const tags = ["admin: customers"];
const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

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
    .bind(id, customerId, s.planId, s.status, startedAt, s.trialEnd ?? null, s.currentPeriodStart ?? startedAt, s.currentPeriodEnd ?? null, s.billingAnchor ?? startedAt, s.cancelAt ?? null, s.graceUntil ?? null, now);
  return { id, stmt };
}

const createCustomer = createRoute({
  method: "post",
  path: "/",
  tags,
  security: adminSecurity,
  summary: "Create a customer (optionally with subscriptions)",
  request: { body: jsonBody(customerInput) },
  responses: { 201: jsonResponse(z.object({ id: z.string(), snapshotVersion: z.number(), subscriptions: z.array(z.string()) }), "Created"), 409: errorResponses[400], ...errorResponses },
});

export const customerRoutes = newRouter();
customerRoutes.use("/", requireRole("approver"));
customerRoutes
  .openapi(createCustomer, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    const now = c.var.services.clock.now();
    if (await db.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(body.id).first()) throw new Problem(409, "conflict", `Customer '${body.id}' exists.`);
    await assertPlansExist(db, body.subscriptions.map((s) => s.planId));
    const subs = body.subscriptions.map((s) => insertSubscription(db, body.id, s, now));
    const stmts = [
      db.prepare("INSERT INTO customers (id, name, residency, billing_customer_id, rev, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)").bind(body.id, body.name, body.residency, body.billingCustomerId ?? null, now),
      ...subs.map((s) => s.stmt),
    ];
    const versions = await commitAdminWrite(c, stmts, [{ action: "customer.create", entityType: "customer", entityId: body.id, customerId: body.id, after: body }], { customers: [body.id] });
    return c.json({ id: body.id, snapshotVersion: versions[body.id] ?? 0, subscriptions: subs.map((s) => s.id) }, 201);
  });

export async function assertPlansExist(db: D1Database, planIds: string[]): Promise<void> {
  for (const id of new Set(planIds)) {
    if (!(await db.prepare("SELECT 1 FROM plans WHERE id = ?1").bind(id).first())) throw new Problem(400, "validation", `Unknown plan '${id}'.`, { errors: [{ path: "planId", message: `unknown plan '${id}'` }] });
  }
}
