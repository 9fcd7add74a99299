// /admin/v1/api-keys: created keys are shown once, stored hashed, revocable. Create and revoke:
// admin; list and get (never the hash): viewer. A revocation is written to D1 and then published to
// KV (key:<hash> with revokedAt), which the check path reads before D1: it refuses the key at once in
// this isolate, within KEY_CACHE_TTL_MS (30 s) in other isolates, plus KV propagation (~60 s) elsewhere.
import { z } from "@hono/zod-openapi";
import { checksumSecretsOf, displayPrefix, generateCheckedApiKey, hashApiKey } from "../../auth/api-keys";
import { entityId } from "../../domain/catalog";
import { iso, isoOrNull } from "../../domain/time";
import { SCOPES, type Scope } from "../../domain/types";
import { auditReason } from "../../http/audit-reason";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse, notFoundResponse, opaqueIdParam } from "../../http/schemas";
import {
  type ApiKeyDbRow,
  insertApiKeyStatement,
  listApiKeys,
  readApiKey,
  revokeApiKeyStatement,
  toApiKeyRecord,
} from "../../store/api-keys";
import { customerExists } from "../../store/customers";
import { creatorIdentity, personOf } from "../../write/accountable";
import { commitAdminWrite } from "../../write/commit";
import { adminRoute } from "./route";

export const apiKeyInput = z
  .object({
    name: z.string().max(200).default(""),
    scopes: z
      .array(z.enum(SCOPES))
      .min(1)
      .max(SCOPES.length)
      .describe("check, usage, sign (mint tokens and decision assertions: servers only), admin (every scope)"),
    customerId: entityId
      .nullable()
      .default(null)
      .describe("Bind the key to one customer: it may only ask about that customer (not with scope admin)"),
  })
  .strict()
  .openapi("ApiKeyInput");

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
  createdBy: creatorIdentity(r.created_by),
  createdAt: iso(r.created_at),
  revokedAt: isoOrNull(r.revoked_at),
});
const route = adminRoute("admin: api keys");

const createKey = route("admin", {
  method: "post",
  path: "/",
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
const listKeys = route("viewer", {
  method: "get",
  path: "/",
  summary: "API keys (never their hashes), newest first",
  request: {
    query: z.object({ customerId: entityId.optional(), revoked: z.enum(["true", "false"]).optional(), ...pageQuery }),
  },
  responses: { 200: jsonResponse(pageOf(apiKeySchema), "A page of keys"), ...errorResponses },
});
const getKey = route("viewer", {
  method: "get",
  path: "/{id}",
  summary: "One API key (never its hash)",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(apiKeySchema, "The key"), 404: notFoundResponse, ...errorResponses },
});
const revokeKey = route("admin", {
  method: "post",
  path: "/{id}/revoke",
  summary: "Revoke an API key (idempotent: revoking again republishes the revocation)",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(apiKeySchema, "Revoked"), 404: notFoundResponse, ...errorResponses },
});

async function mustReadKey(db: D1Database, id: string): Promise<ApiKeyDbRow> {
  const row = await readApiKey(db, id);
  if (!row) throw new Problem("not-found", `No API key '${id}'.`);
  return row;
}

export const apiKeyRoutes = newRouter();
apiKeyRoutes
  .openapi(createKey, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    // The admin API is not per customer: a bound admin key would act on every customer (review H1).
    if (body.customerId !== null && body.scopes.includes("admin")) {
      throw new Problem("validation", "A key with the 'admin' scope cannot be bound to a customer.", {
        errors: [{ path: "json.customerId", message: "must be null for a key with the 'admin' scope" }],
      });
    }
    if (body.customerId && !(await customerExists(db, body.customerId))) {
      throw new Problem("validation", `Unknown customer '${body.customerId}'.`, {
        errors: [{ path: "json.customerId", message: "unknown customer" }],
      });
    }
    const key = await generateCheckedApiKey(checksumSecretsOf(c.env)[0] as string);
    const hash = await hashApiKey(key);
    const id = `key_${crypto.randomUUID()}`;
    const scopes = [...new Set(body.scopes)];
    const stmt = insertApiKeyStatement(db, {
      id,
      hash,
      prefix: displayPrefix(key),
      name: body.name,
      scopes: JSON.stringify(scopes),
      customer_id: body.customerId,
      created_by: await personOf(db, c.var.principal),
      created_at: c.var.services.clock.now(),
    });
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
    const before = decodeCursor(q.cursor, z.tuple([z.number(), z.string()]));
    const revoked = q.revoked === undefined ? undefined : q.revoked === "true";
    const rows = await listApiKeys(c.env.DB, { customerId: q.customerId, revoked, before, limit: q.limit + 1 });
    return c.json(
      page(rows, q.limit, (r) => [r.created_at, r.id], toView),
      200,
    );
  })
  .openapi(getKey, async (c) => c.json(toView(await mustReadKey(c.env.DB, c.req.valid("param").id)), 200))
  .openapi(revokeKey, async (c) => {
    const before = await mustReadKey(c.env.DB, c.req.valid("param").id);
    let after = before;
    if (before.revoked_at === null) {
      const now = c.var.services.clock.now();
      after = { ...before, revoked_at: now };
      await commitAdminWrite(
        c,
        [revokeApiKeyStatement(c.env.DB, before.id, now)],
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
    await c.var.services.keys.publish(c.env, toApiKeyRecord(after));
    return c.json(toView(after), 200);
  });
