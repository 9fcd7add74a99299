// /admin/v1/grants: customer overrides, with four eyes on anything that gives more than the plans.
//
// - support proposes: the grant is pending (no effect on checks) until an approver approves it.
// - approver/admin: a grant that is not elevated applies at once; an elevated one is pending too,
//   even for an admin: four eyes means a second person, whatever the first one's role.
// - Approval: by an approver+ other than the proposer (403 otherwise); an elevated grant only by an
//   operator (a person with a JWT), not by an API key or the bootstrap key. Elevation and the window
//   are checked again at approval: the customer's plans may have changed since the proposal.
// - Pending grants are rejected, active ones revoked. Expiry needs no one: the snapshot holds the window.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { requireRole, roleOf } from "../../auth/admin";
import { configOf } from "../../config";
import { entitlementSpec, entityId, featureKey } from "../../domain/catalog";
import { isoOrNull } from "../../domain/time";
import type { EntitlementSpec } from "../../domain/types";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  adminSecurity,
  conflictResponse,
  errorResponses,
  instant,
  jsonBody,
  jsonResponse,
  notFoundResponse,
  opaqueIdParam,
} from "../../http/schemas";
import type { GrantDbRow } from "../../store/customer-rows";
import { SqlFilter } from "../../store/sql-filter";
import { type AuditEntry, commitAdminWrite } from "../../write/commit";
import { assessElevation, type GrantTerms, identityOf, termsErrors } from "../../write/grant-policy";
import { catalogFacts, specErrors, throwIfAny } from "../../write/spec-validation";

const tags = ["admin: grants"];
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
type GrantView = z.output<typeof grantSchema>;

const toView = (r: GrantDbRow): GrantView => ({
  id: r.id,
  customerId: r.customer_id,
  feature: r.feature_key,
  mode: r.mode,
  spec: JSON.parse(r.spec) as EntitlementSpec,
  reason: r.reason,
  startsAt: isoOrNull(r.starts_at),
  expiresAt: isoOrNull(r.expires_at),
  status: r.status,
  elevated: r.elevated === 1,
  proposedBy: r.proposed_by,
  decidedBy: r.decided_by,
  decidedAt: isoOrNull(r.decided_at),
  createdAt: isoOrNull(r.created_at)!,
  updatedAt: isoOrNull(r.updated_at)!,
});

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
  snapshotVersion: z.number().optional(),
});
const common = { tags, security: adminSecurity };
const optionalBody = { required: false, content: { "application/json": { schema: decisionInput } } };

