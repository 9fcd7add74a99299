// Countries are ASSIGNED ISO 3166-1 alpha-2 codes (src/domain/countries.ts): `ZZ`, `XX`, `AA`, `QM`
// have the right shape but name no country, and are a 400 in a check's country, a region group and a
// region rule. The edge's own placeholders (`XX` unknown, `T1` Tor) mean "no country": a region rule
// treats them as it treats a request without a country (an allow list blocks it, a deny list lets it
// through). And the OpenAPI document lists the 409 that a future minVersion answers on GET routes.
import { decodeJwt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { ASSIGNED_COUNTRIES } from "../src/domain/countries";
import { testCatalog } from "./fixtures/catalog";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { BOOTSTRAP, expectProblem, postCheck, testWorker, uid } from "./helpers/worker";

const w = testWorker();
const UNASSIGNED = ["ZZ", "XX", "AA", "QM", "XK", "EU", "UK"];
let key: string;
let pro: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "sign"]);
  pro = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;
});

describe("the list", () => {
  it("holds the 249 assigned codes, upper case, and none of the unassigned ones", () => {
    expect(ASSIGNED_COUNTRIES.size).toBe(249);
    for (const c of ASSIGNED_COUNTRIES) expect(c).toMatch(/^[A-Z]{2}$/);
    for (const c of ["DE", "US", "CN", "KP", "SS", "BQ", "CW", "SX", "AX", "GB"])
      expect(ASSIGNED_COUNTRIES.has(c)).toBe(true);
    for (const c of UNASSIGNED) expect(ASSIGNED_COUNTRIES.has(c)).toBe(false);
  });
});

describe("a check's country", () => {
  for (const code of ["ZZ", "XX", "AA", "QM"]) {
    it(`${code} is a 400 in the POST body, the GET query and /v1/entitlements`, async () => {
      const body = expectProblem(
        await postCheck(w, key, { customerId: pro, feature: "eu_hosting", country: code }),
        400,
        "validation",
      );
      expect(body.errors).toContainEqual({ path: "json.country", message: expect.stringMatching(/assigned/) });
      const get = await w.call("GET", `/v1/check?customerId=${pro}&feature=eu_hosting&country=${code.toLowerCase()}`, {
        key,
      });
      expect(expectProblem(get, 400, "validation").errors?.[0]?.path).toBe("query.country");
      expectProblem(await w.call("GET", `/v1/entitlements/${pro}?country=${code}`, { key }), 400, "validation");
    });
  }

  it("an assigned code still works, in either case", async () => {
    expect((await postCheck(w, key, { customerId: pro, feature: "eu_hosting", country: "de" })).json).toMatchObject({
      allowed: true,
    });
    expect((await postCheck(w, key, { customerId: pro, feature: "eu_hosting", country: "US" })).json).toMatchObject({
      allowed: false,
      reason: "region_blocked",
    });
  });
});

describe("region groups and region rules", () => {
  it("PUT /admin/v1/region-groups/{name} with an unassigned country is a 400 naming it", async () => {
    const name = `G${Date.now().toString(36).toUpperCase()}`;
    const res = await w.call("PUT", `/admin/v1/region-groups/${name}`, {
      key: BOOTSTRAP,
      body: { countries: ["DE", "ZZ"] },
    });
    const p = expectProblem(res, 400, "validation");
    expect(p.errors).toContainEqual({ path: "json.countries.1", message: expect.stringMatching(/assigned/) });
    expect((await w.call("GET", `/admin/v1/region-groups/${name}`, { key: BOOTSTRAP })).status).toBe(404);
  });

  it("a plan's or a grant's region rule naming an unassigned country is a 400", async () => {
    const id = uid("plan");
    const plan = await w.call("POST", "/admin/v1/plans", {
      key: BOOTSTRAP,
      body: { id, name: id, entitlements: { beta_ai: { enabled: true, regions: { allow: ["DE", "QM"] } } } },
    });
    expect(expectProblem(plan, 400, "validation").errors).toContainEqual({
      path: "json.entitlements.beta_ai",
      message: expect.stringMatching(/'QM'.*assigned/),
    });
    const grant = await w.call("POST", "/admin/v1/grants", {
      key: BOOTSTRAP,
      body: { customerId: pro, feature: "sso", spec: { enabled: true, regions: { deny: ["XX"] } }, reason: "x" },
    });
    expectProblem(grant, 400, "validation");
  });

  it("a catalog file with an unassigned country in a group or a rule is a 400", async () => {
    const group = await w.call("PUT", "/admin/v1/catalog", {
      key: BOOTSTRAP,
      body: { ...testCatalog, regionGroups: { ...testCatalog.regionGroups, EU: ["DE", "AA"] } },
    });
    expect(expectProblem(group, 400, "validation").errors).toContainEqual({
      path: "json.regionGroups.EU.1",
      message: expect.stringMatching(/assigned/),
    });
    const rule = await w.call("POST", "/admin/v1/catalog/diff", {
      key: BOOTSTRAP,
      body: {
        ...testCatalog,
        plans: {
          ...testCatalog.plans,
          free: { name: "Free", entitlements: { beta_ai: { regions: { deny: ["ZZ"] } } } },
        },
      },
    });
    expect(expectProblem(rule, 400, "validation").errors?.[0]?.path).toBe("json.plans.free.entitlements.beta_ai");
  });
});

describe("the edge's unknown country (request.cf.country XX, T1 for Tor) is no country", () => {
  for (const edge of ["XX", "T1"]) {
    it(`${edge}: an allow list blocks it and a deny list lets it through, as without a country; nothing signs it`, async () => {
      const cf = { country: edge };
      // eu_hosting: allow EU; beta_ai: deny SANCTIONED and CN.
      expect((await postCheck(w, key, { customerId: pro, feature: "eu_hosting" }, cf)).json).toMatchObject({
        allowed: false,
        reason: "region_blocked",
      });
      expect((await postCheck(w, key, { customerId: pro, feature: "beta_ai" }, cf)).json).toMatchObject({
        allowed: true,
      });
      const token = await w.call("POST", "/v1/tokens", { key, body: { customerId: pro }, cf });
      expect(token.status).toBe(200);
      expect(decodeJwt(token.json.token).context).toEqual({});
      const asserted = await postCheck(w, key, { customerId: pro, feature: "beta_ai", assert: true }, cf);
      expect(decodeJwt(asserted.json.assertion).context).not.toHaveProperty("country");
    });
  }

  it("an assigned edge country is used as before", async () => {
    const token = await w.call("POST", "/v1/tokens", { key, body: { customerId: pro }, cf: { country: "DE" } });
    expect(decodeJwt(token.json.token).context).toEqual({ country: "DE" });
  });
});

describe("OpenAPI", () => {
  it("GET /v1/check and GET /v1/entitlements/{customerId} document the 409 of a future minVersion", async () => {
    const doc = (await w.call("GET", "/openapi.json")).json;
    expect(Object.keys(doc.paths["/v1/check"].get.responses)).toContain("409");
    expect(Object.keys(doc.paths["/v1/entitlements/{customerId}"].get.responses)).toContain("409");
    expect(Object.keys(doc.paths["/v1/check"].post.responses)).toContain("409");
  });

  it("and they do answer it", async () => {
    const huge = Number.MAX_SAFE_INTEGER;
    expectProblem(
      await w.call("GET", `/v1/check?customerId=${pro}&feature=sso&minVersion=${huge}`, { key }),
      409,
      "conflict",
    );
    expectProblem(await w.call("GET", `/v1/entitlements/${pro}?minVersion=${huge}`, { key }), 409, "conflict");
  });
});
