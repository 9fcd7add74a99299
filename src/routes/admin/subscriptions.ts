// /admin/v1/subscriptions: create, read, list, and lifecycle actions (plan changes, cancel, resume,
// trials, past due). The rules live in domain/lifecycle.ts; this file loads, calls, writes, maps.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { requireRole } from "../../auth/admin";
import { configOf } from "../../config";
import { entityId } from "../../domain/catalog";
import { type LifecycleAction, transition } from "../../domain/lifecycle";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { adminSecurity, errorResponses, idParam, instant, jsonBody, jsonResponse } from "../../http/schemas";
import type { SubscriptionDbRow } from "../../store/customer-rows";
import {
  isWriteConflict,
  readSubscription,
  type SubscriptionRecord,
  subscriptionWire,
  toSubscriptionRecord,
  updateSubscriptionStatements,
} from "../../store/subscriptions";
import { commitAdminWrite } from "../../write/commit";
import { dueAudits, subscriptionChangeAudit } from "../../write/subscription-audit";
import { assertPlansExist, insertSubscription, subscriptionInput } from "./customers";

const tags = ["admin: subscriptions"];
const STATUSES = ["trialing", "active", "past_due", "canceled", "expired"] as const;
const reason = z.string().min(1).max(1000).optional().describe("Recorded in the audit log");
const when = z.enum(["immediately", "at_period_end"]);

const subscriptionSchema = z
  .object({
    id: z.string(),
    customerId: z.string(),
    planId: z.string(),
    status: z.enum(STATUSES),
    startedAt: z.string(),
    trialEnd: z.string().nullable(),
    currentPeriodStart: z.string().nullable(),
    currentPeriodEnd: z.string().nullable(),
    billingAnchor: z.string().nullable(),
    cancelAt: z.string().nullable(),
    graceUntil: z.string().nullable(),
    endedAt: z.string().nullable(),
    scheduledPlanId: z.string().nullable(),
    scheduledChangeAt: z.string().nullable(),
    externalId: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Subscription");
const changed = z
  .object({ subscription: subscriptionSchema, snapshotVersion: z.number() })
  .openapi("SubscriptionChanged");
const conflict = {
  409: { ...errorResponses[400], description: "Refused transition (`reason`: invalid_transition, same_plan, ...)" },
};
const notFound = { 404: { ...errorResponses[400], description: "No such subscription" } };
const approver = requireRole("approver");

const createSubscription = createRoute({
  method: "post",
  path: "/",
  tags,
  security: adminSecurity,
  middleware: [approver],
  summary: "Create a subscription for an existing customer",
  request: { body: jsonBody(subscriptionInput.extend({ customerId: entityId, reason }).openapi("SubscriptionCreate")) },
  responses: { 201: jsonResponse(changed, "Created"), 409: conflict[409], ...errorResponses },
});

const listSubscriptions = createRoute({
  method: "get",
  path: "/",
  tags,
  security: adminSecurity,
  summary: "List subscriptions (filters; cursor pagination)",
  request: {
    query: z.object({
      customerId: entityId.optional(),
      status: z.enum(STATUSES).optional(),
      planId: entityId.optional(),
      ...pageQuery,
    }),
  },
  responses: { 200: jsonResponse(pageOf(subscriptionSchema), "A page"), ...errorResponses },
});

const getSubscription = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  security: adminSecurity,
  summary: "One subscription",
  request: { params: idParam },
  responses: { 200: jsonResponse(subscriptionSchema, "The subscription"), ...notFound, ...errorResponses },
});

/** A lifecycle action: POST /{id}/<path> with a small body, answered with the changed subscription. */
function actionRoute<B extends z.ZodObject>(path: string, summary: string, body: B) {
  return createRoute({
    method: "post",
    path: `/{id}/${path}`,
    tags,
    security: adminSecurity,
    middleware: [approver],
    summary,
    request: { params: idParam, body: jsonBody(body) },
    responses: { 200: jsonResponse(changed, "Changed"), ...notFound, ...conflict, ...errorResponses },
  });
}

