// Security review H1: a key bound to one customer is never an admin. Creating one is a 400, and one
// already in D1 (made before the refusal existed) gets no role on /admin/v1: 403, while it keeps
// working on the public API for its own customer.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { displayPrefix, generateApiKey, hashApiKey } from "../src/auth/api-keys";
import { insertApiKeyStatement } from "../src/store/api-keys";
import { BOOTSTRAP, createCustomer, expectProblem, loadTestCatalog, testWorker, uid } from "./helpers";
import { operatorToken } from "./helpers/operators";

const w = testWorker();
let admin: string;
let acme: string;
let globex: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  admin = await operatorToken("admin", "bound-keys-admin");
  acme = (await createCustomer(w, { id: uid("acme"), subscriptions: [{ planId: "pro" }] })).id;
  globex = (await createCustomer(w, { id: uid("globex"), subscriptions: [{ planId: "pro" }] })).id;
});

/** A key row written straight to D1, as an older version of the admin API could create it. */
async function legacyKey(scopes: string[], customerId: string | null): Promise<string> {
  const key = generateApiKey();
  await insertApiKeyStatement(env.DB, {
    id: `key_${crypto.randomUUID()}`,
    hash: await hashApiKey(key),
    prefix: displayPrefix(key),
    name: "legacy",
    scopes: JSON.stringify(scopes),
    customer_id: customerId,
    created_by: "bound-keys-admin",
    created_at: Date.now(),
  }).run();
  return key;
}

describe("customer-bound keys and the admin API", () => {
  it("creating a key with scope admin bound to a customer is a 400 naming customerId", async () => {
    for (const [key, scopes] of [
      [admin, ["admin"]],
      [BOOTSTRAP, ["check", "admin"]],
    ] as const) {
      const res = await w.call("POST", "/admin/v1/api-keys", {
        key,
        body: { name: "acme integration", scopes, customerId: acme },
      });
      const problem = expectProblem(res, 400);
      expect(problem.type).toBe("urn:tollgate:problem:validation");
      expect(problem.errors).toEqual([{ path: "json.customerId", message: expect.stringMatching(/admin/) }]);
    }
    const listed = await w.call("GET", `/admin/v1/api-keys?customerId=${acme}`, { key: admin });
    expect(listed.json.items).toEqual([]);
    // Unbound admin keys and bound check keys are still created.
    expect((await w.call("POST", "/admin/v1/api-keys", { key: admin, body: { scopes: ["admin"] } })).status).toBe(201);
    const bound = { scopes: ["check", "usage"], customerId: acme };
    expect((await w.call("POST", "/admin/v1/api-keys", { key: admin, body: bound })).status).toBe(201);
  });

  it("a bound admin key already in D1 is refused on /admin/v1 (403) and cannot mint an unbound admin key", async () => {
    const key = await legacyKey(["admin"], acme);
    const list = expectProblem(await w.call("GET", "/admin/v1/customers", { key }), 403);
    expect(list.detail).toMatch(/bound to a customer/);
    expectProblem(await w.call("POST", "/admin/v1/api-keys", { key, body: { scopes: ["admin"] } }), 403);
    expectProblem(await w.call("GET", `/admin/v1/customers/${globex}`, { key }), 403);
    // On the public API it still answers for its own customer only.
    const own = await w.call("POST", "/v1/check", { key, body: { customerId: acme, feature: "sso" } });
    expect(own.status).toBe(200);
    expectProblem(await w.call("POST", "/v1/check", { key, body: { customerId: globex, feature: "sso" } }), 403);
  });

  it("an unbound admin key still administers", async () => {
    const key = await legacyKey(["admin"], null);
    expect((await w.call("GET", "/admin/v1/customers", { key })).status).toBe(200);
  });
});
