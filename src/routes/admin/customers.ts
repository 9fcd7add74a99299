// /admin/v1/customers: customers and their subscriptions. Reads: viewer. Writes: approver, except
// subscriptions that grant anything, which are upgrades (admin: write/upgrade-policy.ts).
// A customer is deleted only while nothing hangs off it (subscriptions, grants, keys, usage): that
// undoes a mistaken creation; a customer with a history is ended through its subscriptions instead,
// so the audit trail and snapshot history keep meaning something.
import { z } from "@hono/zod-openapi";
import { entityId } from "../../domain/catalog";
import { MAX_METER_SHARDS } from "../../domain/leases";
import { isoOrNull } from "../../domain/time";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  conflictResponse,
  errorResponses,
  idParam,
  jsonBody,
  jsonResponse,
  NO_WRITE_VERSION,
  notFoundResponse,
  writeVersionFields,
} from "../../http/schemas";
import {
  billingIdTaken,
  type CustomerDbRow,
  customerExists,
  customerLinks,
  customerReferences,
  customerWire,
  deleteCustomerStatement,
  insertCustomerStatement,
  listCustomers,
  newCustomerRow,
  readCustomer,
  updateCustomerStatement,
} from "../../store/customers";
import { retirePart } from "../../store/snapshot-publisher";
import { insertSubscriptionStatement, newSubscriptionRecord } from "../../store/subscriptions";
import { assertOneBasePlan, rethrowBasePlanConflict } from "../../write/base-plan-policy";
import { commitAdminWrite } from "../../write/commit";
import { subscriptionChangeAudit } from "../../write/subscription-audit";
import { assertUpgradeAllowed } from "../../write/upgrade-policy";
import { adminRoute } from "./route";
import { assertDatesPossible, assertPlansExist, subscriptionInput } from "./subscription-input";

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

const customerSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    residency: z.enum(["eu", "fedramp"]).nullable(),
    billingCustomerId: z.string().nullable(),
    meterShards: z
      .number()
      .int()
      .describe(
        "Shard meters its consumes spread over (allowance leases, docs/operations.md#hot-customers); 1: one meter",
      ),
    rev: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Customer");
type CustomerView = z.output<typeof customerSchema>;
const toView = (r: CustomerDbRow): CustomerView => customerWire(r);
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
    meterShards: z
      .number()
      .int()
      .min(1)
      .max(MAX_METER_SHARDS)
      .optional()
      .describe(
        "Spread consumes over this many shard meters with allowance leases (1: off); size from ~600 consumes/s each",
      ),
  })
  .strict()
  .openapi("CustomerPatch");
const route = adminRoute("admin: customers");

const createCustomer = route("approver", {
  method: "post",
  path: "/",
  summary: "Create a customer (optionally with subscriptions: admin when they grant anything)",
  request: { body: jsonBody(customerInput) },
  responses: {
    201: jsonResponse(
      z.object({ id: z.string(), ...writeVersionFields, subscriptions: z.array(z.string()) }),
      "Created",
    ),
    409: conflictResponse,
    ...errorResponses,
  },
});
const listCustomersRoute = route("viewer", {
  method: "get",
  path: "/",
  summary: "Customers, by id; filter by plan (any subscription status), billing id, or text in the id or name",
  request: {
    query: z.object({
      planId: entityId.optional(),
      billingCustomerId: z.string().max(255).optional(),
      q: z.string().min(1).max(200).optional().describe("Id or name contains this (case-insensitive)"),
      ...pageQuery,
    }),
  },
  responses: { 200: jsonResponse(pageOf(customerSchema), "A page of customers"), ...errorResponses },
});
const getCustomer = route("viewer", {
  method: "get",
  path: "/{id}",
  summary: "A customer with its subscriptions and live (pending or active) grants",
  request: { params: idParam },
  responses: { 200: jsonResponse(customerDetail, "The customer"), 404: notFoundResponse, ...errorResponses },
});
const patchCustomer = route("approver", {
  method: "patch",
  path: "/{id}",
  summary: "Rename a customer, change its billing id or its shard meters (residency is fixed)",
  request: { params: idParam, body: jsonBody(customerPatch) },
  responses: {
    200: jsonResponse(customerSchema, "Updated"),
    404: notFoundResponse,
    409: conflictResponse,
    ...errorResponses,
  },
});
const deleteCustomer = route("approver", {
  method: "delete",
  path: "/{id}",
  summary: "Delete a customer that has no subscriptions, grants, API keys or usage",
  request: { params: idParam },
  responses: {
    200: jsonResponse(z.object({ id: z.string(), deleted: z.literal(true) }), "Deleted"),
    404: notFoundResponse,
    409: conflictResponse,
    ...errorResponses,
  },
});

async function mustReadCustomer(db: D1Database, id: string): Promise<CustomerDbRow> {
  const row = await readCustomer(db, id);
  if (!row) throw new Problem("not-found", `No customer '${id}'.`);
  return row;
}

