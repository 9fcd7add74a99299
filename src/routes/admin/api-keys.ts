// /admin/v1/api-keys: created keys are shown once, stored hashed, revocable. Create and revoke:
// admin; list and get (never the hash): viewer. A revocation is written to D1 and then published to
// KV (key:<hash> with revokedAt), which the check path reads before D1: it refuses the key at once in
// this isolate, within KEY_CACHE_TTL_MS (30 s) in other isolates, plus KV propagation (~60 s) elsewhere.
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { displayPrefix, generateApiKey, hashApiKey } from "../../auth/api-keys";
import { entityId } from "../../domain/catalog";
import type { Scope } from "../../domain/types";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  adminSecurity,
  errorResponses,
  jsonBody,
  jsonResponse,
  notFoundResponse,
  opaqueIdParam,
} from "../../http/schemas";
import { SqlFilter } from "../../store/sql-filter";
import { commitAdminWrite } from "../../write/commit";

const tags = ["admin: api keys"];

export const apiKeyInput = z
  .object({
    name: z.string().max(200).default(""),
    scopes: z
      .array(z.enum(["check", "usage", "admin"]))
      .min(1)
      .max(3),
    customerId: entityId
      .nullable()
      .default(null)
      .describe("Bind the key to one customer: it may only ask about that customer"),
  })
  .strict()
  .openapi("ApiKeyInput");

const createKey = createRoute({
  method: "post",
  path: "/",
  tags,
  security: adminSecurity,
  middleware: [requireRole("admin")],
  summary: "Create an API key (the key is in this response only)",
  request: { body: jsonBody(apiKeyInput) },
  responses: {
    201: jsonResponse(
      z.object({
        id: z.string(),
        key: z.string(),
        prefix: z.string(),
        scopes: z.array(z.string()),
        customerId: z.string().nullable(),
      }),
      "Created: store the key now",
    ),
    ...errorResponses,
  },
});

interface ApiKeyDbRow {
  id: string;
  hash: string;
  prefix: string;
  name: string;
  scopes: string;
  customer_id: string | null;
  created_by: string;
  created_at: number;
  revoked_at: number | null;
}

const apiKeySchema = z
  .object({
    id: z.string(),
    prefix: z.string(),
    name: z.string(),
    scopes: z.array(z.string()),
    customerId: z.string().nullable(),
    createdBy: z.string(),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi("ApiKey");
type ApiKeyView = z.output<typeof apiKeySchema>;
/** Everything about a key except its hash (which would let anyone with read access probe for it). */
const toView = (r: ApiKeyDbRow): ApiKeyView => ({
  id: r.id,
  prefix: r.prefix,
  name: r.name,
  scopes: JSON.parse(r.scopes) as Scope[],
  customerId: r.customer_id,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at).toISOString(),
  revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at).toISOString(),
});

const listKeys = createRoute({
  method: "get",
  path: "/",
  tags,
  security: adminSecurity,
  middleware: [requireRole("viewer")],
  summary: "API keys (never their hashes), newest first",
  request: {
    query: z.object({ customerId: entityId.optional(), revoked: z.enum(["true", "false"]).optional(), ...pageQuery }),
  },
  responses: { 200: jsonResponse(pageOf(apiKeySchema), "A page of keys"), ...errorResponses },
});
const getKey = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  security: adminSecurity,
  middleware: [requireRole("viewer")],
  summary: "One API key (never its hash)",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(apiKeySchema, "The key"), 404: notFoundResponse, ...errorResponses },
});
const revokeKey = createRoute({
  method: "post",
  path: "/{id}/revoke",
  tags,
  security: adminSecurity,
  middleware: [requireRole("admin")],
  summary: "Revoke an API key (idempotent: revoking again republishes the revocation)",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(apiKeySchema, "Revoked"), 404: notFoundResponse, ...errorResponses },
});

async function readKey(db: D1Database, id: string): Promise<ApiKeyDbRow> {
  const row = await db.prepare("SELECT * FROM api_keys WHERE id = ?1").bind(id).first<ApiKeyDbRow>();
  if (!row) throw new Problem("not-found", `No API key '${id}'.`);
  return row;
}

export const apiKeyRoutes = newRouter();
apiKeyRoutes
  .openapi(createKey, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    if (body.customerId && !(await db.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(body.customerId).first())) {
      throw new Problem("validation", `Unknown customer '${body.customerId}'.`, {
        errors: [{ path: "json.customerId", message: "unknown customer" }],
      });
    }
    const key = generateApiKey();
    const hash = await hashApiKey(key);
    const id = `key_${crypto.randomUUID()}`;
    const scopes = [...new Set(body.scopes)];
    const now = c.var.services.clock.now();
    const stmt = db
      .prepare(
        "INSERT INTO api_keys (id, hash, prefix, name, scopes, customer_id, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      )
      .bind(id, hash, displayPrefix(key), body.name, JSON.stringify(scopes), body.customerId, c.var.principal.id, now);
    const safe = { id, prefix: displayPrefix(key), name: body.name, scopes, customerId: body.customerId };
    await commitAdminWrite(
      c,
      [stmt],
      [{ action: "api_key.create", entityType: "api_key", entityId: id, customerId: body.customerId, after: safe }],
    );
    await c.var.services.keys.publish(c.env, { id, hash, scopes, customerId: body.customerId, revokedAt: null });
    return c.json({ id, key, prefix: safe.prefix, scopes, customerId: body.customerId }, 201);
  })
  .openapi(listKeys, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, z.tuple([z.number(), z.string()]));
    const f = new SqlFilter()
      .when(q.customerId, "customer_id = ?")
      .when(q.revoked, q.revoked === "true" ? "revoked_at IS NOT NULL" : "revoked_at IS NULL")
      .when(after, "(created_at, id) < (?, ?)", after?.[0], after?.[1]);
    const rows = await c.env.DB.prepare(`SELECT * FROM api_keys ${f.sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .bind(...f.params, q.limit + 1)
      .all<ApiKeyDbRow>();
    return c.json(
      page(rows.results, q.limit, (r) => [r.created_at, r.id], toView),
      200,
    );
  })
  .openapi(getKey, async (c) => c.json(toView(await readKey(c.env.DB, c.req.valid("param").id)), 200))
  .openapi(revokeKey, async (c) => {
    const before = await readKey(c.env.DB, c.req.valid("param").id);
    let after = before;
    if (before.revoked_at === null) {
      const now = c.var.services.clock.now();
      after = { ...before, revoked_at: now };
      // "AND revoked_at IS NULL": a racing second revoke keeps the first instant.
      const stmt = c.env.DB.prepare("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL").bind(
        before.id,
        now,
      );
      await commitAdminWrite(
        c,
        [stmt],
        [
          {
            action: "api_key.revoke",
            entityType: "api_key",
            entityId: before.id,
            customerId: before.customer_id,
            before: toView(before),
            after: toView(after),
            reason: auditReason(c),
          },
        ],
      );
    }
    // Always (re)published: if a previous revoke committed to D1 but failed to reach KV, repeating it repairs KV.
    await c.var.services.keys.publish(c.env, {
      id: after.id,
      hash: after.hash,
      scopes: JSON.parse(after.scopes) as Scope[],
      customerId: after.customer_id,
      revokedAt: after.revoked_at,
    });
    return c.json(toView(after), 200);
  });
