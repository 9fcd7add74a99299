// /admin/v1/api-keys: created keys are shown once, stored hashed, revocable.
import { createRoute, z } from "@hono/zod-openapi";
import { commitAdminWrite } from "../../admin/commit";
import { requireRole } from "../../auth/admin";
import { displayPrefix, generateApiKey, hashApiKey } from "../../auth/api-keys";
import { entityId } from "../../domain/catalog";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse, adminSecurity } from "../../http/schemas";

const tags = ["admin: api keys"];

export const apiKeyInput = z
  .object({
    name: z.string().max(200).default(""),
    scopes: z.array(z.enum(["check", "usage", "admin"])).min(1).max(3),
    customerId: entityId.nullable().default(null).describe("Bind the key to one customer: it may only ask about that customer"),
  })
  .strict()
  .openapi("ApiKeyInput");

const createKey = createRoute({
  method: "post",
  path: "/",
  tags,
  security: adminSecurity,
  summary: "Create an API key (the key is in this response only)",
  request: { body: jsonBody(apiKeyInput) },
  responses: {
    201: jsonResponse(z.object({ id: z.string(), key: z.string(), prefix: z.string(), scopes: z.array(z.string()), customerId: z.string().nullable() }), "Created: store the key now"),
    ...errorResponses,
  },
});

export const apiKeyRoutes = newRouter();
apiKeyRoutes.use("/", requireRole("admin"));
apiKeyRoutes
  .openapi(createKey, async (c) => {
    const body = c.req.valid("json");
    const db = c.env.DB;
    if (body.customerId && !(await db.prepare("SELECT 1 FROM customers WHERE id = ?1").bind(body.customerId).first())) {
      throw new Problem(400, "validation", `Unknown customer '${body.customerId}'.`, { errors: [{ path: "json.customerId", message: "unknown customer" }] });
    }
    const key = generateApiKey();
    const hash = await hashApiKey(key);
    const id = `key_${crypto.randomUUID()}`;
    const scopes = [...new Set(body.scopes)];
    const now = c.var.services.clock.now();
    const stmt = db
      .prepare("INSERT INTO api_keys (id, hash, prefix, name, scopes, customer_id, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
      .bind(id, hash, displayPrefix(key), body.name, JSON.stringify(scopes), body.customerId, c.var.principal.id, now);
    const safe = { id, prefix: displayPrefix(key), name: body.name, scopes, customerId: body.customerId };
    await commitAdminWrite(c, [stmt], [{ action: "api_key.create", entityType: "api_key", entityId: id, customerId: body.customerId, after: safe }]);
    await c.var.services.keys.publish(c.env, { id, hash, scopes, customerId: body.customerId, revokedAt: null });
    return c.json({ id, key, prefix: safe.prefix, scopes, customerId: body.customerId }, 201);
  });
