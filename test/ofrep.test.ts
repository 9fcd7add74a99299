// OFREP, driven by the real OpenFeature server SDK and its OFREP provider (their fetch is pointed at
// this worker), plus the specification's request/response shapes checked on the wire.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { OFREPApi } from "@openfeature/ofrep-core";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import { OpenFeature } from "@openfeature/server-sdk";
import { beforeAll, describe, expect, it } from "vitest";
import { testFeatureKeys } from "./fixtures/catalog";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { DAY_MS, HOUR_MS, iso, T0 } from "./helpers/time";
import { testWorker, uid } from "./helpers/worker";

const w = testWorker();
const BASE = "https://tollgate.test";
let key: string;

/** The provider's fetch, answered by the test worker in-process. */
const workerFetch = async (input: RequestInfo | URL, init?: RequestInit) => {
  const ctx = createExecutionContext();
  const res = await w.worker.fetch(new Request(input, init), env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
};

const clientFor = async (apiKey: string) => {
  const domain = uid("ofrep");
  await OpenFeature.setProviderAndWait(
    domain,
    new OFREPProvider({
      baseUrl: BASE,
      fetchImplementation: workerFetch,
      headers: { Authorization: `Bearer ${apiKey}` },
    }),
  );
  return OpenFeature.getClient(domain);
};

const evaluate = (
  flag: string,
  body: unknown,
  opts: { key?: string; raw?: string; headers?: Record<string, string> } = {},
) =>
  w.call("POST", `/ofrep/v1/evaluate/flags/${flag}`, {
    key: opts.key ?? key,
    body: opts.raw === undefined ? body : undefined,
    raw: opts.raw,
    headers: opts.raw === undefined ? opts.headers : { "Content-Type": "application/json", ...opts.headers },
  });
const bulk = (body: unknown, headers: Record<string, string> = {}) =>
  w.call("POST", "/ofrep/v1/evaluate/flags", { key, body, headers });

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage"]);
});

describe("OpenFeature server SDK + OFREP provider against Tollgate", () => {
  it("boolean features are boolean flags, with the decision in the metadata", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const client = await clientFor(key);
    const sso = await client.getBooleanDetails("sso", false, { targetingKey: c.id, role: "admin" });
    expect(sso).toMatchObject({
      value: true,
      reason: "TARGETING_MATCH",
      variant: "ok",
      flagMetadata: { reason: "ok", type: "boolean", snapshotVersion: c.snapshotVersion },
    });
    expect(sso.errorCode).toBeUndefined();
  });

  it("the role in the context feeds the role rules", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const client = await clientFor(key);
    expect(await client.getBooleanDetails("sso", true, { targetingKey: c.id, role: "viewer" })).toMatchObject({
      value: false,
      variant: "role_denied",
    });
  });

  it("the country in the context feeds the region rules", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const client = await clientFor(key);
    expect(await client.getBooleanValue("eu_hosting", false, { targetingKey: c.id, country: "de" })).toBe(true);
    expect(await client.getBooleanValue("eu_hosting", true, { targetingKey: c.id, country: "US" })).toBe(false);
  });

  it("config features return their value", async () => {
    const pro = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const client = await clientFor(key);
    expect(await client.getNumberValue("max_file_size_mb", 1, { targetingKey: pro.id })).toBe(100);
    expect(await client.getObjectValue("theme", {}, { targetingKey: pro.id })).toEqual({ name: "pro", dark: true });
  });

  it("a customer without a config value gets the code default", async () => {
    const none = await createCustomer(w, { id: uid(), subscriptions: [] });
    const client = await clientFor(key);
    // Tollgate answers with no value (OFREP codeDefaultFlag); this provider version (0.1.3) predates
    // that shape and reports a GENERAL error, but the caller still gets its own default.
    expect(await client.getNumberValue("max_file_size_mb", 7, { targetingKey: none.id })).toBe(7);
  });

  it("asking for a type the flag does not have is the SDK's TYPE_MISMATCH, not a server error", async () => {
    const pro = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const client = await clientFor(key);
    expect(await client.getStringDetails("sso", "x", { targetingKey: pro.id, role: "admin" })).toMatchObject({
      value: "x",
      errorCode: "TYPE_MISMATCH",
    });
  });

  it("metered features say whether allowance remains", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const client = await clientFor(key);
    expect(await client.getBooleanDetails("api_calls", false, { targetingKey: c.id })).toMatchObject({
      value: true,
      flagMetadata: { limit: 100, remaining: 100 },
    });
    const used = await w.call("POST", "/v1/usage", {
      key,
      body: { customerId: c.id, feature: "api_calls", amount: 100 },
    });
    expect(used.json).toMatchObject({ allowed: true, remaining: 0 });
    expect(await client.getBooleanDetails("api_calls", true, { targetingKey: c.id })).toMatchObject({
      value: false,
      variant: "limit_reached",
      flagMetadata: { remaining: 0, used: 100 },
    });
  });

  it("maps FLAG_NOT_FOUND, TARGETING_KEY_MISSING and INVALID_CONTEXT to the SDK's error codes", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const client = await clientFor(key);
    expect(await client.getBooleanDetails("teleportation", false, { targetingKey: c.id })).toMatchObject({
      value: false,
      errorCode: "FLAG_NOT_FOUND",
    });
    expect(await client.getBooleanDetails("sso", false, {})).toMatchObject({
      value: false,
      errorCode: "TARGETING_KEY_MISSING",
    });
    expect(await client.getBooleanDetails("sso", false, { targetingKey: c.id, country: "Germany" })).toMatchObject({
      value: false,
      errorCode: "INVALID_CONTEXT",
    });
    const denied = await clientFor(`tg_${"A".repeat(43)}`);
    expect(await denied.getBooleanDetails("sso", true, { targetingKey: c.id })).toMatchObject({
      value: true,
      errorCode: "GENERAL",
    });
  });
});