const reasonOnly = z.object({ reason }).strict();
const changePlan = actionRoute(
  "change-plan",
  "Upgrade or downgrade: now, or at the end of the current period",
  z.object({ planId: entityId, when, reason }).strict(),
);
const undoChange = actionRoute("undo-scheduled-change", "Drop a plan change scheduled for the period end", reasonOnly);
const cancel = actionRoute(
  "cancel",
  "Cancel now, or at the end of the current period (cancelAt)",
  z.object({ when, reason }).strict(),
);
const resume = actionRoute("resume", "Undo a scheduled cancellation", reasonOnly);
const convertTrial = actionRoute(
  "convert-trial",
  "Convert a trial to active (a new period starts now)",
  z.object({ currentPeriodEnd: instant.nullable().default(null), reason }).strict(),
);
const pastDue = actionRoute(
  "past-due",
  "A payment failed: past_due, with access until now + PAST_DUE_GRACE_DAYS",
  reasonOnly,
);
const recover = actionRoute("recover", "The overdue payment arrived: back to active", reasonOnly);

export const subscriptionRoutes = newRouter();
subscriptionRoutes.use("*", requireRole("viewer"));
subscriptionRoutes
  .openapi(createSubscription, async (c) => {
    const { customerId, reason: why, ...input } = c.req.valid("json");
    const db = c.env.DB;
    if (!(await db.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(customerId).first())) {
      throw new Problem("validation", `Unknown customer '${customerId}'.`, {
        errors: [{ path: "json.customerId", message: "unknown customer" }],
      });
    }
    if (input.id && (await readSubscription(db, input.id)))
      throw new Problem("conflict", `Subscription '${input.id}' exists.`, { reason: "exists" });
    await assertPlansExist(db, [input.planId]);
    const now = c.var.services.clock.now();
    const { id, stmt } = insertSubscription(db, customerId, input, now);
    const row = createdRecord(id, customerId, input, now);
    const versions = await commitAdminWrite(c, [stmt], [subscriptionChangeAudit("create", null, row, why)], {
      customers: [customerId],
    });
    return c.json({ subscription: subscriptionWire(row), snapshotVersion: versions[customerId] ?? 0 }, 201);
  })
  .openapi(listSubscriptions, async (c) => {
    const q = c.req.valid("query");
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      args.push(value);
      where.push(sql.replace("?", `?${args.length}`));
    };
    if (q.customerId) add("customer_id = ?", q.customerId);
    if (q.status) add("status = ?", q.status);
    if (q.planId) add("plan_id = ?", q.planId);
    const after = decodeCursor(q.cursor, z.string());
    if (after !== null) add("id > ?", after);
    args.push(q.limit + 1);
    const sql = `SELECT * FROM subscriptions ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id LIMIT ?${args.length}`;
    const rows = (
      await c.env.DB.prepare(sql)
        .bind(...args)
        .all<SubscriptionDbRow>()
    ).results;
    return c.json(
      page(
        rows,
        q.limit,
        (r) => r.id,
        (r) => subscriptionWire(toSubscriptionRecord(r)),
      ),
      200,
    );
  })
  .openapi(getSubscription, async (c) => c.json(subscriptionWire(await mustRead(c, c.req.valid("param").id)), 200))
  .openapi(changePlan, async (c) => {
    const { planId, when: at, reason: why } = c.req.valid("json");
    return applyAction(c, c.req.valid("param").id, { type: "change_plan", planId, when: at }, why);
  })
  .openapi(undoChange, async (c) =>
    applyAction(c, c.req.valid("param").id, { type: "undo_scheduled_change" }, c.req.valid("json").reason),
  )
  .openapi(cancel, async (c) => {
    const { when: at, reason: why } = c.req.valid("json");
    return applyAction(c, c.req.valid("param").id, { type: "cancel", when: at }, why);
  })
  .openapi(resume, async (c) => applyAction(c, c.req.valid("param").id, { type: "resume" }, c.req.valid("json").reason))
  .openapi(convertTrial, async (c) => {
    const { currentPeriodEnd, reason: why } = c.req.valid("json");
    return applyAction(c, c.req.valid("param").id, { type: "convert_trial", currentPeriodEnd }, why);
  })
  .openapi(pastDue, async (c) =>
    applyAction(c, c.req.valid("param").id, { type: "mark_past_due" }, c.req.valid("json").reason),
  )
  .openapi(recover, async (c) =>
    applyAction(c, c.req.valid("param").id, { type: "recover" }, c.req.valid("json").reason),
  );

