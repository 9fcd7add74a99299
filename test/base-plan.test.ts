// The base plan analytics label a point with (src/domain/base-plan.ts): pure, from the snapshot's sources.
import { describe, expect, it } from "vitest";
import { basePlanOf } from "../src/domain/base-plan";
import type { Snapshot, Source } from "../src/domain/types";
import { DAY_MS, T0 } from "./helpers/time";

const source = (kind: Source["kind"], id: string, from: number | null, until: number | null): Source => ({
  kind,
  id,
  mode: "add",
  from,
  until,
  lapse: null,
  spec: { enabled: true },
});

const snapshot = (...sources: Source[]): Snapshot => ({
  format: 1,
  customerId: "c",
  version: 2,
  customerRev: 1,
  catalogRev: 1,
  compiledAt: T0,
  residency: null,
  features: {
    a: { type: "boolean", failurePolicy: "closed", sources: sources.filter((_, i) => i % 2 === 0) },
    b: { type: "boolean", failurePolicy: "closed", sources: sources.filter((_, i) => i % 2 === 1) },
  },
});

describe("basePlanOf", () => {
  it("is the plan source in force, wherever it sits among the features", () => {
    const s = snapshot(source("grant", "g1", null, null), source("plan", "pro", T0 - DAY_MS, null));
    expect(basePlanOf(s, T0)).toBe("pro");
  });

  it("skips add-ons and a plan not started yet", () => {
    const s = snapshot(source("addon", "ai-pack", null, null), source("plan", "later", T0 + DAY_MS, null));
    expect(basePlanOf(s, T0)).toBe("");
  });

  it("is the plan that ended last when none is in force (a lapsed trial's plan)", () => {
    const s = snapshot(
      source("plan", "old", T0 - 30 * DAY_MS, T0 - 10 * DAY_MS),
      source("plan", "trial", T0 - 10 * DAY_MS, T0 - DAY_MS),
    );
    expect(basePlanOf(s, T0)).toBe("trial");
    expect(basePlanOf(s, T0 - 5 * DAY_MS)).toBe("trial");
    expect(basePlanOf(s, T0 - 20 * DAY_MS)).toBe("old");
  });

  it("is '' for a customer without plans", () => {
    expect(basePlanOf(snapshot(source("grant", "g", null, null)), T0)).toBe("");
  });
});
