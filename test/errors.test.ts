// Bad input gets a clear problem+json, never a 500, and no internal detail leaks.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createKey, loadTestCatalog } from "./helpers/admin";
import { BOOTSTRAP, expectProblem, testWorker } from "./helpers/worker";

const w = testWorker();
let key: string;
beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

describe("problem+json for every kind of bad request", () => {
  it("schema violations are 400 with the offending fields", async () => {
    const res = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: "", feature: 5, quantity: -1, extra: true },
    });
    expectProblem(res, 400, "validation");
    const paths = res.json.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(["json.customerId", "json.feature", "json.quantity"]));
  });

  it("query violations name the query field", async () => {
    const res = await w.call("GET", "/v1/check?customerId=acme&feature=sso&quantity=abc", { key });
    expectProblem(res, 400, "validation");
    expect(res.json.errors[0].path).toBe("query.quantity");
  });

  const postRaw = (raw: string, contentType: string) =>
    w.call("POST", "/v1/check", { key, raw, headers: { "Content-Type": contentType } });

  it("malformed JSON is 400", async () => {
    expectProblem(await postRaw('{"customerId": ', "application/json"), 400, "malformed-json");
  });

  it("a body that is not JSON is 415", async () => {
    expectProblem(await postRaw("customerId=acme", "application/x-www-form-urlencoded"), 415, "unsupported-media-type");
  });

  it("a body over the stated size is 413", async () => {
    const res = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: "acme", feature: "sso", pad: "x".repeat(70_000) },
    });
    expectProblem(res, 413, "payload-too-large");
    expect(res.json.maxBytes).toBe(64 * 1024);
  });

  it("an unknown route is 404", async () => {
    expectProblem(await w.call("GET", "/v2/nothing", { key }), 404, "not-found");
  });

  it("a method a route does not take is 405, with Allow listing the ones it does", async () => {
    const res = await w.call("DELETE", "/v1/check", { key });
    expectProblem(res, 405, "method-not-allowed");
    expect(res.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "HEAD", "POST"]);
    expectProblem(await w.call("PUT", "/v1/entitlements/acme", { key }), 405, "method-not-allowed");
  });

  it("an internal failure is an opaque 500: no stack, no driver message", async () => {
    const broken = {
      ...env,
      DB: {
        prepare: () => {
          throw new Error("SQLITE_CORRUPT: secret internals at /src/x.ts:1");
        },
        batch: async () => {
          throw new Error("SQLITE_CORRUPT");
        },
      },
    } as unknown as Cloudflare.Env;
    const res = await w.call("POST", "/admin/v1/customers", { key: BOOTSTRAP, body: { id: "boom" }, env: broken });
    expectProblem(res, 500, "internal");
    expect(res.text).not.toMatch(/SQLITE|src\/|at /);
  });
});
