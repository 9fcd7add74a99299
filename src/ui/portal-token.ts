// Portal links: a short-lived JWT (jose, HS256 under SESSION_SECRET) naming one customer, carried in
// the portal URL like Stripe's billing-portal sessions: nothing to sign in to, valid for minutes,
// read-only. Its audience differs from the console session's, so neither can stand in for the other.
// Expiry is checked against the injected clock.
import type { Context } from "hono";
import { jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { sessionKey } from "./session";

const AUDIENCE = "tollgate-portal";
const ISSUER = "tollgate";

export interface PortalClaims {
  customerId: string;
  returnUrl: string | null;
  /** The API key that minted the link (its principal reads the customer's usage). */
  keyId: string;
}

const claims = z.object({
  sub: z.string().min(1).max(128),
  ret: z.string().max(2048).nullable().default(null),
  kid: z.string().min(1).max(128),
});

export async function signPortalToken(c: Context<AppEnv>, p: PortalClaims, expiresAt: number): Promise<string> {
  const now = c.get("services").clock.now();
  return new SignJWT({ ret: p.returnUrl, kid: p.keyId })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(p.customerId)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(expiresAt / 1000))
    .sign(sessionKey(c));
}

export type PortalTokenResult = { ok: true; claims: PortalClaims } | { ok: false; reason: "expired" | "invalid" };

export async function verifyPortalToken(c: Context<AppEnv>, token: string): Promise<PortalTokenResult> {
  const key = sessionKey(c);
  try {
    const { payload } = await jwtVerify(token, key, {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ["HS256"],
      currentDate: new Date(c.get("services").clock.now()),
      clockTolerance: 0,
    });
    const parsed = claims.safeParse(payload);
    if (!parsed.success) return { ok: false, reason: "invalid" };
    return { ok: true, claims: { customerId: parsed.data.sub, returnUrl: parsed.data.ret, keyId: parsed.data.kid } };
  } catch (err) {
    return { ok: false, reason: (err as { code?: string }).code === "ERR_JWT_EXPIRED" ? "expired" : "invalid" };
  }
}
