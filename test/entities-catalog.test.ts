// Entities (issue 17), the catalog's side: a `seats` feature, `seat` on a feature (stored in
// features.seat_feature) and `perEntity` on an entitlement spec, through the catalog file, the admin
// features API, the diff, the compiled catalog and the customer's snapshot.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { testCatalog } from "./fixtures/catalog";
import { createCustomer, createKey } from "./helpers/admin";
import { auditOf, parsed } from "./helpers/d1";
import { kvCatalog, kvSnapshot } from "./helpers/kv";
import { BOOTSTRAP, checker, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let checkKey: string;
const check = checker(w, () => checkKey);

/** The test catalog with seats: documents need a user seat, each user may make 10 edits a day of the pool's 500. */
const entityCatalog = () => ({
  ...testCatalog,
  features: {
    ...testCatalog.features,
    user_seats: { type: "seats", description: "Editor seats" },
    documents: { type: "metered", seat: "user_seats" },
    sso_per_user: { type: "boolean", seat: "user_seats" },
  },
  plans: {
    ...testCatalog.plans,
    team: {
      name: "Team",
      entitlements: {
        user_seats: 5,
        documents: { limit: 500, reset: "month", perEntity: { limit: 10, reset: "day" } },
        api_calls: { limit: 1000, perEntity: { limit: 50 } },
        sso_per_user: true,
      },
    },
  },
});

const put = (body: unknown) => w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body });
const createFeature = (body: Record<string, unknown>) => w.call("POST", "/admin/v1/features", { key: BOOTSTRAP, body });
const fkey = () =>
  uid("feat")
    .toLowerCase()
    .replace(/[^a-z0-9_.-]/g, "_");

beforeAll(async () => {
  const res = await put(entityCatalog());
  if (res.status !== 200) throw new Error(`catalog load failed: ${res.status} ${res.text}`);
  checkKey = await createKey(w, ["check"]);
});

describe("a catalog file with seats", () => {
  it("stores seat and perEntity and carries them into the compiled catalog and the customer's snapshot", async () => {
    const stored = await env.DB.prepare("SELECT key, type, seat_feature FROM features WHERE key IN (?1, ?2, ?3)")
      .bind("user_seats", "documents", "sso_per_user")
      .all();
    expect(stored.results).toEqual(
      expect.arrayContaining([
        { key: "user_seats", type: "seats", seat_feature: null },
        { key: "documents", type: "metered", seat_feature: "user_seats" },
        { key: "sso_per_user", type: "boolean", seat_feature: "user_seats" },
      ]),
    );

    const exported = await w.call("GET", "/admin/v1/catalog", { key: BOOTSTRAP });
    expect(exported.json.features.documents).toEqual({
      type: "metered",
      description: "",
      integer: true,
      failurePolicy: "closed",
      seat: "user_seats",
    });
    expect(exported.json.features.user_seats).not.toHaveProperty("seat");
    expect(exported.json.plans.team.entitlements.documents).toEqual({
      enabled: true,
      limit: 500,
      reset: "month",
      perEntity: { limit: 10, reset: "day" },
    });

    const catalog = await kvCatalog();
    expect(catalog?.features.documents?.seat).toBe("user_seats");
    expect(catalog?.features.sso_per_user?.seat).toBe("user_seats");
    expect(catalog?.features.user_seats).toMatchObject({ type: "seats" });
    expect(catalog?.features.user_seats).not.toHaveProperty("seat");
    expect(catalog?.features.api_calls).not.toHaveProperty("seat");

    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "team" }] });
    // The check publishes the customer's part (the decision of a seats check is the check path's, not tested here).
    expect(await check(c.id, "user_seats")).toMatchObject({ allowed: true, type: "seats" });
    const snapshot = await kvSnapshot(c.id);
    expect(snapshot?.features.documents?.seat).toBe("user_seats");
    const specOf = (feature: string) => snapshot?.features[feature]?.sources[0]?.spec;
    expect(specOf("documents")).toMatchObject({ limit: 500, reset: "month", perEntity: { limit: 10, reset: "day" } });
    // perEntity without a reset takes the entitlement's (api_calls: the default, month).
    expect(specOf("api_calls")).toMatchObject({
      limit: 1000,
      reset: "month",
      perEntity: { limit: 50, reset: "month" },
    });
    expect(specOf("user_seats")).toEqual({ enabled: true, limit: 5 });
  });

  it("applied again changes nothing; a changed seat shows in the diff and in the feature's audit", async () => {
    const again = await put(entityCatalog());
    expect(again.status).toBe(200);
    const summary = (await auditOf("catalog", "catalog")).at(-1)!;
    expect(parsed(summary.after)).toMatchObject({ created: 0, updated: 0 });

    const moved = {
      ...entityCatalog(),
      features: {
        ...entityCatalog().features,
        guest_seats: { type: "seats" },
        documents: { type: "metered", seat: "guest_seats" },
      },
    };
    const diff = await w.call("POST", "/admin/v1/catalog/diff", { key: BOOTSTRAP, body: moved });
    expect(diff.status).toBe(200);
    const change = diff.json.changes.find((ch: { id: string }) => ch.id === "documents");
    expect(change).toMatchObject({ kind: "feature", op: "changed", details: ['seat "user_seats" -> "guest_seats"'] });

    expect((await put(moved)).status).toBe(200);
    const audit = (await auditOf("feature", "documents")).at(-1)!;
    expect(audit.action).toBe("feature.update");
    expect(parsed(audit.before)).toMatchObject({ seat: "user_seats" });
    expect(parsed(audit.after)).toMatchObject({ seat: "guest_seats" });
    expect((await kvCatalog())?.features.documents?.seat).toBe("guest_seats");
    expect((await put(entityCatalog())).status).toBe(200);
  });

  it("refuses a seat naming an unknown feature or a non-seats one, naming the path", async () => {
    const unknown = entityCatalog();
    unknown.features = { ...unknown.features, documents: { type: "metered", seat: "nope" } };
    const a = expectProblem(await put(unknown), 400, "validation");
    expect(a.errors).toContainEqual({ path: "json.features.documents.seat", message: "unknown feature 'nope'" });

    const metered = entityCatalog();
    metered.features = { ...metered.features, documents: { type: "metered", seat: "seats" } };
    const b = expectProblem(await put(metered), 400, "validation");
    expect(b.errors).toContainEqual({
      path: "json.features.documents.seat",
      message: "'seats' is a metered feature, not a seats feature",
    });
    expect((await kvCatalog())?.features.documents?.seat).toBe("user_seats");
  });

  it("refuses retyping a seats feature that a stored feature left out of the file names", async () => {
    const { sso_per_user: _kept, ...features } = entityCatalog().features;
    const retyped = { ...entityCatalog(), features: { ...features, user_seats: { type: "metered" } } };
    // documents is in the file and names user_seats: the file itself is invalid.
    const own = expectProblem(await put(retyped), 400, "validation");
    expect(own.errors?.map((e) => e.path)).toContain("json.features.documents.seat");
    // Only stored features the file leaves out (documents, sso_per_user) name it: refused as a feature in use.
    const { documents: _d, ...rest } = features;
    const plans = { ...retyped.plans, team: { name: "Team", entitlements: { user_seats: 5 } } };
    const res = expectProblem(
      await put({ ...retyped, plans, features: { ...rest, user_seats: { type: "metered" } } }),
      409,
      "conflict",
    );
    expect(res.references).toEqual({ features: ["documents", "sso_per_user"] });
    expect(res.detail).toContain("'user_seats' is a metered feature, not a seats feature");
    const type = await env.DB.prepare("SELECT type FROM features WHERE key = 'user_seats'").first<{ type: string }>();
    expect(type?.type).toBe("seats");
  });
});

