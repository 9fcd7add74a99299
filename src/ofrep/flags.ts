// Tollgate decisions as OpenFeature Remote Evaluation Protocol (OFREP) flags, and the OFREP
// context as a check context. Pure.
// - boolean features are boolean flags (value = allowed);
// - metered features are boolean flags: whether one more unit fits in the allowance now;
// - config features carry their value; when the customer has none (not entitled, or a null value)
//   the flag defers to the caller's code default (OFREP's "codeDefaultFlag": no `value`).
// Tollgate's own reason travels as the variant and in metadata, so "role_denied" and "not_entitled"
// stay distinguishable in OpenFeature telemetry.
import type { Decision, Json } from "../domain/types";
import { countryParam, customerIdParam, entityIdParam, roleParam } from "../http/schemas";

export type OfrepErrorCode = "PARSE_ERROR" | "TARGETING_KEY_MISSING" | "INVALID_CONTEXT" | "GENERAL" | "FLAG_NOT_FOUND";
/** TARGETING_MATCH: evaluated against the customer; DEFAULT: Tollgate has no value, use the code default. */
export type OfrepReason = "TARGETING_MATCH" | "DEFAULT";
export type FlagMetadata = Record<string, string | number | boolean>;

export interface OfrepSuccess {
  key: string;
  value?: Json;
  reason: OfrepReason;
  variant: string;
  metadata: FlagMetadata;
}

export interface OfrepFailure {
  key: string;
  errorCode: OfrepErrorCode;
  errorDetails?: string;
}

/** What one feature's decision needs to become a flag (a check's Decision, or one entry of evaluateAll). */
export type FeatureDecision = Pick<Decision, "allowed" | "reason"> & Partial<Decision>;

/** OFREP metadata values are primitives only: nulls and absent fields are left out. */
function metadataOf(d: FeatureDecision, snapshotVersion?: number): FlagMetadata {
  const m: FlagMetadata = { reason: d.reason };
  if (d.type) m.type = d.type;
  const version = d.snapshotVersion ?? snapshotVersion;
  if (version !== undefined) m.snapshotVersion = version;
  for (const k of ["limit", "used", "remaining", "resetsAt", "expiresAt", "degraded", "failurePolicy"] as const) {
    const v = d[k];
    if (v !== undefined && v !== null) m[k] = v;
  }
  if (d.deniedBy) m.deniedBy = d.deniedBy;
  if (d.entity) m.entityId = d.entity.id;
  // Upsell hints (asked with context.include "upgrade"): plan ids, lowest tier first, comma-separated.
  if (d.upgrade) m.upgrade = d.upgrade.map((h) => h.planId).join(",");
  return m;
}

export function flagOf(key: string, d: FeatureDecision, snapshotVersion?: number): OfrepSuccess | OfrepFailure {
  if (d.reason === "unknown_feature")
    return { key, errorCode: "FLAG_NOT_FOUND", errorDetails: `No feature '${key}' in the catalog.` };
  const metadata = metadataOf(d, snapshotVersion);
  if (d.reason === "unknown_customer") return { key, reason: "DEFAULT", variant: d.reason, metadata };
  if (!d.type) {
    // KV and D1 unreachable: the feature's failure policy answered, a configured fallback.
    return { key, value: d.allowed, reason: "DEFAULT", variant: d.reason, metadata };
  }
  if (d.type === "config") {
    if (!d.allowed || d.value === undefined || d.value === null)
      return { key, reason: "DEFAULT", variant: d.reason, metadata };
    return { key, value: d.value as Json, reason: "TARGETING_MATCH", variant: d.reason, metadata };
  }
  return { key, value: d.allowed, reason: "TARGETING_MATCH", variant: d.reason, metadata };
}

export const isFailure = (f: OfrepSuccess | OfrepFailure): f is OfrepFailure => "errorCode" in f;

export interface EvaluationContext {
  customerId: string;
  /** targetingKey `customer/entity`: the entity inside the customer (docs/model.md, Entities). */
  entityId?: string;
  role?: string;
  country?: string;
  include?: "upgrade"[];
}

/** The OFREP context -> Tollgate's check context: targetingKey is the customer; country and role feed geo and role rules. */
export function parseContext(
  context: Record<string, unknown> | undefined,
):
  | { ok: true; value: EvaluationContext }
  | { ok: false; errorCode: "TARGETING_KEY_MISSING" | "INVALID_CONTEXT"; errorDetails: string } {
  const { targetingKey, country, role, include } = context ?? {};
  if (targetingKey === undefined || targetingKey === null || targetingKey === "") {
    return {
      ok: false,
      errorCode: "TARGETING_KEY_MISSING",
      errorDetails: "context.targetingKey (the Tollgate customer id) is required.",
    };
  }
  // The same rules as the check API's fields, so a context valid here is valid there. A customer id
  // holds no '/', so `customer/entity` names an entity inside the customer unambiguously.
  const [customerPart, ...rest] = typeof targetingKey === "string" ? targetingKey.split("/") : [targetingKey];
  const customerId = customerIdParam.safeParse(customerPart);
  const entityId = rest.length === 0 ? null : entityIdParam.safeParse(rest.join("/"));
  if (!customerId.success || entityId?.success === false)
    return {
      ok: false,
      errorCode: "INVALID_CONTEXT",
      errorDetails: "context.targetingKey is not a valid customer id, or customer/entity.",
    };
  const value: EvaluationContext = { customerId: customerId.data };
  if (entityId?.success) value.entityId = entityId.data;
  if (country !== undefined) {
    const parsed = countryParam.safeParse(country);
    if (!parsed.success)
      return {
        ok: false,
        errorCode: "INVALID_CONTEXT",
        errorDetails: "context.country must be an ISO 3166-1 alpha-2 code.",
      };
    value.country = parsed.data;
  }
  if (role !== undefined) {
    const parsed = roleParam.safeParse(role);
    if (!parsed.success)
      return {
        ok: false,
        errorCode: "INVALID_CONTEXT",
        errorDetails: "context.role must be a string of 1 to 64 characters.",
      };
    value.role = parsed.data;
  }
  // "upgrade", or a list holding it: a denial's metadata names what would allow it (metadata.upgrade).
  if (include !== undefined) {
    const asked = Array.isArray(include) ? include : [include];
    if (!asked.every((i) => i === "upgrade"))
      return { ok: false, errorCode: "INVALID_CONTEXT", errorDetails: 'context.include may only hold "upgrade".' };
    if (asked.length > 0) value.include = ["upgrade"];
  }
  return { ok: true, value };
}
