// explainFeature: for one feature of a snapshot, what the customer has at an instant and why: every
// source (plan, add-on, grant) with its window and what it did. Pure; built on resolveFeature so the
// explanation can never disagree with the check path's answer.
import { resolveFeature } from "./evaluate";
import type { CompiledSpec, FeatureType, LapseReason, Snapshot, SnapshotFeature, Source } from "./types";

/**
 * - contributing: inside its window and part of the effective entitlement
 * - replaced: inside its window, but a later "replace" grant discarded it
 * - no_effect: inside its window, but took nothing away and added nothing (e.g. a disabling add-on)
 * - scheduled: its window has not opened yet
 * - lapsed: its window has closed (`lapse` says why)
 */
/** "superseded": the window closed because a scheduled plan change took over (not a lapse). */
export type SourceState = "contributing" | "replaced" | "no_effect" | "scheduled" | "lapsed" | "superseded";

export interface ExplainedSource {
  kind: Source["kind"];
  id: string;
  subscriptionId?: string;
  /** The plan version a plan or add-on source comes from. */
  planVersion?: number;
  mode: Source["mode"];
  from: number | null;
  until: number | null;
  state: SourceState;
  lapse?: LapseReason;
  spec: CompiledSpec;
}

export interface ExplainedFeature {
  type: FeatureType;
  /** Whether the customer has the feature at the instant (before role, region and usage rules). */
  granted: boolean;
  effective: CompiledSpec | null;
  /** Why not, when a source that would grant it has lapsed. */
  lapse: LapseReason | null;
  /** The next instant at which a window opens or closes. */
  changesAt: number | null;
  sources: ExplainedSource[];
}

export function explainFeature(feature: SnapshotFeature, now: number): ExplainedFeature {
  const { effective, lapse, changeAt } = resolveFeature(feature, now);
  const contributing = new Set(effective?.sources ?? []);
  const active = (s: Source) => (s.from === null || now >= s.from) && (s.until === null || now < s.until);
  const lastReplace = feature.sources.findLastIndex((s) => active(s) && s.mode === "replace");
  const sources = feature.sources.map((s, i): ExplainedSource => {
    let state: SourceState;
    if (s.from !== null && now < s.from) state = "scheduled";
    else if (!active(s)) state = s.lapse ? "lapsed" : "superseded";
    else if (contributing.has(s)) state = "contributing";
    else state = i < lastReplace ? "replaced" : "no_effect";
    const out: ExplainedSource = {
      kind: s.kind,
      id: s.id,
      mode: s.mode,
      from: s.from,
      until: s.until,
      state,
      spec: s.spec,
    };
    if (s.subscriptionId) out.subscriptionId = s.subscriptionId;
    if (s.planVersion !== undefined) out.planVersion = s.planVersion;
    if (state === "lapsed" && s.lapse) out.lapse = s.lapse;
    return out;
  });
  return {
    type: feature.type,
    granted: effective?.spec.enabled === true,
    effective: effective?.spec ?? null,
    lapse: effective?.spec.enabled ? null : lapse,
    changesAt: changeAt === Infinity ? null : changeAt,
    sources,
  };
}

/** Every feature of a snapshot (or only `only`), explained at `now`. */
export function explainSnapshot(snapshot: Snapshot, now: number, only?: string): Record<string, ExplainedFeature> {
  const out: Record<string, ExplainedFeature> = {};
  for (const [key, feature] of Object.entries(snapshot.features)) {
    if (only === undefined || only === key) out[key] = explainFeature(feature, now);
  }
  return out;
}
