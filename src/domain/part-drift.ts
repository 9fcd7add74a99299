// Drift between a customer part stored in KV and a fresh compile from D1. Pure. compiledAt and
// catalogRev are ignored: compiling is otherwise time-independent (time windows are stored as instants),
// and a part's catalogRev only says which catalog it was read with (the catalog is verified on its own).
import { canonical } from "./catalog-diff";
import { type CustomerPart, isCustomerPart } from "./customer-part";

export type DriftKind = "missing" | "unreadable" | "stale" | "ahead" | "different";

export interface Drift {
  customerId: string;
  kind: DriftKind;
  kvVersion: number | null;
  freshVersion: number;
  /** Top-level fields whose content differs (for "stale", "ahead" and "different"). */
  fields: string[];
}

const COMPARED = ["format", "customerId", "rev", "residency", "meterShards", "subscriptions", "grants"] as const;

/** null when the KV copy answers every check exactly as a fresh compile would. */
export function partDrift(customerId: string, kvText: string | null, fresh: CustomerPart): Drift | null {
  const base = { customerId, freshVersion: fresh.rev };
  if (kvText === null) return { ...base, kind: "missing", kvVersion: null, fields: [] };
  let stored: unknown;
  try {
    stored = JSON.parse(kvText);
  } catch {
    stored = null;
  }
  if (!isCustomerPart(stored)) return { ...base, kind: "unreadable", kvVersion: null, fields: [] };
  const fields = COMPARED.filter((key) => canonical(stored[key]) !== canonical(fresh[key]));
  if (fields.length === 0) return null;
  const kind: DriftKind = stored.rev < fresh.rev ? "stale" : stored.rev > fresh.rev ? "ahead" : "different";
  return { ...base, kind, kvVersion: stored.rev, fields: [...fields] };
}