describe("the admin features API", () => {
  it("creates a seats feature and a feature with a seat, and answers seat on reads", async () => {
    const seats = fkey();
    const created = await createFeature({ key: seats, type: "seats" });
    expect(created.status).toBe(201);
    expect(created.json.feature).toMatchObject({ key: seats, type: "seats" });
    const key = fkey();
    const res = await createFeature({ key, type: "metered", seat: seats });
    expect(res.status).toBe(201);
    expect(res.json.feature).toMatchObject({ key, type: "metered", seat: seats });
    const read = await w.call("GET", `/admin/v1/features/${key}`, { key: BOOTSTRAP });
    expect(read.json).toMatchObject({ key, seat: seats });
    const [audit] = await auditOf("feature", key);
    expect(parsed(audit!.after)).toMatchObject({ seat: seats });
    const row = await env.DB.prepare("SELECT seat_feature FROM features WHERE key = ?1").bind(key).first();
    expect(row).toEqual({ seat_feature: seats });
    expect((await kvCatalog())?.features[key]?.seat).toBe(seats);
    const list = await w.call("GET", "/admin/v1/features?type=seats&limit=100", { key: BOOTSTRAP });
    expect(list.json.items.map((f: { key: string }) => f.key)).toEqual(expect.arrayContaining([seats, "user_seats"]));
  });

  it("refuses a bad seat with a 400 at json.seat", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ type: "metered", seat: "no_such_seats" }, "unknown feature 'no_such_seats'"],
      [{ type: "boolean", seat: "api_calls" }, "'api_calls' is a metered feature, not a seats feature"],
      [{ type: "seats", seat: "user_seats" }, "a seats feature needs no seat of another"],
    ];
    for (const [body, message] of cases) {
      const key = fkey();
      const res = expectProblem(await createFeature({ key, ...body }), 400, "validation");
      expect(res.errors).toEqual([{ path: "json.seat", message }]);
      expect(await env.DB.prepare("SELECT 1 FROM features WHERE key = ?1").bind(key).first()).toBeNull();
    }
  });

  it("refuses deleting a seats feature another feature names as its seat, until that one is gone", async () => {
    const seats = fkey();
    const user = fkey();
    await createFeature({ key: seats, type: "seats" });
    await createFeature({ key: user, type: "boolean", seat: seats });
    const refused = expectProblem(
      await w.call("DELETE", `/admin/v1/features/${seats}`, { key: BOOTSTRAP }),
      409,
      "conflict",
    );
    expect(refused.references).toEqual({ plans: 0, grants: 0, prices: 0, features: 1 });
    expect(refused.detail).toContain("1 feature(s) naming it");
    expect(await env.DB.prepare("SELECT 1 AS n FROM features WHERE key = ?1").bind(seats).first()).toEqual({ n: 1 });
    expect((await w.call("DELETE", `/admin/v1/features/${user}`, { key: BOOTSTRAP })).status).toBe(200);
    expect((await w.call("DELETE", `/admin/v1/features/${seats}`, { key: BOOTSTRAP })).status).toBe(200);
  });

  it("refuses deleting a credits feature a creditCost names, the same way", async () => {
    const credits = fkey();
    const drawing = fkey();
    await createFeature({ key: credits, type: "credits" });
    await createFeature({ key: drawing, type: "metered", creditCost: { credits, cost: 2 } });
    const refused = expectProblem(await w.call("DELETE", `/admin/v1/features/${credits}`, { key: BOOTSTRAP }), 409);
    expect(refused.references).toEqual({ plans: 0, grants: 0, prices: 0, features: 1 });
  });
});
