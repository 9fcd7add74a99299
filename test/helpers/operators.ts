// Operator JWTs for the admin API, minted the way the local (HS256) verifier expects them.
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import type { OperatorRole } from "../../src/auth/operator-jwt";

/**
 * An operator token for `role`, with subject `sub` and, when given, an email (the audit actor is then
 * `sub <email>`). Expiry is real time: jose checks it against the system clock, not the injected one.
 */
export async function operatorToken(role: OperatorRole, sub = `op-${role}`, email?: string): Promise<string> {
  return new SignJWT({ tollgate_role: role, ...(email ? { email } : {}) })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(String(env.OPERATOR_JWT_ISSUER))
    .setAudience(String(env.OPERATOR_JWT_AUDIENCE))
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(String(env.OPERATOR_JWT_SECRET)));
}
