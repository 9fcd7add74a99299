// Authentication and roles for the admin API. Operators (people) present a JWT (Cloudflare Access's
// Cf-Access-Jwt-Assertion, or a Bearer JWT); automation presents an unbound API key with scope "admin"
// (role admin); the bootstrap key acts as admin. Roles are ordered: viewer < support < approver < admin.
// A key bound to one customer has no role here, whatever its scopes: the admin API is not per customer,
// so a bound "admin" key would be a global admin (security review H1). Creation refuses such keys
// (routes/admin/api-keys.ts); this refuses any made before that.
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { configOf } from "../config";
import type { Env } from "../env";
import { Problem } from "../http/problem";
import { internalPrincipal } from "./internal-calls";
import { authenticateKey, hasScope } from "./middleware";
import { createOperatorVerifier, extractOperatorToken, OPERATOR_ROLES, type OperatorRole } from "./operator-jwt";
import type { Principal } from "./principal";

export function roleOf(p: Principal): OperatorRole | null {
  if (p.kind === "operator") return p.role;
  if (p.kind === "bootstrap") return "admin";
  return p.customerId === null && hasScope(p, "admin") ? "admin" : null;
}

export function atLeast(role: OperatorRole, needed: OperatorRole): boolean {
  return OPERATOR_ROLES.indexOf(role) >= OPERATOR_ROLES.indexOf(needed);
}

let verifier: { key: string; verify: ReturnType<typeof createOperatorVerifier> } | null = null;

/** The verifier for this env's operator JWT configuration; it (and its JWKS cache) lives per isolate. */
function operatorVerifier(env: Env) {
  const config = configOf(env).operatorJwt;
  const key = JSON.stringify(config);
  if (verifier?.key !== key) verifier = { key, verify: createOperatorVerifier(config) };
  return verifier.verify;
}

/** Verifies an operator JWT (Cf-Access-Jwt-Assertion or Bearer) with this env's configuration. */
export async function verifyOperator(env: Env, jwt: string): Promise<Principal> {
  const result = await operatorVerifier(env)(jwt);
  if (!result.ok) throw new Problem("unauthorized", `Operator token rejected: ${result.reason}.`);
  return { kind: "operator", ...result.operator };
}

async function authenticateAdmin(c: Context<AppEnv>): Promise<Principal> {
  const internal = internalPrincipal(c.req.raw.headers);
  if (internal) return internal; // the console, signed in (auth/internal-calls.ts)
  const jwt = extractOperatorToken(c.req.raw.headers);
  if (jwt) return verifyOperator(c.env, jwt);
  return authenticateKey(c, c.req.raw.headers.get("Authorization") ?? undefined);
}

/** Requires an authenticated admin principal with at least `needed`; sets c.var.principal. */
export function requireRole(needed: OperatorRole) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = c.var.principal ?? (await authenticateAdmin(c));
    c.set("principal", principal);
    const role = roleOf(principal);
    if (!role)
      throw new Problem(
        "forbidden",
        principal.kind === "api_key" && principal.customerId !== null
          ? "This key is bound to a customer: the admin API takes an unbound key with the 'admin' scope."
          : "This key lacks the 'admin' scope.",
      );
    if (!atLeast(role, needed))
      throw new Problem("forbidden", `This action needs the '${needed}' role; you have '${role}'.`);
    await next();
  });
}
