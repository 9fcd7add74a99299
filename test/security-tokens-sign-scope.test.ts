// Security review M4 (issue 11, item 5): signing is its own scope. A `check` key (such as the customer-bound
// key a browser's OFREP provider holds) may check, but neither mint entitlement tokens nor ask for decision
// assertions; those need `sign`, meant for trusted servers. The role and country in signed output are the
// caller's claims, under `context`. And an assertion is never made of a degraded answer (a stale copy or
// a failure policy), just as tokens never are.
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { outage } from "./helpers/faults";
import { T0 } from "./helpers/time";
import { BOOTSTRAP, expectProblem, postCheck, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let jwks: JSONWebKeySet;
const proCustomer = async () => (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;

beforeAll(async () => {
  await loadTestCatalog(w);
  jwks = (await w.call("GET", "/.well-known/jwks.json")).json;
});

describe("the sign scope", () => {
  it("the admin API creates keys with scope sign, and lists it", async () => {
    const res = await w.call("POST", "/admin/v1/api-keys", { key: BOOTSTRAP, body: { scopes: ["check", "sign"] } });
    expect(res.status).toBe(201);
    expect(res.json.scopes).toEqual(["check", "sign"]);
    const got = await w.call("GET", `/admin/v1/api-keys/${res.json.id}`, { key: BOOTSTRAP });
    expect(got.json.scopes).toEqual(["check", "sign"]);
  });

  it("a browser's key (check, bound to its customer) checks but mints no token: 403 forbidden", async () => {
    const acme = await proCustomer();
    const browser = await createKey(w, ["check"], acme);
    const check = await postCheck(w, browser, { customerId: acme, feature: "sso", role: "admin" });
    expect(check.json).toMatchObject({ allowed: true, reason: "ok" });
    const minted = await w.call("POST", "/v1/tokens", {
      key: browser,
      body: { customerId: acme, role: "owner", country: "DE", audience: "desktop-app", ttlSeconds: 86_400 },
    });
    expect(expectProblem(minted, 403, "forbidden").detail).toMatch(/'sign'/);
    expect(minted.json.token).toBeUndefined();
  });

  it("nor a decision assertion: assert: true without sign is a 403 forbidden and carries no assertion", async () => {
    const acme = await proCustomer();
    const browser = await createKey(w, ["check"], acme);
    const res = await postCheck(w, browser, {
      customerId: acme,
      feature: "sso",
      role: "admin",
      assert: true,
      assertAudience: "https://reports.internal",
    });
    expect(expectProblem(res, 403, "forbidden").detail).toMatch(/'sign'/);
    expect(res.json.assertion).toBeUndefined();
    // An unbound check-only key neither.
    const server = await createKey(w, ["check"]);
    expectProblem(await postCheck(w, server, { customerId: acme, feature: "sso", assert: true }), 403, "forbidden");
  });

  it("a key with sign mints tokens and assertions, and the caller's role and country are under context", async () => {
    const acme = await proCustomer();
    const signer = await createKey(w, ["check", "sign"], acme);
    const minted = await w.call("POST", "/v1/tokens", {
      key: signer,
      body: { customerId: acme, role: "admin", country: "DE", audience: "desktop-app" },
    });
    expect(minted.status).toBe(200);
    const token = await jwtVerify(minted.json.token, createLocalJWKSet(jwks), {
      issuer: "tollgate",
      audience: "desktop-app",
      currentDate: new Date(T0),
    });
    expect(token.payload.context).toEqual({ role: "admin", country: "DE" });
    expect(token.payload.role).toBeUndefined();

    const checked = await postCheck(w, signer, {
      customerId: acme,
      feature: "sso",
      role: "admin",
      country: "FR",
      assert: true,
      assertAudience: "https://reports.internal",
    });
    expect(checked.status).toBe(200);
    const assertion = await jwtVerify(checked.json.assertion, createLocalJWKSet(jwks), {
      issuer: "tollgate",
      audience: "https://reports.internal",
      typ: "tollgate-decision+jwt",
      currentDate: new Date(T0),
    });
    expect(assertion.payload.context).toEqual({ role: "admin", country: "FR" });
  });

  it("sign alone does not check: /v1/check still needs the check scope", async () => {
    const acme = await proCustomer();
    const signOnly = await createKey(w, ["sign"], acme);
    expectProblem(await postCheck(w, signOnly, { customerId: acme, feature: "sso", assert: true }), 403, "forbidden");
    expect((await w.call("POST", "/v1/tokens", { key: signOnly, body: { customerId: acme } })).status).toBe(200);
  });
});

describe("assertions of degraded answers", () => {
  it("a stale copy (KV and D1 down) is answered, but not asserted: 503 unavailable", async () => {
    const acme = await proCustomer();
    const signer = await createKey(w, ["check", "sign"], acme);
    const outageWorker = testWorker();
    // Warm this isolate: the key and the snapshot are now in its caches.
    const warm = await outageWorker.call("POST", "/v1/check", {
      key: signer,
      body: { customerId: acme, feature: "sso", role: "admin" },
    });
    expect(warm.json.degraded).toBeUndefined();
    const opts = { key: signer, env: outage };
    const body = { customerId: acme, feature: "sso", role: "admin" };
    const plain = await outageWorker.at(T0 + 60_000, () => outageWorker.call("POST", "/v1/check", { ...opts, body }));
    expect(plain.json).toMatchObject({ allowed: true, degraded: true });
    const asserted = await outageWorker.at(T0 + 60_000, () =>
      outageWorker.call("POST", "/v1/check", { ...opts, body: { ...body, assert: true } }),
    );
    expectProblem(asserted, 503, "unavailable");
    expect(asserted.json.assertion).toBeUndefined();
  });

  it("a failure-policy answer (fail open, no copy at all) is not asserted either", async () => {
    const acme = await proCustomer();
    const other = await proCustomer();
    const signer = await createKey(w, ["check", "sign"]);
    const outageWorker = testWorker();
    // The key and the catalog's failure policies are known to this isolate; `other` has never been read.
    await outageWorker.call("POST", "/v1/check", { key: signer, body: { customerId: acme, feature: "audit_export" } });
    const opts = { key: signer, env: outage };
    const open = await outageWorker.call("POST", "/v1/check", {
      ...opts,
      body: { customerId: other, feature: "audit_export" },
    });
    expect(open.json).toMatchObject({ allowed: true, degraded: true, failurePolicy: "open" });
    const asserted = await outageWorker.call("POST", "/v1/check", {
      ...opts,
      body: { customerId: other, feature: "audit_export", assert: true },
    });
    expectProblem(asserted, 503, "unavailable");
  });
});
