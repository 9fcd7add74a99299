// Request guards that apply before any route: body size (413), content type (415), and the
// 404/405 distinction for unknown routes.
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { Problem, problemResponse } from "./problem";

export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_ADMIN_BODY_BYTES = 2 * 1024 * 1024; // a whole catalog file
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024; // billing events with expanded objects can exceed 64 KB

const WITH_BODY = new Set(["POST", "PUT", "PATCH"]);

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
    if (hasBody && !(type && /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type))) {
      throw new Problem("unsupported-media-type", "Send the body as application/json.", {
        headers: { "Accept-Post": "application/json" },
      });
    }
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
