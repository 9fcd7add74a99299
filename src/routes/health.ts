// GET / (service banner), GET /healthz (no bindings). /readyz lives with operations.
import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../http/router";
import { jsonResponse } from "../http/schemas";

const banner = createRoute({
  method: "get",
  path: "/",
  tags: ["health"],
  summary: "Service banner, with where the API description lives",
  responses: { 200: jsonResponse(z.object({ service: z.literal("tollgate"), docs: z.string(), openapi: z.string() }), "The banner") },
});

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["health"],
  summary: "Liveness: the worker runs (touches no binding)",
  responses: { 200: jsonResponse(z.object({ ok: z.literal(true) }), "Alive") },
});

export const healthRoutes = newRouter()
  .openapi(banner, (c) => c.json({ service: "tollgate" as const, docs: "/docs", openapi: "/openapi.json" }, 200))
  .openapi(healthz, (c) => c.json({ ok: true as const }, 200));
