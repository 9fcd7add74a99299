// POST /admin/v1/catalog/diff: the changes a catalog file would make and who feels them, read-only.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { destructiveRefusal, formatDiff } from "../scripts/lib/catalog-report.mjs";
import { compareSpecs } from "../src/domain/catalog-diff";
import { createCustomer, createKey } from "./helpers/admin";
import { auditCount } from "./helpers/d1";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { BOOTSTRAP, testWorker } from "./helpers/worker";

const w = testWorker();
// Names unique to this run: the diff compares against everything in D1.
const s = Math.random().toString(36).slice(2, 8);
const f = { sso: `sso_${s}`, calls: `calls_${s}`, size: `size_${s}`, geo: `geo_${s}`, fresh: `fresh_${s}` };
const p = { basic: `basic-${s}`, addon: `addon-${s}`, empty: `empty-${s}` };
const group = `G${s}`;

const base = () => ({
  regionGroups: { [group]: ["DE", "FR"] },
  features: {
    [f.sso]: { type: "boolean" },
    [f.calls]: { type: "metered", unit: "requests" },
    [f.size]: { type: "config" },
    [f.geo]: { type: "boolean" },
  },
  plans: {
    [p.basic]: {
      name: "Basic",
      entitlements: {
        [f.sso]: true,
        [f.calls]: { limit: 1000, reset: "month" },
        [f.size]: 10,
        [f.geo]: { enabled: true, regions: { allow: [group] } },
      },
    },
    [p.addon]: { name: "Add-on", kind: "addon", entitlements: { [f.sso]: true } },
    [p.empty]: { name: "Nobody's plan", entitlements: { [f.sso]: true } },
  },
  prices: { [`price_${s}`]: p.basic },
});

const customers = { a: `a-${s}`, b: `b-${s}`, c: `c-${s}`, gone: `d-${s}` };

beforeAll(async () => {
  const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: base() });
  expect(res.status).toBe(200);
  await createCustomer(w, { id: customers.a, subscriptions: [{ planId: p.basic }] });
  await createCustomer(w, {
    id: customers.b,
    subscriptions: [{ planId: p.basic, status: "trialing", trialEnd: iso(T0 + 14 * DAY_MS) }],
  });
  await createCustomer(w, { id: customers.c, subscriptions: [{ planId: p.basic }, { planId: p.addon }] });
  // A canceled subscription gives nothing: its customer is outside the blast radius.
  await createCustomer(w, { id: customers.gone, subscriptions: [{ planId: p.basic, status: "canceled" }] });
});

const diff = (body: unknown, key = BOOTSTRAP) => w.call("POST", "/admin/v1/catalog/diff", { key, body });

/** The destructive edit: sso removed from basic and from a plan nobody holds, a lower limit, fewer countries. */
function destructiveEdit() {
  const cat = base();
  delete (cat.plans[p.basic]!.entitlements as Record<string, unknown>)[f.sso];
  delete (cat.plans[p.empty]!.entitlements as Record<string, unknown>)[f.sso];
  cat.plans[p.basic]!.entitlements[f.calls] = { limit: 500, reset: "month" };
  cat.plans[p.basic]!.entitlements[f.size] = 20;
  cat.regionGroups[group] = ["DE"];
  return cat;
}

