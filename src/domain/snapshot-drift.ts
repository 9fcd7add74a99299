// Drift between a snapshot stored in KV and a fresh compile from D1. Pure. compiledAt is ignored:
// compiling is otherwise time-independent (time windows are stored as instants), so two compiles of
// the same rows differ only there.
import { canonical } from "./catalog-diff";
import type { Snapshot } from "./types";

export type DriftKind = "missing" | "unreadable" | "stale" | "ahead" | "different";

export interface Drift {
  customerId: string;
  kind: DriftKind;
  kvVersion: number | null;
  freshVersion: number;
  /** Top-level fields and feature keys whose content differs (for "stale", "ahead" and "different"). */
  fields: string[];
}

/** null when the KV copy answers every check exactly as a fresh compile would. */
export function snapshotDrift(customerId: string, kvText: string | null, fresh: Snapshot): Drift | null {
  const base = { customerId, freshVersion: fresh.version };
  if (kvText === null) return { ...base, kind: "missing", kvVersion: null, fields: [] };
  let stored: Snapshot;
  try {
    stored = JSON.parse(kvText) as Snapshot;
    if (typeof stored !== "object" || stored === null || typeof stored.version !== "number")
      throw new Error("not a snapshot");
  } catch {
    return { ...base, kind: "unreadable", kvVersion: null, fields: [] };
  }
  const fields = differingFields(stored, fresh);
  if (fields.length === 0) return null;
  const kind: DriftKind =
    stored.version < fresh.version ? "stale" : stored.version > fresh.version ? "ahead" : "different";
  return { ...base, kind, kvVersion: stored.version, fields };
}

// `version` is not compared: a catalog write raises every customer's version (catalog_rev), but a plan
// change recompiles only that plan's customers, so the others keep an older number on identical content,
// which answers every check the same. The version still decides the kind when content differs.
function differingFields(a: Snapshot, b: Snapshot): string[] {
  const out: string[] = [];
  for (const key of ["format", "customerId", "residency"] as const) {
    if (canonical(a[key]) !== canonical(b[key])) out.push(key);
  }
  const features = new Set([...Object.keys(a.features ?? {}), ...Object.keys(b.features ?? {})]);
  for (const f of [...features].sort()) {
    if (canonical(a.features?.[f]) !== canonical(b.features?.[f])) out.push(`features.${f}`);
  }
  return out;
}
