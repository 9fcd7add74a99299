// /admin/v1/grants: customer overrides, with four eyes on anything that gives more than the plans.
// Who may apply, approve, reject or revoke a grant is src/write/four-eyes.ts; the window and
// elevation rules are src/write/grant-policy.ts. Elevation and the window are checked again at
// approval: the customer's plans may have changed since the proposal. Expiry needs no one: the
// snapshot holds the window.
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { configOf } from "../../config";
import { entitlementSpec, entityId, featureKey } from "../../domain/catalog";
import type { EntitlementSpec } from "../../domain/types";
import type { WriteVersion } from "../../domain/version";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  conflictResponse,
  errorResponses,
  instant,
  jsonBody,
  jsonResponse,
  notFoundResponse,
  opaqueIdParam,
  writeVersionFields,
} from "../../http/schemas";
import { readCatalogFacts } from "../../store/catalog";
import type { GrantDbRow } from "../../store/customer-rows";
import {
  decideGrantStatement,
  grantWire,
  insertGrantStatement,
  isDecidedMeanwhile,
  listGrants,
  readGrant,
} from "../../store/grants";
import { personBehind, personOf } from "../../write/accountable";
import { type AuditEntry, commitAdminWrite } from "../../write/commit";
import {
  assertApprovable,
  assertDecidable,
  assertMayApprove,
  assertMayPropose,
  decidedGrant,
  GRANT_DECISIONS,
  type GrantDecision,
  proposedGrant,
} from "../../write/four-eyes";
import { assessElevation, type GrantTerms, termsErrors } from "../../write/grant-policy";
import { specErrors, throwIfAny } from "../../write/spec-validation";
import { adminRoute } from "./route";

const statuses = ["pending", "active", "rejected", "revoked"] as const;