/** The row insertSubscription writes (its defaults), for the audit record and the answer. */
function createdRecord(
  id: string,
  customerId: string,
  s: z.output<typeof subscriptionInput>,
  now: number,
): SubscriptionRecord {
  const startedAt = s.startedAt ?? now;
  return {
    id,
    customerId,
    planId: s.planId,
    status: s.status,
    startedAt,
    trialEnd: s.trialEnd ?? null,
    currentPeriodStart: s.currentPeriodStart ?? startedAt,
    currentPeriodEnd: s.currentPeriodEnd ?? null,
    billingAnchor: s.billingAnchor ?? startedAt,
    cancelAt: s.cancelAt ?? null,
    graceUntil: s.graceUntil ?? null,
    endedAt: null,
    scheduledPlanId: null,
    scheduledChangeAt: null,
    externalId: null,
    externalUpdatedAt: null,
    createdAt: now,
    updatedAt: now,
  };
}

async function mustRead(c: Context<AppEnv>, id: string): Promise<SubscriptionRecord> {
  const sub = await readSubscription(c.env.DB, id);
  if (!sub) throw new Problem("not-found", `No subscription '${id}'.`);
  return sub;
}

/** Loads, transitions (refusal: 409 with `reason`), commits the change and its audit, answers. */
async function applyAction(c: Context<AppEnv>, id: string, action: LifecycleAction, why: string | undefined) {
  const db = c.env.DB;
  const now = c.var.services.clock.now();
  const before = await mustRead(c, id);
  if (action.type === "change_plan") await assertSameKind(db, before.planId, action.planId);
  const result = transition(before, action, now, configOf(c.env).lifecycle);
  if (!result.ok) throw new Problem("conflict", result.detail, { reason: result.reason });
  const after = { ...result.row, updatedAt: now };
  // Events that were already due are recorded first, so the log reads in the order things happened.
  const audits = [...dueAudits(result.due), subscriptionChangeAudit(action.type, before, after, why)];
  let versions: Record<string, number>;
  try {
    versions = await commitAdminWrite(c, updateSubscriptionStatements(db, before, after, now), audits, {
      customers: [before.customerId],
    });
  } catch (err) {
    if (isWriteConflict(err))
      throw new Problem(
        "conflict",
        "The subscription changed while this request was applied; read it again and retry.",
        { reason: "write_conflict" },
      );
    throw err;
  }
  return c.json({ subscription: subscriptionWire(after), snapshotVersion: versions[before.customerId] ?? 0 }, 200);
}

/** A base plan changes to a base plan, an add-on to an add-on: anything else would change what the subscription is. */
async function assertSameKind(db: D1Database, fromPlan: string, toPlan: string): Promise<void> {
  const rows = (
    await db
      .prepare("SELECT id, kind FROM plans WHERE id IN (?1, ?2)")
      .bind(fromPlan, toPlan)
      .all<{ id: string; kind: string }>()
  ).results;
  const kind = (id: string) => rows.find((r) => r.id === id)?.kind;
  if (!kind(toPlan))
    throw new Problem("validation", `Unknown plan '${toPlan}'.`, {
      errors: [{ path: "json.planId", message: `unknown plan '${toPlan}'` }],
    });
  if (kind(toPlan) !== kind(fromPlan)) {
    throw new Problem(
      "validation",
      `Plan '${toPlan}' is an ${kind(toPlan) === "addon" ? "add-on" : "base plan"}; '${fromPlan}' is not.`,
      { errors: [{ path: "json.planId", message: "must be the same kind (base or add-on) as the current plan" }] },
    );
  }
}
