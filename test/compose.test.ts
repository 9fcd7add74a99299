// The split snapshot answers exactly as the whole one: for random catalogs (features of every type,
// region groups, base plans and add-ons, entitlements naming features that do not exist), random
// subscriptions (every status, trials, cancellations, grace, scheduled plan changes, plans that do not
// exist) and random grants (add and replace, windows, region rules naming groups), composing the
// customer part with the shared catalog gives the snapshot compileSnapshot gives from the same rows,
// and every check evaluated on it, at instants around every window, is the same decision.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileCatalog } from "../src/domain/catalog-compile";
import { type CustomerRows, compileSnapshot, type GrantRow, type SubscriptionRow } from "../src/domain/compile";
import { compose } from "../src/domain/compose";
import { compilePart } from "../src/domain/customer-part";
import { evaluate } from "../src/domain/evaluate";
import { moveInstant, versionSegments } from "../src/domain/plan-versions";
import type { EntitlementSpec, FeatureType } from "../src/domain/types";
import { satisfies, versionAtLeast } from "../src/domain/version";

const T = 1_800_000_000_000;
const FEATURES = ["a", "b", "c", "d"];
const PLANS = ["p0", "p1", "p2"];
const GROUPS = { EU: ["DE", "FR"], NA: ["CA", "US"] };
const instant = fc.option(fc.integer({ min: T - 10, max: T + 10 }), { nil: null });

const spec: fc.Arbitrary<EntitlementSpec> = fc.record(
  {
    enabled: fc.boolean(),
    limit: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
    reset: fc.constantFrom("none", "day", "month"),
    anchor: fc.constantFrom("calendar", "billing"),
    overage: fc.constantFrom("block", "allow"),
    overageCap: fc.option(fc.integer({ min: 0, max: 10 }), { nil: null }),
    value: fc.oneof(fc.integer(), fc.string({ maxLength: 3 })),
    roles: fc.option(fc.subarray(["admin", "member"], { minLength: 1 }), { nil: null }),
    regions: fc.option(
      fc.record({ allow: fc.subarray(["EU", "NA", "JP"]), deny: fc.subarray(["EU", "US"]) }, { requiredKeys: [] }),
      { nil: null },
    ),
  },
  { requiredKeys: ["enabled"] },
);

const catalogRows = fc.record({
  features: fc.uniqueArray(
    fc.record({
      key: fc.constantFrom(...FEATURES),
      type: fc.constantFrom<FeatureType>("boolean", "metered", "config"),
      integer: fc.boolean(),
      failurePolicy: fc.constantFrom("open", "closed"),
    }),
    { selector: (f) => f.key, maxLength: FEATURES.length },
  ),
  plans: fc.dictionary(
    fc.constantFrom(...PLANS),
    fc.record({
      kind: fc.constantFrom("base", "addon"),
      // "zz" is no feature: compiled away on both sides.
      entitlements: fc.dictionary(fc.constantFrom(...FEATURES, "zz"), spec, { maxKeys: 4 }),
    }),
  ),
});

const subscription = (i: number): fc.Arbitrary<SubscriptionRow> =>
  fc.record({
    id: fc.constant(`s${i}`),
    planId: fc.constantFrom(...PLANS, "ghost"),
    status: fc.constantFrom("trialing", "active", "past_due", "canceled", "expired"),
    startedAt: fc.integer({ min: T - 20, max: T + 5 }),
    trialEnd: instant,
    currentPeriodStart: instant,
    currentPeriodEnd: instant,
    billingAnchor: instant,
    cancelAt: instant,
    graceUntil: instant,
    endedAt: instant,
    scheduledPlanId: fc.option(fc.constantFrom(...PLANS), { nil: null }),
    scheduledChangeAt: instant,
  });

const grant = (i: number): fc.Arbitrary<GrantRow> =>
  fc.record({
    id: fc.constant(`g${i}`),
    featureKey: fc.constantFrom(...FEATURES, "zz"),
    mode: fc.constantFrom("add", "replace"),
    spec,
    startsAt: instant,
    expiresAt: instant,
    createdAt: fc.integer({ min: T - 20, max: T }),
  });

const customerRows: fc.Arbitrary<CustomerRows> = fc
  .record({
    catalog: catalogRows,
    rev: fc.integer({ min: 1, max: 50 }),
    catalogRev: fc.integer({ min: 0, max: 50 }),
    residency: fc.constantFrom(null, "eu"),
    subs: fc
      .integer({ min: 0, max: 3 })
      .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => subscription(i)))),
    grants: fc.integer({ min: 0, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => grant(i)))),
  })
  .map((r) => ({
    customer: { id: "c", residency: r.residency, rev: r.rev },
    catalogRev: r.catalogRev,
    features: r.catalog.features,
    regionGroups: GROUPS,
    plans: Object.fromEntries(Object.entries(r.catalog.plans).map(([id, p]) => [id, { id, ...p }])),
    subscriptions: [...r.subs],
    grants: [...r.grants],
  }));

