// When a metered check may answer from what this isolate last learnt of a customer's usage instead of
// asking the customer's meter (one Durable Object round trip, 100-250 ms when the meter is on another
// continent). A check is advisory: it admits nothing, the consume is decided by the meter, so a check
// answered from a summary can only be a wrong *answer*, never an over-admission. The rule keeps even
// that away from the limit, where it matters:
//   - usage cannot change the answer (no limit, or a soft limit without a cap): never ask the meter;
//   - otherwise answer locally only when the summary is at most `maxAgeMs` old AND the room left after
//     this check's quantity exceeds what usage can have grown since (its observed rate x its age) plus a
//     margin (10% of the bound, at least one unit); near the limit, or for a large quantity, ask the meter.
// Pure: the instant is a parameter.
import type { Allowance } from "./evaluate";

/** What the isolate last learnt of one counter (a peek, or a consume's answer), and how fast it grows. */
export interface UsageObservation {
  used: number;
  reserved: number;
  /** When it was learnt (ms). */
  at: number;
  /** The counter's period, so that a reset never reuses the previous period's usage. */
  periodStart: number | null;
  /** An upper estimate of the growth of used + reserved, in units per ms. */
  rate: number;
}

/** The share of the bound kept as a margin: within it of the limit, a check always asks the meter. */
export const NEAR_LIMIT_FRACTION = 0.1;

/** The most units that can ever be admitted (limit, plus the overage cap); null: usage never denies. */
export function admissionBound(a: Allowance): number | null {
  if (a.limit === null) return null;
  if (a.overage === "block") return a.limit;
  return a.overageCap === null ? null : a.limit + a.overageCap;
}

/**
 * A new observation, its rate estimated from the previous one of the same period: a rise is taken at
 * once, a fall only halves the estimate per observation, so one quiet interval does not forget a burst.
 */
export function observe(
  prev: UsageObservation | undefined,
  used: number,
  reserved: number,
  at: number,
  periodStart: number | null,
): UsageObservation {
  const same = prev !== undefined && prev.periodStart === periodStart;
  if (!same) return { used, reserved, at, periodStart, rate: 0 };
  if (at <= prev.at) return { used, reserved, at: prev.at, periodStart, rate: prev.rate };
  const observed = Math.max(0, (used + reserved - prev.used - prev.reserved) / (at - prev.at));
  return { used, reserved, at, periodStart, rate: Math.max(observed, prev.rate / 2) };
}

/** Whether `o` may answer a check for `quantity` more units at `now` (see the rule above). */
export function answersFromSummary(
  o: UsageObservation,
  q: { bound: number; quantity: number; now: number; maxAgeMs: number; periodStart: number | null },
): boolean {
  const age = q.now - o.at;
  if (q.maxAgeMs <= 0 || age < 0 || age > q.maxAgeMs || o.periodStart !== q.periodStart) return false;
  const margin = Math.max(1, q.bound * NEAR_LIMIT_FRACTION);
  return q.bound - o.used - o.reserved - q.quantity >= o.rate * age + margin;
}
