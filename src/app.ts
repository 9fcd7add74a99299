// The Hono app: request id, error envelope, guards, and one sub-app per resource.
import type { Context, Hono } from "hono";
import { cors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env";
import {
  guardAdminWrites,
  limitBody,
  MAX_ADMIN_BODY_BYTES,
  MAX_BODY_BYTES,
  MAX_WEBHOOK_BODY_BYTES,
  notFound,
  requireJson,
} from "./http/guards";
import { logRequestFailure, problemResponse, toProblem } from "./http/problem";
import { newRouter } from "./http/router";
import { adminRoutes } from "./routes/admin";
import { checkRoutes } from "./routes/check";
import { documentApi } from "./routes/docs";
import { entityRoutes } from "./routes/entities";
import { healthRoutes } from "./routes/health";
import { ofrepRoutes } from "./routes/ofrep";
import { portalSessionRoutes } from "./routes/portal-sessions";
import { tokenRoutes } from "./routes/tokens";
import { usageRoutes } from "./routes/usage";
import { webhookRoutes } from "./routes/webhooks";
import type { Services } from "./services";
import { consoleRoutes } from "./ui/console";
import { portalRoutes } from "./ui/portal";

/** The request's ExecutionContext, or undefined where none was given (Hono throws on the getter then). */
function executionContextOf(c: Context<AppEnv>): ExecutionContext | undefined {
  try {
    return c.executionCtx as ExecutionContext;
  } catch {
    return undefined;
  }
}

export function createApp(getServices: (env: AppEnv["Bindings"]) => Services) {
  const app = newRouter();
  app.use("*", async (c, next) => {
    c.set("requestId", c.req.header("cf-ray") ?? crypto.randomUUID());
    c.set("services", getServices(c.env));
    await next();
    c.header("X-Request-Id", c.get("requestId"));
  });
  app.use(
    "/v1/*",
    cors({
      origin: "*",
      allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key"],
      exposeHeaders: ["X-Request-Id"],
    }),
  );
  const apiLimit = limitBody(MAX_BODY_BYTES);
  const webhookLimit = limitBody(MAX_WEBHOOK_BODY_BYTES);
  app.use(
    "/v1/*",
    (c, next) => (c.req.path.startsWith("/v1/webhooks/") ? webhookLimit : apiLimit)(c, next),
    requireJson,
  );
  app.use("/admin/*", limitBody(MAX_ADMIN_BODY_BYTES), guardAdminWrites);
  // The console calls this very app in process (src/ui/admin-call.ts).
  const innerFetch = createMiddleware<AppEnv>(async (c, next) => {
    const ctx = executionContextOf(c);
    c.set("innerFetch", (request) => Promise.resolve(app.fetch(request, c.env, ctx)));
    await next();
  });
  app.use("/console/*", limitBody(MAX_ADMIN_BODY_BYTES), innerFetch);

  app.route("/", healthRoutes);
  app.route("/v1", checkRoutes);
  app.route("/v1", usageRoutes);
  app.route("/v1", entityRoutes);
  app.route("/v1/webhooks", webhookRoutes);
  app.route("/admin/v1", adminRoutes);
  app.route("/", tokenRoutes);
  app.use("/ofrep/*", limitBody(MAX_BODY_BYTES), requireJson);
  app.route("/ofrep/v1", ofrepRoutes);
  app.route("/console", consoleRoutes);
  app.route("/portal", portalRoutes);
  app.route("/", portalSessionRoutes);
  documentApi(app);

  app.notFound(notFound(app as unknown as Hono<AppEnv>));
  app.onError((err, c) => {
    const problem = toProblem(err);
    if (problem.status >= 500) logRequestFailure(c, err);
    return problemResponse(c, problem);
  });
  return app;
}
