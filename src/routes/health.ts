// GET / (service banner), GET /healthz (no bindings). /readyz lives with operations.
import { newRouter } from "../http/router";

export const healthRoutes = newRouter()
  .get("/", (c) => c.json({ service: "tollgate", docs: "/docs", openapi: "/openapi.json" }))
  .get("/healthz", (c) => c.json({ ok: true }));