export const customerRoutes = newRouter();
customerRoutes
  .openapi(createCustomer, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    const now = c.var.services.clock.now();
    if (await customerExists(db, body.id)) throw new Problem("conflict", `Customer '${body.id}' exists.`);
    await assertPlansExist(
      db,
      body.subscriptions.map((s) => s.planId),
    );
    const subs = body.subscriptions.map((s) => newSubscriptionRecord(body.id, s, now));
    assertDatesPossible(
      subs.map((dates, i) => ({ where: `json.subscriptions.${i}`, dates })),
      now,
    );
    const guard = await assertOneBasePlan(db, body.id, subs, now, false);
    await assertUpgradeAllowed(c, body.id, subs);
    const customer = newCustomerRow({ ...body, billingCustomerId: body.billingCustomerId ?? null }, now);
    const stmts = [
      insertCustomerStatement(db, { ...body, billingCustomerId: customer.billing_customer_id }, now),
      ...subs.map((s) => insertSubscriptionStatement(db, s)),
      ...guard,
    ];
    const why = auditReason(c);
    // Each entity the write creates has its own entry: the customer, then each subscription, as the API shows them.
    const audits = [
      {
        action: "customer.create",
        entityType: "customer",
        entityId: body.id,
        customerId: body.id,
        after: toView(customer),
        reason: why,
      },
      ...subs.map((s) => subscriptionChangeAudit("create", null, s, why)),
    ];
    const versions = await commitAdminWrite(c, stmts, audits, { customers: [body.id] }).catch((err) =>
      rethrowBasePlanConflict(db, body.id, now, err),
    );
    return c.json(
      { id: body.id, ...(versions[body.id] ?? NO_WRITE_VERSION), subscriptions: subs.map((s) => s.id) },
      201,
    );
  })
  .openapi(listCustomersRoute, async (c) => {
    const q = c.req.valid("query");
    const afterId = decodeCursor(q.cursor, z.string());
    const rows = await listCustomers(c.env.DB, { ...q, afterId, limit: q.limit + 1 });
    return c.json(
      page(rows, q.limit, (r) => r.id, toView),
      200,
    );
  })
  .openapi(getCustomer, async (c) => {
    const { id } = c.req.valid("param");
    const row = await mustReadCustomer(c.env.DB, id);
    const { subscriptions, grants } = await customerLinks(c.env.DB, id);
    return c.json(
      {
        ...toView(row),
        subscriptions: subscriptions.map((s) => ({
          id: s.id,
          planId: s.plan_id,
          status: s.status,
          scheduledPlanId: s.scheduled_plan_id,
        })),
        grants: grants.map((g) => ({
          id: g.id,
          feature: g.feature_key,
          status: g.status,
          elevated: g.elevated === 1,
          expiresAt: isoOrNull(g.expires_at),
        })),
      },
      200,
    );
  })
  .openapi(patchCustomer, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const db = c.env.DB;
    const before = await mustReadCustomer(db, id);
    // The customer's meter (Durable Object) lives in the residency's jurisdiction: moving it would lose its counters.
    if (body.residency !== undefined && body.residency !== before.residency)
      throw new Problem("conflict", "A customer's residency is fixed at creation.");
    const billing = body.billingCustomerId === undefined ? before.billing_customer_id : body.billingCustomerId;
    if (billing !== null && billing !== before.billing_customer_id && (await billingIdTaken(db, billing)))
      throw new Problem("conflict", `Billing customer '${billing}' belongs to another customer.`);
    const after: CustomerDbRow = {
      ...before,
      name: body.name ?? before.name,
      billing_customer_id: billing,
      meter_shards: body.meterShards ?? before.meter_shards,
      updated_at: c.var.services.clock.now(),
    };
    // Name and billing id are not in the snapshot: no rev bump, no recompile. The shard count is (the
    // worker routes consumes by it): its change bumps the rev and republishes the part.
    const resharded = after.meter_shards !== before.meter_shards;
    await commitAdminWrite(
      c,
      [updateCustomerStatement(db, after)],
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
      resharded ? { customers: [id] } : {},
    );
    return c.json(toView(resharded ? await mustReadCustomer(db, id) : after), 200);
  })
  .openapi(deleteCustomer, async (c) => {
    const { id } = c.req.valid("param");
    const db = c.env.DB;
    const before = await mustReadCustomer(db, id);
    const refs = await customerReferences(db, id);
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
      [deleteCustomerStatement(db, id)],
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
    // Through the customer's publisher: the part leaves KV (retried until it has), and no publication
    // read from D1 before the delete can put it back.
    const now = c.var.services.clock.now();
    await retirePart(c.env, id, now).catch((err) =>
      console.error(JSON.stringify({ msg: "part retirement failed", customerId: id, error: String(err) })),
    );
    c.var.services.snapshots.invalidate(id);
    // Its revisions start again at 1 if the id is created anew: the meter forgets the customer
    // revision it has seen, or it would refuse every consume of the new customer as stale_terms.
    await c.var.services.meter
      .forgetCustomerTerms(
        c.env,
        { customerId: id, residency: before.residency ?? null, meterShards: before.meter_shards },
        now,
      )
      .catch((err) =>
        console.error(JSON.stringify({ msg: "meter terms reset failed", customerId: id, error: String(err) })),
      );
    return c.json({ id, deleted: true as const }, 200);
  });
