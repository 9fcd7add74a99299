// Helpers for the admin API tests: operator tokens per role, and readers of what a write left behind.
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { expect } from "vitest";
import type { OperatorRole } from "../src/auth/operator-jwt";
import { BOOTSTRAP, type TestWorker } from "./helpers";

/** An operator JWT as the local (HS256) verifier expects it; expiry is real time (jose checks it against the system clock). */
export async function operatorToken(role: OperatorRole, sub = `op-${role}`, email?: string): Promise<string> {
  return new SignJWT({ tollgate_role: role, ...(email ? { email } : {}) })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(String(env.OPERATOR_JWT_ISSUER))
    .setAudience(String(env.OPERATOR_JWT_AUDIENCE))
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(String(env.OPERATOR_JWT_SECRET)));
}

import type { AuditDbRow as AuditRow } from "../src/store/audit";

export type { AuditRow };

/** Audit rows of one entity, oldest first, straight from D1. */
export async function auditOf(entityType: string, entityId: string): Promise<AuditRow[]> {
  const rows = await env.DB.prepare("SELECT * FROM audit_log WHERE entity_type = ?1 AND entity_id = ?2 ORDER BY id")
    .bind(entityType, entityId)
    .all<AuditRow>();
  return rows.results;
}

export const parsed = (json: string | null) => (json === null ? null : JSON.parse(json));

/** Asserts a problem+json answer with this status, and returns its body. */
export function expectProblem(res: { status: number; headers: Headers; json: any }, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(res.json.status).toBe(status);
  return res.json as {
    type: string;
    detail: string;
    errors?: { path: string; message: string }[];
    [k: string]: unknown;
  };
}

/** Creates a plan through the admin API (bootstrap key) and returns its id. */
export async function createPlan(
  w: TestWorker,
  id: string,
  entitlements: Record<string, unknown>,
  kind: "base" | "addon" = "base",
) {
  const res = await w.call("POST", "/admin/v1/plans", { key: BOOTSTRAP, body: { id, name: id, kind, entitlements } });
  if (res.status !== 201) throw new Error(`plan create failed: ${res.status} ${res.text}`);
  return res.json;
}

/** Reads the snapshot a check would read from KV. */
export async function kvSnapshot(customerId: string): Promise<any> {
  return env.SNAPSHOTS.get(`snap:${customerId}`, "json");
}