describe("single flag evaluation on the wire (OFREP service/openapi.yaml)", () => {
  it("200: { key, value, reason, variant, metadata } as application/json", async () => {
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", cancelAt: iso(T0 + DAY_MS) }],
    });
    const res = await evaluate("audit_export", { context: { targetingKey: c.id } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.json).toEqual({
      key: "audit_export",
      value: true,
      reason: "TARGETING_MATCH",
      variant: "ok",
      metadata: { reason: "ok", type: "boolean", snapshotVersion: c.snapshotVersion, expiresAt: iso(T0 + DAY_MS) },
    });
  });

  it("a config feature the customer lacks, and an unknown customer, defer to the code default (no value)", async () => {
    const none = await createCustomer(w, { id: uid(), subscriptions: [] });
    expect((await evaluate("theme", { context: { targetingKey: none.id } })).json).toEqual({
      key: "theme",
      reason: "DEFAULT",
      variant: "not_entitled",
      metadata: { reason: "not_entitled", type: "config", snapshotVersion: none.snapshotVersion },
    });
    const ghost = await evaluate("sso", { context: { targetingKey: uid("nobody") } });
    expect(ghost.status).toBe(200);
    expect(ghost.json).toEqual({
      key: "sso",
      reason: "DEFAULT",
      variant: "unknown_customer",
      metadata: { reason: "unknown_customer", snapshotVersion: 0 },
    });
  });

  it("404 FLAG_NOT_FOUND and 400 TARGETING_KEY_MISSING / INVALID_CONTEXT / PARSE_ERROR bodies", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const missing = await evaluate("teleportation", { context: { targetingKey: c.id } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/^application\/json/);
    expect(missing.json).toEqual({
      key: "teleportation",
      errorCode: "FLAG_NOT_FOUND",
      errorDetails: expect.any(String),
    });
    for (const body of [{}, { context: {} }, { context: { targetingKey: "" } }]) {
      const res = await evaluate("sso", body);
      expect(res.status).toBe(400);
      expect(res.json).toEqual({ key: "sso", errorCode: "TARGETING_KEY_MISSING", errorDetails: expect.any(String) });
    }
    expect((await w.call("POST", "/ofrep/v1/evaluate/flags/sso", { key })).json.errorCode).toBe(
      "TARGETING_KEY_MISSING",
    ); // no body at all
    for (const context of [
      { targetingKey: 42 },
      { targetingKey: "has space" },
      { targetingKey: c.id, country: "DEU" },
      { targetingKey: c.id, role: "" },
      "acme",
    ]) {
      const res = await evaluate("sso", { context });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ key: "sso", errorCode: "INVALID_CONTEXT" });
    }
    const bad = await evaluate("sso", undefined, { raw: "{ not json" });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({
      key: "sso",
      errorCode: "PARSE_ERROR",
      errorDetails: "The request body is not valid JSON.",
    });
    expect((await evaluate("sso", undefined, { raw: "[1, 2]" })).json).toMatchObject({
      key: "sso",
      errorCode: "PARSE_ERROR",
    });
  });

  it("401 without a key, 403 without the check scope or for another customer's key", async () => {
    const a = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const b = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const none = await w.call("POST", "/ofrep/v1/evaluate/flags/sso", { body: { context: { targetingKey: a.id } } });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/Bearer/);
    expect(
      (await evaluate("sso", { context: { targetingKey: a.id } }, { key: await createKey(w, ["usage"]) })).status,
    ).toBe(403);
    const bound = await createKey(w, ["check"], a.id);
    expect((await evaluate("audit_export", { context: { targetingKey: a.id } }, { key: bound })).json.value).toBe(true);
    expect((await evaluate("audit_export", { context: { targetingKey: b.id } }, { key: bound })).status).toBe(403);
    expect(
      (await w.call("POST", "/ofrep/v1/evaluate/flags", { key: bound, body: { context: { targetingKey: b.id } } }))
        .status,
    ).toBe(403);
  });
});

