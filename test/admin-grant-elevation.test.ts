// grantElevation / gainsOf (pure): when a grant gives more than the customer's plans.
import { describe, expect, it } from "vitest";
import { gainsOf, grantElevation } from "../src/domain/grant-elevation";
import type { CompiledSpec, SnapshotFeature, Source } from "../src/domain/types";
import { HOUR_MS, T0 } from "./helpers/time";

const plan = (spec: CompiledSpec, window: Partial<Source> = {}): Source => ({
  kind: "plan",
  id: "p",
  mode: "add",
  from: null,
  until: null,
  lapse: "subscription_inactive",
  spec,
  ...window,
});
const grant = (spec: CompiledSpec, window: Partial<Source> = {}): Source => ({
  kind: "grant",
  id: "g",
  mode: "add",
  from: null,
  until: null,
  lapse: "grant_expired",
  spec,
  ...window,
});
const feature = (type: SnapshotFeature["type"], sources: Source[]): SnapshotFeature => ({
  type,
  failurePolicy: "closed",
  sources,
});
const metered = (limit: number | null, extra: Partial<CompiledSpec> = {}): CompiledSpec => ({
  enabled: true,
  limit,
  reset: "month",
  anchor: "calendar",
  ...extra,
});

describe("grantElevation", () => {
  it("enabling what no plan grants is elevated, and says so from now", () => {
    expect(grantElevation(feature("boolean", []), grant({ enabled: true }), T0)).toEqual({
      elevated: true,
      gains: ["enables a feature the plans do not grant"],
      at: T0,
    });
  });

  it("enabling what a plan already grants is not elevated", () => {
    expect(grantElevation(feature("boolean", [plan({ enabled: true })]), grant({ enabled: true }), T0).elevated).toBe(
      false,
    );
  });

  it("enabling what a plan explicitly disables is elevated", () => {
    expect(grantElevation(feature("boolean", [plan({ enabled: false })]), grant({ enabled: true }), T0).elevated).toBe(
      true,
    );
  });

  it("taking away is never elevated", () => {
    const f = feature("metered", [plan(metered(100))]);
    expect(grantElevation(f, grant({ enabled: false }, { mode: "replace" }), T0).elevated).toBe(false);
    expect(grantElevation(f, grant(metered(10), { mode: "replace" }), T0).elevated).toBe(false);
  });

  it("metered: adding units, a higher replacement, unlimited, overage and a different reset are elevated", () => {
    const f = feature("metered", [plan(metered(100))]);
    expect(grantElevation(f, grant(metered(1)), T0).gains).toEqual(["raises the limit from 100 to 101"]);
    expect(grantElevation(f, grant(metered(150), { mode: "replace" }), T0).gains).toEqual([
      "raises the limit from 100 to 150",
    ]);
    expect(grantElevation(f, grant(metered(null), { mode: "replace" }), T0).gains).toEqual([
      "raises the limit from 100 to unlimited",
    ]);
    expect(grantElevation(f, grant(metered(0, { overage: "allow" })), T0).gains).toEqual(["allows overage"]);
    expect(grantElevation(f, grant(metered(100, { reset: "day" }), { mode: "replace" }), T0).gains).toEqual([
      "changes the reset period",
    ]);
    const capped = feature("metered", [plan(metered(100, { overage: "allow", overageCap: 10 }))]);
    expect(grantElevation(capped, grant(metered(0, { overage: "allow", overageCap: 50 })), T0).gains).toEqual([
      "raises the overage cap",
    ]);
    expect(grantElevation(feature("metered", [plan(metered(null))]), grant(metered(5)), T0).elevated).toBe(false);
  });

  it("compares with plans only: an earlier grant does not make a second one look harmless", () => {
    const f = feature("boolean", [grant({ enabled: true }, { id: "earlier", until: T0 + HOUR_MS })]);
    expect(grantElevation(f, grant({ enabled: true }), T0).elevated).toBe(true);
  });

  it("checks every instant of the grant's window where the plans change", () => {
    const trial = feature("boolean", [plan({ enabled: true }, { until: T0 + 10 * HOUR_MS, lapse: "trial_expired" })]);
    expect(grantElevation(trial, grant({ enabled: true }, { until: T0 + 10 * HOUR_MS }), T0).elevated).toBe(false);
    expect(grantElevation(trial, grant({ enabled: true }, { until: T0 + 11 * HOUR_MS }), T0)).toEqual({
      elevated: true,
      gains: ["enables a feature the plans do not grant"],
      at: T0 + 10 * HOUR_MS,
    });
    // A grant that starts after a scheduled upgrade is judged against the upgraded plan.
    const upgrade = feature("metered", [
      plan(metered(10), { until: T0 + 5 * HOUR_MS }),
      plan(metered(100), { from: T0 + 5 * HOUR_MS }),
    ]);
    expect(grantElevation(upgrade, grant(metered(50), { mode: "replace", from: T0 + 6 * HOUR_MS }), T0).elevated).toBe(
      false,
    );
    expect(grantElevation(upgrade, grant(metered(50), { mode: "replace" }), T0).gains).toEqual([
      "raises the limit from 10 to 50",
    ]);
  });
});

describe("gainsOf", () => {
  it("roles, regions and config values", () => {
    expect(gainsOf("boolean", { enabled: true, roles: ["admin"] }, { enabled: true })).toEqual([
      "widens the allowed roles",
    ]);
    expect(
      gainsOf("boolean", { enabled: true, roles: ["admin", "owner"] }, { enabled: true, roles: ["owner"] }),
    ).toEqual([]);
    expect(gainsOf("boolean", { enabled: true, allow: ["DE"] }, { enabled: true, allow: ["DE", "FR"] })).toEqual([
      "widens the allowed regions",
    ]);
    expect(gainsOf("boolean", { enabled: true, deny: ["KP", "IR"] }, { enabled: true, deny: ["KP"] })).toEqual([
      "lifts a region block",
    ]);
    expect(gainsOf("boolean", { enabled: true }, { enabled: true, deny: ["KP"] })).toEqual([]);
    expect(
      gainsOf("config", { enabled: true, value: { a: 1, b: [2] } }, { enabled: true, value: { b: [2], a: 1 } }),
    ).toEqual([]);
    expect(gainsOf("config", { enabled: true, value: 10 }, { enabled: true, value: 5 })).toEqual([
      "changes the configured value",
    ]);
    expect(gainsOf("config", null, null)).toEqual([]);
  });
});
