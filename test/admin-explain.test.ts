// explainFeature (pure) and GET /admin/v1/customers/{id}/entitlements/explain.
import { beforeAll, describe, expect, it } from "vitest";
import { explainFeature, explainSnapshot } from "../src/domain/explain";
import type { Snapshot, SnapshotFeature, Source } from "../src/domain/types";
import { createCustomer, loadTestCatalog } from "./helpers/admin";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { expectProblem, testWorker, uid } from "./helpers/worker";

const src = (s: Partial<Source> & Pick<Source, "kind" | "id">): Source => ({
  mode: "add",
  from: null,
  until: null,
  lapse: "subscription_inactive",
  spec: { enabled: true },
  ...s,
});

describe("explainFeature", () => {
  const metered = (sources: Source[]): SnapshotFeature => ({
    type: "metered",
    failurePolicy: "closed",
    integer: true,
    sources,
  });

  it("says which sources contribute, which lapsed and why, which are scheduled, and until when", () => {
    const f = metered([
      src({
        kind: "plan",
        id: "pro",
        subscriptionId: "s1",
        from: T0 - 10 * DAY_MS,
        until: T0 + 3 * DAY_MS,
        lapse: "trial_expired",
        spec: { enabled: true, limit: 1000, reset: "month" },
      }),
      src({
        kind: "addon",
        id: "old-pack",
        subscriptionId: "s2",
        from: T0 - 5 * DAY_MS,
        until: T0 - DAY_MS,
        spec: { enabled: true, limit: 500 },
      }),
      src({ kind: "addon", id: "pack", subscriptionId: "s3", from: T0 - DAY_MS, spec: { enabled: true, limit: 200 } }),
      src({
        kind: "grant",
        id: "g-later",
        from: T0 + DAY_MS,
        until: T0 + 2 * DAY_MS,
        lapse: "grant_expired",
        spec: { enabled: true, limit: 50 },
      }),
    ]);
    const e = explainFeature(f, T0);
    expect(e).toMatchObject({
      type: "metered",
      granted: true,
      effective: { enabled: true, limit: 1200 },
      lapse: null,
      changesAt: T0 + DAY_MS,
    });
    expect(e.sources.map((s) => [s.id, s.state, s.lapse])).toEqual([
      ["pro", "contributing", undefined],
      ["old-pack", "lapsed", "subscription_inactive"],
      ["pack", "contributing", undefined],
      ["g-later", "scheduled", undefined],
    ]);
    expect(e.sources[0]).toMatchObject({ kind: "plan", subscriptionId: "s1", until: T0 + 3 * DAY_MS });
    // After the trial: the plan lapsed with trial_expired, the add-on alone remains.
    const after = explainFeature(f, T0 + 3 * DAY_MS);
    expect(after.effective?.limit).toBe(200);
    expect(after.sources[0]).toMatchObject({ state: "lapsed", lapse: "trial_expired" });
    expect(after.sources[3]).toMatchObject({ state: "lapsed", lapse: "grant_expired" });
  });

  const planAddonGrant: SnapshotFeature = {
    type: "boolean",
    failurePolicy: "closed",
    sources: [
      src({ kind: "plan", id: "pro" }),
      src({ kind: "addon", id: "off", spec: { enabled: false } }),
      src({ kind: "grant", id: "block", mode: "replace", spec: { enabled: false } }),
    ],
  };

  it("a replace grant discards what came before it", () => {
    const e = explainFeature(planAddonGrant, T0);
    expect(e.granted).toBe(false);
    expect(e.sources.map((s) => s.state)).toEqual(["replaced", "replaced", "contributing"]);
  });

  it("a disabling add-on has no effect on what a plan grants", () => {
    const noGrant = explainFeature({ ...planAddonGrant, sources: planAddonGrant.sources.slice(0, 2) }, T0);
    expect(noGrant.granted).toBe(true);
    expect(noGrant.sources.map((s) => s.state)).toEqual(["contributing", "no_effect"]);
  });

  it("nothing granted: the lapse says why, and a feature with no sources is simply not granted", () => {
    const lapsed = explainFeature(
      {
        type: "boolean",
        failurePolicy: "closed",
        sources: [src({ kind: "grant", id: "g", until: T0, lapse: "grant_expired" })],
      },
      T0,
    );
    expect(lapsed).toMatchObject({ granted: false, effective: null, lapse: "grant_expired", changesAt: null });
    const snapshot: Snapshot = {
      format: 1,
      customerId: "c",
      version: 1,
      customerRev: 1,
      catalogRev: 0,
      compiledAt: T0,
      residency: null,
      features: {
        a: { type: "boolean", failurePolicy: "open", sources: [] },
        b: { type: "config", failurePolicy: "closed", sources: [] },
      },
    };
    expect(explainSnapshot(snapshot, T0)).toEqual({
      a: { type: "boolean", granted: false, effective: null, lapse: null, changesAt: null, sources: [] },
      b: { type: "config", granted: false, effective: null, lapse: null, changesAt: null, sources: [] },
    });
    expect(Object.keys(explainSnapshot(snapshot, T0, "b"))).toEqual(["b"]);
  });
});

