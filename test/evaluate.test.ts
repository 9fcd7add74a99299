// The pure core: compileSnapshot + evaluate, without bindings. Precedence rules as in docs/model.md, "Precedence".
import { describe, expect, it } from "vitest";
import { type CustomerRows, compileSnapshot, type GrantRow, type SubscriptionRow } from "../src/domain/compile";
import { applyUsage, evaluate, fits } from "../src/domain/evaluate";
import type { EntitlementSpec } from "../src/domain/types";
import { HOUR_MS } from "./helpers/time";

const T = Date.parse("2026-05-05T10:00:00Z");

function sub(planId: string, patch: Partial<SubscriptionRow> = {}): SubscriptionRow {
  return {
    id: `sub-${planId}`,
    planId,
    status: "active",
    startedAt: T - 10 * HOUR_MS,
    trialEnd: null,
    currentPeriodStart: null,
    currentPeriodEnd: null,
    billingAnchor: null,
    cancelAt: null,
    graceUntil: null,
    endedAt: null,
    scheduledPlanId: null,
    scheduledChangeAt: null,
    ...patch,
  };
}
function grant(featureKey: string, spec: EntitlementSpec, patch: Partial<GrantRow> = {}): GrantRow {
  return {
    id: `g-${featureKey}-${Math.random()}`,
    featureKey,
    mode: "add",
    spec,
    startsAt: null,
    expiresAt: null,
    createdAt: T - HOUR_MS,
    ...patch,
  };
}
function rows(subs: SubscriptionRow[], grants: GrantRow[] = []): CustomerRows {
  return {
    customer: { id: "c1", residency: null, rev: 3 },
    catalogRev: 4,
    features: [
      { key: "sso", type: "boolean", integer: true, failurePolicy: "closed" },
      { key: "calls", type: "metered", integer: true, failurePolicy: "closed" },
      { key: "size", type: "config", integer: true, failurePolicy: "open" },
    ],
    regionGroups: { EU: ["DE", "FR"] },
    plans: {
      base: {
        id: "base",
        kind: "base",
        entitlements: {
          sso: { enabled: false },
          calls: { enabled: true, limit: 100, reset: "day" },
          size: { enabled: true, value: 10 },
        },
      },
      big: {
        id: "big",
        kind: "base",
        entitlements: {
          sso: { enabled: true, roles: ["admin"] },
          calls: { enabled: true, limit: 1000, reset: "month" },
          size: { enabled: true, value: 100 },
        },
      },
      ssoAddon: { id: "ssoAddon", kind: "addon", entitlements: { sso: { enabled: true, regions: { allow: ["EU"] } } } },
      callsAddon: {
        id: "callsAddon",
        kind: "addon",
        entitlements: { calls: { enabled: true, limit: 50 }, size: { enabled: true, value: 20 } },
      },
      unlimited: {
        id: "unlimited",
        kind: "addon",
        entitlements: { calls: { enabled: true, limit: null, overage: "allow" } },
      },
    },
    subscriptions: subs,
    grants,
  };
}
const ev = (r: CustomerRows, feature: string, ctx: Record<string, unknown> = {}, now = T) =>
  evaluate(compileSnapshot(r, T), { feature, ...ctx }, now);

describe("compileSnapshot", () => {
  it("versions as customer rev + catalog rev, lists every catalog feature, expands region groups", () => {
    const snap = compileSnapshot(rows([sub("base"), sub("ssoAddon")]), T);
    expect(snap.version).toBe(7);
    expect(Object.keys(snap.features).sort()).toEqual(["calls", "size", "sso"]);
    expect(snap.features.sso!.sources.map((s) => s.kind)).toEqual(["plan", "addon"]);
    expect(snap.features.sso!.sources[1]!.spec.allow).toEqual(["DE", "FR"]);
    expect(snap.features.calls!.sources[0]!.spec).toMatchObject({ limit: 100, reset: "day", anchor: "calendar" });
  });

  it("orders base plans before add-ons and grants last, whatever the input order", () => {
    const snap = compileSnapshot(
      rows(
        [sub("callsAddon", { startedAt: T - 20 * HOUR_MS }), sub("base")],
        [grant("calls", { enabled: true, limit: 5 })],
      ),
      T,
    );
    expect(snap.features.calls!.sources.map((s) => s.kind)).toEqual(["plan", "addon", "grant"]);
  });
});

describe("precedence", () => {
  it("add-ons: booleans OR, limits sum, config values: the latest source wins", () => {
    const r = rows([sub("base"), sub("ssoAddon"), sub("callsAddon")]);
    expect(ev(r, "sso", { country: "DE" })).toMatchObject({ allowed: true, reason: "ok" });
    expect(ev(r, "calls")).toMatchObject({ allowed: true, limit: 150 });
    expect(ev(r, "size")).toMatchObject({ value: 20 });
  });

  it("an unlimited source makes the sum unlimited; its overage policy is taken", () => {
    const e = ev(rows([sub("base"), sub("unlimited")]), "calls");
    expect(e.limit).toBeNull();
    expect(e.effective!.spec.overage).toBe("allow");
  });

  it("the base plan's period is kept when add-ons add units", () => {
    expect(ev(rows([sub("base"), sub("callsAddon")]), "calls")).toMatchObject({
      reset: "day",
      resetsAt: Date.parse("2026-05-06T00:00:00Z"),
    });
  });

  it("grants: add adds to the plans, replace discards them (also to take a feature away)", () => {
    expect(ev(rows([sub("base")], [grant("calls", { enabled: true, limit: 25 })]), "calls").limit).toBe(125);
    expect(
      ev(
        rows([sub("base")], [grant("calls", { enabled: true, limit: 7, reset: "hour" }, { mode: "replace" })]),
        "calls",
      ),
    ).toMatchObject({ limit: 7, reset: "hour" });
    expect(
      ev(rows([sub("big")], [grant("sso", { enabled: false }, { mode: "replace" })]), "sso", { role: "admin" }),
    ).toMatchObject({ allowed: false, reason: "not_entitled" });
    expect(ev(rows([sub("base")], [grant("sso", { enabled: true })]), "sso")).toMatchObject({ allowed: true });
  });

  it("a disabling add-on takes nothing away", () => {
    const r = rows([sub("big"), sub("x")]);
    r.plans.x = { id: "x", kind: "addon", entitlements: { sso: { enabled: false } } };
    expect(ev(r, "sso", { role: "admin" }).allowed).toBe(true);
  });

  it("roles and region rules come from the latest source that states them", () => {
    const r = rows([sub("big"), sub("ssoAddon")]);
    // big restricts roles; the add-on states regions only, so roles stay and regions apply
    expect(ev(r, "sso", { role: "admin", country: "FR" }).allowed).toBe(true);
    expect(ev(r, "sso", { role: "admin", country: "US" }).reason).toBe("region_blocked");
    expect(ev(r, "sso", { role: "viewer", country: "FR" }).reason).toBe("role_denied");
  });
});

