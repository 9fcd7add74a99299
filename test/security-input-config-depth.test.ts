// Config values (an entitlement's `value`, a plan's shorthand value) are bounded before the schemas
// read them: at most 32 levels of nesting and 16 KiB serialized. A value a few thousand levels deep
// (a 10 KB body) used to overflow the validator's stack and answer 500 on every admin write that
// takes entitlements; it is a 400 that names the limit and the field, and nothing is written.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { testCatalog } from "./fixtures/catalog";
import { createCustomer, loadTestCatalog } from "./helpers/admin";
import { BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
const DEEP = 5000;

/** `depth` arrays inside one another around a number: its serialized form is 2 * depth + 1 bytes. */
const nested = (depth: number) => JSON.parse(`${"[".repeat(depth)}1${"]".repeat(depth)}`);
const admin = (method: string, path: string, body: unknown) => w.call(method, path, { key: BOOTSTRAP, body });

let customerId: string;
beforeAll(async () => {
  await loadTestCatalog(w);
  customerId = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] })).id;
});

/** The 400 names the limit and the field. */
function expectBounded(res: Awaited<ReturnType<typeof w.call>>, path: string, limit: RegExp) {
  const p = expectProblem(res, 400, "validation");
  expect(p.detail).toMatch(limit);
  expect(p.errors).toContainEqual({ path, message: expect.stringMatching(limit) });
}

const planCount = async (id: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM plans WHERE id = ?1").bind(id).first<{ n: number }>())!.n;

describe("a config value 5,000 levels deep is a 400, never a 500", () => {
  it("POST /admin/v1/plans", async () => {
    const id = uid("plan");
    const res = await admin("POST", "/admin/v1/plans", {
      id,
      name: id,
      entitlements: { theme: { value: nested(DEEP) } },
    });
    expectBounded(res, "json.entitlements.theme.value", /32 levels/);
    expect(await planCount(id)).toBe(0);
  });

  it("PUT /admin/v1/plans/{id} and PUT /admin/v1/plans/{id}/entitlements/{feature}", async () => {
    const id = uid("plan");
    expect((await admin("POST", "/admin/v1/plans", { id, name: id, entitlements: {} })).status).toBe(201);
    const replace = await admin("PUT", `/admin/v1/plans/${id}`, {
      name: id,
      entitlements: { theme: { value: nested(DEEP) } },
    });
    expectBounded(replace, "json.entitlements.theme.value", /32 levels/);
    const one = await admin("PUT", `/admin/v1/plans/${id}/entitlements/theme`, { value: nested(DEEP) });
    expectBounded(one, "json.value", /32 levels/);
    const plan = await w.call("GET", `/admin/v1/plans/${id}`, { key: BOOTSTRAP });
    expect(plan.json.entitlements).toEqual({});
  });

  it("POST /admin/v1/grants (the customer's entitlement write)", async () => {
    const res = await admin("POST", "/admin/v1/grants", {
      customerId,
      feature: "theme",
      spec: { value: nested(DEEP) },
      reason: "deep",
    });
    expectBounded(res, "json.spec.value", /32 levels/);
    const grants = await w.call("GET", `/admin/v1/grants?customerId=${customerId}`, { key: BOOTSTRAP });
    expect(grants.json.items).toEqual([]);
  });

  it("PUT /admin/v1/catalog and POST /admin/v1/catalog/diff", async () => {
    const id = uid("plan");
    const file = {
      ...testCatalog,
      plans: { ...testCatalog.plans, [id]: { name: id, entitlements: { theme: { value: nested(DEEP) } } } },
    };
    const path = `json.plans.${id}.entitlements.theme.value`;
    expectBounded(await admin("PUT", "/admin/v1/catalog", file), path, /32 levels/);
    expectBounded(await admin("POST", "/admin/v1/catalog/diff", file), path, /32 levels/);
    expect(await planCount(id)).toBe(0);
  });

  it("deep nesting elsewhere in an admin body is bounded too (64 levels)", async () => {
    const res = await admin("POST", "/admin/v1/plans", { id: uid("plan"), name: "x", description: nested(DEEP) });
    expectBounded(res, "json.description", /64 levels/);
  });
});

describe("the limits", () => {
  it("32 levels are accepted, 33 are not", async () => {
    const id = uid("plan");
    const ok = await admin("POST", "/admin/v1/plans", { id, name: id, entitlements: { theme: { value: nested(32) } } });
    expect(ok.status).toBe(201);
    expect(ok.json.plan.entitlements.theme.value).toEqual(nested(32));
    const over = await admin("PUT", `/admin/v1/plans/${id}/entitlements/theme`, { value: nested(33) });
    expectBounded(over, "json.value", /32 levels/);
  });

  it("16 KiB serialized are accepted, one byte more is not (a shorthand string value counts too)", async () => {
    const id = uid("plan");
    const fits = "x".repeat(16 * 1024 - 2); // the quotes make 16,384 bytes
    const ok = await admin("POST", "/admin/v1/plans", { id, name: id, entitlements: { theme: { value: fits } } });
    expect(ok.status).toBe(201);
    const over = await admin("PUT", `/admin/v1/plans/${id}`, { name: id, entitlements: { theme: `${fits}x` } });
    expectBounded(over, "json.entitlements.theme", /16384 bytes/);
    const multibyte = await admin("PUT", `/admin/v1/plans/${id}/entitlements/theme`, {
      value: { text: "é".repeat(8200) },
    });
    expectBounded(multibyte, "json.value", /16384 bytes/);
  });
});
