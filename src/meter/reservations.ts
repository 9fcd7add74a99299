// A meter's reservations: units held for work whose cost is known later. Open reservations count
// against the allowance until they are settled, released or expire; each keeps the allowance and
// period terms it was made under, so settling needs no snapshot. Closed ones keep their answer
// (settling twice returns the first answer) until garbage collection.
//
// Only the reservations table's rows; the decisions that use them are the meter's (customer-meter.ts).
import type { Allowance } from "../domain/evaluate";
import type { EntityCall, MeterResult, PeriodTerms, ReserveCall, UsageAnswer } from "./protocol";

export type ClosedState = "settled" | "released";

/** An open reservation about to be settled or released. */
export interface Held {
  feature: string;
  amount: number;
  /** wholeUnits is absent from reservations made before it was kept (they live a day at most). */
  terms: PeriodTerms & { allowance: Allowance; wholeUnits?: boolean; entity?: EntityCall };
}

export class Reservations {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Units of `feature` held by reservations open at `now`. */
  held(feature: string, now: number): number {
    const sum =
      "SELECT COALESCE(SUM(amount), 0) AS r FROM reservations WHERE feature = ? AND state = 'open' AND expires_at > ?";
    return Number(this.#sql.exec(sum, feature, now).one().r);
  }

  /** Units of `feature` held for one entity by its reservations open at `now` (docs/model.md, Entities). */
  heldBy(feature: string, entityId: string, now: number): number {
    const sum = `SELECT COALESCE(SUM(amount), 0) AS r FROM reservations
      WHERE feature = ? AND state = 'open' AND expires_at > ? AND json_extract(terms, '$.entity.id') = ?`;
    return Number(this.#sql.exec(sum, feature, now, entityId).one().r);
  }

  /** Opens a reservation of the call's amount (for the call's entity, if it names one). */
  open(call: ReserveCall, prefix = "res_"): { reservationId: string; expiresAt: number } {
    const reservationId = `${prefix}${crypto.randomUUID()}`;
    const expiresAt = call.now + call.ttlSeconds * 1000;
    const entity = call.entity ? { entity: call.entity } : {};
    const terms = JSON.stringify({ allowance: call.allowance, ...call.terms, wholeUnits: call.wholeUnits, ...entity });
    this.#sql.exec(
      "INSERT INTO reservations (id, feature, amount, expires_at, state, terms, created_at) VALUES (?, ?, ?, ?, 'open', ?, ?)",
      reservationId,
      call.feature,
      call.amount,
      expiresAt,
      terms,
      call.now,
    );
    return { reservationId, expiresAt };
  }

  /** The reservation to close, or the answer instead: unknown, closed the same way before (a replay), or closed otherwise. */
  closable(id: string, to: ClosedState, now: number): Held | MeterResult {
    const r = this.#sql
      .exec("SELECT feature, amount, expires_at, state, terms, answer FROM reservations WHERE id = ?", id)
      .toArray()[0];
    if (!r) return { ok: false, error: "reservation_not_found", detail: `No reservation '${id}'.` };
    if (r.state === to && r.answer)
      return { ok: true, answer: { ...(JSON.parse(String(r.answer)) as UsageAnswer), replayed: true } };
    const expired = r.state === "expired" || (r.state === "open" && Number(r.expires_at) <= now);
    if (r.state !== "open" || expired)
      return {
        ok: false,
        error: "reservation_closed",
        detail: `Reservation '${id}' is ${expired ? "expired" : r.state}.`,
      };
    return { feature: String(r.feature), amount: Number(r.amount), terms: JSON.parse(String(r.terms)) };
  }

  close(id: string, to: ClosedState, now: number): void {
    this.#sql.exec("UPDATE reservations SET state = ?, closed_at = ? WHERE id = ?", to, now, id);
  }

  /** Keeps the answer of a closed reservation, for a repeated settle or release. */
  remember(id: string, answer: UsageAnswer): void {
    this.#sql.exec("UPDATE reservations SET answer = ? WHERE id = ?", JSON.stringify(answer), id);
  }

  /** Marks every reservation past its expiry as expired; their units are free again. */
  expire(now: number): void {
    this.#sql.exec(
      "UPDATE reservations SET state = 'expired', closed_at = ? WHERE state = 'open' AND expires_at <= ?",
      now,
      now,
    );
  }

  deleteClosedBefore(at: number): void {
    this.#sql.exec("DELETE FROM reservations WHERE state != 'open' AND closed_at < ?", at);
  }

  /** When the next open reservation expires (null: none open). */
  nextExpiry(): number | null {
    const next = this.#sql.exec("SELECT MIN(expires_at) AS t FROM reservations WHERE state = 'open'").one().t;
    return next === null ? null : Number(next);
  }
}