describe("time windows", () => {
  it("a grant counts only inside [startsAt, expiresAt) and then says grant_expired", () => {
    const r = rows(
      [sub("base")],
      [grant("sso", { enabled: true }, { startsAt: T + HOUR_MS, expiresAt: T + 2 * HOUR_MS })],
    );
    expect(ev(r, "sso", {}, T)).toMatchObject({ allowed: false, reason: "not_entitled", expiresAt: T + HOUR_MS });
    expect(ev(r, "sso", {}, T + HOUR_MS)).toMatchObject({ allowed: true, expiresAt: T + 2 * HOUR_MS });
    expect(ev(r, "sso", {}, T + 2 * HOUR_MS)).toMatchObject({
      allowed: false,
      reason: "grant_expired",
      expiresAt: null,
    });
  });

  it("trial_expired outranks other lapses", () => {
    const trial = rows(
      [sub("big", { status: "trialing", trialEnd: T - 1 })],
      [grant("sso", { enabled: true }, { expiresAt: T - 1 })],
    );
    expect(ev(trial, "sso", { role: "admin" }).reason).toBe("trial_expired");
  });

  it("a scheduled plan change switches plans on time, and the old plan's answer says when", () => {
    const change = rows([sub("big", { scheduledPlanId: "base", scheduledChangeAt: T + HOUR_MS })]);
    expect(ev(change, "calls")).toMatchObject({ limit: 1000, expiresAt: T + HOUR_MS });
    expect(ev(change, "calls", {}, T + HOUR_MS)).toMatchObject({ limit: 100 });
  });

  it("a scheduled downgrade is not a lapse: what only the old plan had is not_entitled, before and after the cron records it", () => {
    const scheduled = rows([sub("big", { scheduledPlanId: "base", scheduledChangeAt: T + HOUR_MS })]);
    expect(ev(scheduled, "sso", { role: "admin" }, T + HOUR_MS)).toMatchObject({
      allowed: false,
      reason: "not_entitled",
    });
    const recorded = rows([sub("base")]);
    expect(ev(recorded, "sso", { role: "admin" }, T + HOUR_MS).reason).toBe("not_entitled");
  });

  it("a trial that ran out answers trial_expired before and after it is recorded as expired", () => {
    expect(ev(rows([sub("big", { status: "trialing", trialEnd: T - 1 })]), "calls").reason).toBe("trial_expired");
    expect(ev(rows([sub("big", { status: "expired", trialEnd: T - 1, endedAt: T - 1 })]), "calls").reason).toBe(
      "trial_expired",
    );
    expect(ev(rows([sub("big", { status: "expired", endedAt: T - 1 })]), "calls").reason).toBe("subscription_inactive");
  });

  it("past_due keeps access until grace_until, then is subscription_inactive", () => {
    expect(ev(rows([sub("base", { status: "past_due", graceUntil: T + HOUR_MS })]), "calls", {}, T).allowed).toBe(true);
    expect(
      ev(rows([sub("base", { status: "past_due", graceUntil: T + HOUR_MS })]), "calls", {}, T + HOUR_MS).reason,
    ).toBe("subscription_inactive");
  });

  it("canceled is subscription_inactive at once", () => {
    expect(ev(rows([sub("base", { status: "canceled" })]), "calls").reason).toBe("subscription_inactive");
  });
});

describe("limits", () => {
  it("fits: hard limit, soft limit, soft limit with a cap, unlimited", () => {
    expect(fits({ limit: 10, overage: "block", overageCap: null }, 9, 1)).toBe(true);
    expect(fits({ limit: 10, overage: "block", overageCap: null }, 10, 1)).toBe(false);
    expect(fits({ limit: 10, overage: "allow", overageCap: null }, 1e9, 1)).toBe(true);
    expect(fits({ limit: 10, overage: "allow", overageCap: 2 }, 11, 1)).toBe(true);
    expect(fits({ limit: 10, overage: "allow", overageCap: 2 }, 12, 1)).toBe(false);
    expect(fits({ limit: null, overage: "block", overageCap: null }, 1e12, 1e12)).toBe(true);
  });

  it("applyUsage: quantity, reserved units and remaining", () => {
    const e = ev(rows([sub("base")]), "calls");
    expect(applyUsage(e, 90, 10)).toMatchObject({ allowed: true, used: 90, remaining: 10 });
    expect(applyUsage(e, 90, 11)).toMatchObject({ allowed: false, reason: "limit_reached" });
    expect(applyUsage(e, 90, 5, 6)).toMatchObject({ allowed: false, remaining: 4 });
  });
});