describe("GET /admin/v1/customers/{id}/entitlements/explain", () => {
  const w = testWorker();
  let viewer: string;
  beforeAll(async () => {
    await loadTestCatalog(w);
    viewer = await operatorToken("viewer", "vic-viewer");
  });

  it("explains every feature from the snapshot, with ISO windows and a check in the given context", async () => {
    const trialEnd = T0 + 14 * DAY_MS;
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) }, { planId: "extra-calls" }],
    });
    const approver = await operatorToken("approver", "ann");
    await w.call("POST", "/admin/v1/grants", {
      key: approver,
      body: {
        customerId: c.id,
        feature: "api_calls",
        mode: "replace",
        spec: { limit: 10, anchor: "billing" },
        reason: "abuse",
        expiresAt: iso(T0 + DAY_MS),
      },
    });

    const res = await w.call("GET", `/admin/v1/customers/${c.id}/entitlements/explain?role=admin`, { key: viewer });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ customerId: c.id, evaluatedAt: iso(T0) });
    expect(Object.keys(res.json.features)).toContain("theme");
    const sso = res.json.features.sso;
    expect(sso).toMatchObject({
      type: "boolean",
      granted: true,
      check: { allowed: true, reason: "ok" },
      changesAt: iso(trialEnd),
    });
    expect(sso.sources).toEqual([
      {
        kind: "plan",
        id: "pro",
        subscriptionId: c.subscriptions[0],
        planVersion: 1,
        mode: "add",
        from: iso(T0),
        until: iso(trialEnd),
        state: "contributing",
        spec: { enabled: true, roles: ["admin", "owner"] },
      },
    ]);
    const calls = res.json.features.api_calls;
    expect(calls.effective).toMatchObject({ limit: 10 });
    expect(calls.sources.map((s: { kind: string; state: string }) => [s.kind, s.state])).toEqual([
      ["plan", "replaced"],
      ["addon", "replaced"],
      ["grant", "contributing"],
    ]);
    expect(calls.sources[2].until).toBe(iso(T0 + DAY_MS));

    // One feature, another context; and after the trial, what lapsed and why.
    const one = await w.call("GET", `/admin/v1/customers/${c.id}/entitlements/explain?feature=sso&role=member`, {
      key: viewer,
    });
    expect(Object.keys(one.json.features)).toEqual(["sso"]);
    expect(one.json.features.sso.check).toEqual({ allowed: false, reason: "role_denied" });
    w.clock.set(trialEnd);
    const later = await w.call("GET", `/admin/v1/customers/${c.id}/entitlements/explain?feature=sso`, { key: viewer });
    expect(later.json.features.sso).toMatchObject({
      granted: false,
      lapse: "trial_expired",
      check: { allowed: false, reason: "trial_expired" },
    });
    expect(later.json.features.sso.sources[0]).toMatchObject({ state: "lapsed", lapse: "trial_expired" });
    w.clock.set(T0);
  });

  it("404 problems for an unknown customer or feature", async () => {
    expectProblem(
      await w.call("GET", `/admin/v1/customers/${uid("nobody")}/entitlements/explain`, { key: viewer }),
      404,
    );
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    expectProblem(
      await w.call("GET", `/admin/v1/customers/${c.id}/entitlements/explain?feature=warp_drive`, { key: viewer }),
      404,
    );
  });
});
