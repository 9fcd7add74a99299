// /admin/v1/subscriptions: create, read, list, and lifecycle actions (plan changes, cancel, resume,
// trials, past due). The rules live in domain/lifecycle.ts; a manual upgrade needs the admin role
// (write/upgrade-policy.ts); this file loads, calls, writes, maps.
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { configOf } from "../../config";
import { entityId } from "../../domain/catalog";
import { type LifecycleAction, transition } from "../../domain/lifecycle";
import type { WriteVersion } from "../../domain/version";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  errorResponses,
  idParam,
  instant,
  jsonBody,
  jsonResponse,
  NO_WRITE_VERSION,
  writeVersionFields,
} from "../../http/schemas";
import { customerExists } from "../../store/customers";
import {
  insertSubscriptionStatement,
  isWriteConflict,
  listSubscriptions,
  newSubscriptionRecord,
  readSubscription,
  type SubscriptionRecord,
  subscriptionWire,
  updateSubscriptionStatements,
} from "../../store/subscriptions";
import { assertOneBasePlan, rethrowBasePlanConflict } from "../../write/base-plan-policy";
import { commitAdminWrite } from "../../write/commit";
import { dueAudits, subscriptionChangeAudit } from "../../write/subscription-audit";
import { assertUpgradeAllowed } from "../../write/upgrade-policy";
import { adminRoute } from "./route";
import { assertDatesPossible, assertPlansExist, assertSameKind, subscriptionInput } from "./subscription-input";

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
const changed = z.object({ subscription: subscriptionSchema, ...writeVersionFields }).openapi("SubscriptionChanged");
const conflict = {
  409: { ...errorResponses[400], description: "Refused transition (`reason`: invalid_transition, same_plan, ...)" },
};
const notFound = { 404: { ...errorResponses[400], description: "No such subscription" } };
const route = adminRoute("admin: subscriptions");

const createSubscription = route("approver", {
  method: "post",
  path: "/",
  summary: "Create a subscription for an existing customer (one that gives more than its plans: admin)",
  request: { body: jsonBody(subscriptionInput.extend({ customerId: entityId, reason }).openapi("SubscriptionCreate")) },
  responses: { 201: jsonResponse(changed, "Created"), 409: conflict[409], ...errorResponses },
});

