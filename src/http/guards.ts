// Request guards that apply before any route: body size (413), content type (415), cross-site admin
// writes (403, 415), the nesting and size bounds of admin bodies (400), and the 404/405 distinction
// for unknown routes.
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { boundErrors, MAX_BODY_DEPTH, MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH } from "../domain/json-bounds";
import { Problem, problemResponse } from "./problem";

export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_ADMIN_BODY_BYTES = 2 * 1024 * 1024; // a whole catalog file
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024; // billing events with expanded objects can exceed 64 KB

const WITH_BODY = new Set(["POST", "PUT", "PATCH"]);
const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

export function limitBody(maxSize: number) {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new Problem("payload-too-large", `The request body exceeds ${maxSize} bytes.`, { maxBytes: maxSize });
    },
  });
}

/** JSON APIs take JSON: a body with another media type is a 415, not a confusing 400. */
export const requireJson = createMiddleware<AppEnv>(async (c, next) => {
  if (WITH_BODY.has(c.req.method)) {
    const type = c.req.header("Content-Type");
    const hasBody = c.req.header("Content-Length") !== "0" && c.req.raw.body !== null;
    if (hasBody && !(type && JSON_TYPE.test(type))) {
      throw new Problem("unsupported-media-type", "Send the body as application/json.", {
        headers: { "Accept-Post": "application/json" },
      });
    }
  }
  await next();
});

/**
 * The admin API's guard against cross-site requests (security review M8). Operators can be
 * authenticated by a cookie (Cloudflare Access's CF_Authorization), which a browser attaches to a
 * request another site makes it send. So every state-changing admin request, with or without a body:
 * - is refused (403) when the browser says it comes from another site: `Sec-Fetch-Site` cross-site, or
 *   same-site (a sibling subdomain is another application; nothing legitimate calls the admin API from
 *   one). same-origin (the /docs page), none (typed in) and no header at all (scripts, curl) pass;
 * - needs `Content-Type: application/json` (415). A page elsewhere can send that type only after a CORS
 *   preflight, and /admin answers none, so this holds for browsers that predate Sec-Fetch-Site too;
 *   without it, an empty form post or a no-cors fetch (no body, no preflight) would act for the
 *   operator. An empty body with that type reads as `{}`, so bodyless actions can carry it.
 * Reads (GET, HEAD) are left alone: they change nothing, and without CORS the page cannot read the answer.
 */
export const guardAdminWrites = createMiddleware<AppEnv>(async (c, next) => {
  if (STATE_CHANGING.has(c.req.method)) {
    const site = c.req.header("Sec-Fetch-Site");
    if (site === "cross-site" || site === "same-site")
      throw new Problem("forbidden", `The admin API takes no writes from another site (Sec-Fetch-Site: ${site}).`);
    const type = c.req.header("Content-Type");
    if (!type || !JSON_TYPE.test(type))
      throw new Problem("unsupported-media-type", "Send admin writes as application/json, even without a body.", {
        headers: { "Accept-Post": "application/json" },
      });
    // Hono's c.req.json() reads its text cache: the validators and handlers then see {} instead of a parse error.
    if (c.req.header("Content-Length") === "0" || c.req.raw.body === null)
      (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve("{}");
  }
  await next();
});

/** Unknown route: 405 with Allow when the path exists for other methods, else 404. */
export function notFound(app: Hono<AppEnv>) {
  let table: { re: RegExp; method: string }[] | null = null;
  return (c: Context<AppEnv>): Response => {
    table ??= app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => ({
        method: r.method,
        re: new RegExp(
          `^${r.path
            .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
            .replace(/\/:[^/]+/g, "/[^/]+")
            .replace(/\/\*$/, "(/.*)?")}/?$`,
        ),
      }));
    const path = c.req.path;
    const allowed = [...new Set(table.filter((r) => r.re.test(path)).map((r) => r.method))];
    if (allowed.length > 0) {
      if (allowed.includes("GET")) allowed.push("HEAD");
      return problemResponse(
        c,
        new Problem("method-not-allowed", `${c.req.method} is not allowed on ${path}.`, {
          headers: { Allow: allowed.join(", ") },
        }),
      );
    }
    return problemResponse(c, new Problem("not-found", `No route ${c.req.method} ${path}.`));
  };
}

/**
 * Admin bodies within the nesting and size bounds of src/domain/json-bounds.ts, checked before the
 * route's schema reads them (the schemas recurse; a value thousands of levels deep would overflow the
 * stack and answer 500): a 400 that names the limit and each field. Route middleware, after the role
 * check (src/routes/admin/route.ts). A body that is not JSON is left to the validator (400 malformed-json).
 */
export const boundAdminBody = createMiddleware<AppEnv>(async (c, next) => {
  if (WITH_BODY.has(c.req.method)) {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return next();
    }
    const errors = boundErrors(body);
    if (errors.length > 0)
      throw new Problem(
        "validation",
        `Beyond the bounds of an admin body (config values: ${MAX_CONFIG_DEPTH} levels, ${MAX_CONFIG_BYTES} bytes; anything else: ${MAX_BODY_DEPTH} levels): ${errors.map((e) => e.path).join(", ")}`,
        { errors },
      );
  }
  await next();
});
