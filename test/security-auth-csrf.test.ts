// Security review M8: cross-site requests on the admin API. Operators may be authenticated by a
// cookie (Cloudflare Access), so a page elsewhere must not be able to make their browser change
// anything. Every state-changing admin request (POST, PUT, PATCH, DELETE) needs
// `Content-Type: application/json`, with or without a body: a browser sends that type cross-origin
// only after a CORS preflight, which /admin never answers. And a request that says it comes from
// another site (`Sec-Fetch-Site: cross-site` or `same-site`) is a 403 whatever its type.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createCustomer,
  createKey,
  DAY_MS as DAY,
  expectProblem,
  iso,
  loadTestCatalog,
  T0,
  testWorker,
  uid,
} from "./helpers";
import { operatorToken } from "./helpers/operators";

const w = testWorker();
let approver: string;
let admin: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  approver = await operatorToken("approver", "ann-csrf");
  admin = await operatorToken("admin", "kim-csrf");
});

/** A request exactly as given: no header added (the test helper adds a JSON type to admin writes). */
async function send(method: string, path: string, token: string, headers: Record<string, string> = {}, body?: string) {
  const ctx = createExecutionContext();
  const req = new Request(`https://tollgate.test${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...headers },
    body,
  });
  const res = await w.worker.fetch(req, env, ctx);
  await waitOnExecutionContext(ctx);
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

/** The form a cross-site page can post without a preflight: no fields, so Content-Length: 0 (set here as on the wire). */
const emptyForm = { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "0" };

async function pendingGrant(): Promise<string> {
  const { id: customerId } = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
  const res = await w.call("POST", "/admin/v1/grants", {
    key: await operatorToken("support", "sue-csrf"),
    body: { customerId, feature: "sso", spec: { enabled: true }, reason: "pilot", expiresAt: iso(T0 + DAY) },
  });
  return res.json.grant.id;
}
const statusOf = async (grantId: string) =>
  (await w.call("GET", `/admin/v1/grants/${grantId}`, { key: approver })).json.status;

describe("bodyless admin writes need Content-Type: application/json", () => {
  it("approve, reject and revoke a grant: an empty form or no type at all is a 415 and changes nothing", async () => {
    const grantId = await pendingGrant();
    // An empty form, and a no-cors fetch with no body at all (no Content-Type).
    for (const [headers, body] of [
      [emptyForm, ""],
      [{}, undefined],
    ] as const)
      for (const action of ["approve", "reject"]) {
        const res = await send("POST", `/admin/v1/grants/${grantId}/${action}`, approver, headers, body);
        expect(expectProblem(res, 415).type).toBe("urn:tollgate:problem:unsupported-media-type");
      }
    expect(await statusOf(grantId)).toBe("pending");
    const ok = await send("POST", `/admin/v1/grants/${grantId}/approve`, approver, {
      "Content-Type": "application/json",
    });
    expect(ok.status).toBe(200);
    expectProblem(await send("POST", `/admin/v1/grants/${grantId}/revoke`, approver, emptyForm, ""), 415);
    expect(await statusOf(grantId)).toBe("active");
  });

  it("revoke a key, delete a customer: 415 without the type, and nothing changes", async () => {
    await createKey(w, ["check"]);
    const keyId = (await w.call("GET", "/admin/v1/api-keys?limit=1", { key: admin })).json.items[0].id;
    expectProblem(await send("POST", `/admin/v1/api-keys/${keyId}/revoke`, admin, emptyForm, ""), 415);
    expect((await w.call("GET", `/admin/v1/api-keys/${keyId}`, { key: admin })).json.revokedAt).toBeNull();

    const { id } = await createCustomer(w, { id: uid() });
    expectProblem(await send("DELETE", `/admin/v1/customers/${id}`, approver), 415);
    expect((await w.call("GET", `/admin/v1/customers/${id}`, { key: approver })).status).toBe(200);
    const deleted = await send("DELETE", `/admin/v1/customers/${id}`, approver, { "Content-Type": "application/json" });
    expect(deleted.status).toBe(200);
  });

  it("reads need no type; the public API keeps its rules", async () => {
    expect((await send("GET", "/admin/v1/customers?limit=1", approver)).status).toBe(200);
    const key = await createKey(w, ["check"]);
    expect((await send("GET", "/v1/check?customerId=nobody&feature=sso", key)).status).toBe(200);
  });
});

describe("Sec-Fetch-Site", () => {
  it("cross-site and same-site admin writes are a 403, even as JSON; nothing changes", async () => {
    const grantId = await pendingGrant();
    for (const site of ["cross-site", "same-site"]) {
      const res = await send(
        "POST",
        `/admin/v1/grants/${grantId}/approve`,
        approver,
        { "Content-Type": "application/json", "Sec-Fetch-Site": site },
        "{}",
      );
      expect(expectProblem(res, 403).detail).toMatch(/Sec-Fetch-Site/);
    }
    expect(await statusOf(grantId)).toBe("pending");
  });

  it("same-origin (the /docs page), none (typed in) and absent (scripts) pass; reads pass whatever the site", async () => {
    for (const site of ["same-origin", "none"]) {
      const res = await send("POST", `/admin/v1/grants/${await pendingGrant()}/reject`, approver, {
        "Content-Type": "application/json",
        "Sec-Fetch-Site": site,
      });
      expect(res.status).toBe(200);
    }
    const read = await send("GET", "/admin/v1/customers?limit=1", approver, { "Sec-Fetch-Site": "cross-site" });
    expect(read.status).toBe(200);
  });
});
