// Every admin route enforces its role: each role below the route's minimum gets a 403 problem and
// changes nothing; the minimum role gets past authorization. viewer < support < approver < admin.
import { beforeAll, describe, expect, it } from "vitest";
import { OPERATOR_ROLES, type OperatorRole } from "../src/auth/operator-jwt";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { auditCount } from "./helpers/d1";
import { operatorToken } from "./helpers/operators";
import { BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
const tokens = {} as Record<OperatorRole, string>;
let customerId: string;
let grantId: string;
let keyId: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  for (const role of OPERATOR_ROLES) tokens[role] = await operatorToken(role, `op-roles-${role}`);
  customerId = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] })).id;
  const grant = await w.call("POST", "/admin/v1/grants", {
    key: tokens.support,
    body: { customerId, feature: "theme", spec: { value: "x" }, reason: "r", expiresAt: "2026-03-20T00:00:00Z" },
  });
  grantId = grant.json.grant.id;
  await createKey(w, ["check"]);
  keyId = (await w.call("GET", "/admin/v1/api-keys?limit=1", { key: BOOTSTRAP })).json.items[0].id;
});

type Case = [method: string, path: () => string, min: OperatorRole, body?: unknown];
const cases: Case[] = [
  // viewer: every read
  ["GET", () => "/admin/v1/catalog", "viewer"],
  ["GET", () => "/admin/v1/features?limit=5", "viewer"],
  ["GET", () => "/admin/v1/features/sso", "viewer"],
  ["GET", () => "/admin/v1/plans", "viewer"],
  ["GET", () => "/admin/v1/plans/pro", "viewer"],
  ["GET", () => "/admin/v1/region-groups", "viewer"],
  ["GET", () => "/admin/v1/region-groups/EU", "viewer"],
  ["GET", () => "/admin/v1/customers", "viewer"],
  ["GET", () => `/admin/v1/customers/${customerId}`, "viewer"],
  ["GET", () => `/admin/v1/customers/${customerId}/entitlements/explain`, "viewer"],
  ["GET", () => `/admin/v1/customers/${customerId}/entitlements`, "viewer"],
  ["GET", () => "/admin/v1/grants", "viewer"],
  ["GET", () => `/admin/v1/grants/${grantId}`, "viewer"],
  ["GET", () => "/admin/v1/api-keys", "viewer"],
  ["GET", () => `/admin/v1/api-keys/${keyId}`, "viewer"],
  ["GET", () => "/admin/v1/audit", "viewer"],
  // support: propose grants
  [
    "POST",
    () => "/admin/v1/grants",
    "support",
    () => ({ customerId, feature: "theme", spec: { value: "y" }, reason: "r", expiresAt: "2026-03-20T00:00:00Z" }),
  ],
  // approver: decide grants, change customers (and their subscriptions: see subscriptions.test.ts)
  ["POST", () => `/admin/v1/grants/grant_missing/approve`, "approver"],
  ["POST", () => `/admin/v1/grants/grant_missing/reject`, "approver"],
  ["POST", () => `/admin/v1/grants/grant_missing/revoke`, "approver"],
  ["POST", () => "/admin/v1/customers", "approver", () => ({ id: uid() })],
  ["PATCH", () => `/admin/v1/customers/${customerId}`, "approver", { name: "Renamed" }],
  ["DELETE", () => "/admin/v1/customers/nobody-here", "approver"],
  // admin: catalog, keys
  ["PUT", () => "/admin/v1/catalog", "admin", { features: {} }],
  ["POST", () => "/admin/v1/features", "admin", () => ({ key: uid("f").toLowerCase(), type: "boolean" })],
  ["PATCH", () => "/admin/v1/features/no_such_feature", "admin", { description: "x" }],
  ["DELETE", () => "/admin/v1/features/no_such_feature", "admin"],
  ["POST", () => "/admin/v1/plans", "admin", () => ({ id: uid("plan"), name: "P", entitlements: {} })],
  ["PUT", () => "/admin/v1/plans/no-such-plan", "admin", { name: "P", entitlements: {} }],
  ["PUT", () => "/admin/v1/plans/no-such-plan/entitlements/sso", "admin", true],
  ["DELETE", () => "/admin/v1/plans/no-such-plan/entitlements/sso", "admin"],
  ["DELETE", () => "/admin/v1/plans/no-such-plan", "admin"],
  ["PUT", () => "/admin/v1/region-groups/ZZTOP", "admin", { countries: ["DE"] }],
  ["DELETE", () => "/admin/v1/region-groups/NO-SUCH", "admin"],
  ["POST", () => "/admin/v1/api-keys", "admin", { scopes: ["check"] }],
  ["POST", () => "/admin/v1/api-keys/key_missing/revoke", "admin"],
];

const bodyOf = (b: unknown) => (typeof b === "function" ? b() : b);

describe("admin roles", () => {
  it("refuses every role below a route's minimum with 403 problem+json, and nothing changes", async () => {
    const before = await auditCount();
    let refusals = 0;
    for (const [method, path, min, body] of cases) {
      for (const role of OPERATOR_ROLES.slice(0, OPERATOR_ROLES.indexOf(min))) {
        const res = await w.call(method, path(), { key: tokens[role], body: bodyOf(body) });
        const p = expectProblem(res, 403);
        expect(p.detail, `${role} ${method} ${path()}`).toContain(`needs the '${min}' role`);
        refusals++;
      }
    }
    expect(refusals).toBeGreaterThan(40);
    expect(await auditCount()).toBe(before);
  });

  it("lets the minimum role through authorization on every route", async () => {
    for (const [method, path, min, body] of cases) {
      const res = await w.call(method, path(), { key: tokens[min], body: bodyOf(body) });
      expect([401, 403], `${min} ${method} ${path()} -> ${res.status} ${res.text}`).not.toContain(res.status);
    }
  });

  it("refuses a request without credentials (401)", async () => {
    expectProblem(await w.call("GET", "/admin/v1/features"), 401);
  });

  it("refuses an API key with only the check scope (403)", async () => {
    const checkKey = await createKey(w, ["check"]);
    expectProblem(await w.call("GET", "/admin/v1/features", { key: checkKey }), 403);
  });

  it("refuses a token whose signature was tampered with (401)", async () => {
    const forged = tokens.admin.slice(0, -4) + (tokens.admin.endsWith("AAAA") ? "BBBB" : "AAAA");
    expectProblem(await w.call("GET", "/admin/v1/features", { key: forged }), 401);
  });

  it("takes the token from the header Cloudflare Access sends it in (Cf-Access-Jwt-Assertion)", async () => {
    expect(
      (await w.call("GET", "/admin/v1/features", { headers: { "Cf-Access-Jwt-Assertion": tokens.viewer } })).status,
    ).toBe(200);
  });

  it("an admin-scoped API key acts as admin (automation)", async () => {
    const adminKey = await createKey(w, ["admin"]);
    const res = await w.call("PUT", "/admin/v1/region-groups/ZZAUTO", { key: adminKey, body: { countries: ["SE"] } });
    expect(res.status).toBe(200);
  });
});
