// POST /v1/webhooks/stripe: billing provisioning from Stripe. The signature over the RAW body is
// verified before anything is parsed; a bad or stale signature is a 400 that changes nothing.
import { createRoute, z } from "@hono/zod-openapi";
import { stripeEvent } from "../billing/stripe-events";
import { verifyStripeSignature } from "../billing/stripe-signature";
import { applyStripeEvent } from "../billing/stripe-webhook";
import { configOf } from "../config";
import { Problem, zodProblem } from "../http/problem";
import { newRouter } from "../http/router";
import { errorResponses, jsonResponse } from "../http/schemas";

const stripeWebhook = createRoute({
  method: "post",
  path: "/stripe",
  tags: ["billing"],
  security: [], // authenticated by the Stripe-Signature header, not a key
  summary: "Stripe events: customer.subscription.created|updated|deleted, invoice.payment_failed|paid",
  // No body schema on purpose: the body is read raw and verified before it is parsed.
  request: {
    headers: z.object({ "stripe-signature": z.string().optional().describe("t=<unix seconds>,v1=<hex HMAC-SHA256>") }),
  },
  responses: {
    200: jsonResponse(
      z.object({
        received: z.literal(true),
        eventId: z.string(),
        outcome: z.enum(["applied", "duplicate", "stale", "ignored"]),
        changed: z.number(),
      }),
      "Acknowledged: applied, already applied (duplicate), older than what is recorded (stale), or a type Tollgate does not handle (ignored)",
    ),
    400: errorResponses[400],
    409: { ...errorResponses[400], description: "A concurrent change: Stripe retries" },
    422: {
      ...errorResponses[400],
      description: "Signed, but not applicable: a price with no plan mapping, or an unexpected shape. Stripe retries",
    },
    503: { ...errorResponses[503], description: "STRIPE_WEBHOOK_SECRET is not configured" },
  },
});

export const webhookRoutes = newRouter();
webhookRoutes.openapi(stripeWebhook, async (c) => {
  const config = configOf(c.env);
  const secrets = config.stripe.webhookSecrets;
  if (secrets.length === 0)
    throw new Problem("unavailable", "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).", {
      headers: { "Retry-After": "300" },
    });
  const raw = await c.req.text();
  const verified = await verifyStripeSignature(
    raw,
    c.req.header("Stripe-Signature") ?? null,
    secrets,
    c.var.services.clock.now(),
  );
  if (!verified.ok) {
    // The reason helps whoever sets up the endpoint (wrong secret vs clock skew); it reveals nothing a forger can use.
    throw new Problem("validation", `Stripe-Signature rejected: ${verified.reason}.`, {
      errors: [{ path: "header.stripe-signature", message: verified.reason }],
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Problem("malformed-json", "The request body is not valid JSON.");
  }
  const event = stripeEvent.safeParse(json);
  if (!event.success) throw zodProblem(event.error, "json");
  const graceMs = config.lifecycle.pastDueGraceMs;
  const result = await applyStripeEvent(c.env, c.var.services, event.data, graceMs, c.var.requestId);
  return c.json({ received: true as const, ...result }, 200);
});
