// Plan versions at check time. Pure.
//
// Editing a plan's entitlements makes a new immutable version; the plan's current version is what new
// subscriptions get, and every subscription pins the version it is on (grandfathering). Moving existing
// subscribers to a newer version is a migration, stored ONCE per plan (not per subscriber) and resolved
// here, for each subscription, into the instants at which its version changes:
// - "now": every subscription on an older version moves at the migration's instant;
// - "at_period_end": each one moves at the end of its own billing period in force when the migration
//   started (a subscription with no period end moves at once; one renewed since then has moved at its
//   renewal). A cancelled migration moves nobody whose instant is at or after the cancellation.
// Versions only grow: once moved, a subscription never goes back. What a move does to usage: nothing
// resets; the meter keeps counting the same period (its counter is keyed by the period definition, so
// only a new reset period or anchor starts a new counter), and the new version's limit applies.

export type MigrationMode = "now" | "at_period_end";

export interface PlanMigrationRule {
  toVersion: number;
  mode: MigrationMode;
  at: number;
  cancelledAt: number | null;
}

/** What a subscription contributes: its pinned version (null: the plan's current) and its period. */
export interface VersionedSubscription {
  planVersion: number | null;
  periodStart: number | null;
  periodEnd: number | null;
}

export interface VersionSegment {
  version: number;
  from: number | null;
  until: number | null;
}

/** The instant a migration moves this subscription (null: never, it was cancelled first). */
export function moveInstant(m: PlanMigrationRule, sub: VersionedSubscription): number | null {
  let at = m.at;
  if (m.mode === "at_period_end") {
    if (sub.periodStart !== null && sub.periodStart >= m.at) at = sub.periodStart;
    else if (sub.periodEnd !== null && sub.periodEnd > m.at) at = sub.periodEnd;
  }
  return m.cancelledAt !== null && at >= m.cancelledAt ? null : at;
}

/**
 * The versions a subscription is on over the window [from, until), in order: one segment when no
 * migration moves it inside the window. `pinned` null means the plan's current version (a scheduled
 * plan change, or a row written before versions existed).
 */
export function versionSegments(
  current: number,
  migrations: readonly PlanMigrationRule[],
  sub: VersionedSubscription,
  from: number | null,
  until: number | null,
): VersionSegment[] {
  const pinned = sub.planVersion ?? current;
  const moves: { at: number; to: number }[] = [];
  for (const m of migrations) {
    if (m.toVersion <= pinned) continue;
    const at = moveInstant(m, sub);
    if (at !== null) moves.push({ at, to: m.toVersion });
  }
  moves.sort((a, b) => a.at - b.at || a.to - b.to);
  const segments: VersionSegment[] = [];
  let version = pinned;
  let start = from;
  for (const move of moves) {
    if (move.to <= version) continue;
    if (from !== null && move.at <= from) {
      version = move.to; // already moved when the window opens
      continue;
    }
    if (until !== null && move.at >= until) break;
    segments.push({ version, from: start, until: move.at });
    version = move.to;
    start = move.at;
  }
  segments.push({ version, from: start, until });
  return segments;
}
