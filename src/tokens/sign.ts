// Compact JWS signing with the isolate's key ring. Every token Tollgate signs goes through here, so
// the header (alg, kid, typ) and the registered claims (iss, sub, aud, iat, exp, jti) are set in one place.
import { SignJWT } from "jose";
import type { Env } from "../env";
import { Problem } from "../http/problem";
import { type KeyRing, loadKeyRing } from "./keys";

/** The key ring, or a 503 problem (the reason goes to the log, never to the client). */
export async function signingRing(env: Env): Promise<KeyRing> {
  const result = await loadKeyRing(env.TOKEN_SIGNING_KEYS);
  if (result.ok) return result.ring;
  console.error(JSON.stringify({ msg: "token signing unavailable", reason: result.reason, detail: result.detail }));
  throw new Problem("unavailable", "Token signing is not configured on this deployment.");
}

export interface JwsOptions {
  issuer: string;
  subject: string;
  audience: string;
  typ: string;
  /** Instants in ms; JWT NumericDates are whole seconds, so exp is rounded DOWN (never later than asked). */
  issuedAt: number;
  expiresAt: number;
}

export const seconds = (ms: number) => Math.floor(ms / 1000);

export function signJws(ring: KeyRing, payload: Record<string, unknown>, o: JwsOptions): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: ring.signer.alg, kid: ring.signer.kid, typ: o.typ })
    .setIssuer(o.issuer)
    .setSubject(o.subject)
    .setAudience(o.audience)
    .setIssuedAt(seconds(o.issuedAt))
    .setExpirationTime(seconds(o.expiresAt))
    .setJti(crypto.randomUUID())
    .sign(ring.signer.key);
}