const grantSchema = z
  .object({
    id: z.string(),
    customerId: z.string(),
    feature: z.string(),
    mode: z.enum(["add", "replace"]),
    spec: z.any(),
    reason: z.string(),
    startsAt: z.string().nullable(),
    expiresAt: z.string().nullable(),
    status: z.enum(statuses),
    elevated: z.boolean(),
    proposedBy: z.string(),
    decidedBy: z.string().nullable(),
    decidedAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Grant");

const grantInput = z
  .object({
    customerId: entityId,
    feature: featureKey,
    mode: z.enum(["add", "replace"]).default("add").describe("add: on top of the plans; replace: instead of them"),
    spec: entitlementSpec,
    reason: z.string().max(1000).default("").describe("Required when the grant is elevated"),
    startsAt: instant.nullable().optional(),
    expiresAt: instant
      .nullable()
      .optional()
      .describe("Required when the grant is elevated, at most GRANT_MAX_LIFETIME_DAYS ahead"),
  })
  .strict()
  .openapi("GrantInput");
const decisionInput = z
  .object({ reason: z.string().max(1000).optional() })
  .strict()
  .openapi("GrantDecision");
const written = z.object({
  grant: grantSchema,
  elevation: z.object({ elevated: z.boolean(), gains: z.array(z.string()) }).optional(),
  snapshotVersion: writeVersionFields.snapshotVersion.optional(),
  version: writeVersionFields.version.optional(),
});
const optionalBody = { required: false, content: { "application/json": { schema: decisionInput } } };
const route = adminRoute("admin: grants");

const listGrantsRoute = route("viewer", {
  method: "get",
  path: "/",
  summary: "Grants, newest first",
  request: {
    query: z.object({
      customerId: entityId.optional(),
      status: z.enum(statuses).optional(),
      feature: featureKey.optional(),
      ...pageQuery,
    }),
  },
  responses: { 200: jsonResponse(pageOf(grantSchema), "A page of grants"), ...errorResponses },
});
const getGrant = route("viewer", {
  method: "get",
  path: "/{id}",
  summary: "One grant",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(grantSchema, "The grant"), 404: notFoundResponse, ...errorResponses },
});
const proposeGrant = route("support", {
  method: "post",
  path: "/",
  summary: "Propose (support, or elevated) or apply (approver+, not elevated) a grant",
  request: { body: jsonBody(grantInput) },
  responses: { 201: jsonResponse(written, "Stored: status pending or active"), ...errorResponses },
});
const decisionRoute = (decision: GrantDecision, summary: string) =>
  route("approver", {
    method: "post",
    path: `/{id}/${decision}`,
    summary,
    request: { params: opaqueIdParam, body: optionalBody },
    responses: {
      200: jsonResponse(written, "Decided"),
      404: notFoundResponse,
      409: conflictResponse,
      ...errorResponses,
    },
  });

async function mustReadGrant(db: D1Database, id: string): Promise<GrantDbRow> {
  const row = await readGrant(db, id);
  if (!row) throw new Problem("not-found", `No grant '${id}'.`);
  return row;
}

const termsOf = (r: GrantDbRow): GrantTerms => ({
  customerId: r.customer_id,
  featureKey: r.feature_key,
  mode: r.mode,
  spec: JSON.parse(r.spec) as EntitlementSpec,
  reason: r.reason,
  startsAt: r.starts_at,
  expiresAt: r.expires_at,
});

/** Writes a decision with its audit record, recompiling the customer when checks can see the change. */
async function recordDecision(c: Context<AppEnv>, before: GrantDbRow, decision: GrantDecision, elevated?: boolean) {
  const decider = await personOf(c.env.DB, c.var.principal);
  const after = decidedGrant(before, decision, decider, c.var.services.clock.now(), elevated);
  const body = (await c.req.json().catch(() => ({}))) as { reason?: unknown };
  const parsed = decisionInput.safeParse(body ?? {});
  const audit: AuditEntry = {
    action: GRANT_DECISIONS[decision].action,
    entityType: "grant",
    entityId: before.id,
    customerId: before.customer_id,
    before: grantWire(before),
    after: grantWire(after),
    reason: parsed.success ? (parsed.data.reason ?? null) : null,
  };
  const visible = before.status === "active" || after.status === "active";
  const stmt = decideGrantStatement(c.env.DB, [GRANT_DECISIONS[decision].from], after);
  let versions: Record<string, WriteVersion>;
  try {
    versions = await commitAdminWrite(c, [stmt], [audit], { customers: visible ? [before.customer_id] : [] });
  } catch (err) {
    if (isDecidedMeanwhile(err))
      throw new Problem("conflict", `Grant '${before.id}' was decided by someone else meanwhile.`);
    throw err;
  }
  const v = versions[before.customer_id];
  return c.json({ grant: grantWire(after), ...v }, 200);
}

export const grantRoutes = newRouter();
grantRoutes
  .openapi(listGrantsRoute, async (c) => {
    const q = c.req.valid("query");
    const before = decodeCursor(q.cursor, z.tuple([z.number(), z.string()]));
    const rows = await listGrants(c.env.DB, { ...q, before, limit: q.limit + 1 });
    return c.json(
      page(rows, q.limit, (r) => [r.created_at, r.id], grantWire),
      200,
    );
  })
  .openapi(getGrant, async (c) => c.json(grantWire(await mustReadGrant(c.env.DB, c.req.valid("param").id)), 200))
  .openapi(proposeGrant, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    const now = c.var.services.clock.now();
    throwIfAny(specErrors(await readCatalogFacts(db), body.feature, body.spec as EntitlementSpec, "json.spec"));
    const terms: GrantTerms = {
      customerId: body.customerId,
      featureKey: body.feature,
      mode: body.mode,
      spec: body.spec as EntitlementSpec,
      reason: body.reason.trim(),
      startsAt: body.startsAt ?? null,
      expiresAt: body.expiresAt ?? null,
    };
    const maxLifetimeMs = configOf(c.env).grants.maxLifetimeMs;
    const elevation = await assessElevation(db, terms, now, maxLifetimeMs);
    if (!elevation)
      throw new Problem("validation", `Unknown customer '${body.customerId}'.`, {
        errors: [{ path: "json.customerId", message: "unknown customer" }],
      });
    const me = await personOf(db, c.var.principal);
    assertMayPropose(me, elevation.elevated);
    throwIfAny(termsErrors(terms, elevation.elevated, now, maxLifetimeMs));
    const row = proposedGrant(`grant_${crypto.randomUUID()}`, terms, elevation.elevated, c.var.principal, me, now);
    const applies = row.status === "active";
    const audit: AuditEntry = {
      action: applies ? "grant.create" : "grant.propose",
      entityType: "grant",
      entityId: row.id,
      customerId: row.customer_id,
      after: { ...grantWire(row), gains: elevation.gains },
      reason: row.reason || null,
    };
    const versions = await commitAdminWrite(c, [insertGrantStatement(db, row)], [audit], {
      customers: applies ? [row.customer_id] : [],
    });
    const v = versions[row.customer_id];
    return c.json(
      {
        grant: grantWire(row),
        elevation: { elevated: elevation.elevated, gains: elevation.gains },
        ...v,
      },
      201,
    );
  })
  .openapi(decisionRoute("approve", "Approve a pending grant (a different person than the proposer)"), async (c) => {
    const before = await mustReadGrant(c.env.DB, c.req.valid("param").id);
    // People, not credentials: a key stands for its creator, also in grants proposed before that rule.
    const proposer = await personBehind(c.env.DB, before.proposed_by);
    assertMayApprove(await personOf(c.env.DB, c.var.principal), proposer, before);
    const now = c.var.services.clock.now();
    const terms = termsOf(before);
    const maxLifetimeMs = configOf(c.env).grants.maxLifetimeMs;
    const elevation = await assessElevation(c.env.DB, terms, now, maxLifetimeMs);
    if (!elevation) throw new Problem("not-found", `No customer '${terms.customerId}'.`);
    const errors = termsErrors(terms, elevation.elevated, now, maxLifetimeMs);
    assertApprovable(c.var.principal, proposer, elevation.elevated, errors);
    return recordDecision(c, before, "approve", elevation.elevated);
  })
  .openapi(decisionRoute("reject", "Reject a pending grant"), async (c) => {
    const before = await mustReadGrant(c.env.DB, c.req.valid("param").id);
    assertDecidable(before, "reject");
    return recordDecision(c, before, "reject");
  })
  .openapi(decisionRoute("revoke", "Revoke an active grant (checks stop seeing it)"), async (c) => {
    const before = await mustReadGrant(c.env.DB, c.req.valid("param").id);
    assertDecidable(before, "revoke");
    return recordDecision(c, before, "revoke");
  });
