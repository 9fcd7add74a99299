// Why an operator made a change: the `X-Audit-Reason` header, recorded in the audit entry of any
// admin write (grant operations also take `reason` in their body, where it is part of the grant).
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { Problem } from "./problem";

export const AUDIT_REASON_HEADER = "X-Audit-Reason";
const MAX_REASON = 1000;

export function auditReason(c: Context<AppEnv>): string | null {
  const value = c.req.header(AUDIT_REASON_HEADER)?.trim();
  if (!value) return null;
  if (value.length > MAX_REASON) {
    throw new Problem("validation", `${AUDIT_REASON_HEADER} is longer than ${MAX_REASON} characters.`, {
      errors: [{ path: "header.x-audit-reason", message: "too long" }],
    });
  }
  return value;
}
