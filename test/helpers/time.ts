// The instant every test starts at, and the units of time the tests count in. Pure: the tests that
// run without bindings import this module directly.
export { DAY_MS, HOUR_MS, iso, MINUTE_MS } from "../../src/domain/time";

/** The injected clock's starting instant: a Tuesday noon, UTC, mid billing month. */
export const T0 = Date.parse("2026-03-10T12:00:00.000Z");