const listSubscriptionsRoute = route("viewer", {
  method: "get",
  path: "/",
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

const getSubscription = route("viewer", {
  method: "get",
  path: "/{id}",
  summary: "One subscription",
  request: { params: idParam },
  responses: { 200: jsonResponse(subscriptionSchema, "The subscription"), ...notFound, ...errorResponses },
});

/** A lifecycle action: POST /{id}/<path> with a small body, answered with the changed subscription. */
function actionRoute<B extends z.ZodObject>(path: string, summary: string, body: B) {
  return route("approver", {
    method: "post",
    path: `/{id}/${path}`,
    summary,
    request: { params: idParam, body: jsonBody(body) },
    responses: { 200: jsonResponse(changed, "Changed"), ...notFound, ...conflict, ...errorResponses },
  });
}

const reasonOnly = z.object({ reason }).strict();
const changePlan = actionRoute(
  "change-plan",
  "Upgrade (admin) or downgrade (approver): now, or at the end of the current period",
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
subscriptionRoutes
  .openapi(createSubscription, async (c) => {
    const { customerId, reason: why, ...input } = c.req.valid("json");
    const db = c.env.DB;
    if (!(await customerExists(db, customerId))) {
      throw new Problem("validation", `Unknown customer '${customerId}'.`, {
        errors: [{ path: "json.customerId", message: "unknown customer" }],
      });
    }
    if (input.id && (await readSubscription(db, input.id)))
      throw new Problem("conflict", `Subscription '${input.id}' exists.`, { reason: "exists" });
    await assertPlansExist(db, [input.planId]);
    const now = c.var.services.clock.now();
    const row = newSubscriptionRecord(customerId, input, now);
    assertDatesPossible([{ where: "json", dates: row }], now);
    const guard = await assertOneBasePlan(db, customerId, [row], now, true);
    await assertUpgradeAllowed(c, customerId, [row]);
    const versions = await commitAdminWrite(
      c,
      [insertSubscriptionStatement(db, row), ...guard],
      [subscriptionChangeAudit("create", null, row, why)],
      { customers: [customerId] },
    ).catch((err) => rethrowBasePlanConflict(db, customerId, now, err));
    return c.json({ subscription: subscriptionWire(row), ...(versions[customerId] ?? NO_WRITE_VERSION) }, 201);
  })
  .openapi(listSubscriptionsRoute, async (c) => {
    const q = c.req.valid("query");
    const afterId = decodeCursor(q.cursor, z.string());
    const rows = await listSubscriptions(c.env.DB, { ...q, afterId, limit: q.limit + 1 });
    return c.json(
      page(rows, q.limit, (r) => r.id, subscriptionWire),
      200,
    );
  })
  .openapi(getSubscription, async (c) => c.json(subscriptionWire(await mustRead(c, c.req.valid("param").id)), 200))
  .openapi(changePlan, async (c) => {
    const { planId, when: at, reason: why } = c.req.valid("json");
    return commitAction(c, c.req.valid("param").id, { type: "change_plan", planId, when: at }, why);
  })
  .openapi(undoChange, async (c) =>
    commitAction(c, c.req.valid("param").id, { type: "undo_scheduled_change" }, c.req.valid("json").reason),
  )
  .openapi(cancel, async (c) => {
    const { when: at, reason: why } = c.req.valid("json");
    return commitAction(c, c.req.valid("param").id, { type: "cancel", when: at }, why);
  })
  .openapi(resume, async (c) =>
    commitAction(c, c.req.valid("param").id, { type: "resume" }, c.req.valid("json").reason),
  )
  .openapi(convertTrial, async (c) => {
    const { currentPeriodEnd, reason: why } = c.req.valid("json");
    // A new period that is already over cannot be: a 400 on the field (the lifecycle's own refusal, 409
    // invalid_period, stays as the rule's guard).
    if (currentPeriodEnd !== null && currentPeriodEnd <= c.var.services.clock.now())
      throw new Problem("validation", "1 invalid field(s): json.currentPeriodEnd", {
        errors: [{ path: "json.currentPeriodEnd", message: "must be in the future (after now)" }],
      });
    return commitAction(c, c.req.valid("param").id, { type: "convert_trial", currentPeriodEnd }, why);
  })
  .openapi(pastDue, async (c) =>
    commitAction(c, c.req.valid("param").id, { type: "mark_past_due" }, c.req.valid("json").reason),
  )
  .openapi(recover, async (c) =>
    commitAction(c, c.req.valid("param").id, { type: "recover" }, c.req.valid("json").reason),
  );

async function mustRead(c: Context<AppEnv>, id: string): Promise<SubscriptionRecord> {
  const sub = await readSubscription(c.env.DB, id);
  if (!sub) throw new Problem("not-found", `No subscription '${id}'.`);
  return sub;
}

/** Loads, transitions (refusal: 409 with `reason`), commits the change and its audit, answers. */
async function commitAction(c: Context<AppEnv>, id: string, action: LifecycleAction, why: string | undefined) {
  const db = c.env.DB;
  const now = c.var.services.clock.now();
  const before = await mustRead(c, id);
  if (action.type === "change_plan") await assertSameKind(db, before.planId, action.planId);
  const result = transition(before, action, now, configOf(c.env).lifecycle);
  if (!result.ok) throw new Problem("conflict", result.detail, { reason: result.reason });
  const after = { ...result.row, updatedAt: now };
  // Choosing a plan that gives more is an admin's (now or at the period end); the rest of the lifecycle is not.
  if (action.type === "change_plan") await assertUpgradeAllowed(c, before.customerId, [after]);
  // Events that were already due are recorded first, so the log reads in the order things happened.
  const audits = [...dueAudits(result.due), subscriptionChangeAudit(action.type, before, after, why)];
  let versions: Record<string, WriteVersion>;
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
  return c.json({ subscription: subscriptionWire(after), ...(versions[before.customerId] ?? NO_WRITE_VERSION) }, 200);
}
