// /openapi.json is generated from the routes' zod schemas; this test fails when the app serves a
// route the document does not describe (for example one added with a plain `.get`).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { testWorker } from "./helpers";

const w = testWorker();
const UNDOCUMENTED_BY_DESIGN = new Set(["/docs", "/docs/swagger-initializer.js", "/openapi.json"]);
/** Pages for people, not an API: the console and the portal (src/ui/, docs/console.md). */
const PAGES = /^\/(console|portal)(\/|$)/;
const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);

/** Hono's `/a/:id{[0-9]+}/` -> OpenAPI's `/a/{id}`. */
const openapiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, "{$1}").replace(/(.)\/$/, "$1");

type Operation = {
  security?: Record<string, string[]>[];
  responses: Record<string, { content?: Record<string, unknown> }>;
  requestBody?: unknown;
};

describe("GET /openapi.json", () => {
  it("describes every route the app serves", async () => {
    const res = await w.call("GET", "/openapi.json");
    expect(res.status).toBe(200);
    const paths = res.json.paths as Record<string, Record<string, Operation>>;
    const documented = new Set(
      Object.entries(paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${openapiPath(p)}`)),
    );
    const served = [
      ...new Set(
        w.worker.app.routes
          .filter((r) => METHODS.has(r.method) && !UNDOCUMENTED_BY_DESIGN.has(r.path) && !PAGES.test(r.path))
          .map((r) => `${r.method} ${openapiPath(r.path)}`),
      ),
    ];
    expect(served.length).toBeGreaterThan(15);
    expect(served.filter((r) => !documented.has(r))).toEqual([]);
    for (const r of [
      "POST /v1/check",
      "POST /v1/tokens",
      "POST /v1/portal-sessions",
      "GET /.well-known/jwks.json",
      "POST /ofrep/v1/evaluate/flags/{key}",
      "POST /ofrep/v1/evaluate/flags",
      "POST /v1/usage",
      "GET /healthz",
    ]) {
      expect(documented).toContain(r);
    }
  });

  it("is OpenAPI 3.1 with the apiKey and operatorJwt schemes, and every secured operation documents its errors", async () => {
    const doc = (await w.call("GET", "/openapi.json")).json;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes).toEqual({
      apiKey: expect.objectContaining({ type: "http", scheme: "bearer" }),
      operatorJwt: expect.objectContaining({ type: "http", scheme: "bearer", bearerFormat: "JWT" }),
    });
    expect(doc.components.schemas.Problem.properties).toHaveProperty("type");
    const undocumentedErrors: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
      for (const [method, op] of Object.entries(ops)) {
        // No security, or `security: []` (e.g. a signed webhook): public as far as OpenAPI is concerned.
        const schemes = (op.security ?? []).flatMap((s) => Object.keys(s));
        if (schemes.length === 0) continue;
        for (const s of schemes) expect(["apiKey", "operatorJwt"]).toContain(s);
        if (!op.responses["401"] || !op.responses["403"]) undocumentedErrors.push(`${method.toUpperCase()} ${path}`);
      }
      if (path.startsWith("/admin/"))
        for (const op of Object.values(ops))
          expect(op.security?.flatMap((s) => Object.keys(s))).toContain("operatorJwt");
    }
    expect(undocumentedErrors).toEqual([]);
  });

  it("is built from the zod schemas that validate the requests", async () => {
    const doc = (await w.call("GET", "/openapi.json")).json;
    const check = doc.components.schemas.CheckRequest;
    expect(check.required).toEqual(expect.arrayContaining(["customerId", "feature"]));
    expect(Object.keys(check.properties)).toEqual(
      expect.arrayContaining(["assert", "assertAudience", "quantity", "minVersion"]),
    );
    expect(check.additionalProperties).toBe(false); // .strict(): unknown fields are a 400, and the document says so
    expect(doc.components.schemas.TokenRequest.properties.ttlSeconds).toMatchObject({ maximum: 86_400, default: 3600 });
    const problem = doc.paths["/v1/check"].post.responses["401"].content;
    expect(Object.keys(problem)).toEqual(["application/problem+json"]);
    const ofrep = doc.paths["/ofrep/v1/evaluate/flags/{key}"].post.responses;
    expect(Object.keys(ofrep)).toEqual(expect.arrayContaining(["200", "400", "401", "403", "404", "500"]));
    expect(doc.paths["/ofrep/v1/evaluate/flags"].post.responses["304"]).toBeDefined();
  });
});

// /docs must render offline: everything it loads comes from this worker, either from a route or from
// the static assets (wrangler.toml [assets]: Swagger UI's files, copied by scripts/build.mjs).
describe("GET /docs", () => {
  const ASSETS = env.ASSETS as Fetcher;
  /** As deployed: asset paths (run_worker_first's "!/docs/swagger-ui/*") from the assets, the rest from the worker. */
  const load = async (path: string) => {
    if (!path.startsWith("/docs/swagger-ui/")) {
      const res = await w.call("GET", path);
      return { ...res, size: res.text.length };
    }
    const res = await ASSETS.fetch(`https://tollgate.test${path}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, size: bytes.length, text: new TextDecoder().decode(bytes) };
  };
  /** Every URL in an HTML page's src and href attributes. */
  const references = (html: string) => [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
  const ANY_URL = /\bhttps?:\/\/|(?:^|["'(\s])\/\/[a-z0-9]/i;

  it("is Swagger UI over /openapi.json, and references nothing outside this worker", async () => {
    const page = await w.call("GET", "/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.text).toContain('id="swagger-ui"');
    expect(page.text).not.toMatch(ANY_URL);
    const refs = references(page.text);
    expect(refs.length).toBeGreaterThanOrEqual(4);
    for (const ref of refs) expect(ref).toMatch(/^\/docs\//);
    // The browser enforces it too: the page may load and connect to this origin only.
    expect(page.headers.get("content-security-policy")).toMatch(/default-src 'none'.*connect-src 'self'/);
    const initializer = await load("/docs/swagger-initializer.js");
    expect(refs).toContain("/docs/swagger-initializer.js");
    expect(initializer.text).toContain('url: "/openapi.json"');
    expect(initializer.text).toContain("validatorUrl: null"); // else the document's URL goes to validator.swagger.io
    expect(initializer.text).not.toMatch(ANY_URL);
  });

  it("serves every file the page references, with its content type", async () => {
    const types: Record<string, RegExp> = { js: /^text\/javascript/, css: /^text\/css/, png: /^image\/png/ };
    const refs = references((await w.call("GET", "/docs")).text);
    for (const ref of refs) {
      const res = await load(ref);
      // A 404 here after a swagger-ui-dist upgrade: dist/assets is stale; `npm run build` copies it again.
      expect(res.status, ref).toBe(200);
      expect(res.headers.get("content-type"), ref).toMatch(types[ref.split(".").pop()!]!);
      expect(res.size, ref).toBeGreaterThan(50);
    }
    expect(refs.filter((r) => r.endsWith("/swagger-ui-bundle.js"))).toHaveLength(1);
  });

  it("puts swagger-ui-dist's version in the asset paths and caches those files for a year", async () => {
    const { version } = await import("swagger-ui-dist/package.json");
    const refs = references((await w.call("GET", "/docs")).text).filter((r) => r.startsWith("/docs/swagger-ui/"));
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) {
      expect(ref).toMatch(new RegExp(`^/docs/swagger-ui/${version.replaceAll(".", "\\.")}/[^/]+$`));
      const res = await load(ref);
      expect(res.headers.get("cache-control"), ref).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("etag"), ref).toBeTruthy();
    }
    // The page and its initializer belong to the deploy, not to the package: revalidated every time.
    expect((await w.call("GET", "/docs")).headers.get("cache-control")).toBe("no-cache");
  });
});
