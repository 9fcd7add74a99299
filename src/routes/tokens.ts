// POST /v1/tokens (a signed copy of a customer's entitlements) and GET /.well-known/jwks.json (the
// public keys that verify it, and decision assertions, offline).
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { assertCustomerAccess, requireScope } from "../auth/middleware";
import { checkDeps, requireSnapshot, termsOf } from "../check-path";
import { configOf } from "../config";
import { seatOf } from "../domain/entities";
import { iso } from "../domain/time";
import type { Snapshot } from "../domain/types";
import { newRouter } from "../http/router";
import {
  apiKeySecurity,
  countryParam,
  customerIdParam,
  edgeCountry,
  entityIdParam,
  errorResponses,
  featureParam,
  jsonBody,
  jsonResponse,
  roleParam,
} from "../http/schemas";
import { SnapshotUnavailable } from "../store/errors";
import {
  DEFAULT_TOKEN_AUDIENCE,
  DEFAULT_TOKEN_TTL_SECONDS,
  ENTITLEMENT_TOKEN_TYPE,
  entitlementClaims,
  MAX_TOKEN_TTL_SECONDS,
} from "../tokens/claims";
import { seconds, signingRing, signJws } from "../tokens/sign";

/** Verifiers may cache the key set this long; a new key must be published at least this long before it signs. */
export const JWKS_MAX_AGE_SECONDS = 300;

const tokenRequest = z
  .object({
    customerId: customerIdParam,
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(MAX_TOKEN_TTL_SECONDS)
      .default(DEFAULT_TOKEN_TTL_SECONDS)
      .describe("Upper bound; the token ends sooner when something it grants does"),
    audience: z.string().min(1).max(256).optional().describe(`The aud claim (default "${DEFAULT_TOKEN_AUDIENCE}")`),
    features: z
      .array(featureParam)
      .min(1)
      .max(500)
      .optional()
      .describe("Only these features (default: every catalog feature)"),
    role: roleParam.optional(),
    country: countryParam.optional().describe("Default: the edge's request.cf.country"),
    entityId: entityIdParam
      .optional()
      .describe("A token for this entity inside the customer: features needing a seat it holds none of are off"),
  })
  .strict()
  .openapi("TokenRequest");

const tokenResponse = z
  .object({
    token: z.string().describe(`Compact JWS (typ ${ENTITLEMENT_TOKEN_TYPE}); verify with /.well-known/jwks.json`),
    kid: z.string(),
    issuer: z.string(),
    audience: z.string(),
    issuedAt: z.string(),
    expiresAt: z.string(),
    snapshotVersion: z.number().int(),
  })
  .openapi("TokenResponse");

const publicJwk = z
  .object({
    kty: z.enum(["OKP", "EC"]),
    crv: z.enum(["Ed25519", "P-256"]),
    x: z.string(),
    y: z.string().optional(),
    kid: z.string(),
    alg: z.enum(["EdDSA", "ES256"]),
    use: z.literal("sig"),
  })
  .openapi("PublicJwk");

const mintToken = createRoute({
  method: "post",
  path: "/v1/tokens",
  tags: ["tokens"],
  security: apiKeySecurity,
  summary: "Mint a signed entitlement token for offline verification (scope sign)",
  request: { body: jsonBody(tokenRequest) },
  responses: {
    200: jsonResponse(tokenResponse, "The signed token"),
    404: { ...errorResponses[403], description: "No such customer" },
    ...errorResponses,
  },
});

const getJwks = createRoute({
  method: "get",
  path: "/.well-known/jwks.json",
  tags: ["tokens"],
  summary: "Public keys that verify entitlement tokens and decision assertions",
  responses: {
    200: jsonResponse(z.object({ keys: z.array(publicJwk) }).openapi("Jwks"), "The JWK Set (RFC 7517)"),
    503: errorResponses[503],
  },
});

/** The seats an entity holds, of every seats feature the catalog's features name: one meter read. */
async function entitySeats(c: Context<AppEnv>, snapshot: Snapshot, id: string, now: number) {
  const seats = [...new Set(Object.entries(snapshot.features).flatMap(([k, f]) => seatOf(k, f) ?? []))];
  if (seats.length === 0) return { id, seats: {} };
  const extra = { entity: { id, seats, limits: [] } };
  const peeked = await c.var.services.meter.peek(c.env, snapshot, [], now, termsOf(snapshot), extra);
  return { id, seats: peeked.entity?.seats ?? {} };
}

export const tokenRoutes = newRouter();
// Minting is its own scope: a token states a role and a country the caller chose (review M4), so a
// key handed to a browser (scope check) must not be able to mint one.
tokenRoutes.use("/v1/tokens", requireScope("sign"));
tokenRoutes
  .openapi(mintToken, async (c) => {
    const {
      customerId,
      ttlSeconds,
      audience = DEFAULT_TOKEN_AUDIENCE,
      features,
      role,
      country,
      entityId,
    } = c.req.valid("json");
    assertCustomerAccess(c.var.principal, customerId);
    const ring = await signingRing(c.env);
    const now = c.var.services.clock.now();
    const read = await requireSnapshot(checkDeps(c), customerId, now);
    // A stale copy (KV and D1 down) may still grant what was revoked: never sign it for an hour.
    if (read.degraded) throw new SnapshotUnavailable(`only a degraded copy of '${customerId}' is readable`);
    const entity = entityId === undefined ? undefined : await entitySeats(c, read.snapshot, entityId, now);
    const { claims, expiresAt } = entitlementClaims(
      read.snapshot,
      { role, country: country ?? edgeCountry(c), features, ttlSeconds, entity },
      now,
    );
    const { sub, ...payload } = claims;
    const issuer = configOf(c.env).tokens.issuer;
    const token = await signJws(ring, payload, {
      issuer,
      subject: sub,
      audience,
      typ: ENTITLEMENT_TOKEN_TYPE,
      issuedAt: now,
      expiresAt,
    });
    const body = {
      token,
      kid: ring.signer.kid,
      issuer,
      audience,
      issuedAt: iso(seconds(now) * 1000),
      expiresAt: iso(seconds(expiresAt) * 1000),
      snapshotVersion: claims.snapshotVersion,
    };
    return c.json(body, 200);
  })
  .openapi(getJwks, async (c) => {
    const { jwks } = await signingRing(c.env);
    c.header("Cache-Control", `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    c.header("Access-Control-Allow-Origin", "*"); // public keys: any origin may verify
    return c.json(jwks, 200);
  });