describe("bulk evaluation with ETag / If-None-Match", () => {
  it("returns every catalog feature as a flag, with an ETag; If-None-Match answers 304 until something changes", async () => {
    const trialEnd = T0 + HOUR_MS;
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) }],
    });
    const first = await bulk({ context: { targetingKey: c.id, role: "admin", country: "FR" } });
    expect(first.status).toBe(200);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const flags = Object.fromEntries(first.json.flags.map((f: { key: string }) => [f.key, f]));
    expect(Object.keys(flags).sort()).toEqual(testFeatureKeys);
    expect(flags.sso).toMatchObject({ value: true, reason: "TARGETING_MATCH", variant: "ok" });
    expect(flags.eu_hosting.value).toBe(true);
    expect(flags.theme.value).toEqual({ name: "pro", dark: true });
    expect(flags.audit_export).toMatchObject({ value: true, metadata: { expiresAt: iso(trialEnd) } });

    const same = await bulk(
      { context: { targetingKey: c.id, role: "admin", country: "FR" } },
      { "If-None-Match": etag },
    );
    expect(same.status).toBe(304);
    expect(same.text).toBe("");
    expect(same.headers.get("etag")).toBe(etag);
    expect(
      (
        await bulk(
          { context: { targetingKey: c.id, role: "admin", country: "FR" } },
          { "If-None-Match": `"other", W/${etag}` },
        )
      ).status,
    ).toBe(304);
    // Another context is another representation.
    expect(
      (await bulk({ context: { targetingKey: c.id, role: "viewer", country: "FR" } }, { "If-None-Match": etag }))
        .status,
    ).toBe(200);
    // The trial ends: the evaluation changes, so does the ETag.
    w.clock.set(trialEnd);
    const after = await bulk(
      { context: { targetingKey: c.id, role: "admin", country: "FR" } },
      { "If-None-Match": etag },
    );
    w.clock.set(T0);
    expect(after.status).toBe(200);
    expect(after.headers.get("etag")).not.toBe(etag);
    expect(after.json.flags.find((f: { key: string }) => f.key === "audit_export")).toMatchObject({
      value: false,
      variant: "trial_expired",
    });
  });

  it("works through the OFREP core client (the web provider's bulk path), including 304", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const api = new OFREPApi(BASE, workerFetch);
    const headers: [string, string][] = [["Authorization", `Bearer ${key}`]];
    const first = await api.postBulkEvaluateFlags({ context: { targetingKey: c.id } }, { headers });
    expect(first.httpStatus).toBe(200);
    expect(
      (first.value as { flags: { key: string; value?: unknown }[] }).flags.find((f) => f.key === "max_file_size_mb")
        ?.value,
    ).toBe(10);
    const etag = first.httpResponse!.headers.get("ETag")!;
    const again = await api.postBulkEvaluateFlags(
      { context: { targetingKey: c.id } },
      { headers: [...headers, ["If-None-Match", etag]] },
    );
    expect(again.httpStatus).toBe(304);
  });

  it("bulk errors: 400 with errorCode (no key), unknown customer is an empty flag set", async () => {
    const missing = await bulk({ context: { role: "admin" } });
    expect(missing.status).toBe(400);
    expect(missing.json).toEqual({ errorCode: "TARGETING_KEY_MISSING", errorDetails: expect.any(String) });
    expect((await bulk({ context: { targetingKey: "x", country: 12 } })).json.errorCode).toBe("INVALID_CONTEXT");
    const parse = await w.call("POST", "/ofrep/v1/evaluate/flags", {
      key,
      raw: "{",
      headers: { "Content-Type": "application/json" },
    });
    expect(parse.json).toEqual({ errorCode: "PARSE_ERROR", errorDetails: expect.any(String) });
    const ghost = await bulk({ context: { targetingKey: uid("nobody") } });
    expect(ghost.status).toBe(200);
    expect(ghost.json).toEqual({ flags: [], metadata: { reason: "unknown_customer" } });
  });

  it("answers browsers' CORS preflight with the headers OFREP web providers send and read", async () => {
    const res = await w.call("OPTIONS", "/ofrep/v1/evaluate/flags", {
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, if-none-match",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-headers")).toMatch(/If-None-Match/);
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const post = await bulk({ context: { targetingKey: c.id } }, { Origin: "https://app.example" });
    expect(post.headers.get("access-control-expose-headers")).toMatch(/ETag/);
  });
});