describe("POST /admin/v1/catalog/diff", () => {
  it("reports nothing to do for the catalog that is in D1", async () => {
    const res = await diff(base());
    expect(res.status).toBe(200);
    expect(res.json.destructive).toBe(false);
    expect(res.json.impact).toEqual([]);
    expect(res.json.changes.filter((c: { op: string }) => c.op !== "kept")).toEqual([]);
  });

  it("lists losses with the customers who hold the plans, and marks them destructive", async () => {
    const res = await diff(destructiveEdit());
    expect(res.status).toBe(200);
    expect(res.json.destructive).toBe(true);
    const impact = (feature: string, effect: string) =>
      res.json.impact.find((i: { feature: string; effect: string }) => i.feature === feature && i.effect === effect);
    // Live subscriptions only (active, trialing): the canceled customer is not counted.
    expect(impact(f.sso, "loss")).toMatchObject({
      plans: [p.basic, p.empty],
      customers: 3,
      examples: [customers.a, customers.b, customers.c].sort(),
      destructive: true,
    });
    expect(impact(f.sso, "loss").details).toEqual([`${p.basic}: removed (enabled)`, `${p.empty}: removed (enabled)`]);
    expect(impact(f.calls, "loss")).toMatchObject({
      customers: 3,
      details: [`${p.basic}: limit 1000 -> 500`],
      destructive: true,
    });
    // A region group losing a country narrows every allow-list that names it.
    expect(impact(f.geo, "loss")).toMatchObject({ customers: 3, details: [`${p.basic}: countries allowed -FR`] });
    expect(impact(f.size, "change")).toMatchObject({
      customers: 3,
      details: [`${p.basic}: value 10 -> 20`],
      destructive: false,
    });
    const change = (id: string) => res.json.changes.find((c: { id: string }) => c.id === id);
    expect(change(`${p.empty}/${f.sso}`)).toMatchObject({ op: "removed", effect: "loss", customers: 0, examples: [] });
    expect(change(group)).toMatchObject({ kind: "regionGroup", op: "changed", details: [`${group} -FR`] });
    expect(res.json.summary).toMatchObject({ customersLosing: 3, customersGaining: 0 });
  });

  it("counts distinct customers across plans, and additions as gains (not destructive)", async () => {
    const cat = base() as ReturnType<typeof base> & { features: Record<string, unknown> };
    cat.features[f.fresh] = { type: "boolean" };
    (cat.plans[p.addon]!.entitlements as Record<string, unknown>)[f.fresh] = true;
    cat.plans[p.basic]!.entitlements[f.calls] = { limit: null as unknown as number, reset: "month" };
    const res = await diff(cat);
    expect(res.json.destructive).toBe(false);
    expect(res.json.impact).toEqual([
      expect.objectContaining({
        feature: f.calls,
        effect: "gain",
        customers: 3,
        details: [`${p.basic}: limit 1000 -> unlimited`],
      }),
      expect.objectContaining({ feature: f.fresh, effect: "gain", customers: 1, examples: [customers.c] }),
    ]);
    expect(res.json.changes).toContainEqual(expect.objectContaining({ kind: "feature", op: "added", id: f.fresh }));
    expect(res.json.summary).toMatchObject({ customersGaining: 3, customersLosing: 0 });
  });

  it("treats a loss that reaches nobody as safe, and a feature retype as a loss", async () => {
    const safe = base();
    delete (safe.plans[p.empty]!.entitlements as Record<string, unknown>)[f.sso];
    expect((await diff(safe)).json.destructive).toBe(false);
    const retyped = base();
    retyped.features[f.size] = { type: "metered" } as never;
    retyped.plans[p.basic]!.entitlements[f.size] = { limit: 10 } as never;
    const res = await diff(retyped);
    expect(res.json.destructive).toBe(true);
    expect(res.json.impact).toContainEqual(
      expect.objectContaining({
        feature: f.size,
        effect: "loss",
        details: expect.arrayContaining(['type "config" -> "metered"']),
      }),
    );
  });

  it("changes nothing: no catalog write, no audit record, no new catalog revision", async () => {
    const before = await w.call("GET", "/admin/v1/catalog", { key: BOOTSTRAP });
    const rev = await env.DB.prepare("SELECT value FROM meta WHERE key = 'catalog_rev'").first<number>("value");
    const audits = await auditCount();
    await diff(destructiveEdit());
    expect((await w.call("GET", "/admin/v1/catalog", { key: BOOTSTRAP })).json).toEqual(before.json);
    expect(await env.DB.prepare("SELECT value FROM meta WHERE key = 'catalog_rev'").first<number>("value")).toBe(rev);
    expect(await auditCount()).toBe(audits);
  });

  it("is open to viewers, closed to keys without the admin scope, and validates the file", async () => {
    const viewer = await operatorToken("viewer");
    expect((await diff(base(), viewer)).status).toBe(200);
    const checkOnly = await diff(base(), await createKey(w, ["check"]));
    expect(checkOnly.status).toBe(403);
    expect(checkOnly.headers.get("content-type")).toBe("application/problem+json");
    expect((await w.call("POST", "/admin/v1/catalog/diff", { body: base() })).status).toBe(401);
    const bad = await diff({
      features: { x: { type: "nope" } },
      plans: { q: { name: "Q", entitlements: { y: true } } },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.errors.map((e: { path: string }) => e.path)).toEqual(
      expect.arrayContaining(["json.features.x.type"]),
    );
  });
});

describe("scripts/catalog.mjs output", () => {
  it("prints the blast radius and why apply refuses", async () => {
    const res = await diff(destructiveEdit());
    const text = formatDiff(res.json, { file: "catalog.json", target: "http://127.0.0.1:8787" });
    expect(text).toContain(`LOSS   ${f.sso}: 3 customers`);
    expect(text).toContain(`e.g. ${[customers.a, customers.b, customers.c].sort().join(", ")}`);
    expect(text).toContain(`${p.basic}: limit 1000 -> 500`);
    expect(destructiveRefusal(res.json)).toMatch(/--allow-destructive/);
    expect(destructiveRefusal((await diff(base())).json)).toBeNull();
  });
});

describe("compareSpecs (what a holder of the entitlement gains or loses)", () => {
  const groups = { EU: ["DE", "FR"] };
  const effects = (b: object, a: object, type = "metered", after = groups) =>
    compareSpecs({ enabled: true, ...b }, { enabled: true, ...a }, type, groups, after);

  it("limits and overage: lower or capped is a loss, higher or unlimited a gain, reset and anchor a change", () => {
    expect(effects({ limit: 100 }, { limit: null })).toEqual([{ effect: "gain", detail: "limit 100 -> unlimited" }]);
    expect(effects({ limit: null }, { limit: 100 })).toEqual([{ effect: "loss", detail: "limit unlimited -> 100" }]);
    expect(effects({ overage: "allow" }, {})).toEqual([{ effect: "loss", detail: "overage allow -> block" }]);
    expect(effects({ overage: "allow" }, { overage: "allow", overageCap: 5 })).toEqual([
      { effect: "loss", detail: "overageCap unlimited -> 5" },
    ]);
    expect(effects({ reset: "month" }, { reset: "day", anchor: "billing" }).map((e) => e.effect)).toEqual([
      "change",
      "change",
    ]);
    // Defaults are meaning, not text: reset "month" is what an unset reset means.
    expect(effects({}, { reset: "month", anchor: "calendar" })).toEqual([]);
  });

  it("roles and regions: a narrower allow-list or a longer deny-list is a loss", () => {
    expect(effects({}, { roles: ["admin"] }, "boolean")).toEqual([{ effect: "loss", detail: "roles: any -> admin" }]);
    expect(effects({ roles: ["admin", "owner"] }, { roles: ["admin", "billing"] }, "boolean")).toEqual([
      { effect: "loss", detail: "roles -owner" },
      { effect: "gain", detail: "roles +billing" },
    ]);
    expect(effects({ regions: { allow: ["EU"] } }, { regions: { allow: ["EU", "CH"] } }, "boolean")).toEqual([
      { effect: "gain", detail: "countries allowed +CH" },
    ]);
    expect(effects({ regions: { deny: ["CN"] } }, { regions: { deny: ["CN", "EU"] } }, "boolean")).toEqual([
      { effect: "loss", detail: "countries denied +DE,FR" },
    ]);
    // The same spec text, but the region group it names lost a country.
    expect(effects({ regions: { allow: ["EU"] } }, { regions: { allow: ["EU"] } }, "boolean", { EU: ["DE"] })).toEqual([
      { effect: "loss", detail: "countries allowed -FR" },
    ]);
  });

  it("config values and enabling", () => {
    expect(effects({ value: 10 }, { value: 100 }, "config")).toEqual([{ effect: "change", detail: "value 10 -> 100" }]);
    expect(effects({ value: { a: 1, b: 2 } }, { value: { b: 2, a: 1 } }, "config")).toEqual([]);
    expect(compareSpecs({ enabled: false }, { enabled: true }, "boolean", {}, {})).toEqual([
      { effect: "gain", detail: "enabled" },
    ]);
  });
});
