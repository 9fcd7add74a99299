// A meter's entities (issue 17, docs/model.md "Entities"): the users, seats or devices inside its
// customer. Two tables (meter/schema.ts, version 9), both bounded by the customer's entities, never by
// traffic: `entity_counters`, one row per (feature, entity) with that entity's usage in its current
// per-entity period (a row of an earlier period reads as 0 and is overwritten by the next use; the pooled counter is the
// ledger's, so a closed entity period needs no total of its own), and `seats`, the seats of each
// seats feature assigned to named entities. The meter decides with both in the same synchronous step
// as the pooled counter (meter/customer-meter.ts), so the per-entity and the pooled bound hold together.
import { boundFits } from "../domain/entities";
import { periodAt } from "../domain/periods";
import type { EntityCall, EntityLimit, MeterPeriod, SeatAnswer } from "./protocol";

/** One per-entity bound of a call: its limit, the entity's usage in its period, and what the call adds. */
export interface EntityBound {
  feature: string;
  limit: number;
  period: MeterPeriod;
  used: number;
  /** Held for the entity by its open reservations of the feature. */
  reserved: number;
  amount: number;
}

/** A call's entity as the meter sees it before deciding. */
export interface EntityState {
  id: string;
  /** The seat the feature needs, and whether the entity holds it (absent: none needed). */
  seat?: { feature: string; held: boolean };
  bounds: EntityBound[];
}

export class Entities {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /**
   * The entity of a call: its seat, and each bound with what the call would add (`amounts` by feature) and
   * what the entity's open reservations hold of it (`reservedOf`).
   */
  state(
    call: EntityCall,
    amounts: Record<string, number>,
    now: number,
    reservedOf: (feature: string) => number = () => 0,
  ): EntityState {
    const seat = call.seat ? { seat: { feature: call.seat, held: this.holds(call.seat, call.id) } } : {};
    const bounds = call.limits.map((l) => ({
      ...this.#bound(l, call.id, now),
      reserved: reservedOf(l.feature),
      amount: amounts[l.feature] ?? 0,
    }));
    return { id: call.id, ...seat, bounds };
  }

  /** Whether every bound takes what the call adds (a negative amount, a gauge going down, always fits). */
  fits(state: EntityState): boolean {
    return state.bounds.every(boundFits);
  }

  /** Applies the call to the entity's counters (floored at zero), in the same step as the pooled counter. */
  apply(state: EntityState): void {
    for (const b of state.bounds) {
      if (b.amount === 0) continue;
      b.used = Math.max(0, b.used + b.amount);
      this.#sql.exec(
        `INSERT INTO entity_counters (feature, entity_id, period_start, period_end, used) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (feature, entity_id) DO UPDATE SET period_start = excluded.period_start,
           period_end = excluded.period_end, used = excluded.used`,
        b.feature,
        state.id,
        b.period.start,
        b.period.end,
        b.used,
      );
    }
  }

  /** The entity's usage of each limit's feature in its current period (a read: a check, GET /v1/entities). */
  read(id: string, limits: readonly EntityLimit[], now: number): Record<string, EntityBound> {
    const out: Record<string, EntityBound> = {};
    for (const l of limits) out[l.feature] = { ...this.#bound(l, id, now), reserved: 0, amount: 0 };
    return out;
  }

  holds(feature: string, id: string): boolean {
    const row = this.#sql.exec("SELECT 1 FROM seats WHERE feature = ? AND entity_id = ?", feature, id).toArray();
    return row.length > 0;
  }

  /** Seats of `feature` assigned now. */
  assigned(feature: string): number {
    return Number(this.#sql.exec("SELECT COUNT(*) AS n FROM seats WHERE feature = ?", feature).one().n);
  }

  /**
   * Assigns a seat of `feature` to the entity when one is free (`limit` seats in all; null: unlimited).
   * An entity holding one already keeps it (assigning again is a no-op), even after a downgrade left
   * more seats assigned than the limit: seats are never taken away, new ones wait until enough are released.
   */
  assign(feature: string, id: string, limit: number | null, entitled: boolean, now: number): SeatAnswer {
    if (this.holds(feature, id)) return this.#answer(true, feature, limit);
    if (!entitled) return { ...this.#answer(false, feature, limit), reason: "not_entitled" };
    if (limit !== null && this.assigned(feature) >= limit)
      return { ...this.#answer(false, feature, limit), reason: "limit_reached" };
    this.#sql.exec("INSERT INTO seats (feature, entity_id, assigned_at) VALUES (?, ?, ?)", feature, id, now);
    return this.#answer(true, feature, limit);
  }

  /** Frees the entity's seat of `feature` (a no-op when it holds none). */
  release(feature: string, id: string, limit: number | null): SeatAnswer {
    this.#sql.exec("DELETE FROM seats WHERE feature = ? AND entity_id = ?", feature, id);
    return this.#answer(false, feature, limit);
  }

  /** The seats the entity holds, with when each was assigned. */
  seatsOf(id: string): { feature: string; assignedAt: number }[] {
    return this.#sql
      .exec("SELECT feature, assigned_at FROM seats WHERE entity_id = ? ORDER BY feature", id)
      .toArray()
      .map((r) => ({ feature: String(r.feature), assignedAt: Number(r.assigned_at) }));
  }

  /** Drops the counters of periods that ended (an entity's next touch would reset them anyway). */
  collect(now: number): void {
    this.#sql.exec("DELETE FROM entity_counters WHERE period_end IS NOT NULL AND period_end <= ?", now);
  }

  #answer(assigned: boolean, feature: string, limit: number | null): SeatAnswer {
    const used = this.assigned(feature);
    return { assigned, used, limit, remaining: limit === null ? null : Math.max(0, limit - used) };
  }

  /** The entity's counter of a limit's feature in the limit's current period (0: none yet, or of an earlier period). */
  #bound(l: EntityLimit, id: string, now: number): Omit<EntityBound, "amount" | "reserved"> {
    const period = periodAt(l.terms.reset, l.terms.anchor, l.terms.anchorAt, now);
    const row = this.#sql
      .exec(
        "SELECT used, period_start, period_end FROM entity_counters WHERE feature = ? AND entity_id = ?",
        l.feature,
        id,
      )
      .toArray()[0];
    const current =
      row &&
      Number(row.period_start) === period.start &&
      (row.period_end === null ? null : Number(row.period_end)) === period.end;
    return { feature: l.feature, limit: l.limit, period, used: current ? Number(row.used) : 0 };
  }
}
