import { describe, expect, it } from "vitest";
import { type Period, periodAt } from "../src/domain/periods";
import type { ResetAnchor, ResetPeriod } from "../src/domain/types";
import { DAY_MS, HOUR_MS } from "./helpers/time";

const WEEK = 7 * DAY_MS;

const t = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad instant in test: ${iso}`);
  return ms;
};
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
/** A period as ISO strings, so failures read as dates rather than milliseconds. */
const show = (p: Period): [string | null, string | null] => [iso(p.start), iso(p.end)];
const cal = (reset: ResetPeriod, now: string) => show(periodAt(reset, "calendar", null, t(now)));
const bill = (reset: ResetPeriod, anchorAt: string, now: string | number) =>
  show(periodAt(reset, "billing", t(anchorAt), typeof now === "number" ? now : t(now)));

/** The starts of `count` consecutive periods, walking forward from the one containing `from`. */
function starts(reset: ResetPeriod, anchorAt: string, from: string, count: number): (string | null)[] {
  const out: (string | null)[] = [];
  let p = periodAt(reset, "billing", t(anchorAt), t(from));
  for (let i = 0; i < count; i++) {
    out.push(iso(p.start));
    p = periodAt(reset, "billing", t(anchorAt), p.end!);
  }
  return out;
}

describe("reset none", () => {
  it("is one endless period from 0, whatever the anchor or instant", () => {
    for (const anchor of ["calendar", "billing"] as const) {
      for (const anchorAt of [null, 0, t("2024-01-31T10:00:00Z"), -123456789]) {
        for (const now of [0, 1, -1, t("2024-02-29T12:34:56.789Z"), 8.64e15]) {
          expect(periodAt("none", anchor, anchorAt, now)).toEqual({ start: 0, end: null });
        }
      }
    }
  });
});

describe("calendar anchor", () => {
  it("hour", () => {
    expect(cal("hour", "2024-03-15T10:37:12.345Z")).toEqual(["2024-03-15T10:00:00.000Z", "2024-03-15T11:00:00.000Z"]);
    expect(cal("hour", "2024-12-31T23:59:59.999Z")).toEqual(["2024-12-31T23:00:00.000Z", "2025-01-01T00:00:00.000Z"]);
  });

  it("day", () => {
    expect(cal("day", "2024-03-15T10:37:12.345Z")).toEqual(["2024-03-15T00:00:00.000Z", "2024-03-16T00:00:00.000Z"]);
    expect(cal("day", "2024-02-29T23:59:59.999Z")).toEqual(["2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"]);
  });

  it("week: ISO weeks start on Monday 00:00 UTC", () => {
    // 2024-03-15 is a Friday.
    expect(cal("week", "2024-03-15T10:37:12.345Z")).toEqual(["2024-03-11T00:00:00.000Z", "2024-03-18T00:00:00.000Z"]);
    expect(cal("week", "2024-03-11T00:00:00.000Z")).toEqual(["2024-03-11T00:00:00.000Z", "2024-03-18T00:00:00.000Z"]);
  });

  it("week: the last millisecond of Sunday still belongs to the week that began Monday", () => {
    expect(cal("week", "2024-03-17T23:59:59.999Z")).toEqual(["2024-03-11T00:00:00.000Z", "2024-03-18T00:00:00.000Z"]);
    expect(cal("week", "2024-03-18T00:00:00.000Z")).toEqual(["2024-03-18T00:00:00.000Z", "2024-03-25T00:00:00.000Z"]);
  });

  it("week: a week crossing the new year", () => {
    // 2025-01-01 is a Wednesday; 2020-12-31 is a Thursday.
    expect(cal("week", "2025-01-01T12:00:00.000Z")).toEqual(["2024-12-30T00:00:00.000Z", "2025-01-06T00:00:00.000Z"]);
    expect(cal("week", "2024-12-31T23:59:59.999Z")).toEqual(["2024-12-30T00:00:00.000Z", "2025-01-06T00:00:00.000Z"]);
    expect(cal("week", "2021-01-03T23:59:59.999Z")).toEqual(["2020-12-28T00:00:00.000Z", "2021-01-04T00:00:00.000Z"]);
  });

  it("month", () => {
    expect(cal("month", "2024-02-29T23:59:59.999Z")).toEqual(["2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"]);
    expect(cal("month", "2025-02-14T00:00:00.000Z")).toEqual(["2025-02-01T00:00:00.000Z", "2025-03-01T00:00:00.000Z"]);
    expect(cal("month", "2024-12-31T23:59:59.999Z")).toEqual(["2024-12-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"]);
    expect(cal("month", "2025-01-01T00:00:00.000Z")).toEqual(["2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z"]);
  });

  it("year", () => {
    expect(cal("year", "2024-07-04T12:00:00.000Z")).toEqual(["2024-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"]);
    expect(cal("year", "2024-12-31T23:59:59.999Z")).toEqual(["2024-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"]);
    expect(cal("year", "2025-01-01T00:00:00.000Z")).toEqual(["2025-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"]);
  });

  it("instants before the epoch", () => {
    // 1970-01-01 was a Thursday, so that week began Monday 1969-12-29.
    expect(cal("hour", "1969-12-31T23:30:00.000Z")).toEqual(["1969-12-31T23:00:00.000Z", "1970-01-01T00:00:00.000Z"]);
    expect(cal("day", "1969-12-31T12:00:00.000Z")).toEqual(["1969-12-31T00:00:00.000Z", "1970-01-01T00:00:00.000Z"]);
    expect(cal("week", "1970-01-01T00:00:00.000Z")).toEqual(["1969-12-29T00:00:00.000Z", "1970-01-05T00:00:00.000Z"]);
    expect(cal("month", "1969-12-31T23:59:59.999Z")).toEqual(["1969-12-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z"]);
    expect(cal("year", "1969-06-01T00:00:00.000Z")).toEqual(["1969-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z"]);
  });

  it("the boundary millisecond starts the new period; the one before ends the old", () => {
    const cases: [ResetPeriod, string, string][] = [
      ["hour", "2024-03-15T10:00:00.000Z", "2024-03-15T09:00:00.000Z"],
      ["day", "2024-03-01T00:00:00.000Z", "2024-02-29T00:00:00.000Z"],
      ["week", "2024-03-18T00:00:00.000Z", "2024-03-11T00:00:00.000Z"],
      ["month", "2024-03-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z"],
      ["year", "2025-01-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z"],
    ];
    for (const [reset, edge, previous] of cases) {
      expect(periodAt(reset, "calendar", null, t(edge)).start).toBe(t(edge));
      expect(show(periodAt(reset, "calendar", null, t(edge) - 1))).toEqual([previous, edge]);
    }
  });

  it("ignores anchorAt", () => {
    for (const reset of ["hour", "day", "week", "month", "year"] as const) {
      const now = t("2024-05-17T13:14:15.161Z");
      expect(periodAt(reset, "calendar", t("2023-01-31T07:08:09.010Z"), now)).toEqual(
        periodAt(reset, "calendar", null, now),
      );
    }
  });
});

describe("billing anchor without anchorAt", () => {
  it("falls back to calendar", () => {
    for (const reset of ["hour", "day", "week", "month", "year"] as const) {
      for (const now of [t("2024-02-29T23:59:59.999Z"), t("2025-01-01T00:00:00.000Z"), t("1969-07-20T20:17:40.000Z")]) {
        expect(periodAt(reset, "billing", null, now)).toEqual(periodAt(reset, "calendar", null, now));
      }
    }
  });
});

describe("billing anchor, monthly", () => {
  it("anchor on Jan 31 through February of a leap year (2024) into March", () => {
    const a = "2024-01-31T15:20:00.000Z";
    expect(bill("month", a, "2024-02-10T00:00:00.000Z")).toEqual([a, "2024-02-29T15:20:00.000Z"]);
    expect(bill("month", a, "2024-03-05T00:00:00.000Z")).toEqual([
      "2024-02-29T15:20:00.000Z",
      "2024-03-31T15:20:00.000Z",
    ]);
    expect(starts("month", a, a, 8)).toEqual([
      "2024-01-31T15:20:00.000Z",
      "2024-02-29T15:20:00.000Z",
      "2024-03-31T15:20:00.000Z",
      "2024-04-30T15:20:00.000Z",
      "2024-05-31T15:20:00.000Z",
      "2024-06-30T15:20:00.000Z",
      "2024-07-31T15:20:00.000Z",
      "2024-08-31T15:20:00.000Z",
    ]);
  });

  it("anchor on Jan 31 through February of a non-leap year (2025) into March", () => {
    const a = "2025-01-31T15:20:00.000Z";
    expect(bill("month", a, "2025-02-28T15:19:59.999Z")).toEqual([a, "2025-02-28T15:20:00.000Z"]);
    expect(bill("month", a, "2025-02-28T15:20:00.000Z")).toEqual([
      "2025-02-28T15:20:00.000Z",
      "2025-03-31T15:20:00.000Z",
    ]);
    expect(bill("month", a, "2025-03-31T15:19:59.999Z")).toEqual([
      "2025-02-28T15:20:00.000Z",
      "2025-03-31T15:20:00.000Z",
    ]);
    expect(starts("month", a, a, 5)).toEqual([
      "2025-01-31T15:20:00.000Z",
      "2025-02-28T15:20:00.000Z",
      "2025-03-31T15:20:00.000Z",
      "2025-04-30T15:20:00.000Z",
      "2025-05-31T15:20:00.000Z",
    ]);
  });

  it("anchor on the 31st of a later month wraps the year and keeps returning to the 31st", () => {
    expect(starts("month", "2024-08-31T00:00:00.000Z", "2024-08-31T00:00:00.000Z", 8)).toEqual([
      "2024-08-31T00:00:00.000Z",
      "2024-09-30T00:00:00.000Z",
      "2024-10-31T00:00:00.000Z",
      "2024-11-30T00:00:00.000Z",
      "2024-12-31T00:00:00.000Z",
      "2025-01-31T00:00:00.000Z",
      "2025-02-28T00:00:00.000Z",
      "2025-03-31T00:00:00.000Z",
    ]);
  });

  it("anchor on the 30th", () => {
    expect(starts("month", "2024-01-30T06:00:00.000Z", "2024-01-30T06:00:00.000Z", 4)).toEqual([
      "2024-01-30T06:00:00.000Z",
      "2024-02-29T06:00:00.000Z",
      "2024-03-30T06:00:00.000Z",
      "2024-04-30T06:00:00.000Z",
    ]);
    expect(starts("month", "2025-01-30T06:00:00.000Z", "2025-01-30T06:00:00.000Z", 4)).toEqual([
      "2025-01-30T06:00:00.000Z",
      "2025-02-28T06:00:00.000Z",
      "2025-03-30T06:00:00.000Z",
      "2025-04-30T06:00:00.000Z",
    ]);
  });

  it("anchor on the 29th", () => {
    expect(starts("month", "2024-01-29T23:59:59.999Z", "2024-01-29T23:59:59.999Z", 3)).toEqual([
      "2024-01-29T23:59:59.999Z",
      "2024-02-29T23:59:59.999Z",
      "2024-03-29T23:59:59.999Z",
    ]);
    expect(starts("month", "2025-01-29T23:59:59.999Z", "2025-01-29T23:59:59.999Z", 3)).toEqual([
      "2025-01-29T23:59:59.999Z",
      "2025-02-28T23:59:59.999Z",
      "2025-03-29T23:59:59.999Z",
    ]);
  });

  it("the boundary millisecond starts the new period; the one before ends the old", () => {
    const a = "2025-01-31T10:00:00.000Z";
    const edge = t("2025-02-28T10:00:00.000Z");
    expect(periodAt("month", "billing", t(a), edge)).toEqual({ start: edge, end: t("2025-03-31T10:00:00.000Z") });
    expect(periodAt("month", "billing", t(a), edge - 1)).toEqual({ start: t(a), end: edge });
    // The anchor instant itself starts a period.
    expect(periodAt("month", "billing", t(a), t(a))).toEqual({ start: t(a), end: edge });
  });

  it("now before the anchor (negative k)", () => {
    const a = "2024-03-31T00:00:00.000Z";
    expect(bill("month", a, "2024-03-30T23:59:59.999Z")).toEqual(["2024-02-29T00:00:00.000Z", a]);
    expect(bill("month", a, "2024-02-29T00:00:00.000Z")).toEqual(["2024-02-29T00:00:00.000Z", a]);
    expect(bill("month", a, "2024-02-15T00:00:00.000Z")).toEqual([
      "2024-01-31T00:00:00.000Z",
      "2024-02-29T00:00:00.000Z",
    ]);
    expect(bill("month", a, "2023-03-01T00:00:00.000Z")).toEqual([
      "2023-02-28T00:00:00.000Z",
      "2023-03-31T00:00:00.000Z",
    ]);
    // Same day of month as the anchor but an earlier time of day: still the previous period.
    expect(bill("month", "2024-05-15T12:00:00.000Z", "2024-04-15T11:59:59.999Z")).toEqual([
      "2024-03-15T12:00:00.000Z",
      "2024-04-15T12:00:00.000Z",
    ]);
  });
});

describe("billing anchor, yearly", () => {
  const a = "2024-02-29T08:00:00.000Z";

  it("a Feb 29 anchor clamps to Feb 28 in common years and returns to Feb 29 in leap years", () => {
    expect(starts("year", a, a, 6)).toEqual([
      "2024-02-29T08:00:00.000Z",
      "2025-02-28T08:00:00.000Z",
      "2026-02-28T08:00:00.000Z",
      "2027-02-28T08:00:00.000Z",
      "2028-02-29T08:00:00.000Z",
      "2029-02-28T08:00:00.000Z",
    ]);
    // 2100 is not a leap year, 2400 is.
    expect(bill("year", a, "2100-06-01T00:00:00.000Z")).toEqual([
      "2100-02-28T08:00:00.000Z",
      "2101-02-28T08:00:00.000Z",
    ]);
    expect(bill("year", a, "2400-03-01T00:00:00.000Z")).toEqual([
      "2400-02-29T08:00:00.000Z",
      "2401-02-28T08:00:00.000Z",
    ]);
  });

  it("the boundary millisecond starts the new period; the one before ends the old", () => {
    const edge = t("2025-02-28T08:00:00.000Z");
    expect(periodAt("year", "billing", t(a), edge)).toEqual({ start: edge, end: t("2026-02-28T08:00:00.000Z") });
    expect(periodAt("year", "billing", t(a), edge - 1)).toEqual({ start: t(a), end: edge });
  });

  it("now before the anchor (negative k)", () => {
    expect(bill("year", a, "2024-02-29T07:59:59.999Z")).toEqual(["2023-02-28T08:00:00.000Z", a]);
    expect(bill("year", a, "2023-01-15T00:00:00.000Z")).toEqual([
      "2022-02-28T08:00:00.000Z",
      "2023-02-28T08:00:00.000Z",
    ]);
    expect(bill("year", a, "2020-03-01T00:00:00.000Z")).toEqual([
      "2020-02-29T08:00:00.000Z",
      "2021-02-28T08:00:00.000Z",
    ]);
    // Same month as the anchor, earlier day.
    expect(bill("year", "2024-07-20T00:00:00.000Z", "2030-07-19T23:59:59.999Z")).toEqual([
      "2029-07-20T00:00:00.000Z",
      "2030-07-20T00:00:00.000Z",
    ]);
  });
});

describe("billing anchor, hour/day/week", () => {
  // An odd offset from every calendar boundary; 2024-03-15 is a Friday.
  const a = "2024-03-15T10:17:23.456Z";

  it("hour", () => {
    expect(bill("hour", a, "2024-03-20T05:00:00.000Z")).toEqual([
      "2024-03-20T04:17:23.456Z",
      "2024-03-20T05:17:23.456Z",
    ]);
    expect(bill("hour", a, "2024-03-20T05:17:23.456Z")).toEqual([
      "2024-03-20T05:17:23.456Z",
      "2024-03-20T06:17:23.456Z",
    ]);
    expect(bill("hour", a, "2024-03-20T05:17:23.455Z")).toEqual([
      "2024-03-20T04:17:23.456Z",
      "2024-03-20T05:17:23.456Z",
    ]);
  });

  it("day", () => {
    expect(bill("day", a, "2024-03-20T05:00:00.000Z")).toEqual([
      "2024-03-19T10:17:23.456Z",
      "2024-03-20T10:17:23.456Z",
    ]);
    expect(bill("day", a, "2024-03-20T10:17:23.456Z")).toEqual([
      "2024-03-20T10:17:23.456Z",
      "2024-03-21T10:17:23.456Z",
    ]);
  });

  it("week: aligned to the anchor's weekday and time, not to Monday", () => {
    expect(bill("week", a, "2024-03-25T09:00:00.000Z")).toEqual([
      "2024-03-22T10:17:23.456Z",
      "2024-03-29T10:17:23.456Z",
    ]);
    expect(bill("week", a, "2024-03-22T10:17:23.455Z")).toEqual([a, "2024-03-22T10:17:23.456Z"]);
  });

  it("now before the anchor (negative k)", () => {
    expect(bill("hour", a, "2024-03-15T08:00:00.000Z")).toEqual([
      "2024-03-15T07:17:23.456Z",
      "2024-03-15T08:17:23.456Z",
    ]);
    expect(bill("hour", a, t(a) - 1)).toEqual(["2024-03-15T09:17:23.456Z", a]);
    expect(bill("day", a, "2024-03-01T00:00:00.000Z")).toEqual([
      "2024-02-29T10:17:23.456Z",
      "2024-03-01T10:17:23.456Z",
    ]);
    expect(bill("week", a, "2024-03-01T00:00:00.000Z")).toEqual([
      "2024-02-23T10:17:23.456Z",
      "2024-03-01T10:17:23.456Z",
    ]);
  });

  it("anchors before the epoch", () => {
    expect(bill("day", "1969-12-31T18:30:00.000Z", "2024-03-20T05:00:00.000Z")).toEqual([
      "2024-03-19T18:30:00.000Z",
      "2024-03-20T18:30:00.000Z",
    ]);
    expect(bill("month", "1969-12-31T18:30:00.000Z", "2024-02-20T05:00:00.000Z")).toEqual([
      "2024-01-31T18:30:00.000Z",
      "2024-02-29T18:30:00.000Z",
    ]);
  });
});

describe("properties over many instants", () => {
  const kinds = ["hour", "day", "week", "month", "year"] as const;
  // Anchors with awkward days and times, before, inside and after the sampled range.
  const anchors: [ResetAnchor, number | null][] = [
    ["calendar", null],
    ["billing", null],
    ["billing", t("2024-01-31T23:59:59.999Z")],
    ["billing", t("2024-02-29T12:00:00.000Z")],
    ["billing", t("2023-06-30T00:00:00.000Z")],
    ["billing", t("2025-03-15T10:17:23.456Z")],
    ["billing", t("1999-12-31T23:59:59.999Z")],
    ["billing", t("2030-01-31T01:02:03.004Z")],
  ];
  const from = t("2023-01-01T00:00:00.000Z");
  const to = t("2026-01-01T00:00:00.000Z");
  // Every 7 hours plus an odd few milliseconds, so samples drift across every time of day.
  const stride = 7 * HOUR_MS + 1_234;
  const daysIn = (y: number, m: number) => new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const timeOfDay = (ms: number) => ((ms % DAY_MS) + DAY_MS) % DAY_MS;

  for (const reset of kinds) {
    for (const [anchor, anchorAt] of anchors) {
      it(`${reset}, ${anchor} anchor at ${iso(anchorAt)}`, () => {
        const failures: string[] = [];
        const fail = (now: number, what: string) => failures.length < 20 && failures.push(`${iso(now)}: ${what}`);
        let samples = 0;
        for (let now = from; now < to; now += stride, samples++) {
          const p = periodAt(reset, anchor, anchorAt, now);
          if (p.end === null) {
            fail(now, "end is null");
            continue;
          }
          if (!(p.start <= now && now < p.end)) fail(now, `not inside ${show(p)}`);
          if (periodAt(reset, anchor, anchorAt, p.end).start !== p.end) fail(now, `not contiguous after ${show(p)}`);
          const atStart = periodAt(reset, anchor, anchorAt, p.start);
          if (atStart.start !== p.start || atStart.end !== p.end)
            fail(now, `start ${show(p)} maps to ${show(atStart)}`);
          const atLast = periodAt(reset, anchor, anchorAt, p.end - 1);
          if (atLast.start !== p.start || atLast.end !== p.end)
            fail(now, `end - 1 of ${show(p)} maps to ${show(atLast)}`);
          if (!Number.isInteger(p.start) || !Number.isInteger(p.end)) fail(now, `non-integer ${p.start}, ${p.end}`);

          // An independent oracle for where a period may start, built on Date objects.
          const origin = anchorAt ?? (reset === "week" ? t("1970-01-05T00:00:00.000Z") : 0);
          const o = new Date(origin);
          const s = new Date(p.start);
          const length = p.end - p.start;
          if (reset === "hour" || reset === "day" || reset === "week") {
            const want = reset === "hour" ? HOUR_MS : reset === "day" ? DAY_MS : WEEK;
            if (length !== want) fail(now, `length ${length} in ${show(p)}`);
            if ((((p.start - origin) % want) + want) % want !== 0)
              fail(now, `start ${iso(p.start)} not aligned to origin`);
            if (anchorAt === null && reset === "week" && (s.getUTCDay() !== 1 || timeOfDay(p.start) !== 0)) {
              fail(now, `calendar week starts ${iso(p.start)}, not a Monday midnight`);
            }
          } else {
            const months = (s.getUTCFullYear() - o.getUTCFullYear()) * 12 + s.getUTCMonth() - o.getUTCMonth();
            if (months % (reset === "year" ? 12 : 1) !== 0) fail(now, `start ${iso(p.start)} in the wrong month`);
            const day = Math.min(o.getUTCDate(), daysIn(s.getUTCFullYear(), s.getUTCMonth()));
            if (s.getUTCDate() !== day) fail(now, `start ${iso(p.start)} not on day ${day}`);
            if (timeOfDay(p.start) !== timeOfDay(origin)) fail(now, `start ${iso(p.start)} at the wrong time of day`);
            const [min, max] = reset === "year" ? [365 * DAY_MS, 366 * DAY_MS] : [28 * DAY_MS, 31 * DAY_MS];
            if (length < min || length > max) fail(now, `length ${length / DAY_MS} days in ${show(p)}`);
          }
        }
        expect(samples).toBeGreaterThan(3_700);
        expect(failures).toEqual([]);
      });
    }
  }
});