const listGrants = createRoute({
  ...common,
  method: "get",
  path: "/",
  middleware: [requireRole("viewer")],
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
const getGrant = createRoute({
  ...common,
  method: "get",
  path: "/{id}",
  middleware: [requireRole("viewer")],
  summary: "One grant",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(grantSchema, "The grant"), 404: notFoundResponse, ...errorResponses },
});
const proposeGrant = createRoute({
  ...common,
  method: "post",
  path: "/",
  middleware: [requireRole("support")],
  summary: "Propose (support, or elevated) or apply (approver+, not elevated) a grant",
  request: { body: jsonBody(grantInput) },
  responses: { 201: jsonResponse(written, "Stored: status pending or active"), ...errorResponses },
});
const decide = (action: "approve" | "reject" | "revoke", summary: string) =>
  createRoute({
    ...common,
    method: "post",
    path: `/{id}/${action}`,
    middleware: [requireRole("approver")],
    summary,
    request: { params: opaqueIdParam, body: optionalBody },
    responses: {
      200: jsonResponse(written, "Decided"),
      404: notFoundResponse,
      409: conflictResponse,
      ...errorResponses,
    },
  });

async function readGrant(db: D1Database, id: string): Promise<GrantDbRow> {
  const row = await db.prepare("SELECT * FROM grants WHERE id = ?1").bind(id).first<GrantDbRow>();
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

/**
 * Moves a grant from one of `from` to `to`, audited, recompiling the customer when checks can see the change.
 * The CASE turns a status that changed meanwhile (a racing decision) into a CHECK violation, which
 * aborts the whole batch, audit entry included: the log never records a decision that did not happen.
 */
async function transition(
  c: Context<AppEnv>,
  before: GrantDbRow,
  from: GrantDbRow["status"][],
  to: GrantDbRow["status"],
  action: string,
  extra: Partial<GrantDbRow> = {},
) {
  const now = c.var.services.clock.now();
  const after: GrantDbRow = {
    ...before,
    ...extra,
    status: to,
    decided_by: identityOf(c.var.principal),
    decided_at: now,
    updated_at: now,
  };
  const stmt = c.env.DB.prepare(
    `UPDATE grants SET status = CASE WHEN status IN (SELECT value FROM json_each(?2)) THEN ?3 ELSE 'changed-meanwhile' END,
       elevated = ?4, decided_by = ?5, decided_at = ?6, updated_at = ?6 WHERE id = ?1`,
  ).bind(before.id, JSON.stringify(from), to, after.elevated, after.decided_by, now);
  const body = (await c.req.json().catch(() => ({}))) as { reason?: unknown };
  const parsed = decisionInput.safeParse(body ?? {});
  const reason = parsed.success ? (parsed.data.reason ?? null) : null;
  const audit: AuditEntry = {
    action,
    entityType: "grant",
    entityId: before.id,
    customerId: before.customer_id,
    before: toView(before),
    after: toView(after),
    reason,
  };
  const visible = before.status === "active" || to === "active";
  let versions: Record<string, number>;
  try {
    versions = await commitAdminWrite(c, [stmt], [audit], { customers: visible ? [before.customer_id] : [] });
  } catch (err) {
    if (/CHECK constraint/i.test(String(err)))
      throw new Problem("conflict", `Grant '${before.id}' was decided by someone else meanwhile.`);
    throw err;
  }
  const v = versions[before.customer_id];
  return c.json({ grant: toView(after), ...(v !== undefined ? { snapshotVersion: v } : {}) }, 200);
}

export const grantRoutes = newRouter();
grantRoutes
  .openapi(listGrants, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.tuple([z.number(), z.string()]));
    const f = new SqlFilter()
      .when(q.customerId, "customer_id = ?")
      .when(q.status, "status = ?")
      .when(q.feature, "feature_key = ?")
      .when(after, "(created_at, id) < (?, ?)", after?.[0], after?.[1]);
    const rows = await c.env.DB.prepare(`SELECT * FROM grants ${f.sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .bind(...f.params, q.limit + 1)
      .all<GrantDbRow>();
    return c.json(
      page(rows.results, q.limit, (r) => [r.created_at, r.id], toView),
      200,
    );
  })
  .openapi(getGrant, async (c) => c.json(toView(await readGrant(c.env.DB, c.req.valid("param").id)), 200))
  .openapi(proposeGrant, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    const now = c.var.services.clock.now();
    throwIfAny(specErrors(await catalogFacts(db), body.feature, body.spec as EntitlementSpec, "json.spec"));
    const terms: GrantTerms = {
      customerId: body.customerId,
      featureKey: body.feature,
      mode: body.mode,
      spec: body.spec as EntitlementSpec,
      reason: body.reason.trim(),
      startsAt: body.startsAt ?? null,
      expiresAt: body.expiresAt ?? null,
    };
    const elevation = await assessElevation(db, terms, now);
    if (!elevation)
      throw new Problem("validation", `Unknown customer '${body.customerId}'.`, {
        errors: [{ path: "json.customerId", message: "unknown customer" }],
      });
    throwIfAny(termsErrors(terms, elevation.elevated, now, configOf(c.env).grants.maxLifetimeMs));
    const me = identityOf(c.var.principal);
    const applies = !elevation.elevated && roleOf(c.var.principal) !== "support";
    const row: GrantDbRow = {
      id: `grant_${crypto.randomUUID()}`,
      customer_id: terms.customerId,
      feature_key: terms.featureKey,
      mode: terms.mode,
      spec: JSON.stringify(terms.spec),
      reason: terms.reason,
      starts_at: terms.startsAt,
      expires_at: terms.expiresAt,
      status: applies ? "active" : "pending",
      elevated: elevation.elevated ? 1 : 0,
      proposed_by: me,
      decided_by: applies ? me : null, // applied directly: not elevated, proposed by an approver+
      decided_at: applies ? now : null,
      created_at: now,
      updated_at: now,
    };
    const stmt = db
      .prepare(
        `INSERT INTO grants (id, customer_id, feature_key, mode, spec, reason, starts_at, expires_at, status, elevated, proposed_by, decided_by, decided_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)`,
      )
      .bind(
        row.id,
        row.customer_id,
        row.feature_key,
        row.mode,
        row.spec,
        row.reason,
        row.starts_at,
        row.expires_at,
        row.status,
        row.elevated,
        row.proposed_by,
        row.decided_by,
        row.decided_at,
        now,
      );
    const audit: AuditEntry = {
      action: applies ? "grant.create" : "grant.propose",
      entityType: "grant",
      entityId: row.id,
      customerId: row.customer_id,
      after: { ...toView(row), gains: elevation.gains },
      reason: row.reason || null,
    };
    const versions = await commitAdminWrite(c, [stmt], [audit], { customers: applies ? [row.customer_id] : [] });
    const v = versions[row.customer_id];
    return c.json(
      {
        grant: toView(row),
        elevation: { elevated: elevation.elevated, gains: elevation.gains },
        ...(v !== undefined ? { snapshotVersion: v } : {}),
      },
      201,
    );
  })
  .openapi(decide("approve", "Approve a pending grant (a different person than the proposer)"), async (c) => {
    const before = await readGrant(c.env.DB, c.req.valid("param").id);
    if (before.status !== "pending")
      throw new Problem("conflict", `Grant '${before.id}' is ${before.status}, not pending.`);
    const principal = c.var.principal;
    if (identityOf(principal) === before.proposed_by)
      throw new Problem("forbidden", "Four eyes: a grant is approved by someone other than its proposer.");
    const now = c.var.services.clock.now();
    const terms = termsOf(before);
    const elevation = await assessElevation(c.env.DB, terms, now);
    if (!elevation) throw new Problem("not-found", `No customer '${terms.customerId}'.`);
    if (elevation.elevated && principal.kind !== "operator")
      throw new Problem(
        "forbidden",
        "An elevated grant is approved by a person: use an operator token, not an API key.",
      );
    const errors = termsErrors(terms, elevation.elevated, now, configOf(c.env).grants.maxLifetimeMs);
    if (errors.length > 0)
      throw new Problem("conflict", "The grant can no longer be approved as proposed; propose it again.", {
        errors,
      });
    return transition(c, before, ["pending"], "active", "grant.approve", { elevated: elevation.elevated ? 1 : 0 });
  })
  .openapi(decide("reject", "Reject a pending grant"), async (c) => {
    const before = await readGrant(c.env.DB, c.req.valid("param").id);
    if (before.status !== "pending")
      throw new Problem("conflict", `Grant '${before.id}' is ${before.status}, not pending.`);
    return transition(c, before, ["pending"], "rejected", "grant.reject");
  })
  .openapi(decide("revoke", "Revoke an active grant (checks stop seeing it)"), async (c) => {
    const before = await readGrant(c.env.DB, c.req.valid("param").id);
    if (before.status !== "active")
      throw new Problem(
        "conflict",
        `Grant '${before.id}' is ${before.status}; only an active grant is revoked (reject a pending one).`,
      );
    return transition(c, before, ["active"], "revoked", "grant.revoke");
  });
