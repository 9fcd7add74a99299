// GET /openapi.json (OpenAPI 3.1, generated from the same zod schemas that validate requests, so it
// cannot drift from the code) and GET /docs (Swagger UI over it, with nothing loaded from elsewhere).
import type { OpenAPIHono } from "@hono/zod-openapi";
import { version as swaggerUiVersion } from "swagger-ui-dist/package.json";
import type { AppEnv } from "../app-env";

/**
 * Swagger UI's own files (swagger-ui-dist) are Workers Static Assets: scripts/build.mjs copies them
 * from node_modules into dist/assets on every npm install, and wrangler.toml's [assets] serves this
 * path from there without running the worker. The package's version is in the path, so an upgrade
 * changes every URL and the files are cached for a year (dist/assets/_headers).
 */
const SWAGGER_UI = `/docs/swagger-ui/${swaggerUiVersion}`;
const INITIALIZER = "/docs/swagger-initializer.js";

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Tollgate API</title>
    <link rel="stylesheet" href="${SWAGGER_UI}/swagger-ui.css">
    <link rel="icon" type="image/png" href="${SWAGGER_UI}/favicon-32x32.png">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${SWAGGER_UI}/swagger-ui-bundle.js"></script>
    <script src="${INITIALIZER}"></script>
  </body>
</html>
`;

// validatorUrl null: by default Swagger UI sends the document's URL to validator.swagger.io for a badge.
// requestInterceptor: admin writes are taken as application/json only, even without a body
// (src/http/guards.ts, guardAdminWrites); Swagger UI sends no type when there is no body.
const INITIALIZER_JS = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  requestInterceptor: (req) => {
    const admin = new URL(req.url, window.location.href).pathname.startsWith("/admin/");
    if (admin && req.method !== "GET" && req.method !== "HEAD" && !req.headers["Content-Type"])
      req.headers["Content-Type"] = "application/json";
    return req;
  },
});
`;

/** The page may load from this origin only, so nothing it does can reach another site. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'", // Swagger UI sets style attributes
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const INFO = {
  title: "Tollgate",
  version: "0.1.0",
  description:
    "Edge entitlement service: checks, usage metering, signed entitlement tokens, OpenFeature (OFREP) and the admin API. " +
    "Every error is RFC 9457 application/problem+json (except OFREP's own 400/404/500 bodies); a denial is a 200 with allowed: false and a reason.",
};

/** Adds the security schemes, /openapi.json and /docs to the app (call after every route is mounted or not: the document is built on first request). */
export function documentApi(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
    type: "http",
    scheme: "bearer",
    description:
      "A Tollgate API key (`Authorization: Bearer tg_...`) with the scope the route needs: check, usage or admin.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "operatorJwt", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description:
      "An operator JWT with a role claim (viewer < support < approver < admin), as a Bearer token or Cloudflare Access's Cf-Access-Jwt-Assertion header.",
  });
  // Built once per isolate: the routes do not change while it lives.
  let document: unknown;
  app.get("/openapi.json", (c) => {
    if (!document) {
      nameRecursiveSchemas(app.openAPIRegistry.definitions);
      document = app.getOpenAPI31Document({ openapi: "3.1.0", info: INFO, servers: [{ url: "/" }] });
    }
    c.header("Cache-Control", "public, max-age=300");
    c.header("Access-Control-Allow-Origin", "*");
    return c.json(document as object);
  });
  // Both are part of this deploy: revalidated on every load, so they never point at assets it replaced.
  app.get("/docs", (c) => {
    c.header("Cache-Control", "no-cache");
    c.header("Content-Security-Policy", CSP);
    c.header("X-Content-Type-Options", "nosniff");
    return c.html(PAGE);
  });
  app.get(INITIALIZER, (c) => {
    c.header("Cache-Control", "no-cache");
    c.header("X-Content-Type-Options", "nosniff");
    return c.body(INITIALIZER_JS, 200, { "Content-Type": "text/javascript; charset=utf-8" });
  });
}

/**
 * A recursive schema (z.lazy, e.g. the catalog's JSON value) must be a named component so the
 * generator can emit a $ref instead of recursing forever. The domain's schemas stay free of OpenAPI
 * concerns, so names are given here: every z.lazy reachable from a route becomes `Json`, `Json2`, ...
 */
function nameRecursiveSchemas(roots: unknown): void {
  const seen = new Set<object>();
  let count = 0;
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== "object" || seen.has(node)) return;
    seen.add(node);
    const zod = (node as { _zod?: { def: Record<string, unknown> & { type: string; getter?: () => unknown } } })._zod;
    if (!zod) {
      for (const value of Object.values(node)) visit(value);
      return;
    }
    if (zod.def.type === "lazy") {
      count += 1;
      // On a z.lazy, .openapi() also names the original instance: the one the recursion refers to.
      (node as unknown as { openapi: (name: string) => unknown }).openapi(count === 1 ? "Json" : `Json${count}`);
      visit(zod.def.getter?.());
      return;
    }
    for (const value of Object.values(zod.def)) visit(value);
  };
  visit(roots);
}
