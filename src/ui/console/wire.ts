// The admin API's answers as the console's pages read them: only the fields a page shows. The routes'
// zod schemas (src/routes/admin/) are the contract; these are views of it.
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface CustomerDetail {
  id: string;
  name: string;
  residency: string | null;
  billingCustomerId: string | null;
  rev: number;
  createdAt: string;
}

export interface Subscription {
  id: string;
  planId: string;
  status: string;
  startedAt: string;
  trialEnd: string | null;
  currentPeriodStart: string | null;
  currentPeriodEnd: string | null;
  cancelAt: string | null;
  graceUntil: string | null;
  endedAt: string | null;
  scheduledPlanId: string | null;
  scheduledChangeAt: string | null;
}

export interface Spec {
  enabled?: boolean;
  limit?: number | null;
  reset?: string;
  overage?: string;
  value?: unknown;
  roles?: string[];
  allow?: string[];
  deny?: string[];
}

export interface ExplainedSource {
  kind: "plan" | "addon" | "grant";
  id: string;
  planVersion?: number;
  mode: "add" | "replace";
  from: string | null;
  until: string | null;
  state: string;
  lapse?: string;
  spec: Spec;
}

export interface Explained {
  snapshotVersion: number;
  evaluatedAt: string;
  features: Record<
    string,
    {
      type: "boolean" | "metered" | "config" | "credits" | "seats";
      granted: boolean;
      check: { allowed: boolean; reason: string };
      effective: Spec | null;
      lapse: string | null;
      changesAt: string | null;
      sources: ExplainedSource[];
    }
  >;
}

export interface EntitlementsAt {
  at: string;
  snapshotVersion: number;
  compiledAt: string;
  features: Record<string, { allowed: boolean; reason: string; limit?: number | null; value?: unknown }>;
}

export interface Grant {
  id: string;
  customerId: string;
  feature: string;
  mode: "add" | "replace";
  spec: Spec;
  reason: string;
  startsAt: string | null;
  expiresAt: string | null;
  status: "pending" | "active" | "rejected" | "revoked";
  elevated: boolean;
  proposedBy: string;
  decidedBy: string | null;
  decidedAt: string | null;
  createdAt: string;
}

export interface GrantWritten {
  grant: Grant;
  elevation?: { elevated: boolean; gains: string[] };
  version?: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  actorType: string;
  action: string;
  entityType: string;
  entityId: string;
  customerId: string | null;
  before: unknown;
  after: unknown;
  reason: string | null;
}

export interface CatalogFile {
  features?: Record<string, { type: string; description?: string; unit?: string }>;
  plans?: Record<string, PlanDef>;
  regionGroups?: Record<string, string[]>;
  prices?: Record<string, string | { credits: string; amount: number; expiresInDays?: number }>;
  [k: string]: unknown;
}

export interface PlanDef {
  name?: string;
  kind?: "base" | "addon";
  description?: string;
  entitlements: Record<string, unknown>;
  [k: string]: unknown;
}

export interface Plan {
  id: string;
  name: string;
  kind: "base" | "addon";
  description: string;
  entitlements: Record<string, unknown>;
  version: number;
}

export interface CatalogDiff {
  destructive: boolean;
  summary: {
    added: number;
    changed: number;
    removed: number;
    kept: number;
    customersLosing: number;
    customersGaining: number;
  };
  impact: {
    feature: string;
    effect: "gain" | "loss" | "change";
    plans: string[];
    details: string[];
    destructive: boolean;
    customers: number;
    examples: string[];
  }[];
  changes: { kind: string; op: string; id: string; effect: string; details: string[]; customers: number }[];
}

/** A spec in a few words: "on", "off", "limit 1000 / month", "= 50". */
export function specSummary(spec: Spec | null | undefined): string {
  if (!spec) return "nothing";
  if (spec.enabled === false) return "off";
  const parts: string[] = [];
  if (spec.limit !== undefined) parts.push(spec.limit === null ? "unlimited" : `limit ${spec.limit}`);
  if (spec.reset && spec.limit !== undefined) parts.push(`/ ${spec.reset}`);
  if (spec.overage === "allow") parts.push("(overage allowed)");
  if (spec.value !== undefined) parts.push(`= ${JSON.stringify(spec.value)}`);
  if (spec.roles?.length) parts.push(`roles ${spec.roles.join(", ")}`);
  if (spec.allow?.length) parts.push(`only in ${spec.allow.length} countries`);
  if (spec.deny?.length) parts.push(`not in ${spec.deny.join(", ")}`);
  return parts.length > 0 ? parts.join(" ") : "on";
}