describe("compose(part, catalog) against compileSnapshot (the oracle)", () => {
  it("is the same snapshot, and every check on it is the same decision", () => {
    fc.assert(
      fc.property(
        customerRows,
        fc.constantFrom(undefined, "admin", "member"),
        fc.constantFrom(undefined, "DE", "US", "JP"),
        (rows, role, country) => {
          const whole = compileSnapshot(rows, T);
          const composed = compose(compilePart(rows, T), compileCatalog(rows, T));
          expect(composed).toEqual(whole);
          for (const feature of [...FEATURES, "zz"])
            for (const now of [T - 21, T - 5, T, T + 1, T + 6, T + 11])
              expect(evaluate(composed, { feature, role, country }, now)).toEqual(
                evaluate(whole, { feature, role, country }, now),
              );
        },
      ),
      { numRuns: 400 },
    );
  });

  it("a part is independent of the catalog: recomposed with a newer catalog, it answers as a fresh compile", () => {
    fc.assert(
      fc.property(customerRows, catalogRows, (rows, next) => {
        const part = compilePart(rows, T);
        const newer: CustomerRows = {
          ...rows,
          catalogRev: rows.catalogRev + 1,
          features: next.features,
          plans: Object.fromEntries(Object.entries(next.plans).map(([id, p]) => [id, { id, ...p }])),
        };
        const composed = compose(part, compileCatalog(newer, T));
        expect({ ...composed, catalogRev: 0 }).toEqual({ ...compileSnapshot(newer, T), catalogRev: 0 });
      }),
      { numRuns: 200 },
    );
  });
});

describe("version tokens", () => {
  const held = (customerRev: number, partCatalogRev: number, catalogRev: number) => ({
    customerRev,
    partCatalogRev,
    catalogRev,
  });
  it("a token is met componentwise; a number by the part and the catalog it was read with", () => {
    expect(satisfies(held(3, 5, 7), { customer: 3, catalog: 7 })).toBe(true);
    expect(satisfies(held(3, 5, 7), { customer: 4, catalog: 0 })).toBe(false);
    expect(satisfies(held(3, 5, 7), { customer: 0, catalog: 8 })).toBe(false);
    expect(satisfies(held(3, 5, 7), { sum: 8 })).toBe(true);
    // An old part with a newer catalog reaches the sum of a write it does not hold: not satisfied.
    expect(satisfies(held(3, 5, 7), { sum: 9 })).toBe(false);
  });

  it("clients compare tokens componentwise (versionAtLeast, exported by the typed client)", () => {
    expect(versionAtLeast("3.7", "3.7")).toBe(true);
    expect(versionAtLeast("4.7", "3.2")).toBe(true);
    // "1.3" and "2.2" have the same sum, and neither holds the other.
    expect(versionAtLeast("1.3", "2.2")).toBe(false);
    expect(versionAtLeast("2.2", "1.3")).toBe(false);
    expect(versionAtLeast(12, 11)).toBe(true);
    expect(versionAtLeast("nonsense", "1.1")).toBe(false);
  });

  it("the numeric form stays sound: a part read before a write never satisfies the number that write returned", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        (rev, k, laterCatalog, composedWith) => {
          // A write makes customer rev `rev` on catalog `k` and returns rev + k. A part read before it has
          // a lower rev and a catalog revision <= k (revisions only grow), composed with any catalog.
          const before = held(rev - 1, Math.max(0, k - (laterCatalog % (k + 1))), composedWith);
          expect(satisfies(before, { sum: rev + k })).toBe(false);
          // A part read after it has rev >= rev and a catalog revision >= k.
          const after = held(rev + (laterCatalog % 3), k + (laterCatalog % 5), Math.max(composedWith, k));
          expect(satisfies(after, { sum: rev + k })).toBe(true);
        },
      ),
    );
  });
});

describe("plan version segments (migrations resolved per subscription)", () => {
  const migration = fc.record({
    toVersion: fc.integer({ min: 1, max: 6 }),
    mode: fc.constantFrom<"now" | "at_period_end">("now", "at_period_end"),
    at: fc.integer({ min: T - 10, max: T + 10 }),
    cancelledAt: fc.option(fc.integer({ min: T - 10, max: T + 10 }), { nil: null }),
  });
  const subscription = fc.record({
    planVersion: fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }),
    periodStart: fc.option(fc.integer({ min: T - 10, max: T + 10 }), { nil: null }),
    periodEnd: fc.option(fc.integer({ min: T - 10, max: T + 20 }), { nil: null }),
  });

  it("partition the window in order, versions only grow, and every boundary is a migration's move", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(migration, { maxLength: 4 }),
        subscription,
        fc.integer({ min: T - 15, max: T + 5 }),
        fc.integer({ min: 0, max: 30 }),
        (current, migrations, sub, from, length) => {
          const until = from + length;
          const segments = versionSegments(current, migrations, sub, from, until);
          expect(segments[0]?.from).toBe(from);
          expect(segments.at(-1)?.until).toBe(until);
          const pinned = sub.planVersion ?? current;
          expect(segments[0]!.version).toBeGreaterThanOrEqual(pinned);
          for (let i = 1; i < segments.length; i++) {
            const [a, b] = [segments[i - 1]!, segments[i]!];
            expect(b.from).toBe(a.until);
            expect(b.version).toBeGreaterThan(a.version);
            // The boundary is where a migration to exactly that version moves this subscription.
            expect(migrations.some((m) => m.toVersion === b.version && moveInstant(m, sub) === b.from)).toBe(true);
          }
          // A cancelled migration never moves anyone at or after its cancellation.
          for (const m of migrations) {
            const at = moveInstant(m, sub);
            if (m.cancelledAt !== null && at !== null) expect(at).toBeLessThan(m.cancelledAt);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
