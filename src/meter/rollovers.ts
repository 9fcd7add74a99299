// Rollover of unused allowance (issue 17, docs/model.md "Rollover"): an entitlement with
// `rollover: { max, periods }` carries what its period left unused into the next `periods` periods,
// while the carried balance stays at most `max`. The meter makes the carry when it closes the
// period's counter (lazily, at the first touch after the period ended: meter/customer-meter.ts), for
// every period that ended since, untouched ones included (they left the whole limit unused). A carry
// is kept as a balance with a window [end of its period, end of `periods` periods later), and is
// drawn like a top-up (meter/top-ups.ts): soonest expiry first, before the new period's allowance.
import { periodAt } from "../domain/periods";
import type { TopUp } from "../domain/types";
import type { PeriodTerms } from "./protocol";
import type { TopUps } from "./top-ups";

/** At most this many ended periods are carried through at one close (an hourly reset idle for a month is 720). */
const MAX_PERIODS_CARRIED = 1000;

export class Rollovers {
  readonly #sql: SqlStorage;
  readonly #topUps: TopUps;

  constructor(sql: SqlStorage, topUps: TopUps) {
    this.#sql = sql;
    this.#topUps = topUps;
  }

  /** The carried balances of `feature` open at `now`, soonest expiry first. */
  open(feature: string, now: number): TopUp[] {
    return this.#sql
      .exec(
        "SELECT id, amount, from_at, until FROM rollovers WHERE feature = ? AND from_at <= ? AND until > ? ORDER BY until, id",
        feature,
        now,
        now,
      )
      .toArray()
      .map((r) => ({ id: String(r.id), amount: Number(r.amount), from: Number(r.from_at), until: Number(r.until) }));
  }

  /**
   * A counter of `feature` whose period ended, under terms with a rollover: carries its unused allowance,
   * and that of every period that ended after it before `now` (untouched: their whole limit), each
   * capped so the open carried balance never exceeds `max`.
   */
  carry(feature: string, closed: { start: number; end: number; used: number }, terms: PeriodTerms, now: number): void {
    const r = terms.rollover;
    if (!r) return;
    let period = { start: closed.start, end: closed.end as number | null };
    let used = closed.used;
    for (let i = 0; i < MAX_PERIODS_CARRIED && period.end !== null && period.end <= now; i++) {
      const end = period.end;
      const balance = this.#topUps.left(feature, this.open(feature, end), end);
      const amount = Math.min(Math.max(0, r.limit - used), Math.max(0, r.max - balance));
      if (amount > 0) {
        let last = periodAt(terms.reset, terms.anchor, terms.anchorAt, end);
        for (let k = 1; k < r.periods && last.end !== null; k++)
          last = periodAt(terms.reset, terms.anchor, terms.anchorAt, last.end);
        this.#sql.exec(
          "INSERT OR IGNORE INTO rollovers (feature, id, amount, from_at, until) VALUES (?, ?, ?, ?, ?)",
          feature,
          `rollover:${period.start}`,
          amount,
          end,
          last.end ?? end,
        );
      }
      period = periodAt(terms.reset, terms.anchor, terms.anchorAt, end);
      used = 0;
    }
  }

  /** Forgets carried balances that expired before `before`. */
  collect(before: number): void {
    this.#sql.exec("DELETE FROM rollovers WHERE until < ?", before);
  }
}
