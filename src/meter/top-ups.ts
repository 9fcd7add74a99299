// A meter's top-ups (issue 17, docs/model.md "Credits"): credits granted once, for a window (a grant
// with `topUp: true` on a credits feature), drawn before the period's allowance, soonest expiry first.
// The snapshot says which top-ups are open and how large (domain/evaluate.ts Effective.topUps); the
// meter keeps how much of each was drawn, in table top_ups (meter/schema.ts), decided in the same
// synchronous step as the counters.
import type { TopUp } from "../domain/types";

/** How a draw of credits splits: what each top-up gives, in order, and the rest for the period's allowance. */
export interface TopUpSplit {
  takes: { topUp: TopUp; take: number }[];
  rest: number;
}

/** How long a drawn top-up's row is kept after its expiry (a late snapshot may still name it). */
const KEEP_AFTER_EXPIRY_MS = 7 * 24 * 3600_000;

export class TopUps {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Credits left in the open top-ups of `feature` at `now`. */
  left(feature: string, topUps: readonly TopUp[], now: number): number {
    let left = 0;
    for (const t of topUps)
      if (t.until === null || t.until > now) left += Math.max(0, t.amount - this.#used(feature, t.id));
    return left;
  }

  /** Splits `need` credits over the open top-ups (in the given order) as far as they have credits left. */
  split(feature: string, topUps: readonly TopUp[], need: number, now: number): TopUpSplit {
    const takes: TopUpSplit["takes"] = [];
    let rest = need;
    for (const topUp of topUps) {
      if (rest <= 0) break;
      if (topUp.until !== null && topUp.until <= now) continue;
      const take = Math.min(rest, Math.max(0, topUp.amount - this.#used(feature, topUp.id)));
      if (take <= 0) continue;
      takes.push({ topUp, take });
      rest -= take;
    }
    return { takes, rest };
  }

  /** Records the split's draws. */
  apply(feature: string, split: TopUpSplit): void {
    for (const { topUp, take } of split.takes)
      this.#sql.exec(
        `INSERT INTO top_ups (feature, grant_id, used, until) VALUES (?, ?, ?, ?)
         ON CONFLICT (feature, grant_id) DO UPDATE SET used = used + excluded.used`,
        feature,
        topUp.id,
        take,
        topUp.until,
      );
  }

  /** Forgets top-ups that expired a while ago. */
  collect(now: number): void {
    this.#sql.exec("DELETE FROM top_ups WHERE until IS NOT NULL AND until < ?", now - KEEP_AFTER_EXPIRY_MS);
  }

  #used(feature: string, id: string): number {
    const row = this.#sql.exec("SELECT used FROM top_ups WHERE feature = ? AND grant_id = ?", feature, id).toArray()[0];
    return row ? Number(row.used) : 0;
  }
}
