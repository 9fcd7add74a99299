// Usage reset periods. Pure: every instant comes in as an argument (ms since the epoch, UTC) and
// nothing here reads the clock or a binding. This runs on every metered check, so it sticks to
// integer arithmetic, Date.UTC and getUTC* (no Intl, no string parsing, one allocation per call).
import type { ResetAnchor, ResetPeriod } from "./types";

/** A usage period [start, end). `end` is null for reset "none" (a gauge that never resets; start is 0). */
export interface Period {
  start: number;
  end: number | null;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
/** 1970-01-05T00:00Z: the epoch fell on a Thursday, so this is the first ISO week start after it. */
const FIRST_MONDAY = 4 * DAY;

// One Date, reused, so decomposing an instant into UTC fields allocates nothing. Safe because no
// code runs between a setTime and the getUTC* reads that follow it (nothing here awaits).
const scratch = new Date(0);

/** The period containing `now` (ms since epoch, UTC). */
export function periodAt(reset: ResetPeriod, anchor: ResetAnchor, anchorAt: number | null, now: number): Period {
  if (reset === "none") return { start: 0, end: null };
  const origin = originOf(reset, anchor, anchorAt);
  if (reset === "month") return byMonths(1, origin, now);
  if (reset === "year") return byMonths(12, origin, now);
  const length = lengthOf(reset);
  // Fixed-length periods: origin + k * length, k negative when now < origin. A non-negative
  // remainder (rather than floor of a division) keeps this exact in integer milliseconds.
  const start = now - mod(now - origin, length);
  return { start, end: start + length };
}

/**
 * A name for how a reset cuts time into periods, the same for two (reset, anchor, anchorAt) exactly
 * when periodAt gives them the same periods at every instant: what an anchor contributes is only its
 * phase (time of day for days, day of month and time for months, ...). A calendar month and a
 * billing month anchored at a 1st, 00:00 are one definition; billing anchors on Jan 31 and Mar 31
 * are one (both clamp to the end of short months); Jan 30 and Jan 31 are two. The meter keeps one
 * counter per feature and definition (meter/customer-meter.ts).
 */
export function periodDefinition(reset: ResetPeriod, anchor: ResetAnchor, anchorAt: number | null): string {
  if (reset === "none") return "none";
  const origin = originOf(reset, anchor, anchorAt);
  if (reset !== "month" && reset !== "year") return `${reset}+${mod(origin, lengthOf(reset))}`;
  scratch.setTime(origin);
  const day = `${scratch.getUTCDate()}T${mod(origin, DAY)}`;
  // byMonths: boundaries are every `step` months from the origin's month, at its day and time.
  return reset === "month" ? `month+${day}` : `year+${scratch.getUTCMonth()}-${day}`;
}

/**
 * Where a reset's periods are counted from. A calendar period is just a billing period anchored on
 * a calendar boundary: the epoch is a midnight, a 1st of the month and a Jan 1; ISO weeks start on
 * Monday. One code path for both. A billing anchor that is not set yet (null) falls back to the calendar.
 */
function originOf(reset: ResetPeriod, anchor: ResetAnchor, anchorAt: number | null): number {
  return anchor === "billing" && anchorAt !== null ? anchorAt : reset === "week" ? FIRST_MONDAY : 0;
}

const lengthOf = (reset: "hour" | "day" | "week") => (reset === "hour" ? HOUR : reset === "day" ? DAY : WEEK);

/**
 * Periods of `step` calendar months aligned to `origin`. The k-th boundary is origin's
 * day-of-month and time-of-day in month (originMonth + k * step), the day clamped to that month's
 * length. Every boundary is computed from the ORIGINAL origin, never from the previous boundary:
 * stepping cumulatively would let one short month shift the anchor for good (Jan 31 -> Feb 28 ->
 * Mar 28 ...), whereas the customer was billed on the 31st and expects Mar 31.
 */
function byMonths(step: number, origin: number, now: number): Period {
  scratch.setTime(origin);
  const first = scratch.getUTCFullYear() * 12 + scratch.getUTCMonth(); // months since year 0
  const day = scratch.getUTCDate();
  const timeOfDay = mod(origin, DAY); // UTC has no DST: every day is exactly DAY long
  scratch.setTime(now);
  const elapsed = scratch.getUTCFullYear() * 12 + scratch.getUTCMonth() - first;
  // Boundary k falls in a month <= now's month and boundary k + 1 in a later month, so only
  // boundary k can overshoot now (same month, later day or time); then step back by one.
  let k = Math.floor(elapsed / step);
  let start = boundary(first + k * step, day, timeOfDay);
  if (start > now) start = boundary(first + --k * step, day, timeOfDay);
  return { start, end: boundary(first + (k + 1) * step, day, timeOfDay) };
}

/** The instant at `day` (clamped) + `timeOfDay` in the month numbered `month` since year 0. */
function boundary(month: number, day: number, timeOfDay: number): number {
  const year = Math.floor(month / 12);
  const m = month - year * 12;
  // The month is passed as an offset from 1970 because Date.UTC reads years 0-99 as 1900-1999.
  return Date.UTC(1970, month - 1970 * 12, Math.min(day, daysInMonth(year, m))) + timeOfDay;
}

function daysInMonth(year: number, month: number): number {
  if (month === 1) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 3 || month === 5 || month === 8 || month === 10 ? 30 : 31;
}

/** Remainder with the sign of the divisor, so instants before the origin or the epoch work. */
function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
