// POST /v1/portal-sessions: a short-lived link to the customer portal (/portal, src/ui/portal), minted
// by the customer's app with its API key (scope check), the pattern of Stripe's billing portal. The
// link shows the customer's plan, entitlements and usage, and never changes them.
import { createRoute, z } from "@hono/zod-openapi";
import { assertCustomerAccess, requireScope } from "../auth/middleware";
import { iso } from "../domain/time";
import { Problem } from "../http/problem";
import { newRouter } from "../http/router";
import { apiKeySecurity, customerIdParam, errorResponses, jsonBody, jsonResponse } from "../http/schemas";
import { customerExists } from "../store/customers";
import { signPortalToken } from "../ui/portal-token";

export const DEFAULT_PORTAL_TTL_SECONDS = 15 * 60;
export const MAX_PORTAL_TTL_SECONDS = 60 * 60;

const sessionRequest = z
  .object({
    customerId: customerIdParam,
    returnUrl: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional()
      .describe("Where the portal's back link goes (your app)"),
    ttlSeconds: z
      .number()
      .int()
      .min(5)
      .max(MAX_PORTAL_TTL_SECONDS)
      .default(DEFAULT_PORTAL_TTL_SECONDS)
      .describe("How long the link works (default 15 minutes)"),
  })
  .strict()
  .openapi("PortalSessionRequest");

const sessionResponse = z
  .object({
    url: z.string().describe("Open it in a browser or an iframe (PORTAL_FRAME_ANCESTORS); do not log it"),
    expiresAt: z.string(),
  })
  .openapi("PortalSession");

const mintSession = createRoute({
  method: "post",
  path: "/v1/portal-sessions",
  tags: ["portal"],
  security: apiKeySecurity,
  summary: "A short-lived link to the customer portal (scope check)",
  request: { body: jsonBody(sessionRequest) },
  responses: {
    201: jsonResponse(sessionResponse, "The link"),
    404: { ...errorResponses[403], description: "No such customer" },
    ...errorResponses,
  },
});

export const portalSessionRoutes = newRouter();
portalSessionRoutes.use("/v1/portal-sessions", requireScope("check"));
portalSessionRoutes.openapi(mintSession, async (c) => {
  const { customerId, returnUrl, ttlSeconds } = c.req.valid("json");
  const principal = c.var.principal;
  assertCustomerAccess(principal, customerId);
  if (!(await customerExists(c.env.DB, customerId))) throw new Problem("not-found", `No customer '${customerId}'.`);
  const expiresAt = c.var.services.clock.now() + ttlSeconds * 1000;
  const token = await signPortalToken(c, { customerId, returnUrl: returnUrl ?? null, keyId: principal.id }, expiresAt);
  const url = new URL("/portal", c.req.url);
  url.searchParams.set("token", token);
  return c.json({ url: url.href, expiresAt: iso(Math.floor(expiresAt / 1000) * 1000) }, 201);
});
