// Authentication for the public API: `Authorization: Bearer <api key>`. Missing or bad key: 401;
// a key without the scope, or bound to another customer: 403.
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { configOf } from "../config";
import type { Scope } from "../domain/types";
import type { Env } from "../env";
import { Problem } from "../http/problem";
import { hashApiKey, sameDigest } from "./api-keys";
import type { Principal } from "./principal";

const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="tollgate"' };

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? null;
}

let bootstrapHash: { secret: string; hash: Promise<string> } | null = null;

/**
 * The bootstrap admin key (Worker secret ADMIN_BOOTSTRAP_KEY), compared by digest in constant time.
 * Never in production: it has every scope and no expiry, and stands for nobody in particular (four
 * eyes cannot tell its holder from an approver). There the first admin keys are made with an operator
 * token, and scripts/deploy.mjs refuses a production deploy that still has the secret.
 */
export async function isBootstrapKey(env: Env, presented: string): Promise<boolean> {
  const secret = env.ADMIN_BOOTSTRAP_KEY;
  if (!secret || secret.length < 32 || configOf(env).environment === "production") return false;
  if (bootstrapHash?.secret !== secret) bootstrapHash = { secret, hash: hashApiKey(secret) };
  return sameDigest(await bootstrapHash.hash, await hashApiKey(presented));
}

/** Resolves an API key (or the bootstrap key) to a principal, or throws 401. */
export async function authenticateKey(c: Context<AppEnv>, header: string | undefined): Promise<Principal> {
  const token = bearerToken(header);
  if (!token)
    throw new Problem("unauthorized", "Send an API key as 'Authorization: Bearer <key>'.", { headers: CHALLENGE });
  const { keys, clock } = c.get("services"); // not c.var: that copies every variable on each read
  const record = await keys.verify(c.env, token, clock.now(), waitUntilOf(c));
  if (record) return { kind: "api_key", id: record.id, scopes: record.scopes, customerId: record.customerId };
  if (await isBootstrapKey(c.env, token)) return { kind: "bootstrap", id: "bootstrap" };
  throw new Problem("unauthorized", "The API key is unknown, malformed or revoked.", { headers: CHALLENGE });
}

export function hasScope(p: Principal, scope: Scope): boolean {
  if (p.kind === "bootstrap") return true;
  if (p.kind === "operator") return false;
  return p.scopes.includes(scope) || p.scopes.includes("admin");
}

export function requireScope(scope: Scope) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = await authenticateKey(c, c.req.header("Authorization"));
    if (!hasScope(principal, scope)) throw new Problem("forbidden", `This key lacks the '${scope}' scope.`);
    c.set("principal", principal);
    await next();
  });
}

/** A key bound to one customer may only ask about that customer. */
export function assertCustomerAccess(p: Principal, customerId: string): void {
  if (p.kind === "api_key" && p.customerId !== null && p.customerId !== customerId) {
    throw new Problem("forbidden", "This key is bound to another customer.");
  }
}

export function waitUntilOf(c: Context<AppEnv>): ((p: Promise<unknown>) => void) | undefined {
  try {
    const ctx = c.executionCtx;
    return ctx ? (p) => ctx.waitUntil(p) : undefined;
  } catch {
    return undefined; // Hono throws when no ExecutionContext was given (some unit tests)
  }
}
